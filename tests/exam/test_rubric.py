from __future__ import annotations

import copy

import pytest
import yaml

from grader.errors import InputError
from grader.exam.rubric import McqQuestion, ShortQuestion, load_rubric, parse_rubric
from tests.conftest import RUBRIC


@pytest.fixture()
def data():
    return yaml.safe_load(RUBRIC.read_text())


def test_the_exam_rubric_is_the_whole_seed_exam(rubric):
    assert rubric.max_total == 20
    ids = rubric.question_ids
    assert ids == tuple(f"B{i}" for i in range(1, 11)) + ("I1", "I2", "I3", "I4", "I5", "A1a", "A1b", "A1c", "A1d")
    keys = {q.id: q.keys for q in rubric.questions if isinstance(q, McqQuestion)}
    assert keys == {
        "B1": ("b",), "B2": ("b",), "B3": ("d",), "B4": ("a",), "B5": ("c",), "B6": ("b",),
        "B7": ("c",), "B8": ("c",), "B9": ("a",), "B10": ("a",), "I1": ("c",), "I2": ("b",),
    }  # fmt: skip
    marks = {q.id: q.marks for q in rubric.questions if isinstance(q, ShortQuestion)}
    assert marks == {"I3": 1, "I4": 1, "I5": 2, "A1a": 1, "A1b": 1, "A1c": 1, "A1d": 1}
    assert len(rubric.question("I5").points) >= 3
    assert {"depth", "width", "shallow"} <= {p.id for p in rubric.question("A1d").points}


def _error(data, source="exam.yaml") -> str:
    with pytest.raises(InputError) as caught:
        parse_rubric(data, source)
    return str(caught.value)


def test_point_marks_must_add_up(data):
    bad = copy.deepcopy(data)
    bad["questions"][14]["points"][0]["marks"] = 0.5  # I5 collapse: 1 -> 0.5
    assert _error(bad) == "exam.yaml: question I5: point marks add up to 1.5, but the question is worth 2"


def test_errors_name_the_question_and_field(data):
    bad = copy.deepcopy(data)
    bad["questions"][12]["points"][1]["marks"] = -1
    assert "question I3, field 'points[1].marks'" in _error(bad)
    bad = copy.deepcopy(data)
    del bad["questions"][13]["model_answer"]
    assert "question I4, field 'model_answer': Field required" in _error(bad)
    bad = copy.deepcopy(data)
    bad["questions"][2]["type"] = "essay"
    assert "question B3: 'type' must be 'mcq' or 'short'" in _error(bad)
    bad = copy.deepcopy(data)
    bad["questions"][0]["kee"] = "b"
    assert "question B1, field 'kee': unknown field" in _error(bad)


def test_mcq_key_must_be_an_option_unless_void(data):
    bad = copy.deepcopy(data)
    bad["questions"][0]["key"] = "e"
    assert "question B1: key e is not one of the options (a, b, c, d)" in _error(bad)
    bad["questions"][0]["key"] = None
    assert "needs a 'key'" in _error(bad)
    bad["questions"][0]["void"] = True
    assert parse_rubric(bad, "x").question("B1").void


def test_several_accepted_keys(data):
    data["questions"][1]["key"] = ["b", "D"]
    assert parse_rubric(data, "x").question("B2").keys == ("b", "d")


def test_duplicate_ids_and_bad_patterns(data):
    bad = copy.deepcopy(data)
    bad["questions"][1]["id"] = "B1"
    assert "question id B1 is used twice" in _error(bad)
    bad = copy.deepcopy(data)
    bad["questions"][12]["points"][0]["patterns"] = ["sqrt(6"]
    assert "question I3, field 'points[0].patterns'" in _error(bad)
    assert "not a valid regular expression" in _error(bad)


def test_marks_must_sit_on_the_step(data):
    bad = copy.deepcopy(data)
    bad["questions"][12]["step"] = 0.3
    assert "not a whole number of steps of 0.3" in _error(bad)


def test_file_errors(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(InputError, match="nope.yaml: no such rubric file"):
        load_rubric(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("exam: x\nquestions:\n  - id: [unclosed\n")
    with pytest.raises(InputError, match=r"broken.yaml: line \d+: not valid YAML"):
        load_rubric(broken)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just text\n")
    with pytest.raises(InputError, match="must be a YAML mapping"):
        load_rubric(scalar)


def test_fingerprint_changes_with_content(data):
    a = parse_rubric(data, "x")
    data["questions"][12]["points"][0]["text"] += " More."
    assert parse_rubric(data, "x").fingerprint != a.fingerprint
