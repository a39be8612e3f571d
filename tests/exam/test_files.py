"""An exam's files read together: the rubric with its answers, and a TA's marks file."""

from __future__ import annotations

import pytest

from grader.errors import InputError
from grader.exam.files import read_exam, read_human_marks, read_marks
from tests.conftest import RUBRIC


def test_read_human_marks_errors(tmp_path):
    path = tmp_path / "marks.csv"
    path.write_text("student_id,question_id,mark\ns1,I3,1\ns1,I9,0\n")
    with pytest.raises(InputError, match=r"marks.csv, row 3, column 'question_id': unknown question 'I9'"):
        read_human_marks(path, {"I3"})
    path.write_text("student_id,question_id,mark\ns1,I3,one\n")
    with pytest.raises(InputError, match=r"row 2, column 'mark': mark 'one' is not a number"):
        read_human_marks(path)
    path.write_text("student_id,mark\n")
    with pytest.raises(InputError, match="missing column"):
        read_human_marks(path)
    path.write_text("student_id,question_id,mark\ns1,I3,1\n")
    assert read_human_marks(path) == {("s1", "I3"): 1.0}


def test_a_marks_file_is_checked_against_the_rubric(tmp_path):
    answers = tmp_path / "answers.csv"
    answers.write_text("student_id,question_id,answer\ns1,I3,Xavier keeps the variance\n")
    rubric, submissions = read_exam(RUBRIC, answers, warn=lambda line: None)
    assert submissions.answers[("s1", "I3")] == "Xavier keeps the variance"
    marks = tmp_path / "marks.csv"
    top = rubric.question("I3").marks
    marks.write_text(f"student_id,question_id,mark\ns1,I3,{top + 1:g}\n")
    with pytest.raises(InputError, match=rf"row 2, column 'mark': mark {top + 1:g} is outside 0..{top:g} for I3"):
        read_marks(marks, rubric)
    marks.write_text("student_id,question_id,mark\ns1,I3,\n")
    assert read_marks(marks, rubric) == {}  # a row not marked yet
