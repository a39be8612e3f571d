"""`grader report`: one self-contained HTML page about a graded run, for the people who set the exam.

It is built from the files `grader grade` wrote (marks.csv, evidence.jsonl, run.json), read back
into `Grades`, so a report can be made long after the run, without the model. Every figure is a
PNG drawn by matplotlib's Agg backend and embedded as base64, the CSS is inline and nothing links
outside the page: it opens offline, from an e-mail attachment or a USB stick. With a TA's marks it
adds machine vs human agreement (`grader.outputs.evaluation`); without, it shows everything else.
The page is deterministic: the same folder and marks give the same bytes (jitter is seeded).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from scipy.stats import pointbiserialr

from grader.atomic import write_atomically
from grader.errors import GraderError, InputError
from grader.exam.rubric import McqQuestion, Rubric, ShortQuestion
from grader.outputs.evaluation import Evaluation, evaluate, with_interval
from grader.outputs.results import summarise
from grader.scoring import flags as flagging
from grader.scoring.flags import Flag, FlagCode
from grader.scoring.grade import Grades, QuestionGrade
from grader.scoring.match import CreditCurve, PointMatch
from grader.scoring.triage import BudgetPoint, budget_curve
from grader.spreadsheet import spreadsheet_unsafe
from grader.text import number, shorten

SECTIONS = {
    "summary": "Summary",
    "distributions": "Mark distributions",
    "machine-vs-human": "Machine vs human marks",
    "credit-curve": "From similarity to marks",
    "points": "Rubric points earned",
    "mcq": "MCQ item analysis",
    "flags": "Flags",
    "review-budget": "Review budget",
}
"""Section id -> heading, in page order; the ids are stable anchors (report.html#mcq)."""

DPI = 100
MACHINE, HUMAN, KEY, OTHER, UNREAD = "#3b6ea8", "#e08a2c", "#2e8b57", "#b7bec9", "#c0504d"
FLAG_ORDER = tuple(flagging.MEANINGS)
UPPER_LOWER = 0.27
"""Share of students in each of the upper and lower groups of the discrimination index (Kelley)."""


# ---- reading a results folder ------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """A graded run read back from its folder: the grades and run.json as written."""

    grades: Grades
    info: Mapping[str, Any]

    @property
    def calibration(self) -> Mapping[str, Any] | None:
        return self.info.get("calibration")


def read_run(results_dir: str | Path) -> Run:
    """Read marks.csv, evidence.jsonl and run.json back into `Grades` (answer lengths are not kept: 0)."""
    folder = Path(results_dir)
    info = _read_json(folder / "run.json")
    marks = _read_marks(folder / "marks.csv")
    evidence = _read_evidence(folder / "evidence.jsonl")
    try:
        curve = CreditCurve(float(info["credit_curve"]["low"]), float(info["credit_curve"]["high"]))
        exam, fingerprint, model = str(info["exam"]), str(info["rubric_fingerprint"]), str(info["model"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(folder / "run.json", f"not a run.json written by `grader grade` (missing {exc})") from None
    items = []
    for line, row in enumerate(marks, start=2):
        key = (spreadsheet_unsafe(row["student_id"]), spreadsheet_unsafe(row["question_id"]))
        points, choice, reasons = evidence.get(key, ((), None, ()))
        codes = [c for c in row["flags"].split(";") if c]
        try:
            flags = (
                tuple(Flag(c, r) for c, r in zip(codes, reasons))
                if len(reasons) == len(codes)
                else tuple(Flag(c, c) for c in codes)
            )
        except ValueError as exc:
            raise InputError(
                folder / "marks.csv", f"row {line}, column flags: {exc} (see grader.scoring.flags.FlagCode)"
            ) from None
        mark, max_mark = float(row["mark"]), float(row["max_mark"])
        raw = sum(p.marks * p.credit for p in points) if points else mark
        items.append(QuestionGrade(key[0], key[1], mark, max_mark, raw, flags, choice, points))
    students = tuple(dict.fromkeys(g.student_id for g in items))
    return Run(Grades(exam, fingerprint, model, curve, students, tuple(items)), info)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, "not found: is this a folder written by `grader grade`?") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"cannot read it: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(path, "not a run.json written by `grader grade`")
    return data


def _read_marks(path: Path) -> list[dict[str, str]]:
    try:
        rows = list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))
    except FileNotFoundError:
        raise InputError(path, "not found: is this a folder written by `grader grade`?") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read it: {exc}") from None
    for number_, row in enumerate(rows, start=2):
        for column in ("student_id", "question_id", "mark", "max_mark", "flags"):
            if row.get(column) is None:
                raise InputError(path, f"missing column '{column}'", row=number_)
        for column in ("mark", "max_mark"):
            try:
                float(row[column])
            except ValueError:
                raise InputError(path, f"{row[column]!r} is not a number", row=number_, column=column) from None
    return rows


def _read_evidence(path: Path) -> dict[tuple[str, str], tuple[tuple[PointMatch, ...], str | None, tuple[str, ...]]]:
    """(student, question) -> (point matches, MCQ letter read, flag reasons)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(path, "not found: is this a folder written by `grader grade`?") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read it: {exc}") from None
    points: dict[tuple[str, str], list[PointMatch]] = {}
    choices: dict[tuple[str, str], str | None] = {}
    reasons: dict[tuple[str, str], tuple[str, ...]] = {}
    for line_number, line in enumerate(lines, start=1):
        try:
            e = json.loads(line)
            key = (e["student_id"], e["question_id"])
            reasons[key] = tuple(e.get("flags", ()))
            if e["point_id"] is None:
                choices[key] = e.get("choice")
            else:
                points.setdefault(key, []).append(PointMatch.from_dict(e))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InputError(path, f"line {line_number} is not evidence written by `grader grade` ({exc})") from None
    return {k: (tuple(points.get(k, ())), choices.get(k), reasons[k]) for k in reasons}


# ---- the page ----------------------------------------------------------------------------------


def build_report(results_dir: str | Path, rubric: Rubric, human: Mapping[tuple[str, str], float] | None = None) -> str:
    """The report as one HTML document; `rubric` must be the one the run was graded with."""
    run = read_run(results_dir)
    if run.grades.rubric_fingerprint != rubric.fingerprint:
        raise GraderError(
            f"{results_dir}: graded with another rubric (fingerprint {run.grades.rubric_fingerprint}, "
            f"this rubric is {rubric.fingerprint}): pass the rubric the run used"
        )
    known = set(rubric.question_ids)
    unknown = sorted({g.question_id for g in run.grades.items} - known)
    if unknown:
        raise GraderError(f"{results_dir}: marks.csv has questions the rubric does not: {', '.join(unknown)}")
    human = dict(human) if human else None
    evaluation = evaluate(run.grades, rubric, human) if human else None
    sections = {
        "summary": _summary(run, rubric, human),
        "distributions": _distributions(run, rubric, human),
        "machine-vs-human": _machine_vs_human(run, rubric, human, evaluation),
        "credit-curve": _credit_curve(run, rubric, human),
        "points": _points(run, rubric),
        "mcq": _mcq(run, rubric),
        "flags": _flags(run, rubric),
        "review-budget": _review_budget(run, rubric, human),
    }
    return _page(run, rubric, human is not None, sections)


def class_overview(grades: Grades, rubric: Rubric) -> dict[str, str]:
    """The report's summary, mark distributions and flags sections (HTML, keyed as in SECTIONS) for the
    marks that count now: `grader serve` shows the same figures beside the review queue."""
    run = Run(grades, {})
    return {
        "summary": _summary(run, rubric, None),
        "distributions": _distributions(run, rubric, None),
        "flags": _flags(run, rubric),
    }


def write_report(path: str | Path, html_text: str) -> Path:
    """Write the report atomically: a reader never sees half a page."""
    write_atomically({path: html_text})
    return Path(path)


_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; \
color: #1f2933; margin: 0; background: #f6f7f9; }
main { max-width: 1180px; margin: 0 auto; padding: 1.5em 2em 4em; background: #fff; }
h1 { margin-bottom: .2em; } h2 { margin-top: 2.2em; border-bottom: 2px solid #e4e7eb; padding-bottom: .2em; }
.meta { color: #52606d; font-size: 13px; } nav a { margin-right: 1.1em; }
table { border-collapse: collapse; margin: .8em 0 1.2em; font-size: 13px; }
th, td { border: 1px solid #d9dde3; padding: .25em .6em; text-align: right; }
th { background: #eef1f5; } td:first-child, th:first-child, td.text { text-align: left; }
td.key { background: #d8efe1; font-weight: 600; } tr.pooled td { font-weight: 600; background: #fafbfc; }
img { max-width: 100%; height: auto; display: block; margin: .6em 0; }
.note { color: #52606d; font-size: 13px; max-width: 60em; }
"""


def _page(run: Run, rubric: Rubric, with_human: bool, sections: Mapping[str, str]) -> str:
    info = run.info
    calibration = run.calibration
    method = calibration.get("method", "?") if calibration else "none (the default credit curve)"
    meta = [
        f"{len(run.grades.students)} students",
        f"rubric version {info.get('rubric_version', rubric.version)} (fingerprint {rubric.fingerprint})",
        f"answers: {info.get('submissions', '?')}",
        f"model: {run.grades.model}",
        f"calibration: {method}",
        "human marks: " + ("given" if with_human else "not given"),
        f"grader {info.get('grader_version', '?')}",
    ]
    nav = "".join(f'<a href="#{sid}">{html.escape(title)}</a>' for sid, title in SECTIONS.items())
    body = "".join(
        f'<section id="{sid}">\n<h2>{html.escape(SECTIONS[sid])}</h2>\n{content}\n</section>\n'
        for sid, content in sections.items()
    )
    title = html.escape(f"{rubric.exam}: grading report")
    heading = html.escape(rubric.title or rubric.exam)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{title}</title>\n'
        f"<style>{_CSS}</style>\n</head>\n<body>\n<main>\n<h1>{heading}</h1>\n"
        f'<p class="meta">{html.escape(" · ".join(meta))}</p>\n<nav>{nav}</nav>\n{body}</main>\n</body>\n</html>\n'
    )


# ---- sections ----------------------------------------------------------------------------------


def _summary(run: Run, rubric: Rubric, human: Mapping[tuple[str, str], float] | None) -> str:
    grades = run.grades
    totals = np.array([sum(g.mark for g in items) for _, items in grades.by_student()])
    flagged = sum(bool(g.flags) for g in grades.items)
    facts = (
        f"{len(grades.students)} students; total out of {number(rubric.max_total)}: mean {totals.mean():.2f} "
        f"(sd {totals.std():.2f}), median {number(float(np.median(totals)))}, "
        f"range {number(totals.min())}–{number(totals.max())}. "
        f"{flagged} of {len(grades.items)} answers are flagged for a person to look at."
    )
    header = ["question", "type", "max", "mean", "full", "partial", "zero", "flagged"]
    human_means = {}
    if human:
        header.append("human mean")
        for q in rubric.questions:
            marks = [human[(s, q.id)] for s in grades.students if (s, q.id) in human]
            human_means[q.id] = f"{np.mean(marks):.2f}" if marks else "–"
    rows = [
        [r.question_id, r.kind, number(r.max_mark), f"{r.mean:.2f}", r.full, r.partial, r.zero, r.flagged or ""]
        + ([human_means[r.question_id]] if human else [])
        for r in summarise(grades, rubric)
    ]
    human_totals = _human_totals(grades, rubric, human)
    return (
        f"<p>{html.escape(facts)}</p>\n"
        + _image(_totals_figure(totals, human_totals, rubric.max_total), "Histogram of student totals")
        + _table(header, rows)
    )


def _human_totals(grades: Grades, rubric: Rubric, human: Mapping[tuple[str, str], float] | None) -> np.ndarray | None:
    """Human totals of the students marked on every question (None when there are none)."""
    if not human:
        return None
    complete = [s for s in grades.students if all((s, q) in human for q in rubric.question_ids)]
    return np.array([sum(human[(s, q)] for q in rubric.question_ids) for s in complete]) if complete else None


def _distributions(run: Run, rubric: Rubric, human: Mapping[tuple[str, str], float] | None) -> str:
    note = "How many students got each mark, per question" + (
        ", machine (blue) beside the human's (orange)." if human else "."
    )
    return f'<p class="note">{note}</p>\n' + _image(
        _distributions_figure(run.grades, rubric, human), "Mark distributions per question"
    )


def _machine_vs_human(
    run: Run, rubric: Rubric, human: Mapping[tuple[str, str], float] | None, evaluation: Evaluation | None
) -> str:
    if not human or evaluation is None:
        return (
            '<p class="note">This section needs a TA\'s marks for some answers: run '
            "<code>grader report RESULTS --human marks.csv</code> with a CSV of "
            "<code>student_id,question_id,mark</code>.</p>"
        )
    e = evaluation
    level = f"{e.level:.0%}"
    header = [
        "question",
        "n",
        f"MAE [{level} CI]",
        "RMSE",
        f"QWK [{level} CI]",
        f"Pearson [{level} CI]",
        "Spearman",
        "exact",
        "within one step",
    ]
    rows = []
    comparisons = list(e.questions) + [c for c in (e.overall, e.totals) if c]
    for c in comparisons:
        a = c.agreement
        rows.append(
            [
                c.label,
                a.n,
                with_interval(a.mae, c.interval("mae"), 3),
                f"{a.rmse:.3f}",
                with_interval(a.qwk, c.interval("qwk")),
                with_interval(a.pearson, c.interval("pearson")),
                with_interval(a.spearman),
                f"{a.exact:.0%}",
                f"{a.within_step:.0%}",
            ]
        )
    parts = [
        f'<p class="note">{html.escape(_evaluation_note(e))}</p>',
        _table(header, rows, pooled_rows=set(range(len(e.questions), len(rows)))),
    ]
    shorts = [q for q in rubric.questions if isinstance(q, ShortQuestion) and any(c.label == q.id for c in e.questions)]
    if shorts:
        parts.append(
            '<p class="note">Each dot is an answer (jittered so equal marks do not hide each other); on the dashed '
            "line the machine agrees with the human. Above it the machine was more generous.</p>"
        )
        parts.append(
            _image(_scatter_figure(run.grades, rubric, shorts, human), "Machine vs human marks per short question")
        )
        parts.append(
            "<p class=\"note\">Confusion matrices: rows are the human's mark, columns the machine's; "
            "the diagonal is agreement.</p>"
        )
        parts.append(_image(_confusion_figure(run.grades, shorts, human), "Confusion matrices per short question"))
    return "\n".join(parts)


def _evaluation_note(e: Evaluation) -> str:
    text = f"{e.compared} answers had a human mark and are compared; {e.missing} had none."
    if e.unmatched:
        text += f" {e.unmatched} human mark(s) matched no graded answer (check the ids)."
    if e.mcq.n:
        text += f" MCQ marks equal to the human's: {e.mcq.equal}/{e.mcq.n}."
    if e.overall:
        text += f" Kappa is on mark steps (the pooled row on steps of {number(e.overall.step)})."
    text += f" Intervals: {e.n_boot} bootstrap resamples of the answers."
    return text


def _credit_curve(run: Run, rubric: Rubric, human: Mapping[tuple[str, str], float] | None) -> str:
    curve = run.grades.curve
    calibration = run.calibration
    method = calibration.get("method") if calibration else None
    parts = [
        '<p class="note">A point\'s <em>score</em> is the cosine of its best-matching segment to the point, less '
        "half the segment's cosine to the question prompt (restating the question earns nothing). The credit curve "
        f"turns a score into a share of the point's marks: none below {curve.low:g}, all above {curve.high:g}, "
        "linear between; a rubric pattern gives full credit, a contradiction none.</p>"
    ]
    if calibration:
        cv = calibration.get("cv_mae") or {}
        cv_text = ", ".join(f"{m} {v:.3f}" for m, v in cv.items() if isinstance(v, (int, float)) and not math.isnan(v))
        parts.append(
            f'<p class="note">This run is calibrated to a TA\'s marks with the '
            f"<strong>{html.escape(str(method))}</strong> "
            f"method{f' (cross-validated MAE: {html.escape(cv_text)})' if cv_text else ''}.</p>"
        )
    parts.append(_image(_curve_figure(run, rubric, human), "Credit curve and marks against match scores"))
    parts.append(
        '<p class="note">Right: each non-blank short answer\'s score averaged over its points '
        "(weighted by their marks) against its mark as a share of the question's marks"
        + (", machine and human." if human else ".")
        + "</p>"
    )
    curve = (calibration or {}).get("learning_curve") or []
    if curve:
        parts.append(_image(_learning_curve_figure(curve), "Error against answers marked per question"))
        parts.append(
            '<p class="note">Within the TA\'s marked answers: the calibration fitted on n answers per question, picked '
            "as <code>grader sample</code> picks them or at random, and its error on the marked answers left out. "
            "A line still falling at the right says marking more answers would help.</p>"
        )
    return "\n".join(parts)


def _learning_curve_figure(curve: Sequence[Mapping]) -> Figure:
    figure = _figure(5.5, 3.2)
    ax = figure.subplots()
    sizes = [c["per_question"] for c in curve]
    ax.plot(sizes, [c["picked_rmse"] for c in curve], marker="o", color=MACHINE, label="picked by grader sample")
    ax.plot(
        sizes, [c["random_rmse"] for c in curve], marker="s", color="#7b8794", linestyle="--", label="picked at random"
    )
    ax.set(
        xlabel="answers marked per question",
        ylabel="RMSE on the other marked answers",
        xticks=sizes,
        title="Would marking more help?",
    )
    ax.legend(fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return figure


def _points(run: Run, rubric: Rubric) -> str:
    stats = _point_stats(run.grades, rubric)
    if not stats:
        return '<p class="note">The rubric has no short-answer questions.</p>'
    rows = [
        [
            s.question_id,
            s.point_id,
            number(s.marks),
            f"{s.mean_credit:.2f}",
            f"{s.full:.0%}",
            f"{s.none:.0%}",
            s.patterns,
            s.contradictions,
            _Html(f'<td class="text">{html.escape(shorten(s.text, 110))}</td>'),
        ]
        for s in sorted(stats, key=lambda s: (s.mean_credit, s.question_id, s.point_id))
    ]
    return (
        '<p class="note">Mean credit per rubric point over every student (a blank answer earns none): the short bars '
        "are what the class missed most.</p>\n"
        + _image(_points_figure(stats), "Mean credit per rubric point")
        + '<p class="note">Most missed first. Full / none: share of students with full / no credit for the point; '
        "pattern: credited by a rubric pattern; contradicted: a contradiction pattern matched.</p>\n"
        + _table(
            ["question", "point", "marks", "mean credit", "full", "none", "pattern", "contradicted", "the point says"],
            rows,
        )
    )


def _mcq(run: Run, rubric: Rubric) -> str:
    items = _item_analysis(run.grades, rubric)
    if not items:
        return '<p class="note">The rubric has no multiple-choice questions.</p>'
    letters = sorted({letter for item in items for letter in item.options})
    rows = []
    for it in items:
        cells: list[object] = [
            it.question_id,
            it.key or "void",
            it.n,
            f"{it.difficulty:.2f}",
            _fixed(it.point_biserial),
            _fixed(it.upper_lower),
        ]
        for letter in letters:
            count = it.options.get(letter)
            text = "" if count is None else str(count)
            cells.append(_Html(f'<td class="key">{text}</td>') if letter in it.keys else text)
        cells += [it.unreadable or "", it.blank or ""]
        rows.append(cells)
    return (
        '<p class="note">Difficulty is the share of students who got the item right. Discrimination: the '
        "point-biserial correlation of the item with the rest of the exam (the total without this item), and the "
        f"upper–lower index (share right among the top {UPPER_LOWER:.0%} of students by the rest of the exam, less "
        f"the share among the bottom {UPPER_LOWER:.0%}). Items near 0 or negative do not separate strong from weak "
        "students: check the key. The key's cell is shaded.</p>\n"
        + _table(
            ["question", "key", "n", "difficulty", "point-biserial", "upper–lower", *letters, "unreadable", "blank"],
            rows,
        )
        + _image(_options_figure(items), "Option choice frequencies per MCQ, key highlighted")
    )


def _flags(run: Run, rubric: Rubric) -> str:
    counts = {q.id: {} for q in rubric.questions}
    for g in run.grades.items:
        for f in g.flags:
            counts[g.question_id][f.code] = counts[g.question_id].get(f.code, 0) + 1
    codes = [c for c in FLAG_ORDER if any(c in per for per in counts.values())]
    codes += sorted({c for per in counts.values() for c in per} - set(codes))
    if not codes:
        return '<p class="note">No answer was flagged.</p>'
    flagged = [qid for qid, per in counts.items() if per]
    rows = [[qid, *[counts[qid].get(c, "") for c in codes], sum(counts[qid].values())] for qid in flagged]
    rows.append(
        [
            "all",
            *[sum(counts[q].get(c, 0) for q in flagged) for c in codes],
            sum(sum(p.values()) for p in counts.values()),
        ]
    )
    return (
        '<p class="note">Flags send the answer to a person. '
        + "; ".join(f"{code}: {flagging.MEANINGS[code]}" for code in codes if code in flagging.MEANINGS)
        + ". Counts are flags, per question (questions without flags are left out).</p>\n"
        + _table(["question", *codes, "total"], rows, pooled_rows={len(rows) - 1})
        + _image(_flags_figure(counts, codes, flagged), "Flags per question")
    )


def _review_budget(run: Run, rubric: Rubric, human: Mapping[tuple[str, str], float] | None) -> str:
    if not human:
        return (
            '<p class="note">With a TA\'s marks (<code>--human</code>) this section shows how fast reviewing the most '
            "doubtful answers first (flags, then marks at stake) brings the error of the rest down.</p>"
        )
    points = budget_curve(run.grades, rubric, human)
    if not points:
        return '<p class="note">No graded answer has a human mark.</p>'
    rows = [[f"{p.budget:.0%}", p.reviewed, f"{p.mae_unreviewed:.3f}", f"{p.mae_random:.3f}"] for p in points]
    return (
        '<p class="note">The answers with a human mark, reviewed most doubtful first: a hard flag (contradiction, '
        "keyword list, instruction to the grader, near copy, unreadable letter), then the marks at stake near the "
        "credit ramp and rounding boundaries. A reviewed answer takes the TA's mark; the line is the mean absolute "
        "error of the machine's marks on the answers left unreviewed, beside reviewing as many answers chosen at "
        "random (mean of 20 orders).</p>\n"
        + _image(_budget_figure(points), "Error of unreviewed answers against review budget")
        + _table(["budget", "reviewed", "MAE unreviewed (doubt order)", "MAE unreviewed (random)"], rows)
    )


# ---- numbers behind the sections ----------------------------------------------------------------


@dataclass(frozen=True)
class PointStats:
    question_id: str
    point_id: str
    marks: float
    text: str
    mean_credit: float
    full: float
    none: float
    patterns: int
    contradictions: int


def _point_stats(grades: Grades, rubric: Rubric) -> list[PointStats]:
    """Per rubric point, over every student: blank answers count as no credit."""
    stats = []
    for q in rubric.questions:
        if not isinstance(q, ShortQuestion):
            continue
        answers = [g for g in grades.items if g.question_id == q.id]
        for point in q.points:
            matches = [next((p for p in g.points if p.point_id == point.id), None) for g in answers]
            credit = np.array([m.credit if m else 0.0 for m in matches]) if matches else np.zeros(1)
            stats.append(
                PointStats(
                    q.id,
                    point.id,
                    point.marks,
                    point.text,
                    float(credit.mean()),
                    float(np.mean(credit >= 1 - 1e-9)),
                    float(np.mean(credit <= 1e-9)),
                    sum(m is not None and m.pattern is not None for m in matches),
                    sum(m is not None and m.contradiction is not None and m.pattern is None for m in matches),
                )
            )
    return stats


@dataclass(frozen=True)
class ItemAnalysis:
    question_id: str
    keys: tuple[str, ...]
    n: int
    difficulty: float
    """Share of students with the item right (higher is easier)."""
    point_biserial: float
    upper_lower: float
    options: Mapping[str, int]
    """Letter -> how many students chose it."""
    unreadable: int
    blank: int

    @property
    def key(self) -> str:
        return ", ".join(self.keys)


def _item_analysis(grades: Grades, rubric: Rubric) -> list[ItemAnalysis]:
    students = list(grades.students)
    by = {(g.student_id, g.question_id): g for g in grades.items}
    totals = np.array([sum(g.mark for g in items) for _, items in grades.by_student()])
    found = []
    for q in rubric.questions:
        if not isinstance(q, McqQuestion):
            continue
        answers = [by[(s, q.id)] for s in students]
        right = np.array([g.mark >= q.marks - 1e-9 for g in answers], dtype=float)
        rest = totals - np.array([g.mark for g in answers])
        choices = [g.choice for g in answers]
        found.append(
            ItemAnalysis(
                q.id,
                () if q.void else q.keys,
                len(answers),
                float(right.mean()) if len(right) else math.nan,
                _point_biserial(right, rest),
                _upper_lower(right, rest, students),
                {letter: choices.count(letter) for letter in sorted(q.options)},
                sum(any(f.code == FlagCode.UNREADABLE_CHOICE for f in g.flags) for g in answers),
                sum(any(f.code == FlagCode.BLANK for f in g.flags) for g in answers),
            )
        )
    return found


def _point_biserial(right: np.ndarray, rest: np.ndarray) -> float:
    if len(right) < 3 or right.std() == 0 or rest.std() == 0:
        return math.nan
    return float(pointbiserialr(right, rest).statistic)


def _upper_lower(right: np.ndarray, rest: np.ndarray, students: Sequence[str]) -> float:
    """Kelley's index: share right in the top 27 % by rest-of-exam total less the share in the bottom 27 %."""
    group = int(round(UPPER_LOWER * len(right)))
    if group < 1 or 2 * group > len(right):
        return math.nan
    order = sorted(range(len(right)), key=lambda i: (rest[i], students[i]))  # ties broken by id: deterministic
    return float(right[order[-group:]].mean() - right[order[:group]].mean())


def _weighted_score(g: QuestionGrade) -> float:
    return sum(p.marks * p.score for p in g.points) / g.max_mark


def _default_share(g: QuestionGrade, curve: CreditCurve) -> float:
    """The share of marks the uncalibrated curve gives (before rounding), whatever the run was calibrated with."""
    return sum(p.marks * p.credit_under(curve) for p in g.points) / g.max_mark


# ---- figures -----------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _grid(count: int, columns: int, width: float, height: float) -> tuple[Figure, list]:
    """Small multiples: `count` panels of width x height inches, `columns` a row; spare axes hidden."""
    columns = max(1, min(columns, count))
    rows = math.ceil(count / columns)
    figure = _figure(columns * width, rows * height)
    axes = figure.subplots(rows, columns, squeeze=False).ravel().tolist()
    for spare in axes[count:]:
        spare.set_visible(False)
    return figure, axes[:count]


def _image(figure: Figure, alt: str) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">\n'


def _mark_values(max_mark: float, step: float) -> np.ndarray:
    return np.round(np.arange(0, max_mark + step / 2, step), 6)


def _totals_figure(totals: np.ndarray, human_totals: np.ndarray | None, max_total: float) -> Figure:
    figure = _figure(7.5, 2.8)
    ax = figure.subplots()
    bins = np.arange(0, max_total + 1.5, 1) - 0.5
    ax.hist(totals, bins=bins, color=MACHINE, alpha=0.85, label="machine", edgecolor="white")
    if human_totals is not None:
        ax.hist(human_totals, bins=bins, histtype="step", color=HUMAN, linewidth=2, label="human")
        ax.legend(frameon=False)
    ax.set(
        xlabel=f"total mark (out of {number(max_total)})",
        ylabel="students",
        title="Student totals",
        xlim=(-0.5, max_total + 0.5),
    )
    ax.spines[["top", "right"]].set_visible(False)
    return figure


def _distributions_figure(grades: Grades, rubric: Rubric, human: Mapping[tuple[str, str], float] | None) -> Figure:
    figure, axes = _grid(len(rubric.questions), 6, 2.0, 1.75)
    for ax, q in zip(axes, rubric.questions):
        step = q.step if isinstance(q, ShortQuestion) else q.marks
        values = _mark_values(q.marks, step)
        marks = np.round([g.mark for g in grades.items if g.question_id == q.id], 6)
        counts = [int(np.sum(np.isclose(marks, v))) for v in values]
        width = 0.8 if not human else 0.4
        x = np.arange(len(values))
        ax.bar(x - (0.2 if human else 0), counts, width=width, color=MACHINE, label="machine")
        if human:
            theirs = np.round([human[(s, q.id)] for s in grades.students if (s, q.id) in human], 6)
            ax.bar(
                x + 0.2, [int(np.sum(np.isclose(theirs, v))) for v in values], width=width, color=HUMAN, label="human"
            )
        ax.set_xticks(x, [number(v) for v in values], fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
        ax.set_title(f"{q.id} ({'MCQ' if isinstance(q, McqQuestion) else 'short'})", fontsize=10)
        ax.spines[["top", "right"]].set_visible(False)
    for ax in axes[:: min(6, len(axes))]:
        ax.set_ylabel("students", fontsize=9)
    figure.supxlabel("mark", fontsize=10)
    if human:
        figure.legend(
            *axes[0].get_legend_handles_labels(), loc="outside upper right", ncols=2, frameon=False, fontsize=9
        )
    return figure


def _scatter_figure(
    grades: Grades, rubric: Rubric, shorts: Sequence[ShortQuestion], human: Mapping[tuple[str, str], float]
) -> Figure:
    human_totals = _human_totals(grades, rubric, human)
    count = len(shorts) + (human_totals is not None)
    figure, axes = _grid(count, 4, 2.8, 2.6)
    rng = np.random.default_rng(0)
    for ax, q in zip(axes, shorts):
        pairs = np.array(
            [
                (human[(g.student_id, q.id)], g.mark)
                for g in grades.items
                if g.question_id == q.id and (g.student_id, q.id) in human
            ]
        )
        jitter = rng.uniform(-0.15, 0.15, size=pairs.shape) * q.step
        ax.scatter(pairs[:, 0] + jitter[:, 0], pairs[:, 1] + jitter[:, 1], s=14, alpha=0.6, color=MACHINE, linewidths=0)
        _diagonal(ax, -0.3 * q.step, q.marks + 0.3 * q.step)
        ticks = _mark_values(q.marks, q.step)
        ax.set_xticks(ticks, [number(t) for t in ticks], fontsize=8)
        ax.set_yticks(ticks, [number(t) for t in ticks], fontsize=8)
        ax.set(xlabel="human mark", ylabel="machine mark")
        ax.set_title(q.id, fontsize=10)
    if human_totals is not None:
        ax = axes[-1]
        complete = [s for s in grades.students if all((s, qid) in human for qid in rubric.question_ids)]
        machine = [grades.total(s) for s in complete]
        ax.scatter(human_totals, machine, s=14, alpha=0.7, color=MACHINE, linewidths=0)
        _diagonal(ax, 0, rubric.max_total)
        ax.set(xlabel="human total", ylabel="machine total")
        ax.set_title(f"totals (out of {number(rubric.max_total)})", fontsize=10)
    return figure


def _diagonal(ax, low: float, high: float) -> None:
    ax.plot([low, high], [low, high], linestyle="--", color="#7b8794", linewidth=1)
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_aspect("equal")
    ax.spines[["top", "right"]].set_visible(False)


def _confusion_figure(
    grades: Grades, shorts: Sequence[ShortQuestion], human: Mapping[tuple[str, str], float]
) -> Figure:
    figure, axes = _grid(len(shorts), 4, 2.8, 2.6)
    for ax, q in zip(axes, shorts):
        values = _mark_values(q.marks, q.step)
        k = len(values)
        matrix = np.zeros((k, k), dtype=int)
        for g in grades.items:
            if g.question_id == q.id and (g.student_id, q.id) in human:
                h = int(np.clip(np.rint(human[(g.student_id, q.id)] / q.step), 0, k - 1))
                m = int(np.clip(np.rint(g.mark / q.step), 0, k - 1))
                matrix[h, m] += 1
        ax.imshow(matrix, cmap="Blues", vmin=0, vmax=max(1, matrix.max()))
        for (i, j), count in np.ndenumerate(matrix):
            if count:
                ax.text(
                    j,
                    i,
                    str(count),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if count > matrix.max() / 2 else "#1f2933",
                )
        labels = [number(v) for v in values]
        ax.set_xticks(range(k), labels, fontsize=8)
        ax.set_yticks(range(k), labels, fontsize=8)
        ax.set(xlabel="machine mark", ylabel="human mark")
        ax.set_title(q.id, fontsize=10)
    return figure


def _curve_figure(run: Run, rubric: Rubric, human: Mapping[tuple[str, str], float] | None) -> Figure:
    figure = _figure(11.5, 4.6)
    left, right = figure.subplots(1, 2)
    answered = [g for g in run.grades.items if g.points and isinstance(rubric.question(g.question_id), ShortQuestion)]
    calibration = run.calibration or {}
    method = calibration.get("method")
    if method in ("isotonic", "similarity", "pooled", "exemplar"):
        _calibration_map(left, answered, run.grades.curve, method, calibration.get("params") or {})
    else:
        _credit_curves(
            left,
            answered,
            run.grades.curve,
            rubric,
            (calibration.get("params") or {}) if method == "thresholds" else None,
        )
    _marks_vs_scores(right, answered, run.grades.curve, human)
    return figure


def _credit_curves(
    ax, answered: Sequence[QuestionGrade], default: CreditCurve, rubric: Rubric, fitted: Mapping | None
) -> None:
    """The credit curve(s) over score, on top of a histogram of every point's score (where the scores fall)."""
    scores = np.linspace(-0.2, 1.0, 241)
    counts = ax.twinx()
    counts.hist([p.score for g in answered for p in g.points], bins=np.linspace(-0.2, 1.0, 49), color="#e4e7eb")
    counts.set_ylabel("points with this score (grey)", color="#7b8794")
    counts.tick_params(axis="y", colors="#7b8794", labelsize=8)
    ax.set_zorder(counts.get_zorder() + 1)
    ax.patch.set_visible(False)
    if fitted is None:
        ax.plot(scores, default.credit(scores), color=MACHINE, linewidth=2.5)
        for x in (default.low, default.high):
            ax.axvline(x, color="#7b8794", linestyle=":", linewidth=1)
        ax.annotate(
            f"low {default.low:g}",
            (default.low, 0.5),
            xytext=(-6, 0),
            textcoords="offset points",
            ha="right",
            fontsize=9,
        )
        ax.annotate(
            f"high {default.high:g}",
            (default.high, 0.5),
            xytext=(6, 0),
            textcoords="offset points",
            ha="left",
            fontsize=9,
        )
        ax.set_title("Default credit curve")
    else:
        curves = sorted(fitted.get("curves", {}).items(), key=lambda kv: rubric.question_ids.index(kv[0]))
        for (qid, (low, high)), colour in zip(curves, _colours(len(curves))):
            ax.plot(
                scores,
                CreditCurve(low, high).credit(scores),
                color=colour,
                linewidth=1.5,
                label=f"{qid} {low:g}–{high:g}",
            )
        if "pooled" in fitted:
            low, high = fitted["pooled"]
            ax.plot(
                scores,
                CreditCurve(low, high).credit(scores),
                color="black",
                linewidth=2,
                label=f"pooled {low:g}–{high:g}",
            )
        ax.plot(scores, default.credit(scores), color="#7b8794", linestyle=":", linewidth=2, label="default")
        ax.set_title("Fitted credit curves (calibration: thresholds)")
        ax.legend(fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncols=4)
    ax.set(xlabel="match score of a point", ylabel="share of the point's marks", xlim=(-0.2, 1.0), ylim=(-0.03, 1.03))
    ax.spines[["top"]].set_visible(False)


def _calibration_map(ax, answered: Sequence[QuestionGrade], default: CreditCurve, method: str, params: Mapping) -> None:
    """Each answer's share of marks before and after calibration, and (isotonic) the fitted monotone maps."""
    rng = np.random.default_rng(1)
    before = np.array([_default_share(g, default) for g in answered])
    after = np.array([g.mark / g.max_mark for g in answered])
    ax.scatter(
        before + rng.uniform(-0.012, 0.012, len(before)),
        after + rng.uniform(-0.02, 0.02, len(after)),
        s=10,
        alpha=0.45,
        color=MACHINE,
        linewidths=0,
        label="an answer",
    )
    if method == "isotonic":
        maps = params.get("questions", {})
        for (qid, curve), colour in zip(maps.items(), _colours(len(maps))):
            ax.plot(curve["x"], curve["y"], color=colour, linewidth=1.2, alpha=0.85, label=qid)
        if "pooled" in params:
            ax.plot(params["pooled"]["x"], params["pooled"]["y"], color="black", linewidth=2, label="pooled map")
    ax.plot([0, 1], [0, 1], color="#7b8794", linestyle=":", linewidth=1.5, label="no change")
    ax.set(
        xlabel="share of marks under the default curve (before rounding)",
        ylabel="calibrated share of marks",
        title=f"Calibration ({method}): default vs calibrated",
        xlim=(-0.05, 1.05),
        ylim=(-0.05, 1.05),
    )
    ax.legend(fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncols=5)
    ax.spines[["top", "right"]].set_visible(False)


def _marks_vs_scores(
    ax, answered: Sequence[QuestionGrade], default: CreditCurve, human: Mapping[tuple[str, str], float] | None
) -> None:
    rng = np.random.default_rng(2)
    x = np.array([_weighted_score(g) for g in answered])
    y = np.array([g.mark / g.max_mark for g in answered])
    ax.scatter(
        x,
        y + rng.uniform(-0.025, 0.025, size=len(y)),
        s=12,
        alpha=0.55,
        color=MACHINE,
        linewidths=0,
        label="machine mark",
    )
    paired = [
        (s, human[(g.student_id, g.question_id)] / g.max_mark)
        for s, g in zip(x, answered)
        if human and (g.student_id, g.question_id) in human
    ]
    if paired:
        hx, hy = np.array(paired).T
        ax.scatter(
            hx,
            hy + rng.uniform(-0.025, 0.025, size=len(hy)),
            s=14,
            alpha=0.6,
            color=HUMAN,
            marker="x",
            linewidths=1,
            label="human mark",
        )
    scores = np.linspace(-0.2, 1.0, 241)
    ax.plot(scores, default.credit(scores), color="#7b8794", linestyle=":", linewidth=1.5, label="default credit curve")
    ax.set(
        xlabel="answer's match score (mean over its points, weighted by marks)",
        ylabel="mark / question's marks",
        title="Marks against match scores (non-blank short answers)",
        xlim=(-0.2, 1.0),
        ylim=(-0.08, 1.08),
    )
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    ax.spines[["top", "right"]].set_visible(False)


def _colours(count: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(count)]


def _points_figure(stats: Sequence[PointStats]) -> Figure:
    figure = _figure(9, 0.32 * len(stats) + 1.2)
    ax = figure.subplots()
    questions = list(dict.fromkeys(s.question_id for s in stats))
    colour = dict(zip(questions, _colours(len(questions))))
    y = np.arange(len(stats))[::-1]
    ax.barh(y, [s.mean_credit for s in stats], color=[colour[s.question_id] for s in stats], height=0.7)
    for yi, s in zip(y, stats):
        ax.text(s.mean_credit + 0.01, yi, f"{s.mean_credit:.2f}", va="center", fontsize=8)
    ax.set_yticks(y, [f"{s.question_id} · {s.point_id} ({number(s.marks)})" for s in stats], fontsize=9)
    ax.set(
        xlim=(0, 1.08),
        xlabel="mean credit (share of the point's marks earned, over all students)",
        title="Rubric points earned",
    )
    ax.spines[["top", "right"]].set_visible(False)
    return figure


def _options_figure(items: Sequence[ItemAnalysis]) -> Figure:
    figure, axes = _grid(len(items), 6, 2.0, 1.85)
    for ax, it in zip(axes, items):
        letters = list(it.options)
        counts = [it.options[c] for c in letters] + [it.unreadable + it.blank]
        colours = [KEY if c in it.keys else OTHER for c in letters] + [UNREAD]
        ax.bar(range(len(counts)), counts, color=colours)
        ax.set_xticks(range(len(counts)), letters + ["none"], fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
        ax.set_title(f"{it.question_id} (key {it.key or 'void'})", fontsize=10)
        ax.set_ylim(0, max(1, it.n))
        ax.spines[["top", "right"]].set_visible(False)
    for ax in axes[:: min(6, len(axes))]:
        ax.set_ylabel("students", fontsize=9)
    figure.supxlabel("option chosen (green: the key; none: blank or unreadable)", fontsize=10)
    return figure


def _flags_figure(counts: Mapping[str, Mapping[str, int]], codes: Sequence[str], flagged: Sequence[str]) -> Figure:
    figure = _figure(8, 0.3 * len(flagged) + 1.3)
    ax = figure.subplots()
    y = np.arange(len(flagged))[::-1]
    left = np.zeros(len(flagged))
    for code, colour in zip(codes, _colours(len(codes))):
        values = np.array([counts[q].get(code, 0) for q in flagged])
        ax.barh(y, values, left=left, color=colour, label=code, height=0.7)
        left += values
    ax.set_yticks(y, flagged, fontsize=9)
    ax.set(xlabel="flagged answers", title="Flags per question")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.spines[["top", "right"]].set_visible(False)
    return figure


def _budget_figure(points: Sequence[BudgetPoint]) -> Figure:
    figure = _figure(7.5, 3.4)
    ax = figure.subplots()
    x = [100 * p.budget for p in points]
    ax.plot(x, [p.mae_unreviewed for p in points], marker="o", color=MACHINE, linewidth=2, label="most doubtful first")
    ax.plot(
        x, [p.mae_random for p in points], marker="s", color=OTHER, linewidth=2, linestyle="--", label="random order"
    )
    ax.set(
        xlabel="share of answers reviewed (%)",
        ylabel="MAE of unreviewed answers",
        title="Review budget",
        ylim=(0, None),
    )
    ax.legend(frameon=False, fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    return figure


# ---- small HTML helpers ------------------------------------------------------------------------


class _Html(str):
    """A table cell already rendered as <td>...</td> (not escaped again)."""


def _table(
    header: Sequence[str], rows: Iterable[Sequence[object]], pooled_rows: set[int] | frozenset[int] = frozenset()
) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cells = "".join(c if isinstance(c, _Html) else f"<td>{html.escape(str(c))}</td>" for c in row)
        body.append(f'<tr class="pooled">{cells}</tr>' if i in pooled_rows else f"<tr>{cells}</tr>")
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>\n"


def _fixed(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.2f}"
