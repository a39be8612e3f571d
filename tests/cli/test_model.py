"""`grader model train-concept-check` through the real command, on a small SemEval-shaped CSV we wrote."""

from __future__ import annotations

import csv
import json

from grader.scoring.checker_train import SEMEVAL_COLUMNS
from grader.scoring.concept_check import META, WEIGHTS, load
from tests.cli.test_app import RUBRIC, assert_one_line_error, grader

REFERENCE = "The bulb lights because it is in a closed path with the battery."
ANSWERS = [
    ("The bulb is in a closed path with the battery.", "correct"),
    ("A closed path joins the bulb and the battery.", "correct"),
    ("There is a gap so the bulb is separated from the battery.", "contradictory"),
    ("The switch is open, a gap stops it.", "contradictory"),
    ("Batteries store chemical energy.", "incorrect"),
]


def semeval_csv(path, rows=None) -> None:
    """Ten questions with the same reference and our own answers, or `rows` as given."""
    references = json.dumps([{"id": "r1", "category": "BEST", "text": REFERENCE}])
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(SEMEVAL_COLUMNS)
        for row in rows or [
            ["beetle", f"Q{q}", references, REFERENCE, "r1", answer, label]
            for q in range(10)
            for answer, label in ANSWERS
        ]:
            writer.writerow(row)


def test_train_concept_check_writes_weights_that_grading_reads(tmp_path):
    data, out = tmp_path / "semeval.csv", tmp_path / "check"
    semeval_csv(data)
    result = grader("model", "train-concept-check", "--semeval", data, "--rubric", RUBRIC, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "Wrote" in result.stdout and "contradictory" in result.stdout and "every reference" in result.stdout
    meta = json.loads((out / META).read_text())
    assert meta["rubrics"] == ["dl-midsem"] and meta["pairs"]["answers"] == 50 and meta["pairs"]["rubric"] > 100
    assert meta["command"].startswith("grader model train-concept-check --semeval SEMEVAL.csv --rubric")
    check = load(out)
    gap, closed = check.contradiction([(REFERENCE, "A gap separates the bulb."), (REFERENCE, "It is a closed path.")])
    assert gap > closed
    assert check.reading is not None and "reading" in meta
    assert check.opposition is not None and meta["opposition"]["threshold"] == check.opposition.threshold
    assert "opposite" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == sorted([WEIGHTS, META])


def test_a_bad_semeval_file_is_refused_in_one_line_naming_row_and_column(tmp_path):
    data = tmp_path / "semeval.csv"
    references = json.dumps([{"id": "r1", "text": REFERENCE}])
    semeval_csv(data, [["beetle", "Q1", references, REFERENCE, "r1", "It is open.", "maybe"]])
    out = tmp_path / "check"
    assert_one_line_error(
        grader("model", "train-concept-check", "--semeval", data, "--out", out), "row 2", "label_3way", "'maybe'"
    )
    semeval_csv(data, [["beetle", "Q1", "{not json", REFERENCE, "r1", "It is open.", "correct"]])
    assert_one_line_error(
        grader("model", "train-concept-check", "--semeval", data, "--out", out), "row 2", "reference_answers_json"
    )
    data.write_text("question_id,student_answer\nQ1,It is open.\n", encoding="utf-8")
    assert_one_line_error(grader("model", "train-concept-check", "--semeval", data, "--out", out), "'corpus' column")
    assert not out.exists()
