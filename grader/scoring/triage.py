"""Which answers a TA should review first, and what reviewing a share of them buys.

Each answer gets a `doubt`: larger means look sooner. Answers with a flag that says the mark cannot
be trusted as it stands (a contradiction, a keyword list, an instruction to the grader, a near copy
of another student, an MCQ letter that could not be read) come first. After them, answers are ordered
by how much of their mark is at stake, in marks: each point whose match score sits inside or near the
credit ramp (where a small error in the score moves the credit) weighs its marks; for a mark a
calibration map made instead, a partial mark weighs most (4 s (1 - s) of the question's marks for a
share s); and a raw mark near a rounding boundary weighs a step. Blank answers are nearly never
wrong: they come last but one, before the answers with no reason for doubt (doubt 0: MCQs read
cleanly, points far from the ramp).

`budget_curve` measures the order against a TA's marks: after reviewing the most doubtful share b of
the answers (a reviewed answer takes the TA's mark), how wrong are the answers left unreviewed,
compared with reviewing a random share b (bench/flag_budget.py prints it; the HTML report plots it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from grader.exam.rubric import Rubric, ShortQuestion
from grader.scoring.flags import FlagCode
from grader.scoring.grade import Grades, QuestionGrade
from grader.scoring.match import CreditCurve

HARD = {
    FlagCode.CONTRADICTION: 1.0,  # 0.25 when only the rubric's own contradiction regexes fired (RUBRIC_RULED)
    FlagCode.INJECTION: 1.0,
    FlagCode.KEYWORD_STUFFING: 1.0,
    FlagCode.POSSIBLE_COLLUSION: 1.0,
    FlagCode.UNREADABLE_CHOICE: 1.0,
    FlagCode.PATTERN_TIMEOUT: 1.0,
    FlagCode.HESITANT_CHOICE: 0.25,
    FlagCode.TOO_LONG: 0.5,
    FlagCode.COPIED_QUESTION: 0.25,
    FlagCode.OFF_TOPIC: 0.25,
}
"""Doubt added per flag. A flag worth 1 outranks any amount of score uncertainty (which stays below 1)."""
RUBRIC_RULED = 0.25
"""A contradiction found by a regex the rubric's author wrote is a rule, not a similarity judgement: on the
development set every one of them agreed with our marks, so it weighs less than one the polarity check found."""
BLANK = 0.01
"""A blank answer's doubt: almost never marked wrong, but worth a glance before answers with no doubt."""
SCORE_SCALE = 0.1
"""How fast a point's doubt fades with the distance of its score outside the credit ramp. The weights
here were compared on the development set and checked on Mohler, SAF and SemEval (bench/README.md)."""
BUDGETS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
SEEDS = 20
"""Random review orders averaged for the baseline."""


@dataclass(frozen=True)
class Triage:
    doubt: float
    """Larger = review sooner; 0 for answers there is no reason to doubt."""
    queued: bool
    """Chosen for review."""


@dataclass(frozen=True)
class BudgetPoint:
    budget: float
    reviewed: int
    mae_unreviewed: float
    """Mean absolute error of the machine's marks on the answers left unreviewed (doubt order)."""
    mae_random: float
    """The same after reviewing a random choice of the same size (mean over SEEDS orders)."""


def doubt(grade: QuestionGrade, rubric: Rubric, curve: CreditCurve) -> float:
    """Flags first, then marks at stake (see the module docstring)."""
    codes = [f.code for f in grade.flags]
    if FlagCode.BLANK in codes:
        return BLANK
    hard = sum(HARD.get(code, 0.0) for code in set(codes))
    if FlagCode.CONTRADICTION in codes and codes.count(FlagCode.CONTRADICTION) <= sum(
        p.contradiction is not None for p in grade.points
    ):
        hard -= HARD[FlagCode.CONTRADICTION] - RUBRIC_RULED
    question = rubric.question(grade.question_id)
    if not isinstance(question, ShortQuestion) or not grade.points:
        return hard
    if grade.calibrated:
        # A calibrated mark (a fitted map, not the credit curve, made it): a partial mark is where the
        # map is least sure; full or no marks are where most answers sit and agree.
        share = min(max(grade.raw_mark / question.marks, 0.0), 1.0)
        at_stake = question.marks * 4.0 * share * (1.0 - share)
    else:
        at_stake = sum(
            p.marks * math.exp(-max(curve.low - p.score, p.score - curve.high, 0.0) / SCORE_SCALE)
            for p in grade.points
            if p.fixed_credit is None  # a rubric regex decided the others, not a similarity
        )
    position = grade.raw_mark / question.step % 1.0
    at_stake += question.step * max(0.0, 1.0 - 2.0 * abs(position - 0.5))
    return hard + at_stake / (1.0 + at_stake)


def triage(grades: Grades, rubric: Rubric, budget: float | None = None) -> dict[tuple[str, str], Triage]:
    """Keyed (student_id, question_id). budget None: every flagged answer is queued; budget b in [0,1]: the
    ceil(b * number of answers) most doubtful answers are queued (most doubtful first).

    The mapping iterates queued answers first, most doubtful first, then the rest by doubt."""
    if budget is not None and not 0.0 <= budget <= 1.0:
        raise ValueError(f"budget must be between 0 and 1, got {budget}")
    keys = [(g.student_id, g.question_id) for g in grades.items]
    doubts = [doubt(g, rubric, grades.curve) for g in grades.items]
    if budget is None:
        queued = {i for i, g in enumerate(grades.items) if g.flags}
    else:
        queued = set(_order(doubts)[: math.ceil(budget * len(keys) - 1e-9)])
    return {
        keys[i]: Triage(doubts[i], i in queued)
        for i in sorted(range(len(keys)), key=lambda i: (i not in queued, -doubts[i], i))
    }


def budget_curve(
    grades: Grades,
    rubric: Rubric,
    human: Mapping[tuple[str, str], float],
    budgets: Sequence[float] = BUDGETS,
) -> list[BudgetPoint]:
    """Error of the unreviewed answers after reviewing the most doubtful share b of the answers a TA
    marked (the pool is every answer with a human mark), beside a random review of the same size."""
    doubts = triage(grades, rubric)
    pool = [g for g in grades.items if (g.student_id, g.question_id) in human]
    if not pool:
        return []
    errors = np.array([abs(g.mark - float(human[(g.student_id, g.question_id)])) for g in pool])
    order = _order([doubts[(g.student_id, g.question_id)].doubt for g in pool])
    shuffles = [np.random.default_rng(seed).permutation(len(pool)) for seed in range(SEEDS)]
    points = []
    for b in budgets:
        k = math.ceil(b * len(pool) - 1e-9)
        points.append(
            BudgetPoint(float(b), k, _mean(errors[order[k:]]), float(np.mean([_mean(errors[s[k:]]) for s in shuffles])))
        )
    return points


def _order(doubts: Sequence[float]) -> list[int]:
    """Indices, most doubtful first; ties keep the run's order (student-major, rubric order)."""
    return sorted(range(len(doubts)), key=lambda i: (-doubts[i], i))


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else 0.0
