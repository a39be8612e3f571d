"""The paper's structure: title and totals from the preamble, sections and their marks, numbered question blocks."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from grader.authoring.draft.lines import _IMPERATIVE, _strip_tail
from grader.authoring.draft.markup import _tidy
from grader.errors import InputError

_BOLD = r"(?:\*\*|__)?"
_QUESTION_PREFIXED = re.compile(
    rf"^\s*(?:#{{1,6}}\s*)?{_BOLD}\s*Q(?:uestion|\.)?\s*(\d{{1,3}})\s*{_BOLD}\s*[.):\-–—]?\s*{_BOLD}\s*(.*)$", re.I
)
_QUESTION_NUMBERED = re.compile(r"^\s*(?:#{1,6}\s*)?(?:\*\*|__)?\s*(\d{1,3})\s*[.)](?!\d)\s*(?:\*\*|__)?\s*(.*)$")
_SECTION_MARKS = re.compile(
    r"^\s*(?:#{1,6}\s*)?(?:\*\*|__)?\s*(?P<name>[A-Za-z][^\n:()\[\]]{0,60}?)\s*(?:\*\*|__)?\s*(?:[:\-–—]\s*)?"
    r"(?:\*\*|__)?\s*[(\[]?\s*(?P<marks>\d+(?:\.\d+)?)\s*(?:marks?|pts|points)\s*(?P<each>each)?\s*[)\]]?"
    r"\s*(?:\*\*|__)?\s*$",
    re.I,
)
_SECTION_PLAIN = re.compile(
    r"^\s*(?:#{1,6}\s*)?(?:\*\*|__)?\s*((?:section|part)\s+(?:[A-Z]|[IVX]+|\d+)\b.*?)(?:\*\*|__)?\s*$", re.I
)
_HEADING = re.compile(r"^\s*#{1,6}\s+(.+?)\s*#*\s*$")
_NOT_SECTION_NAMES = re.compile(
    r"^(total|max(imum)?|full|marks?|time|duration|note|answers?|ans|keys?|solutions?)\b", re.I
)
_EACH = re.compile(
    r"(\d+(?:\.\d+)?)\s*marks?\s*each"
    r"|each\s+(?:question\s+)?(?:carries|is worth|has|gets|of)\s+(\d+(?:\.\d+)?)\s*marks?",
    re.I,
)
_EXAM_TOTAL = re.compile(
    r"(?:max(?:imum)?\.?|total|full)\s*marks?\s*[:=\-]?\s*(\d+(?:\.\d+)?)|[(\[]\s*(\d+(?:\.\d+)?)\s*marks?\s*[)\]]"
    r"|\bmarks?\s*[:=]\s*(\d+(?:\.\d+)?)",
    re.I,
)
_FIELD_LINE = re.compile(  # the blanks a student fills in: not the title
    r"^\s*(name|roll\s*no\.?|student\s*(id|number)|date|id|signature|course|instructor)\s*[:.]?\s*[_ .]*$", re.I
)


@dataclass
class _Block:
    """A numbered question and the lines under it, up to the next question or section."""

    number: int
    line: int
    text: str
    """The question line, number removed."""
    body: list[tuple[int, str]] = field(default_factory=list)
    section: int | None = None


@dataclass
class _SectionRaw:
    name: str
    marks: float | None
    each: float | None
    line: int


@dataclass
class _Paper:
    title: str
    total: float | None
    each: float | None
    sections: list[_SectionRaw]
    blocks: list[_Block]


def _read_structure(lines: list[str], source: str) -> _Paper:
    preamble: list[tuple[int, str]] = []
    sections: list[_SectionRaw] = []
    blocks: list[_Block] = []
    expected: int | None = None  # the next bare number that starts a question
    inner_next: int | None = None  # the next number of a numbered list inside an answer
    in_instructions = False
    for index, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not blocks and not sections:
            first = not any(text.strip() for _, text in preamble)
            if first and _HEADING.match(line) and not _SECTION_PLAIN.match(line) and not _question_start(line):
                preamble.append((index, line))  # "# CS101 Final Exam": the title, not a section
                continue
            if re.match(r"^\W*instructions?\b", stripped, re.I):
                in_instructions = True
            elif in_instructions and not stripped:
                in_instructions = False
            if in_instructions:
                preamble.append((index, line))
                continue
        question = _question_start(line)
        if question is not None:
            number, rest, prefixed = question
            current = blocks[-1] if blocks and (not sections or blocks[-1].section == len(sections) - 1) else None
            starts = prefixed or expected is None or current is None or number == expected
            if starts and current is not None and not prefixed and inner_next == number and not _ends_prompt(rest):
                starts = False  # "2." continuing a numbered list in the answer, not question 2
            if starts:
                blocks.append(_Block(number, index, rest, section=len(sections) - 1 if sections else None))
                expected, inner_next = number + 1, None
                continue
            if blocks:
                inner_next = number + 1 if (number == 1 or inner_next == number) else inner_next
        section = _section_heading(line)
        if section is not None:
            sections.append(_SectionRaw(*section, line=index))
            expected, inner_next = None, None
            continue
        if blocks and (not sections or blocks[-1].section == len(sections) - 1):
            blocks[-1].body.append((index, line))
        elif sections:
            each = _EACH.search(line)
            if each and sections[-1].each is None:
                sections[-1].each = float(each[1] or each[2])
        else:
            preamble.append((index, line))
    if not blocks:
        raise InputError(source, "no questions found: expected numbered questions such as '1. ...' or 'Q1. ...'")
    title, total, each = _preamble(preamble)
    used = {b.section for b in blocks}
    first_line = next(k for k, line in enumerate(lines, start=1) if line.strip())
    if sections and not title and sections[0].line < blocks[0].line:
        head = sections[0]
        lone = len(sections) == 1 and head.line == first_line and not _SECTION_PLAIN.match(head.name)
        if 0 not in used or lone:
            # A "section" that holds no question ("Mid-Sem (20 marks)" above the first section), or the
            # paper's first line when it is the only one ("Quiz 1 (3 marks)"), is the title line.
            title, total = head.name, total if total is not None else head.marks
            each = each if each is not None else head.each
            if lone:
                sections = []
                for block in blocks:
                    block.section = None
    return _Paper(title, total, each, sections, blocks)


def _question_start(line: str) -> tuple[int, str, bool] | None:
    m = _QUESTION_PREFIXED.match(line)
    if m:
        return int(m[1]), m[2], True
    m = _QUESTION_NUMBERED.match(line)
    if m and m[2].strip():
        return int(m[1]), m[2], False
    return None


def _ends_prompt(text: str) -> bool:
    prompt, marks, _, _ = _strip_tail(text)
    return prompt.rstrip().endswith("?") or marks is not None


def _section_heading(line: str) -> tuple[str, float | None, float | None] | None:
    m = _SECTION_MARKS.match(line)
    if m and _section_name(m["name"]):
        marks = float(m["marks"])
        if m["each"]:
            return _tidy(m["name"]).strip(" :-–—"), None, marks
        return _tidy(m["name"]).strip(" :-–—"), marks, None
    m = _SECTION_PLAIN.match(line) or _HEADING.match(line)
    if m and not _NOT_SECTION_NAMES.match(_tidy(m[1])) and _question_start(_tidy(m[1])) is None:
        name = _tidy(m[1])
        each = _EACH.search(name)
        total = _EXAM_TOTAL.search(name)
        marks = float(next(g for g in total.groups() if g)) if total and not each else None
        name = re.sub(r"\s*[(\[][^()\[\]]*marks?[^()\[\]]*[)\]]\s*", " ", name, flags=re.I).strip(" :-–—")
        return name, marks, float(each[1] or each[2]) if each else None
    return None


def _section_name(name: str) -> bool:
    """A heading's name, not a sentence carrying marks ("Explain your reasoning. (2 marks)")."""
    name = name.strip(" *_")
    return (
        len(name.split()) <= 6
        and not name.endswith((".", "?", "!"))
        and not _NOT_SECTION_NAMES.match(name)
        and not (_IMPERATIVE.match(name) and not re.match(r"(section|part)\b", name, re.I))
    )


def _preamble(lines: list[tuple[int, str]]) -> tuple[str, float | None, float | None]:
    title, total, each = "", None, None
    for _, line in lines:
        if not line.strip() or _FIELD_LINE.match(line):
            continue
        found = _EXAM_TOTAL.search(line)
        if found and total is None:
            total = float(next(g for g in found.groups() if g))
        if each is None and (m := _EACH.search(line)):
            each = float(m[1] or m[2])
        if not title:
            plain = _tidy(re.sub(r"^\s*#+\s*", "", line))
            plain = re.sub(r"\s*[(\[]\s*\d+(?:\.\d+)?\s*marks?\s*[)\]]", "", plain, flags=re.I)
            plain = re.sub(r"\s*[(\[]\s*(?:duration|time)\b[^)\]]*[)\]]", "", plain, flags=re.I)
            total_said = r"\s*[,|;-]?\s*(?:max(?:imum)?\.?|total|full)\s*marks?\s*[:=\-]?\s*\d+(?:\.\d+)?"
            plain = re.sub(total_said, "", plain, flags=re.I)
            title = plain.strip(" -–—:|,")
    return title, total, each
