"""From a TA's marks to a calibration file, and from a calibration file to calibrated grades.

The workflow behind `grader calibrate` (optionally fine-tuning the encoder first) and `grade
--calibration`: which encoder a calibration needs, the answers' vectors the exemplar method reads,
and the record that ties a tuned encoder to its calibration file. The model and the files are
here; the fitting itself is `grader.calibration.calibrate`'s, the tuning `grader.calibration.finetune`'s.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from grader.atomic import check_writable
from grader.calibration import calibrate, finetune
from grader.calibration.calibrate import Calibrator
from grader.calibration.exemplars import AnswerVectors, answer_vectors
from grader.embedding.encoder import Encoder
from grader.errors import GraderError
from grader.exam.files import read_exam, read_marks
from grader.exam.rubric import Rubric, ShortQuestion
from grader.exam.submissions import Submissions
from grader.scoring.engine import EncoderSpec, Engine, grade_here, grade_on_cluster, load_encoder
from grader.scoring.grade import Grades
from grader.watcher import QUIET, Watcher


def tuned_encoder_path(calibration: Path) -> Path:
    """Where `calibrate --fine-tune` saves the tuned encoder: beside the calibration file."""
    return calibration.with_name(calibration.stem + ".encoder")


def calibrate_from_marks(
    spec: EncoderSpec,
    out: Path,
    rubric: Path | None,
    answers: Path | None,
    marks: Path | None,
    db: Path | None,
    watcher: Watcher = QUIET,
    **fit: Any,
) -> Calibrator:
    """`grader calibrate`: learn from a TA's marks file on RUBRIC and ANSWERS, or from the marks TAs set
    or accepted in the gradebook `db` (on its latest answers and rubric); warn about too few or uniform
    marks; then `calibrate_exam` (which takes `fit`: method, criterion, fine_tune, log) fits and saves."""
    from grader.exam.files import marks_warnings

    if db is not None:
        if rubric or answers or marks:
            raise GraderError(
                "with --db, give no RUBRIC/ANSWERS/MARKS: the gradebook holds the rubric, the answers and the TA marks"
            )
        from grader.review.gradebook import Gradebook

        with Gradebook.open(db, create=False) as book:
            loaded, submissions, human = book.rubric(), book.submissions(), book.human_marks()
        if not human:
            raise GraderError(
                f"{db}: no TA has set or accepted a mark yet: review some answers first (`grader review {db}`)"
            )
    elif rubric is None or answers is None or marks is None:
        raise GraderError("give RUBRIC ANSWERS MARKS, or --db GRADEBOOK")
    else:
        loaded, submissions = read_exam(rubric, answers, watcher.warn)
        human = read_marks(marks, loaded)
    check_writable(out)
    shorts = {q.id: q.marks for q in loaded.questions if isinstance(q, ShortQuestion)}
    for warning in marks_warnings(human, shorts, Calibrator().min_per_question):
        watcher.warn(f"{marks or db}: {warning}")
    return calibrate_exam(loaded, submissions, human, spec, out, watcher=watcher, **fit)


def calibrate_exam(
    rubric: Rubric,
    submissions: Submissions,
    human: Mapping[tuple[str, str], float],
    spec: EncoderSpec,
    out: Path,
    method: str = "auto",
    criterion: str = "rmse",
    fine_tune: bool = False,
    watcher: Watcher = QUIET,
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
        record = finetune.fine_tune(
            encoder.model_path, pairs, target, rubric.fingerprint, encoder.name, device=encoder.device
        )
        log(f"Fine-tuned in {record.seconds:.0f} s.")
        encoder = replace(spec, model=target).load()
    grades = grade_here(rubric, submissions, encoder, watcher)
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
    from grader.calibration.sampling import pick_answers

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


@dataclass(frozen=True)
class CalibratedGrades:
    """A class graded, and calibrated when a calibration file was given."""

    grades: Grades
    where: str
    """Where the model ran, for the summary line: "MODEL on DEVICE" or "MODEL on Ray"."""
    calibrator: Calibrator | None = None


def grade_calibrated(
    rubric: Rubric,
    submissions: Submissions,
    spec: EncoderSpec,
    calibration: Path | None = None,
    engine: Engine | str = Engine.LOCAL,
    address: str | None = None,
    watcher: Watcher = QUIET,
) -> CalibratedGrades:
    """Grade on `engine`, then apply the calibration if one is given; a calibration fitted for another
    rubric (or model) is refused before the model loads (or before grading)."""
    calibrator = calibrate.load(calibration) if calibration is not None else None
    encoder = None
    if calibrator is not None:
        calibrator.check(rubric, source=str(calibration))
        spec = calibration_encoder(calibrator, calibration, spec, rubric)
    if engine == Engine.RAY:
        grades = grade_on_cluster(rubric, submissions, spec, address, watcher)
        where = f"{grades.model} on Ray"
    else:
        encoder = load_encoder(spec, watcher)
        if calibrator is not None:
            calibrator.check(rubric, encoder.name, source=str(calibration))
        grades = grade_here(rubric, submissions, encoder, watcher)
        where = f"{encoder.name} on {encoder.device}"
    if calibrator is not None:
        calibrator.check(rubric, grades.model, source=str(calibration))
        if calibrator.checker_ is not None and calibrator.checker_ != grades.checker:
            watcher.warn(
                f"{calibration}: fitted on answers graded with {calibrator.checker_}, these with "
                f"{grades.checker or 'the rules alone'}: the marks lack evidence it learned to weigh "
                "(calibrate again under the same GRADER_CHECKER)"
            )
        if encoder is None and calibrator.needs_vectors:
            encoder = load_encoder(spec, watcher)  # the exemplar method reads each answer's vector, here
        grades = apply_calibration(calibrator, grades, rubric, submissions, encoder)
    return CalibratedGrades(grades, where, calibrator)
