"""The calibrate / grade --calibration workflow: the marking curve, and which encoder a calibration needs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from grader.calibration.calibrate import Calibrator
from grader.calibration.learning import calibration_encoder, marking_curve, tuned_encoder_path
from grader.errors import GraderError
from grader.scoring.engine import EncoderSpec


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
