"""The outputs of a run: marks.csv, totals.csv, evidence.jsonl, run.json, and the summary table;
and `grade_exam`, the whole `grader grade` run that writes them (and adds the run to a gradebook).

Text from the answers file (student ids, kept columns) goes through the spreadsheet guard
(`grader.spreadsheet`): these files are opened in spreadsheets. Everything is rendered to text
first and written atomically, so `--out` holds either the previous run's files or this run's,
never a torn one. The rendering is deterministic: the same inputs give byte-identical files (no
timestamps; similarities rounded to 4 decimals).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from grader import __version__
from grader.atomic import check_writable, write_atomically
from grader.calibration.learning import grade_calibrated
from grader.errors import InputError
from grader.exam.files import read_exam
from grader.exam.rubric import McqQuestion, Rubric
from grader.exam.submissions import Submissions
from grader.review.gradebook import Gradebook, RunRecord
from grader.scoring.engine import EncoderSpec, Engine
from grader.scoring.grade import Grades
from grader.scoring.triage import triage
from grader.spreadsheet import spreadsheet_safe
from grader.text import number
from grader.watcher import QUIET, Watcher


def _csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def marks_csv(grades: Grades) -> str:
    return _csv(
        ["student_id", "question_id", "mark", "max_mark", "flags"],
        (
            [
                spreadsheet_safe(g.student_id),
                spreadsheet_safe(g.question_id),
                number(g.mark),
                number(g.max_mark),
                ";".join(f.code for f in g.flags),
            ]
            for g in grades.items
        ),
    )


def totals_csv(grades: Grades, rubric: Rubric, submissions: Submissions) -> str:
    kept = list(submissions.kept_columns)
    return _csv(
        ["student_id", "total", "max_total", *map(spreadsheet_safe, kept)],
        (
            [spreadsheet_safe(student), number(sum(g.mark for g in items)), number(rubric.max_total)]
            + [spreadsheet_safe(submissions.kept.get(student, {}).get(c, "")) for c in kept]
            for student, items in grades.by_student()
        ),
    )


def evidence_jsonl(grades: Grades) -> str:
    """One line per (student, question, point); MCQs get one line with the letter read."""
    lines = []
    for g in grades.items:
        base = {"student_id": g.student_id, "question_id": g.question_id, "mark": g.mark}
        if not g.points:
            lines.append({**base, "point_id": None, "choice": g.choice, "flags": [f.reason for f in g.flags]})
        for p in g.points:
            lines.append(
                {**base, **p.to_dict(digits=4), "flags": [f.reason for f in g.flags]}
                # The marked answers a calibrated mark leaned on (absent when none did).
                | ({"neighbours": [n.to_dict() for n in g.neighbours]} if g.neighbours else {})
            )
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


def run_json(
    grades: Grades,
    rubric: Rubric,
    submissions: Submissions,
    rubric_path: str | None = None,
    calibration: dict | None = None,
) -> str:
    info = {
        "grader_version": __version__,
        "exam": rubric.exam,
        "rubric_path": rubric_path,
        "rubric_version": rubric.version,
        "rubric_fingerprint": grades.rubric_fingerprint,
        "submissions": Path(submissions.source).name,
        "students": len(grades.students),
        "model": grades.model,
        "segments": grades.segments,
        "checker": grades.checker,
        "credit_curve": {"low": grades.curve.low, "high": grades.curve.high},
        "calibration": calibration,
    }
    return json.dumps(info, indent=2, ensure_ascii=False) + "\n"


def write_results(
    out_dir: str | Path,
    grades: Grades,
    rubric: Rubric,
    submissions: Submissions,
    rubric_path: str | None = None,
    calibration: dict | None = None,
) -> list[Path]:
    """Write the run's four files into `out_dir` atomically; returns their paths.

    `calibration` is the applied calibration's `Calibrator.to_dict()`, recorded in run.json.
    """
    out = Path(out_dir)
    files = {
        out / "marks.csv": marks_csv(grades),
        out / "totals.csv": totals_csv(grades, rubric, submissions),
        out / "evidence.jsonl": evidence_jsonl(grades),
        out / "run.json": run_json(grades, rubric, submissions, rubric_path, calibration),
    }
    write_atomically(files)
    return list(files)


@dataclass(frozen=True)
class QuestionSummary:
    question_id: str
    kind: str
    max_mark: float
    mean: float
    full: int
    partial: int
    zero: int
    flagged: int


def summarise(grades: Grades, rubric: Rubric) -> list[QuestionSummary]:
    """Per question: mean mark and how many answers got full, partial and zero marks, and were flagged."""
    rows = []
    for question in rubric.questions:
        items = [g for g in grades.items if g.question_id == question.id]
        marks = [g.mark for g in items]
        rows.append(
            QuestionSummary(
                question.id,
                "mcq" if isinstance(question, McqQuestion) else "short",
                question.marks,
                sum(marks) / len(marks) if marks else 0.0,
                sum(m >= question.marks - 1e-9 for m in marks),
                sum(0 < m < question.marks - 1e-9 for m in marks),
                sum(m <= 0 for m in marks),
                sum(bool(g.flags) for g in items),
            )
        )
    return rows


def recorded_rubric(results: Path) -> Path:
    """The rubric a graded folder was graded with, as its run.json recorded it."""
    try:
        recorded = json.loads((results / "run.json").read_text(encoding="utf-8")).get("rubric_path")
    except (OSError, ValueError) as exc:
        raise InputError(results / "run.json", f"cannot read the run: {exc}") from None
    if not recorded:
        raise InputError(results / "run.json", "no rubric_path recorded: pass --rubric")
    return Path(recorded)


@dataclass(frozen=True)
class GradedExam:
    """What `grade_exam` did: the grades and their summary, where the model ran, and the gradebook's record."""

    rubric: Rubric
    grades: Grades
    summary: list[QuestionSummary]
    where: str
    """Where the model ran: "MODEL on DEVICE" or "MODEL on Ray"."""
    calibration_method: str | None = None
    record: RunRecord | None = None
    queued: int = 0
    """Answers waiting for review in the gradebook after this run."""


def grade_exam(
    rubric: Path,
    answers: Path,
    out: Path,
    spec: EncoderSpec,
    engine: Engine | str = Engine.LOCAL,
    address: str | None = None,
    calibration: Path | None = None,
    db: Path | None = None,
    review_budget: float | None = None,
    watcher: Watcher = QUIET,
    written: Callable[[GradedExam], None] = lambda _: None,
) -> GradedExam:
    """`grader grade`: grade every answer (calibrated when `calibration` is given), write the four files
    into `out`, then add the run to the gradebook `db` (TA marks already in it are kept).

    Bad inputs, an unwritable `out` and a gradebook of another exam fail before the model loads.
    `written` is called once the files are written, before the gradebook is touched.
    """
    loaded, submissions = read_exam(rubric, answers, watcher.warn)
    check_writable(out, folder=True)
    book = Gradebook.open(db) if db is not None else None
    if book is not None:
        book.check_exam(loaded)
    graded = grade_calibrated(loaded, submissions, spec, calibration, engine, address, watcher)
    grades, calibrator = graded.grades, graded.calibrator
    calibration_info = calibrator.summary() if calibrator else None
    triaged = triage(grades, loaded, review_budget)
    write_results(out, grades, loaded, submissions, str(rubric.resolve()), calibration_info)
    result = GradedExam(
        loaded, grades, summarise(grades, loaded), graded.where, calibrator.method_ if calibrator else None
    )
    written(result)
    if book is None:
        return result
    with book:
        record = book.record_run(
            loaded,
            submissions,
            grades,
            rubric_path=str(rubric.resolve()),
            calibration=calibration_info,
            triaged=triaged,
            review_budget=review_budget,
        )
        queued = len(book.queue())
    return replace(result, record=record, queued=queued)
