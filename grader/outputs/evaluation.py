"""`grader evaluate` as a library: how a run's marks agree with a TA's, with confidence intervals.

Only answers the TA marked are compared; how many were not (and how many TA marks matched no
graded answer, usually a mistyped id) is counted, never hidden. Short answers are compared per
question on the question's step and pooled on the finest step that fits every question (0.25 when
steps are 0.5 and 0.25); MCQs are exact, so they get the share of marks equal to the TA's; totals
are compared for the students the TA marked on every question. Intervals are percentile bootstrap
intervals (`grader.calibration.agreement.bootstrap`), seeded, so the files are byte-identical on a re-run.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from rich.table import Table

from grader.atomic import write_atomically
from grader.calibration.agreement import METRICS, Agreement, agreement, as_dict, bootstrap
from grader.errors import GraderError
from grader.exam.rubric import McqQuestion, Rubric, ShortQuestion
from grader.scoring.grade import Grades
from grader.spreadsheet import spreadsheet_safe
from grader.text import number

_TOLERANCE = 1e-9


@dataclass(frozen=True)
class AnswerRow:
    """One graded answer beside the TA's mark (None when the TA did not mark it)."""

    student_id: str
    question_id: str
    machine: float
    human: float | None
    max_mark: float
    flags: tuple[str, ...] = ()

    @property
    def difference(self) -> float | None:
        """Machine minus human: positive when the machine was more generous."""
        return None if self.human is None else self.machine - self.human


@dataclass(frozen=True)
class Comparison:
    """Machine vs human on one group of answers (a question, all short answers, or totals)."""

    label: str
    step: float
    """The mark step kappa and exact agreement are counted on."""
    agreement: Agreement
    intervals: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    """Bootstrap interval per metric name (see `grader.calibration.agreement.METRICS`); empty when not bootstrapped."""

    def interval(self, metric: str) -> tuple[float, float]:
        return self.intervals.get(metric, (math.nan, math.nan))


@dataclass(frozen=True)
class McqAgreement:
    """MCQ marks are exact: how many equal the TA's, overall and per question."""

    n: int
    equal: int
    questions: tuple[tuple[str, int, int], ...] = ()
    """(question id, answers compared, marks equal) in rubric order."""

    @property
    def share(self) -> float:
        return self.equal / self.n if self.n else math.nan


@dataclass(frozen=True)
class Evaluation:
    exam: str
    questions: tuple[Comparison, ...]
    """One per short question the TA marked at least once, in rubric order."""
    overall: Comparison | None
    """All compared short answers pooled; None when the TA marked none."""
    mcq: McqAgreement
    totals: Comparison | None
    """Per-student totals, for students the TA marked on every question; None when there are none."""
    rows: tuple[AnswerRow, ...]
    """Every graded answer, in the order of the grades."""
    missing: int
    """Graded answers without a human mark (not compared)."""
    unmatched: int
    """Human marks for a student and question that were not graded (a mistyped id?)."""
    n_boot: int
    level: float

    @property
    def compared(self) -> int:
        return len(self.rows) - self.missing


def evaluate(
    grades: Grades,
    rubric: Rubric,
    human: Mapping[tuple[str, str], float],
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Evaluation:
    """Compare `grades` with a TA's marks (keyed by student id and question id); `n_boot=0` skips intervals."""
    rows = tuple(
        AnswerRow(
            g.student_id,
            g.question_id,
            g.mark,
            _checked(human, g.student_id, g.question_id, g.max_mark),
            g.max_mark,
            tuple(f.code for f in g.flags),
        )
        for g in grades.items
    )
    graded = {(r.student_id, r.question_id) for r in rows}
    marked = [r for r in rows if r.human is not None]

    def compare(label: str, pairs: Sequence[tuple[float, float]], step: float) -> Comparison:
        machine, humans = [p[0] for p in pairs], [p[1] for p in pairs]
        intervals = bootstrap(machine, humans, step, n_boot=n_boot, seed=seed, level=level) if n_boot else {}
        return Comparison(label, step, agreement(machine, humans, step), intervals)

    questions, short_pairs, steps = [], [], []
    mcq_rows = []
    for q in rubric.questions:
        pairs = [(r.machine, r.human) for r in marked if r.question_id == q.id]
        if isinstance(q, McqQuestion):
            mcq_rows.append((q.id, len(pairs), sum(abs(m - h) < _TOLERANCE for m, h in pairs)))
        elif pairs:
            questions.append(compare(q.id, pairs, q.step))
            short_pairs += pairs
            steps.append(q.step)
    overall = compare("all short answers", short_pairs, common_step(steps)) if short_pairs else None

    complete = [s for s in grades.students if all((s, q) in human for q in rubric.question_ids)]
    totals = None
    if complete:
        pairs = [
            (sum(r.machine for r in marked if r.student_id == s), sum(r.human for r in marked if r.student_id == s))
            for s in complete
        ]
        totals = compare("totals", pairs, common_step([_step(q) for q in rubric.questions]))
    return Evaluation(
        exam=grades.exam,
        questions=tuple(questions),
        overall=overall,
        mcq=McqAgreement(sum(r[1] for r in mcq_rows), sum(r[2] for r in mcq_rows), tuple(mcq_rows)),
        totals=totals,
        rows=rows,
        missing=len(rows) - len(marked),
        unmatched=sum(key not in graded for key in human),
        n_boot=n_boot,
        level=level,
    )


def common_step(steps: Sequence[float]) -> float:
    """The largest step every step is a whole multiple of (0.5 and 0.25 -> 0.25; 1 and 0.5 -> 0.5)."""
    if not steps:
        raise ValueError("common_step needs at least one step")
    fractions = [Fraction(s).limit_denominator(1000) for s in steps]
    denominator = math.lcm(*(f.denominator for f in fractions))
    numerator = math.gcd(*(f.numerator * (denominator // f.denominator) for f in fractions))
    return numerator / denominator


def _step(question: McqQuestion | ShortQuestion) -> float:
    return question.step if isinstance(question, ShortQuestion) else question.marks


def _checked(human: Mapping[tuple[str, str], float], student: str, question: str, max_mark: float) -> float | None:
    mark = human.get((student, question))
    if mark is None:
        return None
    if not -_TOLERANCE <= mark <= max_mark + _TOLERANCE:
        raise GraderError(f"the human mark {number(mark)} for {student} on {question} is outside 0..{number(max_mark)}")
    return float(mark)


# ---- rendering ---------------------------------------------------------------------------------


def metrics_json(evaluation: Evaluation) -> str:
    """Per question, pooled, MCQ and totals, as indented JSON; NaN (undefined) is null; floats to 6 places."""
    e = evaluation
    data = {
        "exam": e.exam,
        "answers": {"compared": e.compared, "without_human_mark": e.missing, "human_marks_unmatched": e.unmatched},
        "bootstrap": {"resamples": e.n_boot, "level": e.level},
        "questions": {c.label: _comparison(c) for c in e.questions},
        "overall": _comparison(e.overall) if e.overall else None,
        "mcq": {
            "n": e.mcq.n,
            "equal": e.mcq.equal,
            "share": _value(e.mcq.share),
            "questions": {qid: {"n": n, "equal": equal} for qid, n, equal in e.mcq.questions},
        },
        "totals": _comparison(e.totals) if e.totals else None,
    }
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _comparison(c: Comparison) -> dict:
    return {
        "step": c.step,
        **{name: _value(v) for name, v in as_dict(c.agreement).items()},
        "ci": {name: [_value(v) for v in c.intervals[name]] for name in METRICS if name in c.intervals},
    }


def _value(v: float | int) -> float | int | None:
    if isinstance(v, int):
        return v
    return None if math.isnan(v) else round(float(v), 6)


def answers_csv(evaluation: Evaluation) -> str:
    """One row per graded answer; human and difference are blank where the TA gave no mark."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student_id", "question_id", "machine", "human", "difference", "max_mark", "flags"])
    for r in evaluation.rows:
        blank = r.human is None
        writer.writerow(
            [
                spreadsheet_safe(r.student_id),
                spreadsheet_safe(r.question_id),
                number(r.machine),
                "" if blank else number(r.human),
                "" if blank else number(r.difference),
                number(r.max_mark),
                ";".join(r.flags),
            ]
        )
    return buffer.getvalue()


def write_evaluation(out_dir: str | Path, evaluation: Evaluation) -> list[Path]:
    """Write metrics.json and answers.csv into `out_dir` atomically; returns their paths."""
    out = Path(out_dir)
    files = {out / "metrics.json": metrics_json(evaluation), out / "answers.csv": answers_csv(evaluation)}
    write_atomically(files)
    return list(files)


def with_interval(value: float, interval: tuple[float, float] = (math.nan, math.nan), digits: int = 2) -> str:
    """'0.79 [0.71, 0.85]'; '-' for an undefined value; the bare value when there is no interval."""
    if math.isnan(value):
        return "-"
    text = f"{value:.{digits}f}"
    if not any(math.isnan(v) for v in interval):
        text += f" [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"
    return text


def evaluation_table(evaluation: Evaluation) -> Table:
    """The evaluation for a terminal: a row per short question, then pooled and totals; MAE and QWK with CIs."""
    e = evaluation
    table = Table(title=f"{e.exam}: machine vs human marks", title_justify="left")
    ci = f" [{e.level:.0%} CI]" if e.n_boot else ""
    for column in ("question", "n", f"MAE{ci}", "RMSE", f"QWK{ci}", "Pearson", "Spearman", "exact", "within one step"):
        table.add_column(column, justify="left" if column == "question" else "right")

    def add(c: Comparison) -> None:
        a = c.agreement
        table.add_row(
            c.label,
            str(a.n),
            with_interval(a.mae, c.interval("mae"), 3),
            f"{a.rmse:.3f}",
            with_interval(a.qwk, c.interval("qwk")),
            with_interval(a.pearson),
            with_interval(a.spearman),
            f"{a.exact:.0%}",
            f"{a.within_step:.0%}",
        )

    for c in e.questions:
        add(c)
    pooled = [c for c in (e.overall, e.totals) if c is not None]
    if pooled:
        table.add_section()
        for c in pooled:
            add(c)
    table.caption = caption(e)
    table.caption_justify = "left"
    return table


def caption(evaluation: Evaluation) -> str:
    """One line on what was compared: MCQ exact agreement, answers without a TA mark, steps used."""
    e = evaluation
    parts = []
    if e.mcq.n:
        parts.append(f"MCQ marks equal to the human's: {e.mcq.equal}/{e.mcq.n}.")
    parts.append(f"{e.compared} answers compared; {e.missing} had no human mark.")
    if e.unmatched:
        parts.append(f"{e.unmatched} human mark(s) matched no graded answer (check the ids).")
    if e.overall:
        parts.append(f"Pooled kappa on steps of {number(e.overall.step)}.")
    if e.totals:
        parts.append(f"Totals: {e.totals.agreement.n} students marked on every question.")
    return " ".join(parts)
