from __future__ import annotations

import math

import pytest

from grader.agreement import agreement, read_human_marks
from grader.errors import InputError


def test_perfect_agreement():
    a = agreement([0, 0.5, 1, 1], [0, 0.5, 1, 1], step=0.5)
    assert (a.mae, a.rmse, a.qwk, a.pearson, a.exact, a.within_step) == (0, 0, 1, pytest.approx(1), 1, 1)


def test_hand_computed_case():
    # machine 0, 1, 1 vs human 0, 0.5, 1 on steps of 0.5 -> categories (0,2,2) vs (0,1,2)
    a = agreement([0, 1, 1], [0, 0.5, 1], step=0.5)
    assert a.mae == pytest.approx(0.5 / 3)
    assert a.rmse == pytest.approx(math.sqrt(0.25 / 3))
    assert a.exact == pytest.approx(2 / 3) and a.within_step == 1
    # QWK by hand: observed weighted disagreement 1/4 * 1 / 3 ; expected from marginals
    observed = (1 / 3) * (1 / 4)
    h = [1 / 3, 1 / 3, 1 / 3]
    m = [1 / 3, 0, 2 / 3]
    expected = sum(h[i] * m[j] * (i - j) ** 2 / 4 for i in range(3) for j in range(3))
    assert a.qwk == pytest.approx(1 - observed / expected)


def test_constant_marks_give_nan_correlation():
    assert math.isnan(agreement([1, 1], [0, 1], step=1).pearson)


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
