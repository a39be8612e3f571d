"""Answer groups: answers to one question that say the same thing, so a TA can mark them in one go.

A group is a complete-linkage cluster of the answers' embeddings: every two answers in it are at
least `GROUP_COSINE` alike, not merely chained through a middle one, so a group's answers really
say the same thing. Answers that read the same once case, spacing and end punctuation are set aside
always share a group (blank answers form one). Pure: vectors in, indices out; the caller encodes.
`bench/group_marking.py` measures what marking by group saves a TA on the shared corpora.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

GROUP_COSINE = 0.9
"""Least cosine between any two answers of a group (bench/group_marking.py compares 0.8 to 0.95:
at 0.9 almost every group's answers carry one human mark, and groups still save most actions)."""


@dataclass(frozen=True)
class AnswerGroup:
    members: tuple[int, ...]
    """Indices into the answers given, the most typical first (highest mean cosine to the others)."""
    cohesion: float
    """The lowest cosine between two of its answers (1.0 for one answer or identical ones)."""


def same_text(text: str) -> str:
    """The form under which two answers count as identical: case, spacing and end punctuation aside."""
    return re.sub(r"\s+", " ", text).strip().rstrip(".!?;, ").casefold()


def group_answers(texts: Sequence[str], vectors: np.ndarray, threshold: float = GROUP_COSINE) -> list[AnswerGroup]:
    """Group answers whose embeddings (rows of `vectors`, one per text) are all pairwise >= `threshold`.

    Largest groups first (ties: the group whose first answer comes first); every answer is in exactly
    one group, a lone answer in a group of its own.
    """
    if len(texts) != len(vectors):
        raise ValueError(f"{len(texts)} answers but {len(vectors)} vectors")
    if not texts:
        return []
    keys = [same_text(t) for t in texts]
    distinct = list(dict.fromkeys(keys))
    first = {k: i for i, k in reversed(list(enumerate(keys)))}
    units = _unit([vectors[first[k]] for k in distinct])
    similarity = np.clip(units @ units.T, -1.0, 1.0)
    blank = [i for i, k in enumerate(distinct) if not k]
    for i in blank:  # a blank answer is like no written answer, whatever its vector
        similarity[i, :] = similarity[:, i] = -1.0
        similarity[i, i] = 1.0
    labels = _complete_linkage(similarity, threshold)
    members: dict[int, list[int]] = {}
    of_key = dict(zip(distinct, labels))
    for index, key in enumerate(keys):
        members.setdefault(int(of_key[key]), []).append(index)
    rows = {k: i for i, k in enumerate(distinct)}
    groups = []
    for indices in members.values():
        inner = similarity[np.ix_([rows[keys[i]] for i in indices], [rows[keys[i]] for i in indices])]
        typical = inner.mean(axis=1)
        ordered = [indices[j] for j in sorted(range(len(indices)), key=lambda j: (-typical[j], indices[j]))]
        groups.append(AnswerGroup(tuple(ordered), float(min(1.0, inner.min()))))
    return sorted(groups, key=lambda g: (-len(g.members), min(g.members)))


def most_like(vectors: np.ndarray, index: int, candidates: Sequence[int], limit: int = 10) -> list[tuple[int, float]]:
    """The candidates most like answer `index`, most alike first, with their cosines ("mark this, then
    show me the answers most like it")."""
    others = [c for c in candidates if c != index]
    if not others:
        return []
    units = _unit(vectors[[index, *others]])
    cosines = units[1:] @ units[0]
    order = sorted(range(len(others)), key=lambda j: (-cosines[j], others[j]))[:limit]
    return [(others[j], float(cosines[j])) for j in order]


def word_differences(reference: str, text: str) -> list[tuple[str, bool]]:
    """`text` cut into pieces, each marked True where its words are not in `reference`: what a group
    member says beyond (or instead of) the group's most typical answer. The pieces join to `text`."""
    words = re.findall(r"\S+|\s+", text)
    theirs = [w.casefold() for w in re.findall(r"\S+", reference)]
    mine = [(i, w.casefold()) for i, w in enumerate(words) if not w.isspace()]
    changed = set()
    matcher = difflib.SequenceMatcher(a=theirs, b=[w for _, w in mine], autojunk=False)
    for tag, _, _, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            changed.update(mine[j][0] for j in range(j1, j2))
    pieces: list[tuple[str, bool]] = []
    for i, word in enumerate(words):
        flag = i in changed or (word.isspace() and i - 1 in changed and i + 1 in changed)
        if pieces and pieces[-1][1] == flag:
            pieces[-1] = (pieces[-1][0] + word, flag)
        else:
            pieces.append((word, flag))
    return pieces


def _unit(rows: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    matrix = np.asarray(rows, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def _complete_linkage(similarity: np.ndarray, threshold: float) -> np.ndarray:
    """Cluster labels such that every pair inside a cluster has similarity >= threshold."""
    if len(similarity) == 1:
        return np.zeros(1, dtype=int)
    from sklearn.cluster import AgglomerativeClustering

    distance = 1.0 - similarity
    np.fill_diagonal(distance, 0.0)
    model = AgglomerativeClustering(
        n_clusters=None, metric="precomputed", linkage="complete", distance_threshold=1.0 - threshold + 1e-9
    )
    return model.fit_predict(distance)
