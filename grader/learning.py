"""From a TA's marks to a calibration file, and from a calibration file to calibrated grades.

The workflow behind `grader calibrate` (optionally fine-tuning the encoder first) and `grade
--calibration`: which encoder a calibration needs, the answers' vectors the exemplar method reads,
and the record that ties a tuned encoder to its calibration file. The model and the files are
here; the fitting itself is `grader.calibrate`'s, the tuning `grader.finetune`'s.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from grader import calibrate, finetune
from grader.calibrate import Calibrator
from grader.embed import Encoder
from grader.engine import EncoderSpec
from grader.errors import GraderError
from grader.exemplars import AnswerVectors, answer_vectors
from grader.grade import Grades
from grader.rubric import Rubric
from grader.submissions import Submissions

GradeFn = Callable[[Rubric, Submissions, Encoder], Grades]


def tuned_encoder_path(calibration: Path) -> Path:
    """Where `calibrate --fine-tune` saves the tuned encoder: beside the calibration file."""
    return calibration.with_name(calibration.stem + ".encoder")


def calibrate_exam(
    rubric: Rubric,
    submissions: Submissions,
    human: Mapping[tuple[str, str], float],
    spec: EncoderSpec,
    out: Path,
    grade: GradeFn,
    method: str = "auto",
    criterion: str = "rmse",
    fine_tune: bool = False,
    log: Callable[[str], None] = lambda _: None,
) -> Calibrator:
    """Grade the answers (with an encoder fine-tuned on the marks first, if asked), fit, and save to `out`."""
    calibrator = Calibrator(method=method, criterion=criterion)
    encoder = spec.load()
    record = None
    if fine_tune:
        pairs = finetune.training_pairs(rubric, submissions.answers, human)
        target = tuned_encoder_path(out)
        log(f"Fine-tuning {encoder.name} on {len(pairs)} marked answers (on {encoder.device}) into {target} ...")
        record = finetune.fine_tune(encoder.model_path, pairs, target, rubric.fingerprint, encoder.name, device=encoder.device)
        log(f"Fine-tuned in {record.seconds:.0f} s.")
        encoder = replace(spec, model=target).load()
    grades = grade(rubric, submissions, encoder)
    vectors = answer_vectors(rubric, submissions.answers, encoder)
    fitted = calibrator.fit(grades, rubric, human, vectors)
    if record is not None:
        fitted.encoder_ = {
            "path": os.path.relpath(tuned_encoder_path(out), out.parent),
            "base_model": record.base_model,
            "rubric_fingerprint": record.rubric_fingerprint,
            "pairs": record.pairs,
            "epochs": record.epochs,
            "seed": record.seed,
            "seconds": record.seconds,
        }
    calibrate.save(fitted, out)
    return fitted


def calibration_encoder(calibrator: Calibrator, source: Path, spec: EncoderSpec, rubric: Rubric) -> EncoderSpec:
    """The encoder a calibration was fitted with: its tuned encoder (refused with another rubric or a
    different --model), else the one asked for."""
    tuned = getattr(calibrator, "encoder_", None)
    if not tuned:
        return spec
    path = (source.parent / tuned["path"]).resolve()
    if spec.model is not None and Path(spec.model).resolve() != path:
        raise GraderError(f"{source}: calibrated with the fine-tuned encoder {path}; do not pass another --model")
    if not (path / "modules.json").is_file():
        raise GraderError(f"{source}: its fine-tuned encoder {path} is missing: re-run `grader calibrate --fine-tune`")
    finetune.check_tuned(path, rubric)
    return replace(spec, model=path)


def apply_calibration(
    calibrator: Calibrator, grades: Grades, rubric: Rubric, submissions: Submissions, encoder: Encoder | None
) -> Grades:
    """Calibrated grades; the exemplar method also reads each answer's vector (encoded here)."""
    vectors: AnswerVectors | None = None
    if calibrator.needs_vectors:
        if encoder is None:
            raise GraderError("this calibration (exemplar) needs the model in this process: grade with --engine local")
        vectors = answer_vectors(rubric, submissions.answers, encoder)
    return calibrator.predict(grades, rubric, vectors)
