"""Triage: the review queue and what reviewing it buys (hand-made grades, then the real sample)."""

from __future__ import annotations

import math

import pytest

from grader.scoring.triage import BLANK, BudgetPoint, Triage, budget_curve, triage
from tests.tiny_class import HUMAN, RUBRIC, grades


def test_budget_none_queues_every_flagged_answer():
    found = triage(grades(), RUBRIC)
    assert set(found) == {(g.student_id, g.question_id) for g in grades().items}
    queued = {k for k, t in found.items() if t.queued}
    assert queued == {(g.student_id, g.question_id) for g in grades().items if g.flags}
    assert all(isinstance(t, Triage) for t in found.values())


def test_hard_flags_first_blank_low_clean_mcqs_zero():
    found = triage(grades(), RUBRIC)
    assert found[("s3", "S1")].doubt >= 0.25  # contradiction (by a rubric regex: a rule, weighs less)
    assert found[("s4", "M1")].doubt >= 1  # unreadable letter
    assert found[("s4", "S1")].doubt == BLANK
    assert found[("s1", "M1")].doubt == 0
    assert 0 < found[("s1", "S1")].doubt < 1  # points near the credit ramp: some marks at stake
    listed = list(found.values())  # the queue first, most doubtful first; then the rest
    queued = [t.doubt for t in listed if t.queued]
    assert [t.queued for t in listed] == sorted((t.queued for t in listed), reverse=True)
    assert queued == sorted(queued, reverse=True)


@pytest.mark.parametrize("budget", [0.0, 0.1, 0.25, 0.5, 1.0])
def test_a_budget_queues_the_most_doubtful_share(budget):
    found = triage(grades(), RUBRIC, budget)
    queued = [t.doubt for t in found.values() if t.queued]
    rest = [t.doubt for t in found.values() if not t.queued]
    assert len(queued) == math.ceil(budget * 16)
    assert not queued or not rest or min(queued) >= max(rest)
    with pytest.raises(ValueError):
        triage(grades(), RUBRIC, 1.5)


def test_budget_curve_by_hand():
    points = budget_curve(grades(), RUBRIC, HUMAN, budgets=(0.0, 1.0))
    # 15 marked answers; the machine differs on S1 s2 (0.5 vs 1), S2 s2 (0.5 vs 0.25), M2 s3 (1 vs 0)
    assert points[0] == BudgetPoint(0.0, 0, pytest.approx(1.75 / 15), pytest.approx(1.75 / 15))
    assert points[1].reviewed == 15 and points[1].mae_unreviewed == 0.0 and points[1].mae_random == 0.0


def test_reviewing_the_most_doubtful_first_beats_random_on_the_sample(sample, rubric):
    shorts = {k: v for k, v in sample.human.items() if k[1] in ("I3", "I4", "I5", "A1a", "A1b", "A1c", "A1d")}
    for human in (sample.human, shorts):
        at = {p.budget: p for p in budget_curve(sample.grades, rubric, human, budgets=(0.0, 0.2))}
        assert at[0.0].mae_unreviewed == pytest.approx(at[0.0].mae_random)
        assert at[0.2].mae_unreviewed < 0.8 * at[0.2].mae_random
