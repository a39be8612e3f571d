"""Match rubric points against answer segments: similarity, credit and evidence per point.

Similarities are matrix products of unit vectors (cosines), computed per question for a block of
answers at a time: (segments x phrasings), reduced to the best phrasing of each point, then to the
best segment of each answer. The only Python loop is over answers (to pick evidence), never over
point x segment pairs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from grader.rubric import ShortQuestion


@dataclass(frozen=True)
class CreditCurve:
    """Maps a cosine similarity to a share of a point's marks: 0 below `low`, 1 above `high`, linear between.

    The defaults were chosen on the development set by `bench/tune_thresholds.py` (see README);
    calibration (a later step) replaces this with a curve fitted to a TA's marks.
    """

    low: float
    high: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.low < self.high <= 1.0:
            raise ValueError(f"credit curve needs 0 <= low < high <= 1, got low={self.low}, high={self.high}")

    def credit(self, similarity: np.ndarray | float) -> np.ndarray:
        return np.clip((np.asarray(similarity, dtype=np.float64) - self.low) / (self.high - self.low), 0.0, 1.0)


DEFAULT_CURVE = CreditCurve(low=0.40, high=0.70)


@dataclass(frozen=True)
class PointMatch:
    """How one rubric point fared in one answer, and the words that earned it."""

    point_id: str
    marks: float
    similarity: float
    credit: float
    evidence: str
    """The segment most similar to the point (or the pattern's match when a pattern fired)."""
    pattern: str | None = None
    """The text a rubric pattern matched, if any: a pattern hit earns full credit."""


@dataclass(frozen=True)
class QuestionVectors:
    """A question's phrasings as unit rows, grouped by point: rows[offsets[k]:offsets[k+1]] belong to point k."""

    rows: np.ndarray
    offsets: np.ndarray

    @classmethod
    def build(cls, question: ShortQuestion, vector: Callable[[str], np.ndarray]) -> QuestionVectors:
        rows = np.stack([vector(text) for point in question.points for text in point.phrasings])
        sizes = [len(point.phrasings) for point in question.points]
        return cls(rows.astype(np.float32, copy=False), np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp))


def best_similarities(
    segment_rows: np.ndarray, segment_counts: Sequence[int], phrasings: QuestionVectors
) -> tuple[np.ndarray, np.ndarray]:
    """For each answer and point: the best cosine over the answer's segments and the point's phrasings.

    `segment_rows` stacks every answer's segment vectors; `segment_counts[a]` says how many belong to
    answer a (each at least 1). Returns (best, argbest) of shape (answers, points); argbest indexes the
    winning segment within its answer.
    """
    sims = segment_rows @ phrasings.rows.T  # (segments, phrasings)
    per_point = np.maximum.reduceat(sims, phrasings.offsets, axis=1)  # (segments, points)
    starts = np.concatenate([[0], np.cumsum(segment_counts)[:-1]]).astype(np.intp)
    best = np.maximum.reduceat(per_point, starts, axis=0)  # (answers, points)
    argbest = np.empty_like(best, dtype=np.intp)
    for a, (start, count) in enumerate(zip(starts, segment_counts)):
        argbest[a] = per_point[start : start + count].argmax(axis=0)
    return best, argbest


def find_pattern(patterns: Sequence[str], answer: str) -> str | None:
    """The first text in `answer` that one of the point's patterns matches (case-insensitive)."""
    for pattern in patterns:
        found = re.search(pattern, answer, re.IGNORECASE)
        if found and found.group(0).strip():
            return found.group(0).strip()
    return None


def point_matches(
    question: ShortQuestion,
    answer: str,
    segments: Sequence[str],
    best: np.ndarray,
    argbest: np.ndarray,
    curve: CreditCurve,
) -> tuple[PointMatch, ...]:
    """One answer's per-point results from its row of `best_similarities`."""
    credits = curve.credit(best)
    matches = []
    for k, point in enumerate(question.points):
        evidence = segments[int(argbest[k])]
        credit = float(credits[k])
        hit = find_pattern(point.patterns, answer) if point.patterns else None
        if hit is not None:
            credit, evidence = 1.0, hit
        matches.append(PointMatch(point.id, point.marks, float(best[k]), credit, evidence, hit))
    return tuple(matches)


def round_to_step(raw: float, step: float, maximum: float) -> float:
    """Round half up to a whole number of steps, within [0, maximum]; exact for steps like 0.25 and 0.5."""
    steps = np.floor(raw / step + 0.5 + 1e-9)
    return float(min(max(steps * step, 0.0), maximum))
