"""Match rubric points against answer segments: similarity, credit and evidence per point.

A segment's score for a point is its cosine to the point minus TOPIC_WEIGHT times its cosine to
the question's prompt. Plain cosine rewards restating the topic: "Fourier series is used for
signals and neural networks for images" sits at 0.68 from "neural networks approximate any
function, Fourier series cannot", only because both name the same things. Subtracting what the
prompt alone explains (the embedding analogue of "question demoting", Mohler 2011; Sultan 2016)
leaves what the segment says beyond the question. On the development set it cut the mean absolute
error on short answers from 0.26 to 0.19 (bench/tune_thresholds.py).

Scores are matrix products of unit vectors (cosines), computed per question for a block of
answers at a time: (segments x phrasings), reduced to the best phrasing of each point, then to the
best segment of each answer. The only Python loop is over answers (to pick evidence), never over
point x segment pairs.

Two masks take (segment, phrasing) pairs out before the reductions: `opposite`, where the segment
says the opposite of the phrasing (`grader.scoring.negation`: "ReLU is not necessary" against "ReLU is
necessary"), and `excluded`, whole segments that earn nothing (a keyword list, an instruction to the
grader: `grader.scoring.gaming`). A masked pair counts as cosine 0, no evidence. What the best segment
would have been without the `opposite` mask is kept, so the answer can be flagged with it.

A segment that opposes the phrasing of a point it is nearest to earns nothing for that point through
its other phrasings either (`nearest_opposed`): "uniform between +-sqrt(3/(n_in + n_out))" states the
Xavier formula wrongly and must not be paid for being close to the vaguer "variance 2 / (n_in + n_out)".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from grader.exam.patterns import PatternTimeout, find_pattern
from grader.exam.rubric import ShortQuestion


@dataclass(frozen=True)
class CreditCurve:
    """Maps a match score to a share of a point's marks: 0 below `low`, 1 above `high`, linear between.

    The defaults were chosen on the development set by `bench/tune_thresholds.py` (see README);
    calibration (a later step) replaces this with a curve fitted to a TA's marks.
    """

    low: float
    high: float

    def __post_init__(self) -> None:
        if not -1.0 <= self.low < self.high <= 1.0:
            raise ValueError(f"credit curve needs -1 <= low < high <= 1, got low={self.low}, high={self.high}")

    def credit(self, similarity: np.ndarray | float) -> np.ndarray:
        return np.clip((np.asarray(similarity, dtype=np.float64) - self.low) / (self.high - self.low), 0.0, 1.0)


DEFAULT_CURVE = CreditCurve(low=0.325, high=0.425)
MASKED = 0.0
"""The cosine a masked (segment, phrasing) pair counts as: no evidence either way."""
TOPIC_WEIGHT = 0.5
"""How much of a segment's cosine to the prompt is taken off its score (chosen on the development set)."""
SPREAD_NEAREST = True
"""Whether `nearest_opposed` spreads the `opposite` mask (bench/README.md, "the nearest phrasing"; off only
for `bench/checker.py --no-nearest`)."""


@dataclass(frozen=True)
class PointMatch:
    """How one rubric point fared in one answer, and the words that earned it."""

    point_id: str
    marks: float
    similarity: float
    """Cosine between the evidence segment and the closest phrasing of the point."""
    score: float
    """The similarity less TOPIC_WEIGHT x the segment's cosine to the prompt: what the credit curve reads."""
    credit: float
    evidence: str
    """The segment most similar to the point (or the pattern's match when a pattern fired)."""
    pattern: str | None = None
    """The text a rubric pattern matched, if any: a pattern hit earns full credit."""
    contradiction: str | None = None
    """The text a rubric contradiction matched (when no pattern did): the point earns nothing."""
    opposite: str | None = None
    """The segment that would have earned this point most, but says the opposite of it (negation,
    antonym, another number or verdict): it earned nothing, and the answer is flagged."""
    unchecked: str | None = None
    """A rubric pattern that ran out of time on this answer (`grader.exam.patterns`): its credit came from
    the similarity alone, and the answer is flagged for a TA."""
    opposite_probability: float | None = None
    """The learned checker's P(contradicts) for `opposite`, when the checker took it out (`grader.scoring.checker`)."""

    @property
    def fixed_credit(self) -> float | None:
        """The credit a rubric rule gave whatever the score says (`fixed_credit`); None when the score decides."""
        return fixed_credit(self.pattern, self.contradiction)

    def credit_with(self, scored: float) -> float:
        """The credit rule with `scored` as the score's reading (the credit curve's, or a calibration's)."""
        fixed = self.fixed_credit
        return scored if fixed is None else fixed

    def credit_under(self, curve: CreditCurve, shift: float = 0.0) -> float:
        """This point's credit under `curve`, as if its score were `shift` higher (rules do not move)."""
        return self.credit_with(float(curve.credit(self.score + shift)))

    def to_dict(self, digits: int | None = None) -> dict[str, Any]:
        """The one serialised form (evidence.jsonl's point fields, the gradebook's points_json): scores
        rounded to `digits` where given; `unchecked` only when a pattern timed out."""

        def number(x: float | None) -> float | None:
            return x if x is None or digits is None else round(x, digits)

        return {
            "point_id": self.point_id,
            "point_marks": self.marks,
            "similarity": number(self.similarity),
            "score": number(self.score),
            "credit": number(self.credit),
            "evidence": self.evidence,
            "pattern": self.pattern,
            "contradiction": self.contradiction,
            "opposite": self.opposite,
            "opposite_probability": number(self.opposite_probability),
        } | ({"unchecked": self.unchecked} if self.unchecked is not None else {})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PointMatch:
        """Read `to_dict`'s form back (and gradebooks written before it, which named the marks `marks`);
        keys a later version adds are ignored. KeyError, TypeError or ValueError on a malformed one."""
        probability = data.get("opposite_probability")
        return cls(
            str(data["point_id"]),
            float(data["point_marks"] if "point_marks" in data else data["marks"]),
            float(data["similarity"]),
            float(data["score"]),
            float(data["credit"]),
            str(data["evidence"]),
            data.get("pattern"),
            data.get("contradiction"),
            data.get("opposite"),
            data.get("unchecked"),
            None if probability is None else float(probability),
        )


def fixed_credit(pattern: str | None, contradiction: str | None) -> float | None:
    """The credit rule, in one place: a rubric pattern hit earns the whole point whatever the segments
    say; otherwise a rubric contradiction earns nothing; otherwise (None) the credit curve of the score
    decides. Every caller (grading, re-marking, calibration, report, triage) goes through here."""
    if pattern is not None:
        return 1.0
    if contradiction is not None:
        return 0.0
    return None


def credits(matches: Sequence[PointMatch], curve: CreditCurve, shift: float = 0.0) -> np.ndarray:
    """The credit rule over an answer's points as an array (scores moved by `shift`): one credit curve
    call for the points the score decides."""
    fixed = np.array([np.nan if m.fixed_credit is None else m.fixed_credit for m in matches])
    scored = curve.credit(np.array([m.score for m in matches]) + shift)
    return np.where(np.isnan(fixed), scored, fixed)


@dataclass(frozen=True)
class QuestionVectors:
    """A question's phrasings as unit rows, grouped by point: rows[offsets[k]:offsets[k+1]] belong to
    point k; and the prompt's vector (None when the rubric gives no prompt)."""

    rows: np.ndarray
    offsets: np.ndarray
    prompt: np.ndarray | None = None

    @classmethod
    def build(cls, question: ShortQuestion, vector: Callable[[str], np.ndarray]) -> QuestionVectors:
        rows = np.stack([vector(text) for point in question.points for text in point.phrasings])
        sizes = [len(point.phrasings) for point in question.points]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        prompt = vector(question.prompt) if question.prompt else None
        return cls(rows.astype(np.float32, copy=False), offsets, prompt)


def texts_to_encode(question: ShortQuestion) -> list[str]:
    """Every rubric-side text `QuestionVectors.build` will ask for."""
    return [t for p in question.points for t in p.phrasings] + ([question.prompt] if question.prompt else [])


@dataclass(frozen=True)
class BestMatches:
    """Per answer (rows) and point (columns): best score, raw cosine there, and the winning segment."""

    score: np.ndarray
    similarity: np.ndarray
    segment: np.ndarray
    """Index of the winning segment within its answer."""
    unopposed_score: np.ndarray | None = None
    """The best score had no segment been masked as opposite (None when nothing was masked so)."""
    unopposed_segment: np.ndarray | None = None
    top_similarity: np.ndarray | None = None
    """Highest plain cosine of any segment to any phrasing of the point, before masks (off-topic check)."""
    prompt_similarity: np.ndarray | None = None
    """Per answer: highest cosine of any segment to the prompt (None without a prompt)."""


def best_matches(
    segment_rows: np.ndarray,
    segment_counts: Sequence[int],
    question: QuestionVectors,
    topic_weight: float = TOPIC_WEIGHT,
    opposite: np.ndarray | None = None,
    excluded: np.ndarray | None = None,
) -> BestMatches:
    """For each answer and point: the best score over the answer's segments and the point's phrasings.

    `segment_rows` stacks every answer's segment vectors; `segment_counts[a]` says how many belong to
    answer a (each at least 1). `opposite` (segments x phrasings) and `excluded` (segments) are masks:
    True pairs count as cosine MASKED.
    """
    cosines = segment_rows @ question.rows.T  # (segments, phrasings)
    starts = np.concatenate([[0], np.cumsum(segment_counts)[:-1]]).astype(np.intp)
    counts = np.asarray(segment_counts, dtype=np.intp)
    top = np.maximum.reduceat(np.maximum.reduceat(cosines, question.offsets, axis=1), starts, axis=0)
    if opposite is not None and SPREAD_NEAREST and opposite.any():
        opposite = nearest_opposed(opposite, cosines, question.offsets)
    if excluded is not None and excluded.any():
        cosines = np.where(excluded[:, None], np.float32(MASKED), cosines)
    topic = None
    prompt_best = None
    if question.prompt is not None:
        prompt_cos = segment_rows @ question.prompt
        prompt_best = np.maximum.reduceat(prompt_cos, starts)
        topic = topic_weight * prompt_cos[:, None] if topic_weight else None

    def reduce(pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        sims = np.maximum.reduceat(pairs, question.offsets, axis=1)  # (segments, points)
        scores = sims - topic if topic is not None else sims
        best = np.maximum.reduceat(scores, starts, axis=0)  # (answers, points)
        winner = _first_argmax(scores, best, starts, counts)
        return sims, scores, best, winner

    unopposed = None
    if opposite is not None and opposite.any():
        unopposed = reduce(cosines)
        cosines = np.where(opposite, np.float32(MASKED), cosines)
    sims, _, best, winner = reduce(cosines)
    raw = sims[starts[:, None] + winner, np.arange(sims.shape[1])[None, :]]
    return BestMatches(
        best,
        raw,
        winner,
        unopposed[2] if unopposed else None,
        unopposed[3] if unopposed else None,
        top,
        prompt_best,
    )


def nearest_opposed(opposite: np.ndarray, cosines: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """`opposite` (segments x phrasings) with every phrasing of a point masked for a segment that opposes
    the phrasing of that point it is nearest to (by cosine): read against what it states most closely,
    the segment says the opposite, so a looser phrasing it does not oppose cannot pay for it. A segment
    nearest to a phrasing it does not oppose keeps the others: alternatives often state a point in
    different words ("separated by a gap", "not connected"), and opposing one of those is not the point.
    """
    sizes = np.diff(np.append(offsets, cosines.shape[1]))
    nearest = cosines >= np.repeat(np.maximum.reduceat(cosines, offsets, axis=1), sizes, axis=1)
    hit = np.maximum.reduceat((opposite & nearest).astype(np.int8), offsets, axis=1) > 0  # (segments, points)
    return opposite | np.repeat(hit, sizes, axis=1)


def _first_argmax(scores: np.ndarray, best: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per answer and point, the index (within the answer) of the first segment reaching `best`: the
    argmax of each answer's block of rows, as array work."""
    local = np.arange(scores.shape[0]) - np.repeat(starts, counts)
    hit = scores == np.repeat(best, counts, axis=0)
    first = np.where(hit, -local[:, None], np.iinfo(np.intp).min)
    return -np.maximum.reduceat(first, starts, axis=0)


def point_matches(
    question: ShortQuestion,
    answer: str,
    segments: Sequence[str],
    best: BestMatches,
    row: int,
    curve: CreditCurve,
) -> tuple[PointMatch, ...]:
    """One answer's per-point results from its row of `best_matches`.

    A pattern hit earns the point whatever the segments say; otherwise a rubric contradiction earns
    nothing; otherwise the credit curve reads the best unmasked score, and `opposite` names the
    segment that would have earned more had it not said the opposite.
    """
    credits = curve.credit(best.score[row])
    unopposed = curve.credit(best.unopposed_score[row]) if best.unopposed_score is not None else credits
    matches = []
    for k, point in enumerate(question.points):
        evidence = segments[int(best.segment[row, k])]
        credit = float(credits[k])
        hit, against, unchecked = None, None, None
        try:
            hit = find_pattern(point.patterns, answer) if point.patterns else None
        except PatternTimeout as timeout:
            unchecked = timeout.pattern
        try:
            against = find_pattern(point.contradictions, answer) if point.contradictions and hit is None else None
        except PatternTimeout as timeout:
            unchecked = unchecked or timeout.pattern
        opposite = None
        fixed = fixed_credit(hit, against)
        if fixed is not None:
            credit, evidence = fixed, hit if hit is not None else against
        elif unopposed[k] > credit + 1e-9:
            opposite = segments[int(best.unopposed_segment[row, k])]
        similarity, score = float(best.similarity[row, k]), float(best.score[row, k])
        matches.append(
            PointMatch(point.id, point.marks, similarity, score, credit, evidence, hit, against, opposite, unchecked)
        )
    return tuple(matches)


def round_to_step(raw: float | np.ndarray, step: float | np.ndarray, maximum: float | np.ndarray) -> Any:
    """Round half up to a whole number of steps, within [0, maximum]; exact for steps like 0.25 and 0.5.
    A float for a float; element-wise for arrays (the calibrator's curve search)."""
    rounded = np.minimum(np.maximum(np.floor(np.asarray(raw) / step + 0.5 + 1e-9) * step, 0.0), maximum)
    return float(rounded) if np.ndim(rounded) == 0 else rounded
