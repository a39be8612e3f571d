"""The calibrate / grade --calibration workflow: the marking curve, and which encoder a calibration needs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from grader.calibration import calibrate
from grader.calibration.calibrate import Calibrator
from grader.calibration.learning import calibration_encoder, grade_calibrated, marking_curve, tuned_encoder_path
from grader.errors import GraderError
from grader.exam.submissions import parse_submissions
from grader.scoring.engine import EncoderSpec
from grader.watcher import Watcher


def test_the_marking_curve_compares_picked_and_random_answers_within_the_marks(sample, rubric):
    curve = marking_curve(sample.grades, rubric, sample.human, sample.vectors, "exemplar")
    assert [c["per_question"] for c in curve] == [5, 10, 20]
    for c in curve:
        assert 0 < c["picked_rmse"] < 1 and 0 < c["random_rmse"] < 1 and math.isfinite(c["picked_rmse"])
    assert marking_curve(sample.grades, rubric, sample.human, sample.vectors, "exemplar") == curve  # seeded


def test_sizes_that_leave_too_few_answers_out_are_skipped(sample, rubric):
    few = {k: v for k, v in sample.human.items() if k[0] in set(sample.grades.students[:12])}
    assert [c["per_question"] for c in marking_curve(sample.grades, rubric, few, sample.vectors, "pooled")] == [5]


def test_a_calibration_without_a_tuned_encoder_keeps_the_encoder_asked_for(sample, rubric, tmp_path):
    fitted = Calibrator(method="pooled").fit(sample.grades, rubric, sample.human)
    spec = EncoderSpec(None, "cpu")
    assert calibration_encoder(fitted, tmp_path / "exam.calibration", spec, rubric) is spec
    assert tuned_encoder_path(Path("models/exam.calibration")) == Path("models/exam.encoder")


def test_a_missing_or_overridden_tuned_encoder_is_refused(sample, rubric, tmp_path):
    fitted = Calibrator(method="pooled").fit(sample.grades, rubric, sample.human)
    fitted.encoder_ = {"path": "exam.encoder"}
    source = tmp_path / "exam.calibration"
    with pytest.raises(GraderError, match="fine-tuned encoder .* is missing"):
        calibration_encoder(fitted, source, EncoderSpec(None, "cpu"), rubric)
    (tmp_path / "exam.encoder").mkdir()
    (tmp_path / "exam.encoder" / "modules.json").write_text(json.dumps([]))
    with pytest.raises(GraderError, match="do not pass another --model"):
        calibration_encoder(fitted, source, EncoderSpec(tmp_path / "other", "cpu"), rubric)
    chosen = calibration_encoder(fitted, source, EncoderSpec(None, "cpu"), rubric)
    assert chosen.model == (tmp_path / "exam.encoder").resolve()


class _Warnings(Watcher):
    def __init__(self) -> None:
        self.said: list[str] = []

    def warn(self, message: str) -> None:
        self.said.append(message)


def test_grading_under_another_check_than_the_calibration_learned_is_said(sample, rubric, tmp_path, monkeypatch):
    """The calibration records the check its answers were graded with (the concept check's doubt is
    one of its features); graded without it, the marks still come (the doubt filled with its mean),
    and the run says so once, naming the file; graded as it learned, nothing is said."""
    fitted = Calibrator(method="pooled").fit(sample.grades, rubric, sample.human)
    assert fitted.checker_ == sample.grades.checker and fitted.checker_.startswith("concept-check")
    path = tmp_path / "exam.calibration"
    calibrate.save(fitted, path)
    few = parse_submissions(
        'student_id,I5\nx1,"The network collapses into a polynomial."\n', "one.csv", rubric.question_ids
    )
    for setting, expected in (("", 0), ("off", 1)):
        monkeypatch.setenv("GRADER_CHECKER", setting)
        watcher = _Warnings()
        graded = grade_calibrated(rubric, few, EncoderSpec(None, "cpu"), path, watcher=watcher).grades
        told = [m for m in watcher.said if "calibrate again" in m]
        assert len(told) == expected and all(str(path) in m and "the rules alone" in m for m in told)
        assert next(g for g in graded.items if g.question_id == "I5").calibrated
