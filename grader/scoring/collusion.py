"""Near-identical answers from different students to the same question.

Answers are compared as character n-grams (3 to 5, within words), TF-IDF weighted over the class's
answers to the question, so words every student uses (the question's own terms) count little and a
shared typo or phrasing counts a lot; all pairs at once as one sparse matrix product. Two short
factual answers ("ReLU", "No, it will not be better") are often the same by honest chance, so only
answers of at least MIN_WORDS words are compared; and two answers that are both near copies of the
model answer are not paired (what they share is the model answer: a leak is a different problem).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

THRESHOLD = 0.9
"""Cosine of the TF-IDF character n-gram vectors at or above which two answers are near-identical."""
MIN_WORDS = 12
"""Shorter answers are never paired."""
BLOCK = 2048


def near_copies(answers: Mapping[str, str], model_answer: str = "") -> dict[str, list[tuple[str, float]]]:
    """Student -> [(other student, similarity)], most similar first, for every near-identical pair."""
    students = [s for s, a in answers.items() if len(a.split()) >= MIN_WORDS]
    if len(students) < 2:
        return {}
    # Imported here: scikit-learn takes a second to import, and every command (even --help) imports this module.
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [" ".join(answers[s].lower().split()) for s in students]
    reference = " ".join(model_answer.lower().split())
    vectors = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True).fit_transform(
        texts + [reference]
    )
    vectors, model = vectors[:-1], vectors[-1]
    copied = (
        np.asarray((vectors @ model.T).todense()).ravel() >= THRESHOLD if reference else np.zeros(len(students), bool)
    )
    found: dict[str, list[tuple[str, float]]] = {}
    for start in range(0, len(students), BLOCK):  # rows in blocks: the product is dense-ish, bound its memory
        block = (vectors[start : start + BLOCK] @ vectors.T).tocoo()
        rows = block.row + start
        keep = (block.data >= THRESHOLD) & (rows != block.col) & ~(copied[rows] & copied[block.col])
        for i, j, value in zip(rows[keep], block.col[keep], block.data[keep]):
            found.setdefault(students[i], []).append((students[j], float(value)))
    return {s: sorted(found[s], key=lambda p: (-p[1], p[0])) for s in students if s in found}
