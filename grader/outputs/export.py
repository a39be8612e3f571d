"""Final marks out of the gradebook: a marks table, and the CSV files Moodle and Canvas import.

Pure functions: rubric, students and entries in, CSV text out; `export_gradebook` reads them from a
gradebook and writes the file atomically (`grader export`). The
mark that counts is `Entry.mark`: the TA's when a TA set one, else the automatic one, in every
format. docs/exports.md gives each format column by column, with the LMS pages it follows.

Formula injection. Text that came from students or TAs (ids, kept columns, names, sections,
feedback) goes through `grader.spreadsheet.spreadsheet_safe`, the guard every CSV grader writes for
people uses, except where the LMS must match the value exactly: an identifier Moodle or Canvas looks
users up by cannot be altered, so one that looks like a formula is refused instead (a real email,
username or SIS id never does). Marks are written by `number()`: numbers run nothing.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from grader.atomic import write_atomically
from grader.errors import GraderError
from grader.exam.rubric import Rubric
from grader.outputs.feedback import build_feedback, entries_by_student, header_key, render_text, student_name
from grader.review.gradebook import Entry, Gradebook, Student
from grader.spreadsheet import spreadsheet_safe
from grader.text import number

_LMS = {"moodle": "Moodle", "canvas": "Canvas"}


def _csv(rows: Iterable[Sequence[object]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def kept_columns(students: Sequence[Student]) -> list[str]:
    """Every kept column of the class, in first-seen order."""
    return list(dict.fromkeys(c for s in students for c in s.kept))


def _find_column(columns: Sequence[str], aliases: Iterable[str]) -> str | None:
    keys = set(aliases)
    return next((c for c in columns if header_key(c) in keys), None)


def _listing(columns: Sequence[str]) -> str:
    return f"it kept {', '.join(columns)}" if columns else "it kept no column besides student_id"


def _source(marks: Mapping[str, Entry]) -> str:
    """How many of the marks a TA set: 'auto', 'ta', or '3 ta + 16 auto' (no '/': spreadsheets read 3/19 as a date)."""
    ta = sum(e.ta_mark is not None for e in marks.values())
    if ta == 0:
        return "auto"
    return "ta" if ta == len(marks) else f"{ta} ta + {len(marks) - ta} auto"


# ---------------------------------------------------------------- marks.csv: everything, for people


def marks_csv(rubric: Rubric, students: Sequence[Student], entries: Iterable[Entry], *, feedback: bool = False) -> str:
    """One row per student: student_id, the kept columns, a mark per question, total, max_total,
    source (how many marks a TA set) and, with `feedback`, the feedback text in one cell."""
    table = entries_by_student(rubric, students, entries)
    kept = kept_columns(students)
    header = ["student_id", *kept, *rubric.question_ids, "total", "max_total", "source"]
    header += ["feedback"] if feedback else []
    rows: list[list[str]] = [header]
    for student in students:
        marks = table[student.student_id]
        row = [spreadsheet_safe(student.student_id)]
        row += [spreadsheet_safe(student.kept.get(c, "")) for c in kept]
        row += [number(marks[q].mark) for q in rubric.question_ids]
        row += [number(sum(e.mark for e in marks.values())), number(rubric.max_total), _source(marks)]
        if feedback:
            row.append(spreadsheet_safe(render_text(build_feedback(rubric, student, marks))))
        rows.append(row)
    return _csv(rows)


# ---------------------------------------------------------------- Moodle: Import grades > CSV file

MOODLE_IDENTIFIERS = (
    ("Email address", ("email", "emailaddress")),
    ("ID number", ("idnumber",)),
    ("Username", ("username",)),
)
"""The user fields Moodle's CSV grade import can map a column to (besides its internal user id),
with the kept-column names we accept for each, in the order we pick them."""


def _forced_identifier(
    lms: str, identifiers: Sequence[tuple[str, Sequence[str]]], columns: Sequence[str], id_column: str
) -> tuple[str, str | None]:
    """(kept column, LMS id header or None) for a `--id-column` the user named: an id field of the LMS
    (by its header or an alias), else any kept column; a missing one is a one-line error."""
    wanted = header_key(id_column)
    for header, aliases in identifiers:
        if wanted in aliases or wanted == header_key(header):
            found = _find_column(columns, aliases)
            if found is None:
                raise GraderError(f"{lms} export: no '{header}' column to identify students by ({_listing(columns)})")
            return found, header
    found = _find_column(columns, [wanted])
    if found is None and wanted == header_key(STUDENT_ID):
        return STUDENT_ID, None
    if found is None:
        raise GraderError(
            f"{lms} export: no kept column '{id_column}' ({_listing(columns)}; or student_id, the answers file's ids)"
        )
    return found, None


STUDENT_ID = "student_id"
"""`--id-column student_id`: the answers file's own student ids, where they are the ids the LMS knows."""


def _value(student: Student, column: str) -> str:
    """A student's value in an identifier column: a kept column, or the student id itself."""
    if column == STUDENT_ID and column not in student.kept:
        return student.student_id
    return (student.kept.get(column) or "").strip()


def moodle_identifier(students: Sequence[Student], id_column: str | None = None) -> tuple[str, str]:
    """(kept column, header to write) identifying students to Moodle.

    Default: the first of Email address, ID number, Username the kept columns have. `id_column`
    forces one: a Moodle field name ('email', 'ID number'...) or any kept column (written under its
    own name; map it in Moodle's "Identify user by").
    """
    columns = kept_columns(students)
    if id_column is not None:
        found, header = _forced_identifier("moodle", MOODLE_IDENTIFIERS, columns, id_column)
        return found, header or found
    for header, aliases in MOODLE_IDENTIFIERS:
        found = _find_column(columns, aliases)
        if found is not None:
            return found, header
    raise GraderError(
        "moodle export: Moodle identifies students by 'Email address', 'ID number' or 'Username', and the answers file "
        f"has none of these columns ({_listing(columns)}): add one, or name the column to use (--id-column)"
    )


def moodle_csv(
    rubric: Rubric,
    students: Sequence[Student],
    entries: Iterable[Entry],
    *,
    id_column: str | None = None,
    item: str | None = None,
    questions: bool = False,
    feedback: bool = False,
) -> str:
    """A file for Moodle's gradebook "Import grades > CSV file": the identifier column, the exam
    total under `item` (default: the rubric's title, else its exam id), optionally one column per
    question ('<exam> <question id>') and a 'Feedback' column.

    Refused (one line): no identifier column, a student with a blank or formula-like identifier
    (Moodle would abort the whole import on it), two students with the same identifier.
    """
    table = entries_by_student(rubric, students, entries)
    column, id_header = moodle_identifier(students, id_column)
    ids = _identifiers(students, column, "moodle")
    item = item or rubric.title or rubric.exam
    header = [id_header, item]
    header += [f"{rubric.exam} {q}" for q in rubric.question_ids] if questions else []
    header += ["Feedback"] if feedback else []
    rows: list[list[str]] = [header]
    for student in students:
        marks = table[student.student_id]
        row = [ids[student.student_id], number(sum(e.mark for e in marks.values()))]
        row += [number(marks[q].mark) for q in rubric.question_ids] if questions else []
        if feedback:
            row.append(_moodle_text(render_text(build_feedback(rubric, student, marks))))
        rows.append(row)
    return _csv(rows)


def _moodle_text(text: str) -> str:
    """Moodle stores imported feedback as FORMAT_MOODLE (HTML, newlines become line breaks): escape
    < > & so student text shows as typed and cannot become markup. PHP's fgetcsv treats a backslash
    before a quote as an escape and would split the row wrongly: keep them apart."""
    return spreadsheet_safe(html.escape(text, quote=False).replace('\\"', '\\ "'))


def _identifiers(students: Sequence[Student], column: str, lms: str) -> dict[str, str]:
    """Each student's value in `column`, exactly as the LMS must match it; blank, formula-like or
    shared values are refused."""
    ids: dict[str, str] = {}
    seen: dict[str, str] = {}
    for student in students:
        value = _value(student, column)
        sid = student.student_id
        if not value:
            raise GraderError(f"{lms} export: student '{sid}' has no '{column}': {_LMS[lms]} could not match the row")
        _refuse_formula(value, column, sid, lms)
        if value in seen:
            raise GraderError(f"{lms} export: students '{seen[value]}' and '{sid}' have the same '{column}' ({value})")
        seen[value] = sid
        ids[sid] = value
    return ids


def _refuse_formula(value: str, column: str, student_id: str, lms: str) -> None:
    if spreadsheet_safe(value) != value:
        raise GraderError(
            f"{lms} export: student '{student_id}' has '{column}' {value!r}, which a spreadsheet would run as a "
            "formula; identifiers are written unaltered, so fix it in the answers file"
        )


# ---------------------------------------------------------------- Canvas: Gradebook > Import

CANVAS_IDENTIFIERS = (
    ("ID", ("id", "canvasid", "canvasuserid")),
    ("SIS User ID", ("sisuserid", "sisid")),
    ("SIS Login ID", ("sisloginid", "loginid")),
)
"""The columns Canvas's gradebook import matches students by, in the order it tries them, with
the kept-column names we accept for each ('sis_id' is how Canvas's quiz reports name it)."""
CANVAS_HEADER = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
_CANVAS_ASSIGNMENT = re.compile(r"(.+)\s\((\d+)\)")
"""Canvas's own `Assignment.title_and_id`: 'Name (1234)' is matched to the assignment with id 1234."""


def canvas_identifiers(students: Sequence[Student], id_column: str | None = None) -> dict[str, str]:
    """{Canvas header: kept column} for the id columns to fill (the others are left blank).

    Default: every one of ID, SIS User ID, SIS Login ID the kept columns have. `id_column` forces
    one: a Canvas id name, or any kept column holding Canvas login ids (the email, at many
    institutions), written as SIS Login ID.
    """
    columns = kept_columns(students)
    if id_column is not None:
        found, header = _forced_identifier("canvas", CANVAS_IDENTIFIERS, columns, id_column)
        return {header or "SIS Login ID": found}
    found_ids = {h: c for h, aliases in CANVAS_IDENTIFIERS if (c := _find_column(columns, aliases)) is not None}
    if not found_ids:
        raise GraderError(
            "canvas export: Canvas matches students by 'ID', 'SIS User ID' or 'SIS Login ID', and the answers file "
            f"has none of these columns ({_listing(columns)}): copy one from a Canvas gradebook export, or name the "
            "column that holds Canvas login ids (--id-column)"
        )
    return found_ids


def canvas_csv(
    rubric: Rubric,
    students: Sequence[Student],
    entries: Iterable[Entry],
    assignment: str,
    *,
    id_column: str | None = None,
) -> str:
    """A file for Canvas's Gradebook > Import: the header
    `Student,ID,SIS User ID,SIS Login ID,Section,<assignment>`, a 'Points Possible' row, then one
    row per student with the exam total.

    `assignment` is the assignment's column exactly as a Canvas gradebook export names it,
    'Name (1234)': Canvas matches the number to an existing assignment (without it Canvas would
    match by title or create a new one). Refused (one line): no id column, a student with no id,
    an ID that is not Canvas's numeric user id, a formula-like or shared id.
    """
    found = _CANVAS_ASSIGNMENT.fullmatch(assignment.strip())
    if found is None:
        raise GraderError(
            "canvas export: the assignment must be named as Canvas exports it, 'Name (1234)' with the assignment's "
            f"id, not '{assignment}'"
        )
    table = entries_by_student(rubric, students, entries)
    id_columns = canvas_identifiers(students, id_column)
    section = _find_column(kept_columns(students), ("section",))
    rows: list[list[str]] = [
        [*CANVAS_HEADER, assignment.strip()],
        ["Points Possible", "", "", "", "", number(rubric.max_total)],
    ]
    seen: dict[tuple[str, str], str] = {}
    for student in students:
        sid = student.student_id
        ids = {h: _value(student, c) for h, c in id_columns.items()}
        if not any(ids.values()):
            names = " or ".join(f"'{c}'" for c in id_columns.values())
            raise GraderError(f"canvas export: student '{sid}' has no {names}: Canvas could not match the row")
        for header, value in ids.items():
            if not value:
                continue
            _refuse_formula(value, id_columns[header], sid, "canvas")
            if header == "ID" and not value.isdigit():
                raise GraderError(
                    f"canvas export: student '{sid}' has '{id_columns[header]}' {value!r}, "
                    "but Canvas's ID is its numeric user id"
                )
            if (header, value) in seen:
                raise GraderError(
                    f"canvas export: students '{seen[(header, value)]}' and '{sid}' have the same "
                    f"'{id_columns[header]}' ({value})"
                )
            seen[(header, value)] = sid
        name = student_name(student) or sid
        rows.append(
            [
                spreadsheet_safe(name),
                ids.get("ID", ""),
                ids.get("SIS User ID", ""),
                ids.get("SIS Login ID", ""),
                spreadsheet_safe((student.kept.get(section) or "").strip()) if section else "",
                number(sum(e.mark for e in table[sid].values())),
            ]
        )
    return _csv(rows)


class ExportFormat(str, Enum):
    """`grader export --format`: a table for people, or an LMS's gradebook import."""

    CSV = "csv"
    MOODLE = "moodle"
    CANVAS = "canvas"


@dataclass(frozen=True)
class Exported:
    """What `export_gradebook` wrote: how many students, and how many marks a TA set or checked."""

    students: int
    ta_marks: int


def export_gradebook(
    db: Path,
    out: Path,
    fmt: ExportFormat | str = ExportFormat.CSV,
    *,
    assignment: str | None = None,
    id_column: str | None = None,
    item: str | None = None,
    questions: bool = False,
    feedback: bool = False,
) -> Exported:
    """`grader export`: the gradebook's final marks in `fmt`, written atomically to `out`. Options an
    LMS cannot take are refused before anything is read."""
    fmt = ExportFormat(fmt)
    if fmt == ExportFormat.CANVAS and assignment is None:
        raise GraderError(
            '--format canvas needs --assignment "Name (1234)", the assignment column of a Canvas gradebook export'
        )
    if fmt == ExportFormat.CANVAS and feedback:
        raise GraderError(
            "Canvas's gradebook import has no feedback column: write feedback files with `grader feedback`"
        )
    with Gradebook.open(db, create=False) as book:
        rubric, students, entries = book.rubric(), book.students(), book.entries()
    if fmt == ExportFormat.CSV:
        text = marks_csv(rubric, students, entries, feedback=feedback)
    elif fmt == ExportFormat.MOODLE:
        text = moodle_csv(
            rubric, students, entries, id_column=id_column, item=item, questions=questions, feedback=feedback
        )
    else:
        text = canvas_csv(rubric, students, entries, assignment, id_column=id_column)
    write_atomically({out: text})
    return Exported(len(students), sum(e.source == "ta" for e in entries))
