"""The review queue as a spreadsheet: export the flagged answers, let TAs fill in marks, import them.

The sheet carries a `version` per row (the id of the answer's last TA change when it was
exported), so an import never overwrites a mark another TA entered in the meantime. Every row is
checked before anything is applied; one bad row refuses the whole file, and every bad row is
named, so the TA fixes them all in one go. What is applied goes in one transaction.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from grader.errors import GraderError, InputError
from grader.exam.rubric import McqQuestion, Rubric
from grader.exam.submissions import read_records
from grader.review.gradebook import Change, Entry, Gradebook
from grader.scoring.grade import describe_neighbours
from grader.spreadsheet import spreadsheet_safe, spreadsheet_unsafe
from grader.text import number

COLUMNS = (
    "student_id",
    "question_id",
    "question",
    "answer",
    "proposed_mark",
    "max_mark",
    "flags",
    "points",
    "ta_mark",
    "comment",
    "version",
)
EDITABLE = ("ta_mark", "comment")
INSTRUCTIONS = "ta_mark: a mark, 'accept' (the proposed mark), 'clear' (back to automatic) or empty (no change)"


class SheetErrors(GraderError):
    """Every bad row of a flags sheet, one line each; nothing was applied."""

    def __init__(self, problems: list[InputError]) -> None:
        self.problems = problems
        lines = [str(p) for p in problems]
        super().__init__("\n".join(lines) + f"\n{len(problems)} problem(s): nothing was imported")


def flags_sheet(gb: Gradebook, include_reviewed: bool = False) -> str:
    """The review queue as CSV, most doubtful first, with the current TA mark and comment filled in."""
    rubric = gb.rubric()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for entry in gb.queue(include_reviewed=include_reviewed):
        writer.writerow(
            [
                spreadsheet_safe(entry.student_id),
                spreadsheet_safe(entry.question_id),
                spreadsheet_safe(_question_text(rubric, entry.question_id)),
                spreadsheet_safe(entry.answer),
                number(entry.auto_mark),
                number(entry.max_mark),
                spreadsheet_safe("; ".join(f.reason for f in entry.flags)),
                spreadsheet_safe(_points_text(entry)),
                number(entry.ta_mark)
                if entry.ta_mark is not None and entry.status == "set"
                else ("accept" if entry.status == "accepted" else ""),
                spreadsheet_safe(entry.comment or ""),
                gb.last_audit_id(entry.student_id, entry.question_id),
            ]
        )
    return buffer.getvalue()


@dataclass(frozen=True)
class SheetImport:
    changes: tuple[Change, ...]
    unchanged: int
    """Rows that asked for nothing new (empty, or the same mark and comment as now)."""


def read_flags_sheet(path: str | Path, gb: Gradebook) -> SheetImport:
    """Check every row of a filled-in sheet against the gradebook; raise SheetErrors naming each bad row."""
    records = read_records(path)
    if not records:
        raise InputError(path, "the file is empty")
    header_line, header = records[0]
    names = [h.strip().lower() for h in header]
    missing = [c for c in ("student_id", "question_id", "ta_mark", "comment", "version") if c not in names]
    if missing:
        raise InputError(
            path, f"missing column(s) {', '.join(missing)}: export a sheet with `grader flags export`", row=header_line
        )
    col = {name: names.index(name) for name in names}
    current = {(e.student_id, e.question_id): e for e in gb.entries()}
    problems: list[InputError] = []
    changes: list[Change] = []
    seen: dict[tuple[str, str], int] = {}
    unchanged = 0

    def cell(cells: list[str], name: str) -> str:
        i = col[name]
        return cells[i].strip() if i < len(cells) else ""

    for line, cells in records[1:]:
        key = (spreadsheet_unsafe(cell(cells, "student_id")), spreadsheet_unsafe(cell(cells, "question_id")))
        bad = lambda column, message: problems.append(InputError(path, message, row=line, column=column))  # noqa: E731
        entry = current.get(key)
        if entry is None:
            bad("student_id", f"no answer of student '{key[0]}' to question '{key[1]}' in {gb.path}")
            continue
        if key in seen:
            bad("student_id", f"student '{key[0]}', question '{key[1]}' is also on row {seen[key]}")
            continue
        seen[key] = line
        version_text = cell(cells, "version")
        try:
            version = int(version_text)
        except ValueError:
            bad("version", f"version {version_text!r} is not the number the export wrote: do not edit this column")
            continue
        change = _change(entry, cell(cells, "ta_mark"), spreadsheet_unsafe(cell(cells, "comment")), version, bad)
        if change is None:
            continue
        if change.action == "none":
            unchanged += 1
            continue
        latest = gb.last_audit_id(*key)
        if latest != version:
            who = next((a.ta for a in reversed(gb.audit(*key)) if a.id == latest), "another TA")
            bad("version", f"changed by {who} after this sheet was exported: export a fresh sheet and redo this row")
            continue
        changes.append(change)
    if problems:
        raise SheetErrors(problems)
    return SheetImport(tuple(changes), unchanged)


def import_flags_sheet(path: str | Path, gb: Gradebook, ta: str) -> SheetImport:
    """Check the whole sheet, then apply its changes in one transaction (all or nothing)."""
    found = read_flags_sheet(path, gb)
    gb.apply(found.changes, ta, reason=f"flags sheet {Path(path).name}")
    return found


def _change(entry: Entry, mark_text: str, comment: str, version: int, bad) -> Change | None:
    """What a row asks for; None (and a problem reported) when it cannot be read."""
    wanted = mark_text.lower()
    new_comment = comment or None
    comment_changed = new_comment != entry.comment
    key = (entry.student_id, entry.question_id)
    if wanted == "":
        if comment_changed:
            return Change(*key, "comment", comment=comment, expected_audit_id=version)
        return Change(*key, "none")
    if wanted == "clear":
        if entry.status is None:
            return Change(*key, "none")
        return Change(*key, "clear", expected_audit_id=version)
    if wanted == "accept":
        if entry.status == "accepted" and not comment_changed and not entry.auto_changed:
            return Change(*key, "none")
        return Change(*key, "accept", comment=new_comment, expected_audit_id=version)
    try:
        mark = (
            float(mark_text.replace(",", "."))
            if mark_text.count(",") == 1 and "." not in mark_text
            else float(mark_text)
        )
    except ValueError:
        bad("ta_mark", f"{mark_text!r} is not a mark ({INSTRUCTIONS})")
        return None
    if not 0 <= mark <= entry.max_mark + 1e-9:
        bad("ta_mark", f"mark {mark:g} is outside 0..{entry.max_mark:g}")
        return None
    if entry.status == "set" and entry.ta_mark is not None and abs(entry.ta_mark - mark) < 1e-9 and not comment_changed:
        return Change(*key, "none")
    return Change(*key, "set", mark=mark, comment=new_comment, expected_audit_id=version)


def _question_text(rubric: Rubric, question_id: str) -> str:
    question = rubric.question(question_id)
    if isinstance(question, McqQuestion):
        options = " ".join(f"({k}) {v}" for k, v in question.options.items())
        return f"{question.prompt or ''} {options} [key: {', '.join(question.keys)}]".strip()
    return question.prompt or ""


def _points_text(entry: Entry) -> str:
    if entry.choice is not None or not entry.points:
        return f"read: {entry.choice}" if entry.choice else ""
    points = [f"{p.point_id} {number(p.credit * p.marks)}/{number(p.marks)}: {_why(p)}" for p in entry.points]
    return "; ".join(points + ([describe_neighbours(entry.neighbours)] if entry.neighbours else []))


def _why(point) -> str:
    if point.contradiction:
        return f'contradicted by "{point.contradiction}"'
    if point.pattern:
        return f'pattern matched "{point.pattern}"'
    return f'"{point.evidence}"'
