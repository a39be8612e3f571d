"""Rubrics from reference answers: a table of model answers becomes a rubric of short questions.

Most marked corpora, and many teachers, have a reference answer per question rather than a rubric.
`read_references` reads `question_id,question,reference_answer,max_mark` (UTF-8, BOM allowed) and
`references_to_rubric` turns it into a `Rubric` a TA can then edit; `rubric_yaml` writes it out.

How a reference becomes points
    The reference is split into sentences (`grader.embedding.segment.sentences`: full stops, ';', line
    breaks and bullets), one point per sentence, because a sentence of a model answer is usually
    one claim a marker looks for. A piece that ends with ':' introduces what follows ("Possible
    differences:") and is joined to the next piece. Long sentences are not cut at 'and' or commas:
    "stack and queue" is one claim. Above `max_points` (6) pieces, the shortest piece is merged with
    its shorter neighbour until the cap holds, so list items ("-Sequence number") end up grouped.
    The points share the question's marks equally, rounded to 4 decimals, the last taking the
    remainder so they add up to `max_mark`.

Several reference answers for one question (rows sharing a question_id)
    They are different correct answers, not different parts of one answer, so they cannot be
    separate points (a student would need to give every reference to earn full marks), and a whole
    reference cannot be an alternative of every point (an answer resembling any part of it would
    earn every point). So the first reference decides the points, and each further reference is
    fitted onto them as `alternatives`:
    - a question with one point (a one-claim reference): every further reference, whole, is an
      alternative phrasing of that point;
    - a question with several points: each further reference is split the same way, and each of
      its pieces becomes an alternative of the point it shares the most content words with (ties
      and no overlap at all: the point at the same relative position, since references usually
      list their claims in the same order).
    The first reference, whole, is the question's `model_answer` (what a TA reads); it is not also
    a phrasing, since its points already are.

The question's `step` (the grader rounds marks to it): 0.25 for questions worth 2 marks or more,
0.5 below that; when that step does not divide `max_mark`, or would leave fewer than two steps, the
first of 0.25, 0.2, 0.125, 0.1, 0.05, 0.01 that does; `max_mark` itself when none does.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from grader.embedding.segment import sentences
from grader.errors import InputError
from grader.exam.rubric import Rubric, ShortQuestion, parse_rubric

COLUMNS = ("question_id", "question", "reference_answer", "max_mark")
MAX_POINTS = 6
"""At most this many points per question: past it, points become fragments no marker would list."""
MARK_DECIMALS = 4
_STEPS = (0.25, 0.2, 0.125, 0.1, 0.05, 0.01)
# Words that say nothing about which claim a sentence makes (for fitting alternatives onto points).
_STOPWORDS = frozenset(
    "a an the of to in on at by for from with and or but not no is are was were be been being it its this "
    "that these those as so than then there their they them which what when where who how do does did has "
    "have had can could will would should may might must also each any all into out up if".split()
)


@dataclass(frozen=True)
class Reference:
    """One row of a references table: a correct answer to a question and the question's marks."""

    question_id: str
    question: str
    reference_answer: str
    max_mark: float
    row: int | None = None
    """The file row it came from, for errors (None when built in code)."""


def read_references(path: str | Path, exam: str | None = None) -> Rubric:
    """Read a references CSV and build its rubric; `exam` defaults to the file's stem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(path, "no such references file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read the references (expected UTF-8 CSV): {exc}") from None
    return references_to_rubric(parse_references(text, str(path)), exam or path.stem, str(path))


def parse_references(text: str, source: str) -> list[Reference]:
    """Rows of a references CSV (already decoded); every bad cell is an error naming row and column."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    records: list[tuple[int, list[str]]] = []
    start = 1  # rows are file lines where a record starts, as in grader.exam.submissions
    try:
        for cells in reader:
            if any(c.strip() for c in cells):
                records.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InputError(source, f"cannot parse CSV: {exc}", row=start) from None
    if not records:
        raise InputError(source, f"the file is empty: expected a header {','.join(COLUMNS)}")
    header_row, header = records[0]
    names = [cell.strip().casefold() for cell in header]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise InputError(
            source,
            f"missing column(s) {', '.join(missing)} (expected {','.join(COLUMNS)})",
            row=header_row,
            column=missing[0],
        )
    where = {c: names.index(c) for c in COLUMNS}
    found = []
    for row, cells in records[1:]:
        cell = {c: cells[i].strip() if i < len(cells) else "" for c, i in where.items()}
        try:
            max_mark = float(cell["max_mark"])
        except ValueError:
            message = f"max_mark {cell['max_mark']!r} is not a number"
            raise InputError(source, message, row=row, column="max_mark") from None
        found.append(Reference(cell["question_id"], cell["question"], cell["reference_answer"], max_mark, row))
    if not found:
        raise InputError(source, "no reference answers below the header", row=header_row)
    return found


def references_to_rubric(rows: Sequence[Reference], exam: str, source: str, max_points: int = MAX_POINTS) -> Rubric:
    """The rubric of short questions that the reference answers imply (see the module docstring).

    Questions keep the order of their first row. `source` names the table in errors. `max_points=1`
    keeps each reference whole as a single point (useful to compare against splitting).
    """
    if max_points < 1:
        raise ValueError("max_points must be at least 1")
    groups: dict[str, list[Reference]] = {}
    for ref in rows:
        _check_row(ref, source)
        first = groups.setdefault(ref.question_id, [ref])[0]
        if first is ref:
            continue
        if not math.isclose(ref.max_mark, first.max_mark, rel_tol=0, abs_tol=1e-9):
            raise InputError(
                source,
                f"question {ref.question_id} is worth {first.max_mark:g} at row {first.row}, but {ref.max_mark:g} here",
                row=ref.row,
                column="max_mark",
            )
        if ref.question and first.question and _words(ref.question) != _words(first.question):
            raise InputError(
                source,
                f"question {ref.question_id} has another question text at row {first.row}",
                row=ref.row,
                column="question",
            )
        groups[ref.question_id].append(ref)
    if not groups:
        raise InputError(source, "no reference answers")
    questions = [_question(refs, max_points) for refs in groups.values()]
    return parse_rubric({"exam": exam, "version": 1, "questions": questions}, source)


def _check_row(ref: Reference, source: str) -> None:
    if not ref.question_id.strip():
        raise InputError(source, "empty question id", row=ref.row, column="question_id")
    if not ref.reference_answer.strip():
        message = f"question {ref.question_id} has an empty reference answer"
        raise InputError(source, message, row=ref.row, column="reference_answer")
    if not math.isfinite(ref.max_mark) or ref.max_mark <= 0:
        message = f"max_mark must be a positive number, got {ref.max_mark:g}"
        raise InputError(source, message, row=ref.row, column="max_mark")


def _question(refs: list[Reference], max_points: int) -> dict[str, Any]:
    first = refs[0]
    texts = split_points(first.reference_answer, max_points)
    alternatives: list[list[str]] = [[] for _ in texts]
    for other in refs[1:]:
        if len(texts) == 1:
            alternatives[0].append(_flat(other.reference_answer))
            continue
        pieces = split_points(other.reference_answer, MAX_POINTS)
        for i, piece in enumerate(pieces):
            alternatives[_closest(piece, texts, i / max(1, len(pieces) - 1))].append(piece)
    marks = share_marks(first.max_mark, len(texts))
    points = []
    for k, (text, mark) in enumerate(zip(texts, marks)):
        alts = list(dict.fromkeys(a for a in alternatives[k] if a.casefold() != text.casefold()))
        point: dict[str, Any] = {"id": f"p{k + 1}", "text": text, "marks": mark}
        if alts:
            point["alternatives"] = alts
        points.append(point)
    question = next((r.question for r in refs if r.question), "")
    return {
        "id": first.question_id,
        "type": "short",
        "marks": first.max_mark,
        "prompt": _flat(question),
        "model_answer": first.reference_answer.strip(),
        "step": choose_step(first.max_mark),
        "points": points,
    }


def split_points(reference: str, max_points: int = MAX_POINTS) -> list[str]:
    """A reference answer's claims: sentences, lead-ins joined to what follows, capped at `max_points`."""
    pieces: list[str] = []
    for sentence in sentences(reference) or [reference.strip()]:
        if pieces and pieces[-1].endswith(":"):
            pieces[-1] = f"{pieces[-1]} {sentence}"
        else:
            pieces.append(sentence)
    pieces = [_flat(p).rstrip(" ;,") for p in pieces if re.search(r"\w", p)] or [_flat(reference)]
    while len(pieces) > max_points:
        size = [len(p.split()) for p in pieces]
        i = min(range(len(pieces)), key=lambda j: size[j])
        left = i - 1 if i == len(pieces) - 1 or (i > 0 and size[i - 1] <= size[i + 1]) else i
        pieces[left : left + 2] = [_join(pieces[left], pieces[left + 1])]
    return pieces


def _join(first: str, second: str) -> str:
    """Two merged pieces; list items ("Flags", "Window") keep a separator between them."""
    return f"{first} {second}" if first.endswith((".", "!", "?", ":")) else f"{first}; {second}"


def share_marks(max_mark: float, parts: int) -> list[float]:
    """`parts` equal shares of `max_mark` (4 decimals), the last taking the remainder: they add up."""
    share = round(max_mark / parts, MARK_DECIMALS)
    marks = [share] * (parts - 1)
    return [*marks, round(max_mark - sum(marks), MARK_DECIMALS)]


def choose_step(max_mark: float) -> float:
    """The rounding step for a question worth `max_mark` (rule in the module docstring)."""
    preferred = 0.25 if max_mark >= 2 else 0.5
    for step in (preferred, *_STEPS):
        steps = max_mark / step
        if steps >= 2 - 1e-9 and math.isclose(steps, round(steps), abs_tol=1e-6):
            return step
    return max_mark


def _closest(piece: str, points: Sequence[str], position: float) -> int:
    """The point sharing the most content words with `piece` (Jaccard); ties go to the same position."""
    words = _content_words(piece)
    overlap = []
    for text in points:
        other = _content_words(text)
        overlap.append(len(words & other) / len(words | other) if words | other else 0.0)
    best = max(overlap)
    same_place = round(position * (len(points) - 1))
    tied = [k for k, v in enumerate(overlap) if v == best]
    return min(tied, key=lambda k: abs(k - same_place))


def _content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"\w+", text.casefold()) if w not in _STOPWORDS}


def _words(text: str) -> list[str]:
    return text.casefold().split()


def _flat(text: str) -> str:
    """One line, single spaces: point texts and prompts are compared as sentences."""
    return " ".join(text.split())


# ---- writing a rubric back as YAML -----------------------------------------------------------


class _RubricDumper(yaml.SafeDumper):
    """Block lists indented under their key, multi-line text as '|' blocks: what a person would type."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        return super().increase_indent(flow, False)


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_RubricDumper.add_representer(str, _text)


def rubric_yaml(rubric: Rubric) -> str:
    """The rubric as YAML that `grader.exam.rubric.load_rubric` reads back to an equal `Rubric`.

    Fields left at their defaults are omitted, except a short question's `step` (a TA should see
    it); whole-number marks are written as integers.
    """
    data: dict[str, Any] = {"exam": rubric.exam}
    if rubric.title:
        data["title"] = rubric.title
    data["version"] = rubric.version
    questions = []
    for question in rubric.questions:
        dumped = question.model_dump(mode="json", exclude_defaults=True)
        if isinstance(question, ShortQuestion):
            points = dumped.pop("points")
            dumped = {**dumped, "step": question.step, "points": points}
        questions.append(_tidy_numbers(dumped))
    data["questions"] = questions
    return yaml.dump(data, Dumper=_RubricDumper, sort_keys=False, allow_unicode=True, width=100)


def _tidy_numbers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _tidy_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tidy_numbers(v) for v in value]
    return value
