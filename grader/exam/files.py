"""An exam's files read together: the rubric, the class's answers checked against it, a TA's marks
(`read_human_marks`: every bad row an error naming row and column).

Every command that grades starts here, before the slow model load, so bad input costs nothing.
Parsing is `grader.exam.rubric`'s and `grader.exam.submissions`'; what is here is the order and the checks
that tie the files to one another.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from pathlib import Path

from grader.errors import InputError
from grader.exam.rubric import Rubric, load_rubric
from grader.exam.submissions import Submissions, read_records, read_submissions
from grader.spreadsheet import spreadsheet_unsafe


def read_exam(rubric: Path, answers: Path, warn: Callable[[str], None] = lambda _: None) -> tuple[Rubric, Submissions]:
    """The rubric and the answers to its questions; each warning about the answers goes to `warn`,
    prefixed with the answers file's path."""
    loaded = load_rubric(rubric)
    submissions = read_submissions(answers, loaded.question_ids)
    for warning in submissions.warnings:
        warn(f"{answers}: {warning}")
    return loaded, submissions


def read_marks(path: Path, rubric: Rubric) -> dict[tuple[str, str], float]:
    """A TA's marks file, checked against the rubric: known questions, marks within 0..max."""
    return read_human_marks(path, set(rubric.question_ids), {q.id: q.marks for q in rubric.questions})


def read_human_marks(
    path: str | Path,
    question_ids: Collection[str] | None = None,
    max_marks: Mapping[str, float] | None = None,
) -> dict[tuple[str, str], float]:
    """Read `student_id,question_id,mark` (a TA's marks); every bad row is an error naming row and column.

    Other columns (a marking sheet's `answer`) are ignored, and a row with an empty mark is not marked yet.

    Read as every CSV a person saves (`read_records`: encodings, delimiters, quoting). With
    `max_marks` (question id -> its marks), a mark below 0 or above the question's marks is refused,
    as `evaluate` refuses it: fitting or measuring against an impossible mark would be silent nonsense."""
    path = Path(path)
    records = read_records(path)
    if not records:
        raise InputError(path, "the file is empty: expected a header student_id,question_id,mark")
    header_row, header = records[0]
    names = [name.strip() for name in header]
    missing = {"student_id", "question_id", "mark"} - set(names)
    if missing:
        raise InputError(path, f"missing column(s) {', '.join(sorted(missing))}", row=header_row)
    col = {name: names.index(name) for name in ("student_id", "question_id", "mark")}
    marks: dict[tuple[str, str], float] = {}
    for row_number, cells in records[1:]:
        if len(cells) < len(names) or any(cell.strip() for cell in cells[len(names) :]):
            raise InputError(path, f"{len(cells)} field(s) but the header has {len(names)}", row=row_number)
        # A sheet grader wrote (a marking sheet) guarded ids that a spreadsheet would run: read them back.
        key = (spreadsheet_unsafe(cells[col["student_id"]].strip()), cells[col["question_id"]].strip())
        if question_ids is not None and key[1] not in question_ids:
            raise InputError(path, f"unknown question {key[1]!r}", row=row_number, column="question_id")
        typed = cells[col["mark"]].strip()
        if not typed:  # a marking sheet (`grader sample`) row the TA has not marked yet
            continue
        try:
            mark = float(typed)
        except ValueError:
            mark = math.nan
        if not math.isfinite(mark):
            raise InputError(path, f"mark {typed!r} is not a number", row=row_number, column="mark")
        if max_marks is not None and key[1] in max_marks and not -1e-9 <= mark <= max_marks[key[1]] + 1e-9:
            raise InputError(
                path, f"mark {mark:g} is outside 0..{max_marks[key[1]]:g} for {key[1]}", row=row_number, column="mark"
            )
        if key in marks:
            raise InputError(path, f"a second mark for {key[0]} on {key[1]}", row=row_number, column="student_id")
        marks[key] = mark
    return marks


def marks_warnings(marks: Mapping[tuple[str, str], float], questions: Mapping[str, float], enough: int) -> list[str]:
    """What a person should hear before a calibration is fitted to these marks, one line each:
    questions (id -> marks; short answers only) with fewer than `enough` marked answers, and
    questions whose marked answers all carry one mark (nothing to learn what separates marks from)."""
    by_question: dict[str, list[float]] = {}
    for (_, question), mark in marks.items():
        if question in questions:
            by_question.setdefault(question, []).append(mark)
    warnings = []
    few = [f"{q} {len(m)}" for q, m in by_question.items() if len(m) < enough]
    if few:
        warnings.append(
            f"few marked answers ({', '.join(few)}; about {enough} per question are needed): those questions "
            "borrow the map fitted on all questions, and the cross-validated errors rest on few answers"
        )
    unmarked = [q for q in questions if q not in by_question]
    if unmarked and by_question:
        warnings.append(f"no marked answer for {', '.join(unmarked)}: they borrow the map fitted on the others")
    same = [f"{q} (all {m[0]:g})" for q, m in by_question.items() if len(set(m)) == 1 and len(m) > 1]
    if same:
        warnings.append(
            f"a single distinct mark on {', '.join(same)}: nothing shows what separates a better answer from a "
            "worse one there"
        )
    return warnings
