"""From a TA's marks to a calibration file, and from a calibration file to calibrated grades.

The workflow behind `grader calibrate` (optionally fine-tuning the encoder first) and `grade
--calibration`: which encoder a calibration needs, the answers' vectors the exemplar method reads,
and the record that ties a tuned encoder to its calibration file. The model and the files are
here; the fitting itself is `grader.calibrate`'s, the tuning `grader.finetune`'s.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import numpy as np
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
    fitted.learning_curve_ = marking_curve(grades, rubric, human, vectors, fitted.method_)
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


CURVE_SIZES = (5, 10, 20)
CURVE_DRAWS = 3


def marking_curve(
    grades: Grades,
    rubric: Rubric,
    human: Mapping[tuple[str, str], float],
    vectors: AnswerVectors,
    method: str,
    sizes: tuple[int, ...] = CURVE_SIZES,
    draws: int = CURVE_DRAWS,
) -> list[dict]:
    """Would marking more help, and does `grader sample`'s choice beat chance? Within the marked answers:
    fit the chosen method on n per question, picked as `grader sample` picks or at random (mean of
    `draws` seeded draws), and measure the RMSE (in marks) on the marked answers left out. Sizes that
    leave fewer than 5 answers of some question out are skipped. The HTML report plots it."""
    from grader.sampling import pick_answers

    marked = {k: v for k, v in human.items() if k in vectors.vectors}
    per_question: dict[str, list[tuple[str, str]]] = {}
    for key in marked:
        per_question.setdefault(key[1], []).append(key)
    within = AnswerVectors({k: vectors.vectors[k] for k in marked}, {k: vectors.lexical[k] for k in marked})
    curve = []
    for n in sizes:
        if not per_question or min(len(keys) for keys in per_question.values()) < n + 5:
            continue
        picked = {(p.student_id, p.question_id) for p in pick_answers(grades, rubric, within, n)}
        randoms = []
        for draw in range(draws):
            rng = np.random.default_rng(draw)
            randoms.append({keys[i] for keys in per_question.values() for i in rng.permutation(len(keys))[:n]})
        errors = [_held_out_rmse(grades, rubric, marked, vectors, method, chosen) for chosen in (picked, *randoms)]
        curve.append({"per_question": n, "picked_rmse": errors[0], "random_rmse": float(np.mean(errors[1:]))})
    return curve


def _held_out_rmse(grades, rubric, marked, vectors, method, chosen) -> float:
    fitted = Calibrator(method=method).fit(grades, rubric, {k: marked[k] for k in chosen}, vectors)
    predicted = {(g.student_id, g.question_id): g.mark for g in fitted.predict(grades, rubric, vectors).items}
    rest = [k for k in marked if k not in chosen]
    return float(np.sqrt(np.mean([(predicted[k] - marked[k]) ** 2 for k in rest])))


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
