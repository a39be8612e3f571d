from __future__ import annotations

from pathlib import Path

import pytest

from grader.errors import InputError
from grader.exam.submissions import parse_submissions, read_submissions

QIDS = ["B1", "B2", "I1"]


def write(tmp_path: Path, content: str | bytes, name: str = "answers.csv") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", newline="")
    else:
        path.write_bytes(content)
    return path


def test_wide_comma_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, "student_id,B1,B2,I1\ns001,b,a,The KL term\ns002,c,,\n")
    subs = read_submissions(path, QIDS)
    assert subs.source == str(path)
    assert subs.students == ("s001", "s002")
    assert subs.answer("s001", "I1") == "The KL term"
    assert subs.answer("s002", "B2") == ""
    assert subs.rows["s002", "B1"] == 3
    assert subs.kept_columns == ()


def test_wide_with_bom_and_crlf(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeffStudent ID,B1\r\ns001,b\r\n".encode())
    subs = read_submissions(path, QIDS)
    assert subs.students == ("s001",)
    assert subs.answer("s001", "B1") == "b"


def test_cp1252_bytes(tmp_path: Path) -> None:
    data = "student_id,I1\ns001,café \x93quoted\x94\n".encode("latin-1")  # \x93 \x94 are cp1252 quotes
    subs = read_submissions(write(tmp_path, data), QIDS)
    assert subs.answer("s001", "I1") == "café “quoted”"


def test_bytes_neither_utf8_nor_cp1252(tmp_path: Path) -> None:
    path = write(tmp_path, b"student_id,B1\ns001,\x81\n")
    with pytest.raises(InputError, match=r"answers\.csv: cannot decode byte 0x81"):
        read_submissions(path, QIDS)


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_semicolon_and_tab(tmp_path: Path, delimiter: str) -> None:
    text = delimiter.join(["student_id", "B1", "I1"]) + "\n"
    text += delimiter.join(["s001", "b", '"one, two"']) + "\n"
    subs = read_submissions(write(tmp_path, text), QIDS)
    assert subs.answer("s001", "B1") == "b"
    assert subs.answer("s001", "I1") == "one, two"


def test_quoted_comma_in_header_does_not_fool_delimiter_detection(tmp_path: Path) -> None:
    path = write(tmp_path, 'student_id;B1;"name, full"\ns001;b;"Doe, Jane"\n')
    subs = read_submissions(path, QIDS)
    assert subs.kept["s001"] == {"name, full": "Doe, Jane"}


def test_long_shape(tmp_path: Path) -> None:
    text = "Student ID,Question,Response\ns002,b1,c\ns001,B1,b\ns001,I1,  The KL term  \n"
    subs = read_submissions(write(tmp_path, text), QIDS)
    assert subs.students == ("s002", "s001")
    assert subs.answer("s001", "B1") == "b"
    assert subs.answer("s002", "B1") == "c"  # reported under the rubric's spelling
    assert subs.answer("s001", "I1") == "The KL term"
    assert subs.answer("s002", "I1") == ""
    assert subs.rows["s001", "I1"] == 4
    assert subs.kept_columns == ()
    assert subs.kept["s001"] == {}


def test_multiline_answer_keeps_row_numbers(tmp_path: Path) -> None:
    text = 'student_id,I1\r\ns001,"first line\r\nsecond line\r\n"\r\n\r\ns002,after\r\ns003,x\r\n'
    subs = read_submissions(write(tmp_path, text), QIDS)
    assert subs.answer("s001", "I1") == "first line\nsecond line"
    assert subs.rows["s001", "I1"] == 2
    assert subs.rows["s002", "I1"] == 6  # lines 2-4 hold s001's answer, line 5 is blank
    with pytest.raises(InputError, match=r"answers\.csv, row 7: 3 fields but the header has 2"):
        read_submissions(write(tmp_path, text.replace("s003,x", "s003,x,y")), QIDS)


def test_kept_columns(tmp_path: Path) -> None:
    text = "Name,student_id,Email,B1\n Jane Doe ,s001,jane@x.edu,b\n"
    subs = read_submissions(write(tmp_path, text), QIDS)
    assert subs.kept_columns == ("Name", "Email")
    assert subs.kept["s001"] == {"Name": "Jane Doe", "Email": "jane@x.edu"}


def test_case_insensitive_headers(tmp_path: Path) -> None:
    text = " STUDENTID , b1 ,i1\n s001 , b ,  text\n"
    subs = read_submissions(write(tmp_path, text), QIDS)
    assert subs.students == ("s001",)
    assert subs.answer("s001", "B1") == "b"
    assert subs.answer("s001", "I1") == "text"


@pytest.mark.parametrize("header", ["id", "roll_no", "Roll No", "student id", "SID"])
def test_student_id_aliases(header: str) -> None:
    subs = parse_submissions(f"{header},B1\ns001,b\n", "mem.csv", QIDS)
    assert subs.students == ("s001",)


def test_short_rows_are_blank_answers(tmp_path: Path) -> None:
    subs = read_submissions(write(tmp_path, "student_id,B1,B2\ns001,a\n"), QIDS)
    assert subs.answer("s001", "B2") == ""
    assert subs.answer("s001", "I1") == ""  # rubric question absent from the file


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("", r"answers\.csv: the file is empty"),
        ("\n ,, \n", r"answers\.csv: the file is empty"),
        (
            "name,B1\nJane,b\n",
            r"answers\.csv, row 1: no student_id column \(columns found: name, B1\)",
        ),
        (
            "student_id,B1,b1\ns001,a,b\n",
            r"answers\.csv, row 1, column 'b1': column appears twice \(also as 'B1'\)",
        ),
        (
            "student_id,B1,Q9\ns001,a,b\n",
            r"answers\.csv, row 1, column 'Q9': the rubric has no question 'Q9' \(it has B1, B2, I1\)",
        ),
        ("student_id,name\ns001,Jane\n", r"answers\.csv, row 1: no column is a rubric question"),
        (
            "student_id,B1\ns001,a\n  ,b\n",
            r"answers\.csv, row 3, column 'student_id': empty student id",
        ),
        (
            "student_id,B1\ns001,a\ns002,b\ns001,c\n",
            r"answers\.csv, row 4, column 'student_id': student s001 appears again \(first at row 2\)",
        ),
        (
            "student_id,B1\ns001,a,b\n",
            r"answers\.csv, row 2: 3 fields but the header has 2; quote answers that contain commas",
        ),
        (
            "student_id,question_id,answer\ns001,B1,a\ns001,X7,b\n",
            r"answers\.csv, row 3, column 'question_id': the rubric has no question 'X7'",
        ),
        (
            "student_id,qid,answer\ns001,B1,a\ns001,b1,b\n",
            r"answers\.csv, row 3, column 'qid': student s001 answers B1 again \(first at row 2\)",
        ),
        (
            "student_id,question_id,answer\ns001,,a\n",
            r"answers\.csv, row 2, column 'question_id': empty question id",
        ),
    ],
)
def test_errors_name_file_row_and_column(tmp_path: Path, text: str, pattern: str) -> None:
    with pytest.raises(InputError, match=pattern):
        read_submissions(write(tmp_path, text), QIDS)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.csv: cannot read the file"):
        read_submissions(tmp_path / "nope.csv", QIDS)


def test_long_question_list_is_shortened() -> None:
    qids = [f"Q{i}" for i in range(1, 13)]
    with pytest.raises(InputError, match=r"it has Q1, Q2, .*Q8, \.\.\. \(12 in all\)"):
        parse_submissions("student_id,Q1,Q13\ns1,a,b\n", "mem.csv", qids)


def test_submissions_are_read_only() -> None:
    subs = parse_submissions("student_id,B1\ns001,a\n", "mem.csv", QIDS)
    with pytest.raises(TypeError):
        subs.answers["s001", "B1"] = "b"  # type: ignore[index]
