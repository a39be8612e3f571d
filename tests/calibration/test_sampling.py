"""`grader sample`: which answers a TA should mark first, on the real sample graded with the real model."""

from __future__ import annotations

import csv
import io

import pytest

from grader.calibration.sampling import SHEET_COLUMNS, marking_sheet, pick_answers
from grader.exam.files import read_human_marks
from grader.exam.rubric import ShortQuestion


def _shorts(rubric) -> list[str]:
    return [q.id for q in rubric.questions if isinstance(q, ShortQuestion)]


def test_picks_cover_every_question_and_never_a_blank(sample, rubric):
    picks = pick_answers(sample.grades, rubric, sample.vectors, per_question=8)
    by_question = {q: [p for p in picks if p.question_id == q] for q in _shorts(rubric)}
    assert all(len(found) == 8 for found in by_question.values())
    assert all(sample.submissions.answer(p.student_id, p.question_id).strip() for p in picks)
    assert len({(p.student_id, p.question_id) for p in picks}) == len(picks)
    assert any("cluster" in p.why for p in picks) and any("unsure" in p.why for p in picks)
    assert pick_answers(sample.grades, rubric, sample.vectors, per_question=8) == picks  # seeded


def test_a_question_with_fewer_answers_than_asked_gives_all_of_them(sample, rubric):
    picks = pick_answers(sample.grades, rubric, sample.vectors, per_question=200)
    answered = {k for k in sample.vectors.vectors}
    assert {(p.student_id, p.question_id) for p in picks} == answered


def test_picks_spread_over_the_range_of_marks(sample, rubric):
    """Covering the answers' clusters finds good and poor answers alike, not one kind."""
    picks = pick_answers(sample.grades, rubric, sample.vectors, per_question=6)
    for qid in _shorts(rubric):
        shares = {sample.human[(p.student_id, qid)] / rubric.question(qid).marks for p in picks if p.question_id == qid}
        assert len(shares) >= 2, qid


def test_the_marking_sheet_reads_back_as_marks_once_filled(sample, rubric, tmp_path):
    picks = pick_answers(sample.grades, rubric, sample.vectors, per_question=3)
    sheet = marking_sheet(picks, rubric, sample.submissions.answers)
    rows = list(csv.DictReader(io.StringIO(sheet)))
    assert tuple(rows[0]) == SHEET_COLUMNS and len(rows) == len(picks)
    assert all(r["mark"] == "" and r["answer"] for r in rows)
    path = tmp_path / "to-mark.csv"
    path.write_text(sheet, encoding="utf-8")
    assert read_human_marks(path, set(rubric.question_ids)) == {}  # nothing marked yet
    rows[0]["mark"] = "0.5"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, SHEET_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    assert read_human_marks(path, set(rubric.question_ids)) == {(rows[0]["student_id"], rows[0]["question_id"]): 0.5}


def test_student_text_that_a_spreadsheet_would_run_is_guarded(rubric):
    from grader.calibration.sampling import Pick

    sheet = marking_sheet([Pick("s1", "I3", "every answer")], rubric, {("s1", "I3"): '=HYPERLINK("http://x")'})
    assert list(csv.DictReader(io.StringIO(sheet)))[0]["answer"].startswith("'=")


def test_asking_for_none_is_refused(sample, rubric):
    with pytest.raises(ValueError):
        pick_answers(sample.grades, rubric, sample.vectors, per_question=0)


def test_the_sample_command_writes_a_sheet_calibrate_reads(tmp_path):
    """`grader sample` on a real (small) class, then the filled sheet through `grader calibrate`."""
    from tests.cli.test_app import grader
    from tests.conftest import RUBRIC, SAMPLE, SAMPLE_MARKS

    with SAMPLE.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))[:13]  # 12 students
    answers = tmp_path / "answers.csv"
    with answers.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    sheet = tmp_path / "to-mark.csv"
    result = grader("sample", RUBRIC, answers, "--per-question", "6", "--out", sheet)
    assert result.returncode == 0, result.stderr
    picked = list(csv.DictReader(sheet.open(encoding="utf-8")))
    assert {r["question_id"] for r in picked} == {"I3", "I4", "I5", "A1a", "A1b", "A1c", "A1d"}
    assert all(r["answer"].strip() and r["mark"] == "" for r in picked)
    ours = read_human_marks(SAMPLE_MARKS)
    for r in picked:
        r["mark"] = f"{ours[(r['student_id'], r['question_id'])]:g}"
    with sheet.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, SHEET_COLUMNS)
        writer.writeheader()
        writer.writerows(picked)
    result = grader("calibrate", RUBRIC, answers, sheet, "--out", tmp_path / "exam.calibration")
    assert result.returncode == 0, result.stderr
    assert "Chosen:" in result.stdout and (tmp_path / "exam.calibration").is_file()
