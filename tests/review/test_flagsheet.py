"""Flags sheets: the queue out to a spreadsheet and TA marks back in, checked row by row."""

from __future__ import annotations

import csv
import io

import pytest

from grader.review.flagsheet import SheetErrors, flags_sheet, import_flags_sheet
from grader.review.gradebook import Gradebook
from tests import tiny_class
from tests.review.test_gradebook import tiny_answers


@pytest.fixture
def book(tmp_path):
    gb = Gradebook.open(tmp_path / "exam.db")
    gb.record_run(tiny_class.RUBRIC, tiny_answers(), tiny_class.grades())
    yield gb
    gb.close()


def rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def write(path, table: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)


def test_the_sheet_lists_the_flagged_answers_with_what_a_ta_needs(book):
    sheet = rows(flags_sheet(book))
    assert {(r["student_id"], r["question_id"]) for r in sheet} == {("s3", "S1"), ("s4", "M1"), ("s4", "S1")}
    s3 = next(r for r in sheet if r["student_id"] == "s3")
    assert s3["proposed_mark"] == "0" and "opposite of point p2" in s3["flags"] and '"is not"' in s3["points"]
    assert s3["ta_mark"] == "" and s3["version"] == "0" and s3["question"] == "Why?"


def test_filled_marks_comments_and_accepts_are_applied_and_audited(book, tmp_path):
    sheet = rows(flags_sheet(book))
    for r in sheet:
        if r["student_id"] == "s3":
            r["ta_mark"], r["comment"] = "0.5", "half: only the first reason"
        elif r["question_id"] == "M1":
            r["ta_mark"] = "accept"
    write(tmp_path / "filled.csv", sheet)
    result = import_flags_sheet(tmp_path / "filled.csv", book, "bob")
    assert len(result.changes) == 2 and result.unchanged == 1
    assert (book.entry("s3", "S1").mark, book.entry("s3", "S1").comment) == (0.5, "half: only the first reason")
    assert book.entry("s4", "M1").status == "accepted"
    assert [(a.ta, a.action, a.reason) for a in book.audit("s3", "S1")] == [("bob", "set", "flags sheet filled.csv")]
    # importing the same sheet again changes nothing
    assert import_flags_sheet(tmp_path / "filled.csv", book, "bob").changes == ()


def test_a_malformed_sheet_is_refused_row_by_row_and_nothing_is_applied(book, tmp_path):
    sheet = rows(flags_sheet(book))
    sheet[0]["ta_mark"] = "0.5"  # a good row...
    sheet[1]["ta_mark"] = "lots"
    sheet[2]["ta_mark"] = "7"
    sheet.append({**sheet[0], "student_id": "s99"})
    write(tmp_path / "bad.csv", sheet)
    with pytest.raises(SheetErrors) as caught:
        import_flags_sheet(tmp_path / "bad.csv", book, "bob")
    lines = str(caught.value).splitlines()
    assert (
        lines[0] == f"{tmp_path / 'bad.csv'}, row 3, column 'ta_mark': 'lots' is not a mark "
        "(ta_mark: a mark, 'accept' (the proposed mark), 'clear' (back to automatic) or empty (no change))"
    )
    assert "row 4, column 'ta_mark': mark 7 is outside 0..1" in lines[1]
    assert "row 5, column 'student_id': no answer of student 's99'" in lines[2]
    assert lines[-1] == "3 problem(s): nothing was imported"
    assert all(e.source == "auto" for e in book.entries()) and book.audit("s3", "S1") == []


def test_a_stale_sheet_does_not_overwrite_what_another_ta_entered(book, tmp_path):
    sheet = rows(flags_sheet(book))
    book.set_mark("s3", "S1", 1.0, "alice")
    for r in sheet:
        r["ta_mark"] = "0" if r["student_id"] == "s3" else ""
    write(tmp_path / "stale.csv", sheet)
    with pytest.raises(SheetErrors, match="changed by alice after this sheet was exported"):
        import_flags_sheet(tmp_path / "stale.csv", book, "bob")
    assert book.entry("s3", "S1").mark == 1.0


def test_student_text_cannot_run_as_a_spreadsheet_formula(tmp_path):
    answers = tiny_answers()
    answers = type(answers)(
        **{**answers.__dict__, "answers": {**answers.answers, ("s3", "S1"): '=HYPERLINK("http://x")'}}
    )
    with Gradebook.open(tmp_path / "exam.db") as gb:
        gb.record_run(tiny_class.RUBRIC, answers, tiny_class.grades())
        s3 = next(r for r in rows(flags_sheet(gb)) if r["student_id"] == "s3")
        assert s3["answer"] == '\'=HYPERLINK("http://x")'


def test_a_semicolon_sheet_with_decimal_commas_from_european_excel_is_read(book, tmp_path):
    sheet = rows(flags_sheet(book))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(sheet[0]), delimiter=";")
    writer.writeheader()
    for r in sheet:
        writer.writerow({**r, "ta_mark": "0,5" if r["student_id"] == "s3" else ""})
    (tmp_path / "eu.csv").write_bytes(text.getvalue().encode("cp1252"))
    import_flags_sheet(tmp_path / "eu.csv", book, "bob")
    assert book.entry("s3", "S1").mark == 0.5
