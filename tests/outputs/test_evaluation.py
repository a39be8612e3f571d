"""evaluate(): a hand-marked four-student class (tests/tiny_class.py), every number worked out by hand."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest
from rich.console import Console

from grader.errors import GraderError
from grader.outputs.evaluation import (
    answers_csv,
    common_step,
    evaluate,
    evaluation_table,
    metrics_json,
    write_evaluation,
)
from tests.tiny_class import HUMAN, RUBRIC, grades


@pytest.fixture(scope="module")
def evaluation():
    return evaluate(grades(), RUBRIC, HUMAN, n_boot=300)


def test_only_marked_answers_are_compared_and_the_rest_are_counted(evaluation):
    assert evaluation.missing == 1  # s4 on S2
    assert evaluation.unmatched == 1  # s9 is not in the class
    assert evaluation.compared == 15
    assert [c.label for c in evaluation.questions] == ["S1", "S2"]
    assert [c.agreement.n for c in evaluation.questions] == [4, 3]


def test_per_question_numbers_by_hand(evaluation):
    s1, s2 = evaluation.questions
    # S1: machine 1, 0.5, 0, 0 vs human 1, 1, 0, 0 (steps of 0.5)
    assert s1.step == 0.5
    assert s1.agreement.mae == pytest.approx(0.5 / 4)
    assert s1.agreement.rmse == pytest.approx(math.sqrt(0.25 / 4))
    assert s1.agreement.exact == pytest.approx(3 / 4) and s1.agreement.within_step == 1
    # categories machine (2,1,0,0), human (2,2,0,0): one disagreement of weight 1 over n=4 -> 1/4;
    # expected from the marginals (human 2,0,2; machine 2,1,1) -> 7/4; kappa = 1 - 1/7
    assert s1.agreement.qwk == pytest.approx(6 / 7)
    # average ranks: machine (4, 3, 1.5, 1.5), human (3.5, 3.5, 1.5, 1.5)
    assert s1.agreement.spearman == pytest.approx(np.corrcoef([4, 3, 1.5, 1.5], [3.5, 3.5, 1.5, 1.5])[0, 1])
    # S2 (s4 not marked): machine 1, 0.5, 0.25 vs human 1, 0.25, 0.25 on steps of 0.25
    assert s2.step == 0.25
    assert s2.agreement.mae == pytest.approx(0.25 / 3)
    assert s2.agreement.exact == pytest.approx(2 / 3) and s2.agreement.within_step == 1


def test_pooled_mcq_and_totals_by_hand(evaluation):
    overall = evaluation.overall
    assert overall.step == 0.25 and overall.agreement.n == 7  # finest step that fits 0.5 and 0.25
    assert overall.agreement.mae == pytest.approx((0.5 + 0.25) / 7)
    assert (evaluation.mcq.n, evaluation.mcq.equal) == (8, 7)  # the TA gave s3 0 on M2
    assert evaluation.mcq.questions == (("M1", 4, 4), ("M2", 4, 3))
    # totals for s1, s2, s3 (s4 is not marked on S2): machine 4, 2, 1.25 vs human 4, 2.25, 0.25
    totals = evaluation.totals
    assert totals.agreement.n == 3
    assert totals.agreement.mae == pytest.approx((0 + 0.25 + 1.0) / 3)
    assert totals.agreement.pearson == pytest.approx(np.corrcoef([4, 2, 1.25], [4, 2.25, 0.25])[0, 1])


def test_intervals_contain_the_estimates(evaluation):
    for c in (*evaluation.questions, evaluation.overall, evaluation.totals):
        low, high = c.interval("mae")
        assert low <= c.agreement.mae <= high
    assert evaluate(grades(), RUBRIC, HUMAN, n_boot=0).overall.intervals == {}


def test_metrics_json_parses_with_null_for_undefined(evaluation):
    data = json.loads(metrics_json(evaluation))
    assert set(data["questions"]) == {"S1", "S2"}
    assert data["questions"]["S1"]["mae"] == 0.125 and data["questions"]["S1"]["n"] == 4
    assert data["questions"]["S1"]["ci"]["qwk"][0] <= data["questions"]["S1"]["qwk"]
    assert data["answers"] == {"compared": 15, "without_human_mark": 1, "human_marks_unmatched": 1}
    assert data["mcq"]["equal"] == 7 and data["totals"]["n"] == 3 and data["overall"]["step"] == 0.25
    # one marked answer on S2 only: correlations and kappa are undefined -> null, not NaN
    one = evaluate(grades(), RUBRIC, {("s1", "S2"): 1}, n_boot=20)
    parsed = json.loads(metrics_json(one))
    assert parsed["questions"]["S2"]["pearson"] is None and parsed["questions"]["S2"]["ci"]["pearson"] == [None, None]
    assert parsed["totals"] is None
    assert metrics_json(evaluation) == metrics_json(evaluate(grades(), RUBRIC, HUMAN, n_boot=300))  # seeded


def test_answers_csv_has_every_answer_and_blanks_where_unmarked(evaluation):
    rows = list(csv.DictReader(io.StringIO(answers_csv(evaluation))))
    assert len(rows) == 16
    assert list(rows[0]) == ["student_id", "question_id", "machine", "human", "difference", "max_mark", "flags"]
    by = {(r["student_id"], r["question_id"]): r for r in rows}
    assert by[("s2", "S1")] == {
        "student_id": "s2",
        "question_id": "S1",
        "machine": "0.5",
        "human": "1",
        "difference": "-0.5",
        "max_mark": "1",
        "flags": "",
    }
    assert by[("s4", "S2")]["human"] == "" and by[("s4", "S2")]["difference"] == ""
    assert by[("s4", "M1")]["flags"] == "unreadable-choice"


def test_write_evaluation(tmp_path, evaluation):
    paths = write_evaluation(tmp_path / "eval", evaluation)
    assert [p.name for p in paths] == ["metrics.json", "answers.csv"]
    assert paths[0].read_text() == metrics_json(evaluation)
    assert sorted(p.name for p in (tmp_path / "eval").iterdir()) == [
        "answers.csv",
        "metrics.json",
    ]  # no temporaries left


def test_table_shows_intervals(evaluation):
    console = Console(record=True, width=200)
    console.print(evaluation_table(evaluation))
    text = console.export_text()
    low, high = evaluation.questions[0].interval("mae")
    assert f"0.125 [{low:.3f}, {high:.3f}]" in text
    assert "all short answers" in text and "totals" in text
    assert "MCQ marks equal to the human's: 7/8" in text and "1 had no human mark" in text


def test_a_human_mark_outside_the_question_is_refused():
    with pytest.raises(GraderError, match="human mark 2 for s1 on S1 is outside 0..1"):
        evaluate(grades(), RUBRIC, {("s1", "S1"): 2})


def test_common_step():
    assert common_step([0.5, 0.25]) == 0.25
    assert common_step([1, 0.5]) == 0.5
    assert common_step([1, 2]) == 1
    assert common_step([0.5, 1 / 3]) == pytest.approx(1 / 6)
