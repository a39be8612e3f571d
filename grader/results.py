"""The outputs of a run: marks.csv, totals.csv, evidence.jsonl, run.json, and the summary table.

Text from the answers file (student ids, kept columns) goes through the spreadsheet guard
(`grader.spreadsheet`): these files are opened in spreadsheets. Everything is rendered to text first and written atomically, so `--out` holds either the previous
run's files or this run's, never a torn one. The rendering is deterministic: the same inputs give
byte-identical files (no timestamps; similarities rounded to 4 decimals).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from grader import __version__
from grader.atomic import write_atomically
from grader.grade import Grades
from grader.rubric import McqQuestion, Rubric
from grader.spreadsheet import spreadsheet_safe
from grader.submissions import Submissions


def number(value: float) -> str:
    """Marks as people write them: 1, 0.5, 0.25 (never 1.0 or 0.30000000000000004)."""
    return f"{round(value, 6):g}"


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
            [spreadsheet_safe(g.student_id), spreadsheet_safe(g.question_id), number(g.mark), number(g.max_mark), ";".join(f.code for f in g.flags)]
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
                {
                    **base,
                    "point_id": p.point_id,
                    "point_marks": p.marks,
                    "similarity": round(p.similarity, 4),
                    "score": round(p.score, 4),
                    "credit": round(p.credit, 4),
                    "evidence": p.evidence,
                    "pattern": p.pattern,
                    "contradiction": p.contradiction,
                    "opposite": p.opposite,
                    "opposite_probability": None if p.opposite_probability is None else round(p.opposite_probability, 4),
                    "flags": [f.reason for f in g.flags],
                }
                # The marked answers a calibrated mark leaned on (absent when none did).
                | ({"neighbours": [n.to_dict() for n in g.neighbours]} if g.neighbours else {})
            )
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


def run_json(
    grades: Grades, rubric: Rubric, submissions: Submissions, rubric_path: str | None = None, calibration: dict | None = None
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
