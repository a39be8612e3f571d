"""Marked answers as exemplars: what a TA who has marked some answers uses to mark the next one.

A TA who has marked 15 answers to a question marks the 16th by recognising "this says what s03
said, and s03 got 0.5". The rubric points cannot see that; the marked answers can. This module
turns the marked answers of each question into features of any answer to it (the similarity-
weighted mark of its nearest marked answers, its best similarity to a full-mark and to a low-mark
answer, how much those neighbours agree) and names the nearest ones as evidence a TA can check.

Everything is per question, as matrix products over unit vectors of whole answers. An answer is
never its own neighbour: a marked answer's features are computed from the *other* marked answers
(leave-one-out), otherwise a learner fitted on them would see each answer's own mark and its
cross-validated errors would lie.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from grader.embedding.encoder import TextEncoder
from grader.exam.rubric import Rubric, ShortQuestion
from grader.scoring.grade import Neighbour

NEIGHBOURS = 5
"""Marked answers whose marks are averaged (weighted by similarity) into the neighbours' mark."""
WEIGHT_POWER = 4
"""Neighbour weights are similarity**WEIGHT_POWER: a near-paraphrase counts far more than a loose match."""
FULL_SHARE = 0.8
"""A marked answer with at least this share of the marks counts as a full-mark exemplar."""
LOW_SHARE = 0.4
"""... and with at most this share as a low-mark exemplar."""
SHOWN = 3
"""Nearest marked answers shown to a TA as evidence."""
PRIOR_WEIGHT = 1.0
"""The local correction averages the nearest marked answers' residuals together with this much weight
on "no correction" (as much as one exact paraphrase), so one loose neighbour moves a mark little."""
FEATURES = (
    "neighbours_share",
    "top_similarity",
    "top_share",
    "full_similarity",
    "low_similarity",
    "full_minus_low",
    "neighbours_spread",
    "marked_mean",
    "reference_similarity",
    "reference_overlap",
    "point_overlap",
    "length_ratio",
)
"""Exemplar and lexical features of one answer (order of `answer_features`' columns); NaN where
there is nothing to compare with (no marked answer of that kind)."""

_STOPWORDS = frozenset(
    "a an the of to in on at by for from with and or but is are was were be been being it its this "
    "that these those as so than then there their they them which what when where who how do does did has "
    "have had can could will would should may might must also each any all into out up if we you i".split()
)


@dataclass(frozen=True)
class MarkedAnswers:
    """One question's marked answers: unit vectors of the whole answers, their marks and whose they are."""

    question_id: str
    student_ids: tuple[str, ...]
    vectors: np.ndarray
    marks: np.ndarray
    max_mark: float

    @property
    def shares(self) -> np.ndarray:
        return self.marks / self.max_mark

    def __len__(self) -> int:
        return len(self.student_ids)


@dataclass(frozen=True)
class AnswerTexts:
    """The texts every exemplar feature reads for one question: the model answer and point phrasings."""

    reference: str
    points: tuple[str, ...]

    @classmethod
    def of(cls, question: ShortQuestion) -> AnswerTexts:
        return cls(
            question.model_answer or " ".join(p.text for p in question.points), tuple(p.text for p in question.points)
        )


@dataclass(frozen=True)
class AnswerVectors:
    """What the exemplar calibration reads of each non-blank short answer, keyed by (student, question):
    the unit vector of the whole answer and its lexical features (the last four FEATURES)."""

    vectors: Mapping[tuple[str, str], np.ndarray]
    lexical: Mapping[tuple[str, str], np.ndarray]


def answer_vectors(rubric: Rubric, answers: Mapping[tuple[str, str], str], encoder: TextEncoder) -> AnswerVectors:
    """Encode every distinct non-blank short answer and each question's model answer once, in one call,
    and compute each answer's lexical features."""
    shorts = {q.id: q for q in rubric.questions if isinstance(q, ShortQuestion)}
    texts = {key: normalise(text) for key, text in answers.items() if key[1] in shorts and normalise(text)}
    references = {qid: AnswerTexts.of(q) for qid, q in shorts.items()}
    rows = encode_answers([*texts.values(), *(normalise(r.reference) for r in references.values())], encoder)
    vectors = {key: rows[text] for key, text in texts.items()}
    lexical = {
        key: np.array(
            lexical_features(text, rows[text], references[key[1]], rows[normalise(references[key[1]].reference)])
        )
        for key, text in texts.items()
    }
    return AnswerVectors(vectors, lexical)


def normalise(text: str) -> str:
    """An answer as it is encoded and compared: whitespace collapsed (line breaks say nothing)."""
    return " ".join(text.split())


def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"\w+", text.casefold()) if w not in _STOPWORDS}


def encode_answers(texts: Iterable[str], encoder: TextEncoder) -> dict[str, np.ndarray]:
    """Unit vectors of whole answers (normalised), each distinct non-blank text encoded once, in one call."""
    unique = [t for t in dict.fromkeys(normalise(t) for t in texts) if t]
    if not unique:
        return {}
    return dict(zip(unique, encoder.encode(unique)))


def similarities(vectors: np.ndarray, student_ids: Sequence[str], marked: MarkedAnswers) -> np.ndarray:
    """(answers x marked answers) cosines, with -inf where the marked answer is the answer itself."""
    if len(marked) == 0 or len(vectors) == 0:
        return np.full((len(vectors), len(marked)), -np.inf)
    sims = np.asarray(vectors, dtype=np.float64) @ np.asarray(marked.vectors, dtype=np.float64).T
    sims[
        np.asarray(student_ids, dtype=object)[:, None] == np.asarray(marked.student_ids, dtype=object)[None, :]
    ] = -np.inf
    return sims


def exemplar_features(sims: np.ndarray, marked: MarkedAnswers) -> np.ndarray:
    """The first eight FEATURES of each answer from its similarities to the marked answers (leave-one-out
    already applied as -inf). Rows with no marked answer to compare with are NaN."""
    n, m = sims.shape
    out = np.full((n, 8), np.nan)
    if m == 0:
        return out
    shares = marked.shares
    valid = np.isfinite(sims)
    top, top_sims, top_ok, weights = _nearest_weights(sims)
    top_shares = np.where(top_ok, shares[top], np.nan)
    has = top_ok.any(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:, 0] = np.where(has, (weights * np.nan_to_num(top_shares)).sum(axis=1) / weights.sum(axis=1), np.nan)
        out[:, 1] = np.where(has, top_sims[:, 0], np.nan)
        out[:, 2] = np.where(has, top_shares[:, 0], np.nan)
        full = np.where(valid & (shares >= FULL_SHARE)[None, :], sims, -np.inf).max(axis=1)
        low = np.where(valid & (shares <= LOW_SHARE)[None, :], sims, -np.inf).max(axis=1)
        out[:, 3] = np.where(np.isfinite(full), full, np.nan)
        out[:, 4] = np.where(np.isfinite(low), low, np.nan)
        out[:, 5] = np.where(np.isfinite(full), full, 0.0) - np.where(np.isfinite(low), low, 0.0)
        count = np.maximum(top_ok.sum(axis=1), 1)
        centre = np.nan_to_num(top_shares).sum(axis=1) / count
        spread = np.sqrt((np.where(top_ok, np.nan_to_num(top_shares) - centre[:, None], 0.0) ** 2).sum(axis=1) / count)
        out[:, 6] = np.where(has, spread, np.nan)
        counts = valid.sum(axis=1)
        out[:, 7] = np.where(counts > 0, (valid * shares[None, :]).sum(axis=1) / np.maximum(counts, 1), np.nan)
    return out


def local_correction(sims: np.ndarray, residuals: np.ndarray) -> np.ndarray:
    """What the nearest marked answers say a pooled model gets wrong here: the similarity-weighted mean
    of their residuals (TA's share minus the model's), shrunk towards 0 by PRIOR_WEIGHT. A TA's
    "this reads like s03, and I gave s03 more than the rubric suggests"; 0 with no marked answer."""
    if sims.shape[1] == 0:
        return np.zeros(sims.shape[0])
    top, _, top_ok, weights = _nearest_weights(sims)
    return (weights * np.where(top_ok, residuals[top], 0.0)).sum(axis=1) / (weights.sum(axis=1) + PRIOR_WEIGHT)


def _nearest_weights(sims: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The NEIGHBOURS most similar marked answers of each row (masked ones last): their columns, cosines,
    whether each is a real neighbour, and their weights (similarity**WEIGHT_POWER, 0 when masked)."""
    k = min(NEIGHBOURS, sims.shape[1])
    top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    top_sims = np.take_along_axis(sims, top, axis=1)
    top_ok = np.isfinite(top_sims)
    weights = np.where(top_ok, np.clip(np.where(top_ok, top_sims, 0.0), 1e-3, None) ** WEIGHT_POWER, 0.0)
    return top, top_sims, top_ok, weights


def lexical_features(
    answer: str, vector: np.ndarray | None, texts: AnswerTexts, reference_vector: np.ndarray
) -> list[float]:
    """The last four FEATURES: cosine of the whole answer to the model answer, the share of the model
    answer's and of the points' content words the answer uses, and its length against the model answer's."""
    words = content_words(answer)
    reference_words = content_words(texts.reference)
    point_words = set().union(*(content_words(p) for p in texts.points)) if texts.points else set()
    return [
        float(vector @ reference_vector) if vector is not None else 0.0,
        len(words & reference_words) / len(reference_words) if reference_words else 0.0,
        len(words & point_words) / len(point_words) if point_words else 0.0,
        math.log1p(len(answer.split()) / max(1, len(texts.reference.split()))),
    ]


def nearest(sims: np.ndarray, marked: MarkedAnswers, shown: int = SHOWN) -> list[tuple[Neighbour, ...]]:
    """The `shown` most similar marked answers of each answer (never itself), most similar first."""
    if sims.shape[1] == 0:
        return [() for _ in range(sims.shape[0])]
    order = np.argsort(-sims, axis=1, kind="stable")[:, :shown]
    return [
        tuple(
            Neighbour(marked.student_ids[j], float(marked.marks[j]), float(sims[i, j]))
            for j in row
            if np.isfinite(sims[i, j])
        )
        for i, row in enumerate(order)
    ]
