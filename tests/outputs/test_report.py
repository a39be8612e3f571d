"""build_report(): a results folder written as `grader grade` writes it (tests/tiny_class.py), no model."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

from grader.errors import GraderError, InputError
from grader.outputs.report import SECTIONS, _item_analysis, _point_stats, build_report, read_run, write_report
from tests.tiny_class import HUMAN, RUBRIC, grades, write_run

PNG = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("results")
    write_run(folder)
    return folder


@pytest.fixture(scope="module")
def with_human(results):
    return build_report(results, RUBRIC, HUMAN)


@pytest.fixture(scope="module")
def without_human(results):
    return build_report(results, RUBRIC)


def _section(page: str, sid: str) -> str:
    return page.split(f'<section id="{sid}">', 1)[1].split("</section>", 1)[0]


def test_report_is_one_self_contained_file(tmp_path, with_human):
    path = write_report(tmp_path / "out" / "report.html", with_human)
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page)
    assert "<link" not in page and "<script" not in page
    images = PNG.findall(page)
    assert len(images) >= 6
    assert all(base64.b64decode(i).startswith(b"\x89PNG\r\n\x1a\n") for i in images)


@pytest.mark.parametrize("page", ["with_human", "without_human"])
def test_every_section_has_an_id_and_heading(page, request):
    html = request.getfixturevalue(page)
    for sid, title in SECTIONS.items():
        assert f'<section id="{sid}">\n<h2>{title}</h2>' in html
    assert len(PNG.findall(html)) >= 5


def test_machine_vs_human_needs_human_marks(with_human, without_human):
    section = _section(without_human, "machine-vs-human")
    assert "needs a TA" in section and "--human" in section and "data:image" not in section
    section = _section(with_human, "machine-vs-human")
    assert len(PNG.findall(section)) == 2  # scatter and confusion matrices
    assert "15 answers had a human mark and are compared; 1 had none" in section
    assert "<td>S1</td><td>4</td><td>0.125 [" in section
    assert "MCQ marks equal to the human&#x27;s: 7/8" in section


def test_review_budget_plots_the_curve_when_human_marks_are_given(with_human, without_human):
    section = _section(with_human, "review-budget")
    assert len(PNG.findall(section)) == 1
    assert "<th>MAE unreviewed (doubt order)</th>" in section and "<td>0%</td><td>0</td>" in section
    section = _section(without_human, "review-budget")
    assert "--human" in section and "data:image" not in section


def test_summary_and_flags_tables(with_human, without_human):
    summary = _section(without_human, "summary")
    # totals 4, 2, 1.25, 1.75: mean 2.25
    assert "4 students; total out of 4: mean 2.25" in summary
    assert "<td>S2</td><td>short</td><td>1</td><td>0.62</td>" in summary
    assert "human mean" in _section(with_human, "summary") and "human mean" not in summary
    flags = _section(without_human, "flags")
    assert "<th>blank</th><th>unreadable-choice</th><th>contradiction</th>" in flags
    assert "<tr><td>S1</td><td>1</td><td></td><td>1</td><td>2</td></tr>" in flags
    assert "<td>M2</td>" not in flags  # no flags on M2


def test_mcq_item_analysis_by_hand():
    m1, m2 = _item_analysis(grades(), RUBRIC)
    assert m1.keys == ("b",) and m1.difficulty == 0.5 and m1.n == 4
    assert dict(m1.options) == {"a": 0, "b": 2, "c": 1} and m1.unreadable == 1 and m1.blank == 0
    # rest-of-exam totals: s1 4-1, s2 2-1, s3 1.25-0, s4 1.75-0
    assert m1.point_biserial == pytest.approx(np.corrcoef([1, 1, 0, 0], [3, 1, 1.25, 1.75])[0, 1])
    # 27% of 4 students is 1: top by rest is s1 (right), bottom is s2 (right) -> 0
    assert m1.upper_lower == 0
    assert m2.difficulty == 0.75 and dict(m2.options) == {"a": 3, "b": 1, "c": 0}


def test_point_stats_count_blank_answers_as_no_credit():
    stats = {(s.question_id, s.point_id): s for s in _point_stats(grades(), RUBRIC)}
    p1 = stats[("S1", "p1")]
    assert p1.mean_credit == 0.5 and p1.full == 0.5 and p1.none == 0.5  # s4 left S1 blank
    assert stats[("S1", "p2")].contradictions == 1
    assert stats[("S2", "q2")].patterns == 1 and stats[("S2", "q2")].mean_credit == 0.75


def test_results_read_back_into_the_same_grades(results):
    run = read_run(results)
    original = grades()
    assert run.grades.students == original.students and run.grades.curve == original.curve
    for read, wrote in zip(run.grades.items, original.items):
        assert (read.student_id, read.question_id, read.mark, read.choice) == (
            wrote.student_id,
            wrote.question_id,
            wrote.mark,
            wrote.choice,
        )
        assert read.flags == wrote.flags and read.points == wrote.points
        assert read.raw_mark == pytest.approx(wrote.raw_mark)


def test_calibrated_runs_plot_their_curves(tmp_path, results):
    for method, params in {
        "thresholds": {"pooled": [0.3, 0.45], "curves": {"S1": [0.25, 0.5]}},
        "isotonic": {
            "pooled": {"x": [0, 1], "y": [0.1, 0.9]},
            "questions": {"S2": {"x": [0, 0.5, 1], "y": [0, 0.6, 1]}},
        },
    }.items():
        folder = tmp_path / method
        write_run(folder)
        info = json.loads((folder / "run.json").read_text())
        info["calibration"] = {"method": method, "cv_mae": {"default": 0.2, method: 0.15}, "params": params}
        (folder / "run.json").write_text(json.dumps(info))
        section = _section(build_report(folder, RUBRIC, HUMAN), "credit-curve")
        assert f"<strong>{method}</strong>" in section and f"{method} 0.150" in section
        assert len(PNG.findall(section)) == 1


def test_a_calibration_with_a_learning_curve_plots_it(tmp_path):
    folder = tmp_path / "exemplar"
    write_run(folder)
    info = json.loads((folder / "run.json").read_text())
    curve = [{"per_question": n, "picked_rmse": 0.4 - n / 100, "random_rmse": 0.45 - n / 100} for n in (5, 10)]
    info["calibration"] = {
        "method": "exemplar",
        "cv_mae": {"default": 0.2, "exemplar": 0.15},
        "params": {},
        "learning_curve": curve,
    }
    (folder / "run.json").write_text(json.dumps(info))
    section = _section(build_report(folder, RUBRIC, HUMAN), "credit-curve")
    assert "<strong>exemplar</strong>" in section and 'alt="Error against answers marked per question"' in section
    assert len(PNG.findall(section)) == 2
    del info["calibration"]["learning_curve"]
    (folder / "run.json").write_text(json.dumps(info))
    assert len(PNG.findall(_section(build_report(folder, RUBRIC, HUMAN), "credit-curve"))) == 1


def test_report_is_deterministic(results, without_human):
    assert build_report(results, RUBRIC) == without_human


def test_wrong_rubric_or_folder_is_refused(tmp_path, results):
    other = RUBRIC.model_copy(update={"version": 2})
    with pytest.raises(GraderError, match="graded with another rubric"):
        build_report(results, other)
    with pytest.raises(InputError, match="run.json: not found"):
        build_report(tmp_path, RUBRIC)


def test_an_unknown_flag_code_in_marks_csv_is_a_clear_error(tmp_path):
    folder = tmp_path / "run"
    write_run(folder)
    marks = (folder / "marks.csv").read_text().splitlines()
    header = marks[0].split(",")
    row = marks[1].split(",")
    row[header.index("flags")] = "made-up"
    (folder / "marks.csv").write_text("\n".join([marks[0], ",".join(row), *marks[2:]]) + "\n")
    with pytest.raises(InputError, match=r"marks.csv: row 2, column flags: 'made-up' is not a valid FlagCode"):
        read_run(folder)
