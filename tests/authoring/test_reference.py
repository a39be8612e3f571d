from __future__ import annotations

import math

import pytest

from grader.authoring.reference import (
    Reference,
    choose_step,
    read_references,
    references_to_rubric,
    rubric_yaml,
    split_points,
)
from grader.errors import InputError
from grader.exam.rubric import ShortQuestion, load_rubric

REFERENCES = """\ufeffquestion_id,question,reference_answer,max_mark
S1,What is a stack?,"A stack is a last-in, first-out list. Elements are pushed and popped at the top.",2
S1,What is a stack?,You can only push or pop elements at one end; it is a last-in first-out structure,2
S1,What is a stack?,LIFO. Access at one end only.,2
X1,Why use Xavier initialisation?,It keeps the variance of activations the same across layers.,1
X1,,Activation variance is preserved from layer to layer.,1
X1,,"It stops signals from exploding or vanishing,
so deep networks train.",1
U1,Name differences between the UDP and TCP headers.,"Possible differences:
- The UDP header is 8 bytes, the TCP header 20-60 bytes
- UDP has a fixed header length
- Sequence number
- Acknowledgment number
- Flags
- Advertised window
- Urgent pointer",3.5
"""


@pytest.fixture()
def references(tmp_path):
    path = tmp_path / "refs.csv"
    path.write_text(REFERENCES, encoding="utf-8")
    return path


def test_references_become_a_valid_rubric_whose_marks_add_up(references):
    rubric = read_references(references)
    assert rubric.exam == "refs" and rubric.question_ids == ("S1", "X1", "U1")
    assert read_references(references, exam="ds-quiz").exam == "ds-quiz"
    for question in rubric.questions:
        assert isinstance(question, ShortQuestion)
        assert math.isclose(sum(p.marks for p in question.points), question.marks, abs_tol=1e-9)
        assert math.isclose(question.marks / question.step, round(question.marks / question.step))
    stack = rubric.question("S1")
    assert stack.prompt == "What is a stack?" and stack.step == 0.25 and stack.marks == 2
    assert [p.text for p in stack.points] == [
        "A stack is a last-in, first-out list.",
        "Elements are pushed and popped at the top.",
    ]
    assert [p.marks for p in stack.points] == [1, 1]
    assert rubric.question("X1").step == 0.5 and len(rubric.question("X1").points) == 1


def test_a_long_list_is_capped_with_its_lead_in_joined(references):
    udp = read_references(references).question("U1")
    assert len(udp.points) == 6
    assert udp.points[0].text == "Possible differences: The UDP header is 8 bytes, the TCP header 20-60 bytes"
    assert "Acknowledgment number; Flags" in [p.text for p in udp.points]  # ties merge leftwards
    assert [p.marks for p in udp.points] == [0.5833] * 5 + [0.5835]
    assert udp.model_answer.startswith("Possible differences:\n- The UDP header")


def test_further_references_become_alternatives_of_the_closest_point(references):
    rubric = read_references(references)
    # One point: every further reference, whole, is another phrasing of it.
    assert rubric.question("X1").points[0].alternatives == (
        "Activation variance is preserved from layer to layer.",
        "It stops signals from exploding or vanishing, so deep networks train.",
    )
    # Several points: each piece goes where it shares the most words (push/pop -> the top; last-in
    # first-out -> the list); a piece sharing none keeps its position (LIFO is first, like the list).
    first, second = rubric.question("S1").points
    assert first.alternatives == ("it is a last-in first-out structure", "LIFO.")
    assert second.alternatives == ("You can only push or pop elements at one end", "Access at one end only.")


def test_whole_references_when_splitting_is_turned_off():
    rows = [Reference("S1", "What is a stack?", "A stack is LIFO. Push and pop at the top.", 2)]
    rows.append(Reference("S1", "", "Last in, first out; one open end.", 2))
    (question,) = references_to_rubric(rows, "x", "refs", max_points=1).questions
    assert [p.text for p in question.points] == ["A stack is LIFO. Push and pop at the top."]
    assert question.points[0].alternatives == ("Last in, first out; one open end.",)


def test_yaml_round_trip_is_equal(references, tmp_path):
    rubric = read_references(references)
    text = rubric_yaml(rubric)
    assert text.startswith("exam: refs\nversion: 1\nquestions:\n  - id: S1\n")
    assert "step: 0.25" in text and "marks: 2\n" in text
    path = tmp_path / "rubric.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_rubric(path) == rubric
    assert load_rubric(path).fingerprint == rubric.fingerprint


def test_yaml_round_trip_of_the_exam_rubric(rubric, tmp_path):
    path = tmp_path / "exam.yaml"
    path.write_text(rubric_yaml(rubric), encoding="utf-8")
    assert load_rubric(path) == rubric


def test_step_is_a_whole_number_of_steps_of_the_marks():
    assert [choose_step(m) for m in (1, 1.5, 2, 5, 3.5)] == [0.5, 0.5, 0.25, 0.25, 0.25]
    assert choose_step(0.5) == 0.25  # never a single all-or-nothing step when a finer one fits
    assert choose_step(0.3) == 0.1 and choose_step(0.7) == 0.1
    assert choose_step(0.003) == 0.003


def test_split_points_merges_the_shortest_neighbours():
    assert split_points("One two three. Four. Five six. Seven. Eight nine ten. Eleven.", 3) == [
        "One two three.",
        "Four. Five six. Seven.",
        "Eight nine ten. Eleven.",
    ]
    assert split_points("No full stop here") == ["No full stop here"]


def _error(tmp_path, text: str) -> InputError:
    path = tmp_path / "refs.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        read_references(path)
    return caught.value


HEADER = "question_id,question,reference_answer,max_mark\n"


@pytest.mark.parametrize(
    ("text", "row", "column", "message"),
    [
        (
            "question_id,question,answer,max_mark\nq,Q,A,1\n",
            1,
            "reference_answer",
            "missing column(s) reference_answer (expected question_id,question,reference_answer,max_mark)",
        ),
        (HEADER + "q1,Q,A,1\nq2,Q,A,two\n", 3, "max_mark", "max_mark 'two' is not a number"),
        (HEADER + "q1,Q,A,0\n", 2, "max_mark", "max_mark must be a positive number, got 0"),
        (HEADER + "q1,Q,A,-1\n", 2, "max_mark", "max_mark must be a positive number, got -1"),
        (HEADER + "q1,Q,  ,1\n", 2, "reference_answer", "question q1 has an empty reference answer"),
        (HEADER + "q1,Q,A,1\n\nq1,Q,B,2\n", 4, "max_mark", "question q1 is worth 1 at row 2, but 2 here"),
        (HEADER + ",Q,A,1\n", 2, "question_id", "empty question id"),
        (HEADER + "q1,Q,A,1\nq1,Another Q,B,1\n", 3, "question", "question q1 has another question text at row 2"),
    ],
)
def test_errors_name_file_row_and_column(tmp_path, text, row, column, message):
    error = _error(tmp_path, text)
    assert error.file == str(tmp_path / "refs.csv")
    assert (error.row, error.column) == (row, column)
    assert error.message == message
    assert str(error).startswith(f"{tmp_path / 'refs.csv'}, row {row}, column '{column}': ")


def test_file_errors(tmp_path):
    with pytest.raises(InputError, match="no such references file"):
        read_references(tmp_path / "missing.csv")
    assert "the file is empty" in _error(tmp_path, "\n\n").message
    assert _error(tmp_path, HEADER).message == "no reference answers below the header"
    (tmp_path / "latin.csv").write_bytes(HEADER.encode() + "q1,Q,caf\xe9,1\n".encode("cp1252"))
    with pytest.raises(InputError, match="expected UTF-8 CSV"):
        read_references(tmp_path / "latin.csv")
