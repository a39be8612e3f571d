"""Students' answers to one exam, read from the CSV an LMS exports (Moodle, Canvas, Google Forms,
Gradescope).

Two shapes are recognised from the header. WIDE: one row per student, a `student_id` column and
one column per question id; any other column (name, email, ...) is kept but not graded. LONG: one
row per answer, with `student_id`, `question_id` and `answer` columns (others ignored). Every
problem in the file is an `InputError` naming the file, row and column, so a TA can fix it.

Row numbers are file lines (header = row 1), counted where a record starts; they match the
spreadsheet row unless an earlier answer spans several lines.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from grader.errors import InputError

# Accepted spellings of each special column, most specific first, in `_key` form.
STUDENT_ID_ALIASES = ("student id", "studentid", "roll no", "id", "sid")
QUESTION_ID_ALIASES = ("question id", "questionid", "question", "qid")
ANSWER_ALIASES = ("answer", "response")

# A header shaped like a question id that the rubric lacks is a typo or the wrong rubric, not a
# column to keep silently.
_QUESTION_LIKE = re.compile(r"^[A-Za-z]{1,3}\d+[a-z]?$")
_DELIMITERS = {",": "commas", ";": "semicolons", "\t": "tabs"}
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e"
"""Zero-width spaces and joiners, word joiner, BOM, soft hyphen: text made of these and white space
shows as nothing, so it is a blank answer (or no student id), however many there are."""
_NO_INVISIBLE = dict.fromkeys(map(ord, INVISIBLE))
MAX_CELL_CHARS = csv.field_size_limit()
"""The longest cell (answer) read, in characters: the csv module's limit (131,072); a longer one is
refused with its row, never cut."""


@dataclass(frozen=True)
class Submissions:
    """One exam's answers; a question a student has no cell for is a blank answer."""

    source: str
    students: tuple[str, ...]
    kept_columns: tuple[str, ...]
    kept: Mapping[str, Mapping[str, str]]
    answers: Mapping[tuple[str, str], str]
    rows: Mapping[tuple[str, str], int]
    warnings: tuple[str, ...] = ()
    """What a person may not have meant but the file allows (a question no column answers), in words."""

    def answer(self, student_id: str, question_id: str) -> str:
        """The answer as typed, or "" when the student left it out."""
        return self.answers.get((student_id, question_id), "")


def read_submissions(path: str | Path, question_ids: Sequence[str]) -> Submissions:
    """Read and check an answers CSV against the rubric's question ids."""
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise InputError(source, f"cannot read the file: {err.strerror}") from None
    return parse_submissions(_decode(data, source), source, question_ids)


def parse_submissions(text: str, source: str, question_ids: Sequence[str]) -> Submissions:
    """Parse CSV text (already decoded); `source` only names the file in errors."""
    text = text.removeprefix("\ufeff")
    delimiter = _detect_delimiter(text)
    records = _records(text, source, delimiter)
    if not records:
        raise InputError(source, "the file is empty: expected a header row with a student_id column")
    header_row, header = records[0]
    if len(records) == 1:
        raise InputError(source, "no students: the file has a header but no answer rows", row=header_row)
    names = _check_header([cell.strip() for cell in header], header_row, source)
    student_col = _find(names, STUDENT_ID_ALIASES)
    if student_col is None:
        found = ", ".join(name for name in names if name) or "none"
        raise InputError(source, f"no student_id column (columns found: {found})", row=header_row)
    table = _Table(source, names, student_col, delimiter, records[1:])
    question_col = _find(names, QUESTION_ID_ALIASES)
    answer_col = _find(names, ANSWER_ALIASES)
    if question_col is not None and answer_col is not None:
        return table.long(question_col, answer_col, question_ids)
    return table.wide(header_row, question_ids)


@dataclass(frozen=True)
class _Table:
    """The checked header and the data records, shared by both shapes."""

    source: str
    names: list[str]
    student_col: int
    delimiter: str
    records: list[tuple[int, list[str]]]

    def student_rows(self) -> Iterator[tuple[int, str, list[str]]]:
        """Yield (row, student id, cells padded to the header) per record, checking width and id."""
        for row, cells in self.records:
            if len(cells) > len(self.names):
                raise InputError(
                    self.source,
                    f"{len(cells)} fields but the header has {len(self.names)}; "
                    f"quote answers that contain {_DELIMITERS[self.delimiter]}",
                    row=row,
                )
            cells = cells + [""] * (len(self.names) - len(cells))
            student = cells[self.student_col].strip()
            if is_blank_text(student):
                raise InputError(self.source, "empty student id", row=row, column=self.names[self.student_col])
            yield row, student, cells

    def wide(self, header_row: int, question_ids: Sequence[str]) -> Submissions:
        by_key = {qid.strip().casefold(): qid for qid in question_ids}
        graded: dict[int, str] = {}
        kept_cols: list[int] = []
        for col, name in enumerate(self.names):
            if col == self.student_col or not name:
                continue
            if name.casefold() in by_key:
                graded[col] = by_key[name.casefold()]
            elif _QUESTION_LIKE.match(name):
                raise InputError(
                    self.source,
                    f"the rubric has no question '{name}' (it has {_brief(question_ids)})",
                    row=header_row,
                    column=name,
                )
            else:
                kept_cols.append(col)
        if question_ids and not graded:
            raise InputError(
                self.source,
                f"no column is a rubric question (expected {_brief(question_ids)})",
                row=header_row,
            )

        first_row: dict[str, int] = {}
        kept: dict[str, Mapping[str, str]] = {}
        answers: dict[tuple[str, str], str] = {}
        rows: dict[tuple[str, str], int] = {}
        for row, student, cells in self.student_rows():
            if student in first_row:
                raise InputError(
                    self.source,
                    f"student {student} appears again (first at row {first_row[student]})",
                    row=row,
                    column=self.names[self.student_col],
                )
            first_row[student] = row
            kept[student] = MappingProxyType({self.names[c]: cells[c].strip() for c in kept_cols})
            for col, qid in graded.items():
                answers[student, qid] = _clean(cells[col])
                rows[student, qid] = row
        unanswered = [qid for qid in question_ids if qid not in graded.values()]
        warnings = (
            (f"no column for question(s) {_brief(unanswered)}: every student is marked blank (0) on them",)
            if unanswered
            else ()
        )
        return _submissions(
            self.source, first_row, tuple(self.names[c] for c in kept_cols), kept, answers, rows, warnings
        )

    def long(self, question_col: int, answer_col: int, question_ids: Sequence[str]) -> Submissions:
        by_key = {qid.strip().casefold(): qid for qid in question_ids}
        column = self.names[question_col]
        first_row: dict[str, int] = {}
        answers: dict[tuple[str, str], str] = {}
        rows: dict[tuple[str, str], int] = {}
        for row, student, cells in self.student_rows():
            typed = cells[question_col].strip()
            if not typed:
                raise InputError(self.source, "empty question id", row=row, column=column)
            qid = by_key.get(typed.casefold())
            if qid is None:
                raise InputError(
                    self.source,
                    f"the rubric has no question '{typed}' (it has {_brief(question_ids)})",
                    row=row,
                    column=column,
                )
            if (student, qid) in rows:
                raise InputError(
                    self.source,
                    f"student {student} answers {qid} again (first at row {rows[student, qid]})",
                    row=row,
                    column=column,
                )
            first_row.setdefault(student, row)
            answers[student, qid] = _clean(cells[answer_col])
            rows[student, qid] = row
        kept = {student: MappingProxyType({}) for student in first_row}
        asked = {qid for _, qid in rows}
        unanswered = [qid for qid in question_ids if qid not in asked]
        warnings = (
            (f"no row answers question(s) {_brief(unanswered)}: every student is marked blank (0) on them",)
            if unanswered
            else ()
        )
        return _submissions(self.source, first_row, (), kept, answers, rows, warnings)


def _submissions(
    source: str,
    students: Mapping[str, int],
    kept_columns: tuple[str, ...],
    kept: dict[str, Mapping[str, str]],
    answers: dict[tuple[str, str], str],
    rows: dict[tuple[str, str], int],
    warnings: tuple[str, ...] = (),
) -> Submissions:
    """Freeze the parsed tables so no later stage can edit what the student wrote."""
    return Submissions(
        source=source,
        students=tuple(students),
        kept_columns=kept_columns,
        kept=MappingProxyType(kept),
        answers=MappingProxyType(answers),
        rows=MappingProxyType(rows),
        warnings=warnings,
    )


def read_records(path: str | Path) -> list[tuple[int, list[str]]]:
    """Any CSV a spreadsheet saves (UTF-8/BOM/cp1252; commas, semicolons or tabs) as non-blank
    records, each with the file line it starts on (for errors that name the row)."""
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise InputError(source, f"cannot read the file: {err.strerror}") from None
    text = _decode(data, source)
    return _records(text, source, _detect_delimiter(text))


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
"""UTF-32 first: its little-endian BOM begins with UTF-16's."""


def _decode(data: bytes, source: str) -> str:
    """A UTF-16/32 byte order mark says the encoding (Excel's "Unicode text" is UTF-16); else UTF-8
    (with or without BOM) first; old Excel saves cp1252, which UTF-8 rejects."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding).removeprefix("\ufeff")
            except UnicodeDecodeError as err:
                raise InputError(
                    source, f"not valid {encoding.upper()} at byte offset {err.start}: save the file as UTF-8"
                ) from None
    if data[:2].count(0) == 1 and data[:64].count(0) >= len(data[:64]) // 4:
        raise InputError(source, "looks like UTF-16 without a byte order mark: save the file as UTF-8")
    if data.startswith(b"PK\x03\x04"):
        raise InputError(source, "a spreadsheet workbook (.xlsx), not a CSV: save it as CSV UTF-8")
    if b"\x00" in data:
        raise InputError(source, f"a NUL byte at offset {data.index(0)}: not a text CSV (save it as CSV UTF-8)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError as err:
        raise InputError(
            source,
            f"cannot decode byte 0x{data[err.start]:02x} at offset {err.start}: save the file as UTF-8",
        ) from None


def _detect_delimiter(text: str) -> str:
    """The delimiter that splits the header into the most fields (comma on ties); the csv module
    does the splitting, so delimiters inside quoted header cells do not count."""

    def width(delimiter: str) -> int:
        for cells in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            if not _is_blank(cells):
                return len(cells)
        return 0

    return max(_DELIMITERS, key=width)


def _records(text: str, source: str, delimiter: str) -> list[tuple[int, list[str]]]:
    """Non-blank records with the file line each starts on (blank and all-empty lines skipped).

    Quoting is read strictly: a quote never closed would swallow every later row into one answer,
    and text after a closing quote would lose the quote; both are refused, naming the row."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    records: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for cells in reader:
            if not _is_blank(cells):
                records.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as err:
        raise InputError(source, _csv_problem(str(err)), row=start) from None
    return records


def _csv_problem(error: str) -> str:
    """The csv module's complaint in words a person can act on."""
    if "unexpected end of data" in error:
        return (
            "a quote opened in this row is never closed, so every later row would be read as part of one "
            'answer: close it, or write a quote inside an answer as two ("")'
        )
    if "expected after" in error:
        return 'text follows the closing quote of a field: write a quote inside an answer as two ("")'
    if "field larger than field limit" in error:
        return f"a field is longer than {MAX_CELL_CHARS:,} characters (the longest answer read)"
    return f"cannot parse CSV: {error}"


def _is_blank(cells: list[str]) -> bool:
    """A line of nothing but spaces and delimiters (spreadsheets export empty rows so)."""
    return all(is_blank_text(cell.strip(" \t,;")) for cell in cells)


def is_blank_text(text: str) -> bool:
    """Nothing a reader would see: white space and the zero-width characters of INVISIBLE only."""
    return not text.translate(_NO_INVISIBLE).strip()


def _check_header(names: list[str], row: int, source: str) -> list[str]:
    """Refuse a column named twice: which of the two holds the answers would be a guess."""
    first: dict[str, str] = {}
    for name in names:
        if not name:
            continue  # unnamed (often trailing) columns are ignored
        if _key(name) in first:
            raise InputError(source, f"column appears twice (also as '{first[_key(name)]}')", row=row, column=name)
        first[_key(name)] = name
    return names


def _key(name: str) -> str:
    """Header spelling used to match special columns: 'Student_ID ' -> 'student id'."""
    return re.sub(r"[\s_]+", " ", name.strip().casefold())


def _find(names: Sequence[str], aliases: Sequence[str]) -> int | None:
    """Index of the column with the most specific accepted spelling, or None."""
    keys = [_key(name) for name in names]
    return next((keys.index(alias) for alias in aliases if alias in keys), None)


def _clean(answer: str) -> str:
    """The answer as typed, with line endings unified and surrounding whitespace dropped; "" for
    an answer nothing of which shows (`is_blank_text`)."""
    if is_blank_text(answer):
        return ""
    return answer.replace("\r\n", "\n").replace("\r", "\n").strip()


def _brief(ids: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(ids[:limit])
    return shown if len(ids) <= limit else f"{shown}, ... ({len(ids)} in all)"
