"""Draft a rubric from an exam paper as instructors write it (plain text or Markdown).

An instructor already has the paper with its keys and model answers; typing the rubric out again is
the slow part. `draft_rubric` reads the paper and returns a `Draft`: a valid `Rubric` plus notes on
what it was unsure of, which `draft_yaml` writes as `# check: ...` comments above the question or
point concerned. The draft is meant to be edited, not trusted: it never invents content.

What it reads
    Sections ("Beginner: 10 Marks", "Section A (10 marks)", "## Part B", "(1 mark each)"), numbered
    questions ("1.", "1)", "Q1.", "Question 1:"; numbering restarts per section or runs on), their
    marks ("1 Mark", "(2 marks)", "[2 marks]"), MCQ options inline ("(a) .. (b) ..") or one a line
    ("a)", "(A)", "A.", "- [ ] b)"), lettered sub-parts ("- (a) Why ...?") and the model answers
    after a question, in Markdown links, display math or "Answer:" lines.

MCQ keys
    A trailing letter on the question line (`**B**`, `[B](#)`, `... ? B`, `Ans: B`), a marked
    option (`**b)**`, `**(b) text**`, `(b) text ✓`, `- [x] b)`) or an answer line (`Answer: b`,
    `Ans: B`, `Key: (b)`, `Answer: b, d`). An MCQ with no key cannot be a valid rubric question, and
    guessing a key would silently mark right answers wrong, so it is written `void: true` (everyone
    gets the marks) with a `# check:` comment saying to set the key: valid, harmless, and loud.

Marks
    A question's own marks win; a section total is shared out among its questions that carry none
    (on a 0.5 grid, earlier questions taking any remainder), then the exam total among those left,
    else 1 mark each; a question's marks are shared among its unmarked sub-parts the same way. Every
    guess is a `# check:` comment.

Model answers become points, one claim each
    Sentences (brackets kept whole, so "(Cybenko, 1989; Hornik, 1991)" is not a break), bullet
    items and display formulas are the candidates. A sentence that only qualifies or illustrates the
    one before ("These regions ...", "However, ...", "Example: ...", "A well-known counterexample
    ...") is joined to it, and a lead-in ending in ':' to what follows: alone neither is a claim a
    marker could look for. A one-sentence answer to a question worth a mark or more is split at
    a consequence (", making ...", ", so ...", ", because ...", ", and it ...") and the split noted. A formula is its
    own point whose `patterns` regex matches its core in common spellings (sqrt/√/root, n_in/nin/
    n_{in}/fan_in, optional brackets); a citation ("DL Lecture 7 slide 32") is kept in the model
    answer, not made a point. A verdict ("No.") to a yes/no question becomes a point with patterns
    and contradictions; a yes/no question whose answer gives none is noted.

    The step is 0.5 when the points fit in whole steps of it, else 0.25; with more points than
    steps (or than `MAX_POINTS`), the shortest point is merged with its shorter neighbour until they
    fit. Marks are shared in whole steps, earlier points taking any remainder (noted).

Answer keys gathered at the end
    A heading ("Answer key", "Answers", "Solutions", "Marking scheme", "Memo", any case, `#`/`**`
    allowed) after the questions, followed by entries, is a key and never read as questions: `1. B`,
    `1) b`, `Q1: B`, `Q1 - (B)`, `1 B`, several a line (`1.B 2.C`, `1-B, 2-C`), several keys (`4. A, C`),
    a table (`| Q | Answer |`), model answers (`Q5: ...`, lines and paragraphs up to the next entry)
    and sub-parts (`5. (a) ... (b) ...`, `5(a) ...`). It fills only what the paper left empty: an
    inline key or answer wins, and a key that disagrees with it is noted. Entries find their question
    by the section the key names ("Section B, 1.", "B1", a sub-heading naming a section) or else by
    number; where a paper's numbering restarts per section, an unnamed number is read every way it
    could be (through the paper, in a section, restarting with the sections) and the reading that fits
    the questions best (MCQ letters to MCQs, text to short questions, numbers that exist) is taken; a
    tie is noted and not used, as is an entry naming no question.

Not read (yet): roman-numbered sub-parts ("(i)", "(ii)"), tables outside an answer key, answer keys
that repeat the questions, keys spread over the paper section by section, and answers given only as
images.
"""

from __future__ import annotations

import itertools
import math
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from grader.errors import InputError
from grader.reference import MAX_POINTS, choose_step, rubric_yaml
from grader.rubric import McqQuestion, Rubric, ShortQuestion, parse_rubric
from grader.segment import sentences

if TYPE_CHECKING:  # suggest imports this module: only its type is needed here
    from grader.suggest import Suggestions

DEFAULT_MARKS = 1.0
"""Marks of a question when neither it, its section nor the exam says."""
TODO_ANSWER = "TODO: the paper has no model answer for this question"
TODO_POINT = "TODO: write the points a full answer makes"


# ---- what a draft is -------------------------------------------------------------------------


@dataclass(frozen=True)
class Note:
    """Something the parser was unsure of, shown as a `# check:` comment above what it concerns."""

    question_id: str | None
    """None: the paper as a whole (the comment goes at the top)."""
    point_id: str | None
    text: str


@dataclass(frozen=True)
class Section:
    """A section of the paper, shown as a heading comment above its first question."""

    name: str
    marks: float | None
    question_ids: tuple[str, ...]


@dataclass(frozen=True)
class Draft:
    """A drafted rubric (already valid) and what a person should check before grading with it."""

    rubric: Rubric
    notes: tuple[Note, ...]
    source: str
    sections: tuple[Section, ...] = ()
    stems: dict[str, str] = field(default_factory=dict)
    """Shared text of a question with sub-parts, keyed by its first sub-part's id."""
    key_entries: int = 0
    """Entries of the answer key gathered at the end of the paper (0: it has none)."""
    unmatched: tuple[str, ...] = ()
    """Answer-key entries that name no question of the paper ("17", "Section D 2"): not used."""

    @property
    def checks(self) -> int:
        """How many `# check:` comments the YAML carries."""
        return len(self.notes)

    @property
    def unkeyed(self) -> tuple[str, ...]:
        """MCQs the paper gave no key for (drafted `void: true`)."""
        return tuple(q.id for q in self.rubric.questions if isinstance(q, McqQuestion) and not q.keys)

    def summary(self) -> str:
        """One line: what was found (what the CLI prints)."""
        mcqs = [q for q in self.rubric.questions if isinstance(q, McqQuestion)]
        shorts = [q for q in self.rubric.questions if isinstance(q, ShortQuestion)]
        keyed = sum(1 for q in mcqs if q.keys)
        points = sum(len(q.points) for q in shorts)
        found = (
            f"{_count(len(self.rubric.questions), 'question')} ({len(mcqs)} MCQ, {keyed} with a key; "
            f"{len(shorts)} short, {_count(points, 'point')}), {_count(self.rubric.max_total, 'mark')}, "
            f"{_count(self.checks, '`# check:` comment')}"
        )
        if self.key_entries:
            found += f"; an answer key at the end with {_count(self.key_entries, 'entry', 'entries')}"
        if self.unmatched:
            found += f", {len(self.unmatched)} naming no question ({', '.join(self.unmatched)})"
        return found


def _count(number: float, thing: str, things: str | None = None) -> str:
    return f"{number:g} {thing if number == 1 else things or thing + 's'}"


def read_paper(path: str | Path, exam: str | None = None) -> Draft:
    """Read an exam paper (UTF-8 with or without BOM, UTF-16 with BOM, or cp1252) and draft its rubric."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, "no such paper file") from None
    except OSError as exc:
        raise InputError(path, f"cannot read the paper: {exc.strerror or exc}") from None
    return draft_rubric(_decode(raw, path), str(path), exam or path.stem)


def _decode(raw: bytes, path: Path) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise InputError(path, f"cannot decode the paper as UTF-16: {exc.reason}") from None
    for encoding in ("utf-8-sig", "cp1252"):  # cp1252: Word and old editors on Windows
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InputError(path, "cannot decode the paper: it is neither UTF-8 nor cp1252 text")


def draft_rubric(text: str, source: str, exam: str | None = None) -> Draft:
    """The rubric a paper implies, and notes on what to check; `source` names the paper in errors.

    Raises `InputError` (naming `source`) when the paper is empty or has no numbered questions.
    """
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise InputError(source, "the paper is empty")
    lines = text.split("\n")
    start = _answer_key_start(lines)
    paper = _read_structure(lines[:start], source)
    builder = _Builder(paper, source, list(enumerate(lines[start:], start=start + 1)))
    return builder.build(exam or Path(source).stem or "exam")


# ---- Markdown and LaTeX to plain text ----------------------------------------------------------

_MATH = re.compile(r"\$\$(.+?)\$\$|(?<![\\$])\$(?!\$)(.+?)(?<!\\)\$", re.S)
_LINK = re.compile(r"\[((?:[^\[\]\\]|\\.)*)\]\(([^()\s]*)\)")
_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|$<>])")
_BOXES = "☐□▢◻"
_CHECKS = "✓✔☑✅"
_TEX_FONTS = re.compile(
    r"\\(?:text|mathrm|mathcal|mathbf|mathit|mathsf|mathbb|boldsymbol|operatorname|textbf|textit|bm)\s*\{([^{}]*)\}"
)
_TEX_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_TEX_SQRT = re.compile(r"\\sqrt\s*\{([^{}]*)\}")
_SCRIPT = re.compile(r"([_^])\{([^{}]*)\}")
_TEX_WORDS = {
    "times": " x ", "cdot": " * ", "ast": "*", "in": " in ", "sim": " ~ ", "pm": " ± ", "mp": " ∓ ",
    "leq": " <= ", "le": " <= ", "geq": " >= ", "ge": " >= ", "neq": " != ", "ne": " != ",
    "approx": " ≈ ", "infty": "inf", "partial": "∂", "nabla": "∇", "quad": " ; ", "qquad": " ; ",
    "to": " -> ", "rightarrow": " -> ", "Rightarrow": " => ", "mapsto": " -> ", "ldots": "...",
    "cdots": "...", "dots": "...", "lvert": "|", "rvert": "|", "|": "||", "{": "{", "}": "}",
    ",": " ", ";": " ", ":": " ", "!": "", " ": " ",
}


def _plain_math(tex: str) -> str:
    """LaTeX math as a student would type it: `\\frac{a}{b}` -> a/b, `n_{in}` -> n_in, `\\lambda` -> lambda."""
    sized = r"\\(?:left|right|big|Big|bigg|Bigg)\s*(\\?[()\[\]|.{}])"  # \left( ... \right.
    text = re.sub(sized, lambda m: m[1].lstrip("\\").replace(".", ""), tex)
    previous = None
    while previous != text:
        previous = text
        text = _TEX_FONTS.sub(r"\1", text)
        text = _SCRIPT.sub(lambda m: m[1] + (m[2] if re.fullmatch(r"\w+", m[2]) else f"({m[2]})"), text)
        text = _TEX_SQRT.sub(r"sqrt(\1)", text)
        text = _TEX_FRAC.sub(lambda m: f"{_wrap(m[1])}/{_wrap(m[2])}", text)
    text = re.sub(r"\\([A-Za-z]+|.)", lambda m: _TEX_WORDS.get(m[1], m[1]), text)
    text = text.replace("{", "").replace("}", "")
    return _flat(re.sub(r"\s*;\s*(;\s*)*", "; ", text)).strip(" ;")


def _wrap(term: str) -> str:
    term = term.strip()
    return term if re.fullmatch(r"[\w.^∂]+", term) else f"({term})"


def _clean(text: str) -> str:
    """Markdown inline text as plain text: math converted, links unwrapped, bold and escapes removed."""
    out, last = [], 0
    for m in _MATH.finditer(text):
        out.append(_clean_markdown(text[last : m.start()]))
        out.append(_plain_math(m[1] if m[1] is not None else m[2]))
        last = m.end()
    out.append(_clean_markdown(text[last:]))
    return "".join(out)


def _clean_markdown(text: str) -> str:
    text = _LINK.sub(lambda m: m[1], text)
    text = re.sub(r"\\\(|\\\)", lambda m: m[0][1], text)
    text = _MD_ESCAPE.sub(r"\1", text)
    text = text.replace("**", "").replace("__", "")
    text = re.sub(f"[{_BOXES}]", "", text)
    text = _SCRIPT.sub(lambda m: m[1] + (m[2] if re.fullmatch(r"\w+", m[2]) else f"({m[2]})"), text)
    return text


def _flat(text: str) -> str:
    return " ".join(text.split())


def _tidy(text: str) -> str:
    """Cleaned, one line, no space before punctuation ("The β -VAE" stays as written)."""
    return re.sub(r"\s+([,.;:?!])(?=\s|$)", r"\1", _flat(_clean(text)))


# ---- the paper's structure: preamble, sections, question blocks ---------------------------------

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


# ---- one question block: its tail markers, options or sub-parts, answers -----------------------

_TAIL_BOX = re.compile(f"[{_BOXES}]\\s*$")
_LETTERS = r"[A-Ha-h](?:\s*(?:,|&|/|\band\b)\s*\(?[A-Ha-h]\)?)*"
_TAIL_BOLD_KEY = re.compile(rf"(?:\*\*|__)\s*\(?({_LETTERS})\)?\s*(?:\*\*|__)\s*$")
_TAIL_LINK_KEY = re.compile(rf"\[\s*\(?({_LETTERS})\)?\s*\]\([^()\s]*\)\s*$")
_TAIL_ANSWER_KEY = re.compile(
    rf"[(\[]?\s*\b(?:ans(?:wer)?|key|correct(?:\s+(?:answer|option))?)\s*[:.\-–—]?\s*\(?({_LETTERS})\)?\s*[)\]]?\s*$",
    re.I,
)
_TAIL_BARE_KEY = re.compile(r"(?<=[?:.)])\s+(?:\(([A-Ha-h])\)|([A-H]))\s*$")
_TAIL_MARKS = re.compile(
    r"[(\[{]?\s*(\d+(?:\.\d+)?)\s*(?:marks?|pts?\.?|points?)\s*[)\]}]?\s*$|\[\s*(\d+(?:\.\d+)?)\s*\]\s*$", re.I
)


def _strip_tail(text: str) -> tuple[str, float | None, tuple[str, ...], bool]:
    """A question or sub-part line without its trailing box, key and marks: (text, marks, keys, bare key)."""
    marks, keys, bare = None, (), False
    while True:
        text = text.rstrip()
        if m := _TAIL_BOX.search(text):
            text = text[: m.start()]
        elif m := _TAIL_BOLD_KEY.search(text) or _TAIL_LINK_KEY.search(text) or _TAIL_ANSWER_KEY.search(text):
            keys = keys or _letters(m[1])
            text = text[: m.start()]
        elif (m := _TAIL_MARKS.search(text)) and marks is None and float(m[1] or m[2]) > 0:
            marks = float(m[1] or m[2])
            text = text[: m.start()]
        elif not keys and (m := _TAIL_BARE_KEY.search(text)):
            keys, bare = _letters(m[1] or m[2]), True
            text = text[: m.start()]
        else:
            return text, marks, keys, bare


def _letters(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c.lower() for c in re.findall(r"(?<![A-Za-z])[A-Ha-h](?![A-Za-z])", text)))


_ENTRY_START = re.compile(  # "(a) ...", "a) ...", "A. ...", "- (a) ...", "**b)** ...", "- [x] b) ..."
    r"^\s*(?:[-*•+]\s+)?(?P<box>\[[ xX✓✔]\]\s*)?(?P<b1>\*\*|__)?\s*"
    r"(?:\((?P<l1>[a-hA-H])\)|(?P<l2>[a-hA-H])[).](?=\s|\*\*|__))(?P<b2>\*\*|__)?\s*(?P<rest>.*)$"
)
_INLINE_LABEL = re.compile(  # "(b)" or "b)" inside a line of options
    r"(?:(?<=\s)|^)(?P<b1>\*\*|__)?\s*(?:\((?P<l1>[a-hA-H])\)|(?P<l2>[a-hA-H])\))(?P<b2>\*\*|__)?(?=\s|$)"
)
_ANSWER_HEAD = re.compile(
    r"^\s*(?:#{1,6}\s*)?(?:[-*]\s+)?(?:\*\*|__)?\s*(?:correct\s+|model\s+|expected\s+|suggested\s+|sample\s+)?"
    r"(?:answers?|ans|keys?|solutions?|sol)\b\.?(?:\*\*|__)?",
    re.I,
)
_IMPERATIVE = re.compile(
    r"^(why|what|how|when|which|who|where|explain|discuss|describe|define|compare|contrast|derive|write|give|state|"
    r"list|show|prove|calculate|compute|find|justify|outline|sketch|draw|name|identify|mention|illustrate)\b",
    re.I,
)
_ONLY_LETTERS = re.compile(rf"\s*(?:(?:the\s+)?(?:option|choice)\s+)?\(?{_LETTERS}\)?\s*\.?\s*", re.I)
_YES_NO_QUESTION = re.compile(
    r"^(will|would|is|are|can|could|does|do|did|should|shall|has|have|was|were|may|might|must)\b", re.I
)


_LABEL_REST = re.compile(
    r"\s*(?:\((?P<p1>[a-h])\)|(?P<p2>[a-h])\))?\s*(?:\*\*|__)?\s*[:\-–—]\s*(?:\*\*|__)?\s*(?P<rest>.*)$", re.I
)


def _answer_label(line: str) -> tuple[str | None, str] | None:
    """An "Answer: ..." line: (the sub-part letter it names or None, the text after the label)."""
    m = _ANSWER_HEAD.match(line)
    if not m:
        return None
    after = line[m.end() :]
    labelled = _LABEL_REST.match(after)
    if labelled:
        part = labelled["p1"] or labelled["p2"]
        return (part.lower() if part else None), labelled["rest"]
    letters = re.match(rf"\s*(?P<rest>\(?{_LETTERS}\)?)\s*\.?\s*$", after)
    if letters:
        return None, letters["rest"]
    if re.fullmatch(r"\s*(?:keys?)?\s*(?:\*\*|__)?\s*:?\s*(?:\*\*|__)?\s*", after, re.I):
        return None, ""  # a heading over the answers: "**Answers**", "Answer key", "## Solutions"
    return None


# "(b)", "B" before a space or stop, "b" only before a stop (a lone "a" may be the article)
_KEY_LETTER = re.compile(
    r"\s*(?:\((?P<p>[a-hA-H])\)|(?P<u>[A-H])(?=\s|$|[.,:;)\-–—&/])|(?P<l>[a-h])(?=$|\s*[.,:;)\-–—&/]|\s+(?:and|or)\b))"
)
_KEY_JOINER = re.compile(r"\s*(?:,|&|/|\band\b)\s*")


def _keys_in(rest: str, options: dict[str, str]) -> tuple[str, ...]:
    """The key letter(s) an answer line gives: '(b)', 'B', 'b, d', 'Option B', or the option's text."""
    text = re.sub(r"^(?:the\s+)?(?:option|choice)\s+", "", _tidy(rest), flags=re.I)
    found: list[str] = []
    position = 0
    while True:
        m = _KEY_LETTER.match(text, position)
        if not m:
            break
        found.append((m["p"] or m["u"] or m["l"]).lower())
        joiner = _KEY_JOINER.match(text, m.end())
        if not joiner:
            break
        position = joiner.end()
    if found:
        return tuple(dict.fromkeys(found))
    wanted = text.casefold().rstrip(". ")
    for letter, option in options.items():
        if wanted and option.casefold().rstrip(". ") == wanted:
            return (letter,)
    return ()


@dataclass
class _Entry:
    """A lettered line (or inline chunk) under a question: an option or a sub-part."""

    letter: str
    raw: str
    line: int
    """The paper's line it came from: options on one line share it."""
    bold: bool = False
    checked: bool = False
    after: list[tuple[int, str]] = field(default_factory=list)


def _entries(body: list[tuple[int, str]]) -> tuple[list[tuple[int, str]], list[_Entry]]:
    """Split a block's body into the lines before the first lettered line and the lettered entries."""
    head: list[tuple[int, str]] = []
    entries: list[_Entry] = []
    expected = "a"
    answered = False
    for number, line in body:
        m = _ENTRY_START.match(line)
        letter = (m["l1"] or m["l2"]).lower() if m else None
        if m and letter == expected and (entries or not answered):
            checked = bool(m["box"] and m["box"].strip("[] "))
            chunks = _inline_chain(m["rest"], chr(ord(letter) + 1))
            first_raw = chunks[0][1]
            bold = bool(m["b1"] and m["b2"]) or bool(m["b1"] and re.search(r"(\*\*|__)\s*$", first_raw))
            entries.append(_Entry(letter, first_raw, number, bold=bold, checked=checked))
            for chunk_letter, chunk_raw, chunk_bold in chunks[1:]:
                entries.append(_Entry(chunk_letter, chunk_raw, number, bold=chunk_bold))
            expected = chr(ord(entries[-1].letter) + 1)
            continue
        if _answer_label(line) is not None:
            answered = True
        if entries:
            entries[-1].after.append((number, line))
        else:
            head.append((number, line))
    return head, entries


def _inline_chain(text: str, next_letter: str) -> list[tuple[str, str, bool]]:
    """'foo (b) bar (c) baz' after '(a)' -> [(a, foo), (b, bar), (c, baz)]: labels must come in order."""
    cuts: list[tuple[int, int, str, bool]] = []
    for m in _INLINE_LABEL.finditer(text):
        letter = (m["l1"] or m["l2"]).lower()
        if letter == next_letter:
            cuts.append((m.start(), m.end(), letter, bool(m["b1"] and m["b2"])))
            next_letter = chr(ord(letter) + 1)
    if not cuts:
        return [("a", text, False)]
    chunks = [("?", text[: cuts[0][0]], False)]
    for k, (start, end, letter, bold) in enumerate(cuts):
        stop = cuts[k + 1][0] if k + 1 < len(cuts) else len(text)
        chunks.append((letter, text[end:stop], bold))
    return chunks


_TICK = re.compile(f"\\s*(?:[{_CHECKS}]|\\((?:correct|right|answer)\\)|\\[(?:correct|x)\\]|←\\s*correct)\\s*", re.I)


def _option_text(raw: str) -> tuple[str, bool, bool]:
    """An option's text without its key markers: (text, marked bold, marked with a tick)."""
    text = raw.strip()
    checked = bool(_TICK.search(text))
    text = _TICK.sub(" ", text)
    text = text.strip()
    bold = len(text) > 4 and text.startswith(("**", "__")) and text.endswith(("**", "__"))
    text = re.sub(r"^(\*\*|__)|(\*\*|__)$", "", text)
    return _tidy(text), bold, checked


# ---- questions, before their marks are settled -----------------------------------------------


@dataclass
class _Item:
    """One rubric question in the making: a question, or one sub-part of it."""

    suffix: str
    kind: str
    prompt: str
    marks: float | None
    options: dict[str, str] = field(default_factory=dict)
    keys: tuple[str, ...] = ()
    answer: list[str] = field(default_factory=list)
    """Raw answer paragraphs (Markdown), in the paper's order."""
    notes: list[str] = field(default_factory=list)


@dataclass
class _Question:
    number: int
    section: int | None
    marks: float | None
    items: list[_Item]
    stem: str = ""
    id: str = ""


def _question(block: _Block) -> _Question:
    prompt_raw, marks, line_keys, bare = _strip_tail(block.text)
    head, entries = _entries(block.body)
    inline = _inline_chain(prompt_raw, "a") if re.search(r"(?:^|\s)\(a\)\s", prompt_raw, re.I) else []
    if len(inline) >= 3:  # options on the question line itself: "What is 2+2? (a) 3 (b) 4"
        prompt_raw, head = inline[0][1], []
        entries = [_Entry(letter, raw, block.line, bold=bold) for letter, raw, bold in inline[1:]]
        entries[-1].after = list(block.body)
    if entries and _are_options(entries, line_keys, head):
        if len(entries) >= 2:
            mcq = _mcq(prompt_raw, marks, line_keys, bare, head, entries)
            return _Question(block.number, block.section, marks, [mcq])
        item = _short(prompt_raw, marks, [])
        item.notes.append("an MCQ with fewer than two options found: write its options and key (type: mcq)")
        return _Question(block.number, block.section, marks, [item])
    if len(entries) >= 2:
        return _with_parts(block, prompt_raw, marks, head, entries)
    body = head + [(entry.line, f"({entry.letter}) {entry.raw}") for entry in entries]
    item = _short(prompt_raw, marks, body)
    if line_keys and not bare:
        item.notes.append(f"a key ({', '.join(line_keys)}) was found but no options: is this an MCQ?")
    return _Question(block.number, block.section, marks, [item])


def _are_options(entries: list[_Entry], line_keys: tuple[str, ...], head: list[tuple[int, str]]) -> bool:
    """Options, not sub-parts: a key says so, or they share one line, or none of them asks anything."""
    texts = [_option_text(e.raw) for e in entries]
    marked = sum(1 for e, (_, bold, tick) in zip(entries, texts) if bold or tick or e.bold or e.checked)
    if line_keys or 0 < marked < len(entries):
        return True
    lines = head + [line for e in entries for line in e.after]
    if any((label := _answer_label(line)) and _ONLY_LETTERS.fullmatch(label[1]) for _, line in lines):
        return True
    if len(entries) >= 2 and len({e.line for e in entries}) == 1:
        return True
    # sub-parts ask something ("Why ...?", "Explain ...") or carry their own marks; options state
    return not any(
        text.rstrip().endswith("?") or _strip_tail(entry.raw)[1] is not None or _IMPERATIVE.match(text)
        for entry, (text, _, _) in zip(entries, texts)
    )


def _mcq(prompt_raw: str, marks, line_keys, bare, head, entries: list[_Entry]) -> _Item:
    options: dict[str, str] = {}
    marked: list[str] = []
    for entry in entries:
        # an option's wrapped text: lines right under it, before a blank line or an answer line
        extra = []
        for _, line in entry.after:
            if not line.strip() or _answer_label(line) is not None or _ENTRY_START.match(line):
                break
            extra.append(line.strip())
        text, bold, checked = _option_text(" ".join([entry.raw, *extra]))
        options[entry.letter] = text or entry.letter
        if bold or checked or entry.bold or entry.checked:
            marked.append(entry.letter)
    if len(marked) == len(entries) and len(entries) > 1:
        marked = []  # every option bold: formatting, not a key
    answered: tuple[str, ...] = ()
    for _, line in head + [line for e in entries for line in e.after]:
        label = _answer_label(line)
        if label is not None and not answered:
            answered = _keys_in(label[1], options)
    notes = []
    sources = [("the question line", line_keys), ("a marked option", tuple(marked)), ("an answer line", answered)]
    found = [(name, keys) for name, keys in sources if keys]
    keys = found[-1][1] if found else ()  # an explicit answer line wins over markers
    if len({frozenset(k) for _, k in found}) > 1:
        said = "; ".join(f"{', '.join(k)} ({name})" for name, k in found)
        notes.append(f"the key markers disagree: {said}; {', '.join(keys)} was taken")
    unknown = [k for k in keys if k not in options]
    if unknown:
        notes.append(f"key {', '.join(unknown)} is not one of the options ({', '.join(options)}); set the key")
        keys = tuple(k for k in keys if k in options)
    elif bare and keys and found and found[0][0] == "the question line" and len(found) == 1:
        notes.append(f"the key {', '.join(keys)} was read from a bare letter at the end of the question: check it")
    if not keys:
        notes.append(_NO_KEY)
    return _Item("", "mcq", _tidy(prompt_raw), marks, options, keys, notes=notes)


_NO_KEY = "no key found in the paper: set 'key:' and remove 'void: true' (void: everyone gets the marks)"


def _short(prompt_raw: str, marks: float | None, body: list[tuple[int, str]]) -> _Item:
    """A question without parts: the prompt runs until its marks, a '?', an answer line or a blank line."""
    prompt_lines = [prompt_raw]
    rest = list(body)
    answer_at = next((k for k, (_, line) in enumerate(rest) if _answer_label(line) is not None), None)
    marks_at = None
    if marks is None and not prompt_raw.rstrip().endswith("?"):
        limit = answer_at if answer_at is not None else len(rest)
        for k in range(limit):
            if _strip_tail(rest[k][1])[1] is not None:
                marks_at = k
                break
    if answer_at is not None:
        cut = answer_at
    elif marks_at is not None:
        cut = marks_at + 1
    elif prompt_raw.strip() and (marks is not None or prompt_raw.rstrip().endswith("?")):
        cut = 0
    else:  # the prompt's first paragraph: "### Question 4 [6 marks]" is followed by its text
        start = next((k for k, (_, line) in enumerate(rest) if line.strip()), len(rest))
        cut = next((k for k in range(start, len(rest)) if not rest[k][1].strip()), len(rest))
    for _, line in rest[:cut]:
        text, line_marks, _, _ = _strip_tail(line)
        marks = marks if marks is not None else line_marks
        prompt_lines.append(text)
    return _Item("", "short", _tidy(" ".join(prompt_lines)), marks, answer=_paragraphs(_unlabel(rest[cut:])))


def _unlabel(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Answer lines without their "Answer:" labels ("Answer (b): x" keeps its part as "(b) x")."""
    out = []
    for number, line in lines:
        label = _answer_label(line)
        if label is not None:
            part, rest = label
            line = f"({part}) {rest}" if part else rest
        out.append((number, line))
    return out


def _paragraphs(lines: list[tuple[int, str]]) -> list[str]:
    """Blank-line separated paragraphs, hard-wrapped prose lines joined; bullets stay separate lines."""
    paragraphs: list[list[str]] = [[]]
    for _, line in lines:
        if line.strip():
            paragraphs[-1].append(line.rstrip())
        elif paragraphs[-1]:
            paragraphs.append([])
    out = []
    for para in paragraphs:
        if not para:
            continue
        text = para[0].strip()
        for line in para[1:]:
            listed = re.match(r"^\s*(?:[-*•+]\s+|\d+[.)]\s+|\(?[a-h]\)\s+)", line)
            if listed or text.endswith((".", "!", "?", ":", ";", "$$")):
                text += "\n" + line.strip()
            else:
                text += " " + line.strip()
        out.append(text)
    return out


def _with_parts(block: _Block, prompt_raw: str, marks, head, entries: list[_Entry]) -> _Question:
    stem = _tidy(" ".join([prompt_raw] + [line for _, line in head if _answer_label(line) is None]))
    items = []
    for entry in entries:
        text, part_marks, _, _ = _strip_tail(entry.raw)
        items.append(_Item(entry.letter, "short", _tidy(text), part_marks))
    interleaved = any(e.after and any(line.strip() for _, line in e.after) for e in entries[:-1])
    if interleaved:
        for entry, item in zip(entries, items):
            item.answer = _paragraphs(_unlabel(entry.after))
    else:
        _distribute(_paragraphs(_unlabel(entries[-1].after)), items)
    return _Question(block.number, block.section, marks, items, stem=stem)


_PART_LABEL = re.compile(
    r"^\s*(?:(?:\*\*|__)?\s*(?:answer|ans|solution)\s*)?\(?([a-h])\)\s*(?:\*\*|__)?\s*[:.\-–—]?\s*", re.I
)


def _distribute(paragraphs: list[str], items: list[_Item]) -> None:
    """Answers listed after all the sub-parts: by their labels ("(a) ...") if they have them, else in order."""
    by_letter = {item.suffix: item for item in items}
    labelled = [_PART_LABEL.match(p) for p in paragraphs]
    if paragraphs and labelled[0] and all(m is None or m[1].lower() in by_letter for m in labelled):
        current = None
        for para, m in zip(paragraphs, labelled):
            if m:
                current = by_letter[m[1].lower()]
                para = para[m.end() :]
            current.answer.append(para)
        for item in items:
            if not item.answer:
                item.notes.append("no answer labelled with this part was found")
        return
    if len(paragraphs) < len(items):
        lines = [line for p in paragraphs for line in p.split("\n") if line.strip()]
        if len(lines) >= len(items):
            paragraphs = lines
    for k, item in enumerate(items):
        if k < len(paragraphs):
            item.answer.append(paragraphs[k])
    if len(paragraphs) > len(items):
        last = items[-1]
        last.answer.extend(paragraphs[len(items) :])
        extra = len(paragraphs) - len(items) + 1
        last.notes.append(
            f"the paper has {len(paragraphs)} answer paragraphs for {len(items)} parts: the last {extra} went to "
            f"({last.suffix}); check which part each answers"
        )
    elif paragraphs and len(paragraphs) < len(items):  # none at all: each part's "no model answer" note says so
        first = items[len(paragraphs)]
        first.notes.append(
            f"the paper has {len(paragraphs)} answer paragraph(s) for {len(items)} parts, given in order: check them"
        )


# ---- an answer key gathered at the end of the paper ------------------------------------------------

_KEY_WORDS = (
    r"answer\s*keys?|answers?\s+(?:sheet|scheme)|(?:model|suggested|sample|expected|correct)\s+answers|answers"
    r"|solutions?\s+key|solutions|marking\s+(?:scheme|guide|key|memo)|mark\s+scheme|memo(?:randum)?|keys?"
)
_KEY_HEADING = re.compile(
    rf"^\s*(?:#{{1,6}}\s*)?(?:\*\*|__)?\s*(?i:{_KEY_WORDS})\b\s*(?:[(\[][^()\[\]]*[)\]])?\s*(?:\*\*|__)?\s*"
    r"[:.\-–—]?\s*(?:\*\*|__)?\s*(?P<rest>.*?)\s*$"
)
_COMPACT_KEY = re.compile(  # one of "1.B 2.C", "1-B, 2-C", "Q1 - (B)", "4. A, C", "B1: c"
    r"\s*(?:[,;|]\s*)?(?:(?P<section>[A-PR-Z])\.?(?=\d))?(?:(?i:q(?:uestion)?)\.?\s*)?(?P<number>\d{1,3})\s*"
    rf"[.):=\-–—]?\s*(?P<keys>\(?{_LETTERS}\)?)(?![\w(])\.?"
)
_KEY_ENTRY = re.compile(  # "Q5: ...", "5. ...", "5(a) ...", "Section B, 1. ...", "B1: ...", "**Q5.** ..."
    r"^\s*(?:[-*•+]\s+)?(?:#{1,6}\s*)?(?:\*\*|__)?\s*"
    r"(?:(?P<section>(?i:section|part)\s+(?:[A-Z]|[IVX]+|\d+))\s*[,:.\-–—]?\s*|(?P<letter>[A-PR-Z])\.?(?=\d))?"
    r"(?P<q>(?i:q(?:uestion)?)\.?\s*)?(?P<number>\d{1,3})"
    r"(?:\s*\((?P<p1>[a-h])\)|\.?(?P<p2>[a-h])(?![A-Za-z]))?"
    r"\s*(?:\*\*|__)?\s*(?P<sep>[.):=\-–—](?!\d))?\s*(?:\*\*|__)?\s*(?P<rest>.*?)\s*$"
)
_MARKS_FIRST = re.compile(r"^[(\[]\s*\d+(?:\.\d+)?\s*marks?\s*[)\]]\s*[:.\-–—]?\s*", re.I)
_KEY_COLUMNS = {
    "ref": re.compile(r"^(?:q|qn|q\.?\s*no\.?|question(?:\s+no\.?)?|no\.?|number|#|item)$", re.I),
    "answer": re.compile(r"\b(?:answers?|keys?|solutions?|options?|correct|ans)\b", re.I),
    "section": re.compile(r"^(?:section|part)$", re.I),
}


@dataclass
class _KeyEntry:
    """One entry of an answer key at the end of the paper: the question it names and what it says."""

    number: int
    section: str | None
    """The section it names, as the key writes it ("Section B", "B", a sub-heading): None when it names none."""
    part: str | None
    lines: list[tuple[int, str]]

    @property
    def text(self) -> str:
        return _flat(" ".join(line for _, line in self.lines))

    @property
    def letters(self) -> bool:
        """Only key letters ("B", "A, C"): an MCQ's key, never a model answer."""
        return bool(self.text) and bool(_ONLY_LETTERS.fullmatch(_tidy(self.text)))

    @property
    def label(self) -> str:
        """How notes name it: "17", "5(c)", "B1", "Section D 2"."""
        section = f"{self.section} " if self.section and len(self.section) > 1 else self.section or ""
        return f"{section}{self.number}{f'({self.part})' if self.part else ''}"


def _answer_key_start(lines: list[str]) -> int:
    """Where an answer key after the questions starts (the last heading that reads as one), else len(lines)."""
    first = next((k for k, line in enumerate(lines) if _question_start(line) is not None), None)
    if first is None:
        return len(lines)
    for k in range(len(lines) - 1, first, -1):
        m = _KEY_HEADING.match(lines[k])
        if m and (not m["rest"] or _compact_keys(m["rest"])) and _reads_as_key(lines[k + 1 :], bool(m["rest"])):
            return k
    return len(lines)


def _reads_as_key(lines: list[str], keyed: bool) -> bool:
    """What follows a key heading is a key: entries (or a sub-heading over them) first, and no question in it."""
    content = [line for line in lines if line.strip()]
    if not content:
        return keyed
    if not (_key_line(content[0]) or _table_cells(content[0]) is not None or _key_heading(content[0])):
        return False
    if not keyed and not any(_key_line(line) or _table_cells(line) is not None for line in content):
        return False
    # a question after the heading ("Answers" over one question's list, then question 5) means it is no key
    return not any(
        (question := _question_start(line)) and _strip_tail(question[1])[0].rstrip().endswith("?") for line in content
    )


def _key_line(line: str) -> bool:
    return bool(_compact_keys(line)) or _key_entry(line) is not None


def _compact_keys(text: str) -> list[re.Match[str]]:
    """A line made only of numbered key letters, one match each; [] when anything else is on it."""
    text = re.sub(r"^\s*(?:[-*•+]\s+)?", "", text.replace("**", "").replace("__", "")).rstrip(" ,;")
    found, position = [], 0
    while position < len(text):
        m = _COMPACT_KEY.match(text, position)
        if not m:
            return []
        found.append(m)
        position = m.end()
    return found


def _key_entry(line: str) -> re.Match[str] | None:
    """A numbered entry; a bare number needs a separator ("5. ", "5(a) ") so "100 neurons ..." continues an answer."""
    m = _KEY_ENTRY.match(line)
    return m if m and (m["q"] or m["section"] or m["letter"] or m["sep"] or m["p1"]) else None


def _table_cells(line: str) -> list[str] | None:
    stripped = line.strip()
    if not stripped.startswith("|"):
        return None
    return [_tidy(cell) for cell in stripped.strip("|").split("|")]


def _key_heading(line: str) -> tuple[str, bool] | None:
    """A short line over a group of key entries: (its text, whether marked up as a heading), or None."""
    stripped = line.strip()
    marked = bool(
        stripped.startswith("#")
        or re.fullmatch(r"(\*\*|__).+?(\*\*|__)\s*:?", stripped)
        or _SECTION_PLAIN.match(line)
        or _SECTION_MARKS.match(line)
    )
    name = _tidy(re.sub(r"^#+\s*", "", stripped)).strip(" :-–—")
    if not name or len(name.split()) > 6 or name.endswith((".", "?", "!")) or _ENTRY_START.match(name):
        return None
    return name, marked


def _read_key(lines: list[tuple[int, str]], names_section: Callable[[str], bool]) -> list[_KeyEntry]:
    """The entries of an answer key (`lines` from its heading); `names_section` tells a sub-heading naming one."""
    entries: list[_KeyEntry] = []
    current: _KeyEntry | None = None  # the entry a plain line continues
    section: str | None = None
    columns: dict[str, int | None] | None = None  # of the table being read
    inner_next: int | None = None  # the next number of a numbered list inside a model answer
    gap, written = False, ""  # a blank line just before; the last line with text

    def add(number: str, qualifier: str | None, part: str | None, at: int, text: str) -> _KeyEntry:
        entry = _KeyEntry(int(number), qualifier or section, part, [(at, text)] if text else [])
        entries.append(entry)
        return entry

    (head_at, head), *rest = lines
    for m in _compact_keys(_KEY_HEADING.match(head)["rest"]):
        add(m["number"], m["section"], None, head_at, m["keys"])
    for at, line in rest:
        if not line.strip():
            gap = True
            if current is not None:
                current.lines.append((at, line))
            continue
        (prior, written), (after_gap, gap) = (written, line), (gap, False)
        cells = _table_cells(line)
        if cells is not None:
            current = None
            columns, row = _table_row(cells, columns)
            if row is not None:
                ref, answer, qualifier = row
                add(ref["number"], qualifier or ref["section"] or ref["letter"], ref["p1"] or ref["p2"], at, answer)
            continue
        columns = None
        compact = _compact_keys(line)
        if compact:
            for m in compact:
                add(m["number"], m["section"], None, at, m["keys"])
            current = None
            continue
        m = _key_entry(line)
        bare = m and not (m["q"] or m["section"] or m["letter"] or m["p1"] or m["p2"])
        if bare and current is not None and not current.letters:
            number = int(m["number"])  # "1. Dropout" right under "Q4: Two regularisers:" is a list, not question 1
            listed = (not after_gap and number != current.number + 1) or prior.rstrip().endswith(":")
            if inner_next == number or (number == 1 and listed):
                inner_next, m = number + 1, None
        if m:
            part = m["p1"] or m["p2"]
            current = add(m["number"], m["section"] or m["letter"], part, at, _MARKS_FIRST.sub("", m["rest"]))
            inner_next = None
            continue
        heading = _key_heading(line)
        if heading and (heading[1] or current is None or current.letters or names_section(heading[0])):
            section, current = heading[0], None
            continue
        if current is not None:
            current.lines.append((at, line))
    return entries


def _table_row(
    cells: list[str], columns: dict[str, int | None] | None
) -> tuple[dict[str, int | None] | None, tuple[re.Match[str], str, str | None] | None]:
    """A row of an answer-key table: the columns from here on (a header row names them), and the row's
    (question reference, answer, section) unless it is a header or a rule."""
    if all(re.fullmatch(r":?-+:?", cell) for cell in cells):
        return columns, None
    columns = columns or {"ref": 0, "answer": 1, "section": None}  # until a header row says otherwise
    ref = _KEY_ENTRY.match(cells[columns["ref"]]) if columns["ref"] < len(cells) else None
    if ref is None or ref["rest"]:
        named = {name: next((k for k, cell in enumerate(cells) if pattern.search(cell)), None)
                 for name, pattern in _KEY_COLUMNS.items()}
        return {name: named[name] if named[name] is not None else columns[name] for name in columns}, None
    answer = cells[columns["answer"]] if columns["answer"] < len(cells) else ""
    section = cells[columns["section"]] if columns["section"] is not None and columns["section"] < len(cells) else None
    return columns, (ref, answer, section or None)


def _key_targets(entry: _KeyEntry, question: _Question) -> list[_Item]:
    """The items an entry answers: the part it names, else the whole question."""
    if entry.part is None:
        return question.items
    return [i for i in question.items if len(question.items) > 1 and i.suffix == f"{question.id}{entry.part}"]


def _key_fit(entry: _KeyEntry, question: _Question | None) -> str:
    """How an entry fits a question: 'missing', 'conflict' (wrong kind), 'disagree', 'agree' or 'fill'."""
    items = _key_targets(entry, question) if question is not None else []
    if not items:
        return "missing"
    if items[0].kind == "mcq":
        keys = _keys_in(entry.text, items[0].options)
        if not keys or not set(keys) <= set(items[0].options):
            return "conflict"
        if not items[0].keys:
            return "fill"
        return "agree" if set(keys) == set(items[0].keys) else "disagree"
    if entry.letters or not entry.text:
        return "conflict"
    return "fill" if any(not item.answer for item in items) else "disagree"


def _part_answers(entry: _KeyEntry, items: list[_Item], question_id: str) -> list[list[str]]:
    """An entry's answers to a question's sub-parts: by their labels ("(a) ... (b) ..."), else in order (noted)."""
    letters = [item.suffix[len(question_id) :] for item in items]
    head, labelled = _entries(entry.lines)
    if labelled and all(e.letter in letters for e in labelled):
        answers = {e.letter: _paragraphs([(e.line, e.raw), *e.after]) for e in labelled}
        if any(line.strip() for _, line in head):
            items[0].notes.append("the answer key's text before the part labels was not used: check it")
        for item, letter in zip(items, letters):
            if letter not in answers:
                item.notes.append("no answer labelled with this part was found in the answer key")
        return [answers.get(letter, []) for letter in letters]
    spare = [_Item(item.suffix, "short", item.prompt, item.marks) for item in items]
    _distribute(_paragraphs(entry.lines), spare)
    for item, filled in zip(items, spare):
        item.notes.extend(filled.notes)
    return [filled.answer for filled in spare]


def _excerpt(text: str, words: int = 12) -> str:
    said = _tidy(text).split()
    return " ".join(said[:words]) + (" ..." if len(said) > words else "")


# ---- the rubric: ids, marks, points --------------------------------------------------------------


class _Builder:
    def __init__(self, paper: _Paper, source: str, key_lines: list[tuple[int, str]] | None = None) -> None:
        self.paper = paper
        self.source = source
        self.notes: list[Note] = []
        self.questions = [_question(block) for block in paper.blocks]
        self.key_lines = key_lines or []
        """The answer key at the end of the paper, from its heading: (line number, line)."""
        self.key_entries = 0
        self.unmatched: list[str] = []
        self.from_key: set[str] = set()
        """Items an answer-key entry was given to: a second entry for one is noted."""

    def build(self, exam: str) -> Draft:
        self._assign_ids()
        if self.key_lines:
            self._apply_key()
        self._settle_marks()
        data: dict[str, Any] = {"exam": exam, "version": 1, "questions": []}
        if self.paper.title:
            data["title"] = self.paper.title
        stems: dict[str, str] = {}
        for question in self.questions:
            if question.stem:
                letters = ", ".join(i.suffix[len(question.id) :] for i in question.items)
                stems[question.items[0].suffix] = f"{question.id} ({letters}): {question.stem}"
            for item in question.items:
                data["questions"].append(self._question_data(item))
        total = sum(q["marks"] for q in data["questions"])
        if self.paper.total is not None and not math.isclose(total, self.paper.total, abs_tol=1e-6):
            said = f"the paper says {self.paper.total:g} marks, the questions add up to {total:g}"
            self.notes.insert(0, Note(None, None, said))
        rubric = parse_rubric(data, self.source)
        sections = tuple(
            Section(s.name, s.marks, tuple(i.suffix for q in self.questions if q.section == k for i in q.items))
            for k, s in enumerate(self.paper.sections)
        )
        sections = tuple(s for s in sections if s.question_ids)
        return Draft(rubric, tuple(self.notes), self.source, sections, stems, self.key_entries, tuple(self.unmatched))

    def _assign_ids(self) -> None:
        numbers = [q.number for q in self.questions]
        restart = len(set(numbers)) < len(numbers)
        prefixes = self._prefixes() if restart else {}
        seen: set[str] = set()
        for question in self.questions:
            prefix = prefixes.get(question.section, "Q") if restart else "Q"
            qid = f"{prefix}{question.number}"
            while qid in seen:  # numbering that repeats inside one section
                qid += "'"
            seen.add(qid)
            question.id = qid
            for item in question.items:
                item.suffix = f"{qid}{item.suffix}"

    def _prefixes(self) -> dict[int | None, str]:
        prefixes: dict[int | None, str] = {None: "Q"}
        for k, section in enumerate(self.paper.sections):
            m = re.match(r"(?:section|part)\s+([A-Za-z]+|\d+)\b", section.name, re.I)
            if m:
                candidate = m[1].upper() if m[1].isalpha() else f"S{m[1]}."
            else:
                letter = re.search(r"[A-Za-z]", section.name)
                candidate = letter[0].upper() if letter else f"S{k + 1}."
            if candidate in prefixes.values():
                candidate = f"S{k + 1}."
            prefixes[k] = candidate
        return prefixes

    # ---- the answer key at the end: which question each entry names, and what it fills ----

    def _apply_key(self) -> None:
        """Fill what the paper left without a key or answer from the answer key at its end; note the rest."""
        entries = _read_key(self.key_lines, lambda name: self._section_named(name) is not None)
        self.key_entries = len(entries)
        placed: dict[int, _Question | None] = {}
        loose = []
        for entry in entries:
            section = self._section_named(entry.section) if entry.section else None
            if section is None:
                loose.append(entry)  # a sub-heading the paper does not have ("MCQs") names no section
            else:
                placed[id(entry)] = self._in_section(section, entry.number)
        placed.update(self._place_loose(loose))
        for entry in entries:
            if id(entry) not in placed:
                continue  # numbers the paper could be read more than one way: noted, not used
            question = placed[id(entry)]
            if _key_fit(entry, question) == "missing":
                self.unmatched.append(entry.label)
            else:
                self._fill(entry, question)
        if self.unmatched:
            said = f"the answer key at the end names {', '.join(self.unmatched)}, which the paper has no question for"
            self._note(None, f"{said}: not used")

    def _section_named(self, name: str) -> int | None:
        """The paper's section (with questions) a key names: by its heading's words, its letter or its id prefix."""
        wanted = _section_words(name)
        if not wanted:
            return None
        prefixes = self._prefixes()
        found = set()
        for k, section in enumerate(self.paper.sections):
            if not any(q.section == k for q in self.questions):
                continue
            words = _section_words(section.name)
            if words[: len(wanted)] == wanted or wanted[: len(words)] == words:
                found.add(k)
            elif len(wanted) == 1 or (len(wanted) == 2 and wanted[0] in ("section", "part")):
                letter = re.match(r"(?:section|part)\s+(\w+)", section.name, re.I)
                if wanted[-1] in (prefixes[k].casefold().rstrip("."), letter[1].casefold() if letter else None):
                    found.add(k)
        return found.pop() if len(found) == 1 else None

    def _in_section(self, section: int, number: int) -> _Question | None:
        """Question `number` of a section: by its number where the section counts from 1, else by position."""
        members = [q for q in self.questions if q.section == section]
        if members and members[0].number == 1:
            return next((q for q in members if q.number == number), None)
        return members[number - 1] if 0 < number <= len(members) else None

    def _place_loose(self, entries: list[_KeyEntry]) -> dict[int, _Question | None]:
        """Entries naming no section: read every way the paper allows, and the reading that fits best taken."""
        if not entries:
            return {}
        runs = [[entries[0]]]
        for previous, entry in itertools.pairwise(entries):
            parts = entry.part and previous.part and entry.part > previous.part
            restarts = entry.number < previous.number or (entry.number == previous.number and not parts)
            if restarts:
                runs.append([entry])
            else:
                runs[-1].append(entry)
        first, last = entries[0].label, entries[-1].label
        said = f"entries {first} to {last} name" if len(entries) > 1 else f"entry {first} names"
        said = f"the answer key's {said} no section"
        readings = self._readings(runs)
        if not readings:
            self._note(None, f"{said} and number afresh {len(runs)} times: name the section above each group")
            return {}
        scored = []
        for reading, targets in readings:
            fits = [_key_fit(entry, question) for entry, question in zip(entries, targets)]
            misfits = sum(fit in ("missing", "conflict") for fit in fits)
            scored.append(((misfits, fits.count("disagree"), -fits.count("fill")), reading, targets))
        scored.sort(key=lambda r: r[0])
        (score, reading, targets), *others = scored
        ids = [q.id if q else None for q in targets]
        rivals = [r for r in others if r[0][0] == score[0] and [q.id if q else None for q in r[2]] != ids]
        if any(r[0] == score for r in rivals):
            ways = "; ".join(name for fit, name, _ in scored if fit == score)
            self._note(None, f"{said} and could be read more than one way ({ways}): not used; head them with a section")
            return {}
        if rivals:
            said = f"{said}: read {reading}, which contradicts fewer of the paper's keys and fills more of its gaps"
            self._note(None, f"{said}, though {rivals[0][1]} fits as well: check")
        return {id(entry): question for entry, question in zip(entries, targets)}

    def _readings(self, runs: list[list[_KeyEntry]]) -> list[tuple[str, list[_Question | None]]]:
        """Each way unnamed numbers can be read, with the question each entry then names (None: no such one)."""
        entries = [entry for run in runs for entry in run]
        numbers = [q.number for q in self.questions]
        sections = [k for k in range(len(self.paper.sections)) if any(q.section == k for q in self.questions)]
        if len(set(numbers)) == len(numbers) and (len(runs) == 1 or not sections):
            by_number = {q.number: q for q in self.questions}  # the paper numbers through: a number is a number
            return [("by number", [by_number.get(entry.number) for entry in entries])]
        readings = []
        if len(runs) == 1:
            order = self.questions
            through = [order[e.number - 1] if 0 < e.number <= len(order) else None for e in entries]
            readings.append(("numbered through the paper", through))
        for chosen in itertools.combinations(sections, len(runs)):
            names = ", ".join(repr(self.paper.sections[k].name) for k in chosen)
            targets = [self._in_section(k, entry.number) for run, k in zip(runs, chosen) for entry in run]
            readings.append((f"as section{'s' if len(chosen) > 1 else ''} {names}", targets))
        return readings

    def _fill(self, entry: _KeyEntry, question: _Question) -> None:
        items = _key_targets(entry, question)
        if any(item.suffix in self.from_key for item in items):
            items[0].notes.append(f"the answer key at the end gives {entry.label} more than once: the first was used")
            return
        self.from_key.update(item.suffix for item in items)
        first = items[0]
        if first.kind == "mcq":
            keys = _keys_in(entry.text, first.options)
            if not keys or not set(keys) <= set(first.options):
                said = f"the answer key at the end gives '{_excerpt(entry.text)}' for this MCQ"
                first.notes.append(f"{said}, not one of its options ({', '.join(first.options)}): set the key")
            elif not first.keys:
                first.keys = keys
                first.notes = [note for note in first.notes if note != _NO_KEY]
            elif set(keys) != set(first.keys):
                ours, theirs = ", ".join(first.keys), ", ".join(keys)
                said = f"the key under the question is {ours}, the answer key at the end says {theirs}"
                first.notes.append(f"{said}: {ours} was kept")
            return
        if entry.letters or not entry.text:
            said = f"the answer key at the end gives '{_excerpt(entry.text)}' for this question"
            first.notes.append(f"{said}, which has no options: is it an MCQ? (not used)")
            return
        answers = [_paragraphs(entry.lines)] if len(items) == 1 else _part_answers(entry, items, question.id)
        for item, paragraphs in zip(items, answers):
            if paragraphs and not item.answer:
                item.answer = paragraphs
            elif paragraphs and _flat(_clean(" ".join(item.answer))) != _flat(_clean(" ".join(paragraphs))):
                said = "the model answer under the question differs from the answer key's at the end"
                item.notes.append(f"{said}: the one under the question was kept (the key: '{_excerpt(paragraphs[0])}')")

    def _settle_marks(self) -> None:
        paper = self.paper
        for question in self.questions:  # a question without marks whose parts all have theirs
            if question.marks is None and all(i.marks is not None for i in question.items):
                question.marks = sum(i.marks for i in question.items)
            each = paper.sections[question.section].each if question.section is not None else None
            if question.marks is None and (each or paper.each):
                question.marks = each or paper.each
        for k, section in enumerate(paper.sections):
            members = [q for q in self.questions if q.section == k]
            if section.marks is not None and members:
                self._share_total(members, section.marks, f"section {section.name!r}")
        unmarked = [q for q in self.questions if q.marks is None]
        if unmarked and paper.total is not None:
            known = sum(q.marks for q in self.questions if q.marks is not None)
            if paper.total - known > 0:
                self._share_total(unmarked, paper.total, "the paper", left=paper.total - known)
        for question in self.questions:
            if question.marks is None:
                question.marks = DEFAULT_MARKS
                self._note(question.items[0].suffix, f"no marks given for {question.id}: {DEFAULT_MARKS:g} assumed")
            parts = [i for i in question.items if i.marks is None]
            known = sum(i.marks for i in question.items if i.marks is not None)
            if not parts:
                if not math.isclose(known, question.marks, abs_tol=1e-6):
                    said = f"{question.id} says {question.marks:g} marks, its parts add up to {known:g}"
                    self._note(question.items[0].suffix, said)
                continue
            left = question.marks - known
            if left <= 0:
                shares = [DEFAULT_MARKS / 2] * len(parts)
                said = f"{question.id}'s marked parts already carry its {question.marks:g} marks"
                self._note(parts[0].suffix, f"{said}: {shares[0]:g} assumed for each of the others")
            else:
                shares = _share(left, len(parts))
                if len(question.items) > 1:
                    said = f"{question.id}'s {left:g} marks shared out among its {len(parts)} parts ({_said(shares)})"
                    self._note(parts[0].suffix, f"{said}: they carry no marks of their own")
            for item, share in zip(parts, shares):
                item.marks = share

    def _share_total(self, members: list[_Question], total: float, where: str, left: float | None = None) -> None:
        """Share `total` (or what is `left` of it after the other questions) among the members without marks."""
        rest = left is not None
        known = sum(q.marks for q in members if q.marks is not None)
        unknown = [q for q in members if q.marks is None]
        if not unknown:
            if not math.isclose(known, total, abs_tol=1e-6):
                said = f"{where} says {total:g} marks, its questions add up to {known:g}"
                self._note(members[0].items[0].suffix, said)
            return
        left = left if rest else total - known
        if left <= 0:
            said = f"{where} says {total:g} marks, but its marked questions already add up to {known:g}"
            self._note(unknown[0].items[0].suffix, said)
            return
        shares = _share(left, len(unknown))
        for question, share in zip(unknown, shares):
            question.marks = share
        if rest:
            text = (
                f"{where} says {total:g} marks; the {left:g} its questions' own marks leave are shared out "
                f"among the {len(unknown)} without ({_said(shares)})"
            )
        elif len(unknown) == 1:
            text = f"{where}: its {left:g} marks go to {unknown[0].id}, which carries no marks of its own"
        else:
            text = f"{where}: {left:g} marks shared out among its {len(unknown)} questions without marks"
            text += f" ({_said(shares)})"
        self._note(unknown[0].items[0].suffix, text)

    def _note(self, question_id: str | None, text: str, point_id: str | None = None) -> None:
        self.notes.append(Note(question_id, point_id, text))

    def _question_data(self, item: _Item) -> dict[str, Any]:
        for text in item.notes:
            self._note(item.suffix, text)
        if item.kind == "mcq":
            data: dict[str, Any] = {"id": item.suffix, "type": "mcq", "marks": item.marks, "prompt": item.prompt}
            data["options"] = item.options
            if item.keys:
                data["key"] = item.keys[0] if len(item.keys) == 1 else list(item.keys)
            else:
                data["void"] = True
            return data
        model_answer, pieces, notes = _answer_pieces(item.answer, item.prompt, item.marks)
        for text in notes:
            self._note(item.suffix, text)
        step, marks, merged = _fit(pieces, item.marks)
        if merged:
            said = f"merged the answer's {merged} claims into {len(pieces)} points to fit {_count(item.marks, 'mark')}"
            self._note(item.suffix, f"{said}: check the grouping")
        if len(set(marks)) > 1:
            self._note(
                item.suffix,
                f"marks shared in steps of {step:g} as evenly as they go ({'/'.join(f'{m:g}' for m in marks)}): "
                "move marks to the points that matter most",
            )
        points = []
        formulas = 0
        for k, (piece, mark) in enumerate(zip(pieces, marks)):
            if piece.formula:
                formulas += 1
                point_id = "formula" if formulas == 1 else f"formula{formulas}"
            elif piece.verdict:
                point_id = "verdict"
            else:
                point_id = f"p{k + 1}"
            point: dict[str, Any] = {"id": point_id, "text": piece.text, "marks": mark}
            if piece.patterns:
                point["patterns"] = list(piece.patterns)
            if piece.contradictions:
                point["contradictions"] = list(piece.contradictions)
            points.append(point)
            for text in piece.notes:
                self._note(item.suffix, text, point_id)
        return {
            "id": item.suffix,
            "type": "short",
            "marks": item.marks,
            "prompt": item.prompt,
            "model_answer": model_answer,
            "step": step,
            "points": points,
        }


def _section_words(name: str) -> list[str]:
    """A section's name as words, without what a key adds to it ("Section B answers", "Beginner (MCQ key)")."""
    name = re.sub(r"[(\[][^()\[\]]*[)\]]", " ", name.casefold())
    words = re.findall(r"\w+", name)
    while words and words[-1] in ("answers", "answer", "key", "keys", "solutions", "memo"):
        words.pop()
    return words


def _said(shares: Sequence[float]) -> str:
    return f"{shares[0]:g} each" if len(set(shares)) == 1 else "/".join(f"{s:g}" for s in shares)


def _share(total: float, parts: int) -> list[float]:
    """`total` in `parts` shares on the coarsest grid (0.5, 0.25, ...) giving each one; earlier ones take the rest."""
    for grid in (0.5, 0.25, 0.1, 0.05, 0.01):
        units = round(total / grid)
        if math.isclose(units * grid, total, abs_tol=1e-9) and units >= parts:
            base, extra = divmod(units, parts)
            return [round((base + (1 if k < extra else 0)) * grid, 4) for k in range(parts)]
    return [round(total / parts, 4)] * (parts - 1) + [round(total - round(total / parts, 4) * (parts - 1), 4)]


# ---- a model answer as points ---------------------------------------------------------------------


@dataclass
class _Piece:
    text: str
    formula: bool = False
    verdict: bool = False
    patterns: tuple[str, ...] = ()
    contradictions: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)


_CITATION = re.compile(
    r"\b(lecture|slides?|chapter|ch\.|page|pp?\.|textbook|book|notes|ref(erence)?|source|see)\b", re.I
)
_BACK_REFERENCE = re.compile(
    r"^(these|this|those|such|however|but|example|for example|for instance|e\.g\.|i\.e\.|in other words|that is|"
    r"a (well[- ]known )?counter-?example|(an|one|another) example)\b",
    re.I,
)
_CONSEQUENCE = re.compile(
    r",\s+(?P<word>making|leading to|resulting in|causing|which makes|which means|and thus|and hence|and so|so that|"
    r"so|hence|thus|therefore|because|since|and (?=(?:it|they|this|these|there|we)\b))\s+",
    re.I,
)
_CONSEQUENCE_LEAD = {
    "making": "This makes", "leading to": "This leads to", "resulting in": "This results in", "causing": "This causes",
    "which makes": "This makes", "which means": "This means", "and thus": "Thus", "and hence": "Hence",
    "and so": "So", "so that": "So", "so": "So", "hence": "Hence", "thus": "Thus", "therefore": "Therefore",
    "because": "Because", "since": "Because", "and": "",
}
_VERDICT = re.compile(r"^(yes|no)\b[\s.,!:;—–-]*", re.I)
_SAY_YES = r"^\W*(yes|yeah|yep|of course|definitely)\b"
_SAY_NO = r"^\W*(no|nope|not really|not necessarily)\b"


def _answer_pieces(paragraphs: Sequence[str], prompt: str, marks: float) -> tuple[str, list[_Piece], list[str]]:
    """The model answer (one line) and its candidate points, in order, with notes on the question."""
    notes: list[str] = []
    texts: list[str] = []
    citations: list[str] = []
    pieces: list[_Piece] = []
    for para in paragraphs:
        display = re.fullmatch(r"\s*\$\$(.+?)\$\$\s*|\s*\\\[(.+?)\\\]\s*", para, re.S)
        if display:
            formula = _plain_math(display[1] or display[2])
            texts.append(formula)
            pieces.append(_formula_piece(formula))
            continue
        text = _clean(para)
        flat = _tidy(para)
        if not flat:
            continue
        if _CITATION.search(flat) and len(flat.split()) <= 10 and not re.search(r"[.!?]\s+\S", flat):
            citations.append(flat.strip(" .()"))
            continue
        texts.append(flat)
        if _looks_like_formula(flat):
            pieces.append(_formula_piece(flat))
            continue
        pieces.extend(_Piece(claim) for claim in _claims(text))
    model_answer = " ".join(texts)
    if citations:
        model_answer = f"{model_answer} ({'; '.join(citations)})".strip()
    if not pieces:
        notes.append("no model answer found in the paper: write it and its points (as drafted, nobody earns marks)")
        return TODO_ANSWER, [_Piece(TODO_POINT)], notes
    pieces = _verdict(pieces, prompt, notes)
    if len(pieces) == 1 and not pieces[0].formula and marks >= 1 - 1e-9:
        pieces = _split_consequence(pieces[0])
    if all(p.formula for p in pieces) and re.search(r"\b(explain|why|justify|interpret|describe)\b", prompt, re.I):
        notes.append("the question asks for an explanation, but the paper answers with a formula only: add a point")
    return model_answer, pieces, notes


def _verdict(pieces: list[_Piece], prompt: str, notes: list[str]) -> list[_Piece]:
    if not (_YES_NO_QUESTION.match(prompt) and prompt.rstrip().endswith("?")):
        return pieces
    first = pieces[0]
    m = _VERDICT.match(first.text) if not first.formula else None
    if not m:
        notes.append(
            "a yes/no question, but the model answer states no verdict: add it as a point, with patterns and"
            " contradictions for the two answers"
        )
        return pieces
    said = m[1].capitalize()
    verdict = _Piece(
        f"{said}.",
        verdict=True,
        patterns=(_SAY_YES if said == "Yes" else _SAY_NO,),
        contradictions=(_SAY_NO if said == "Yes" else _SAY_YES,),
        notes=[f"the verdict of a yes/no question, read from the words: reword it as a statement ('{said}, ...')"],
    )
    rest = first.text[m.end() :].strip()
    remaining = ([_Piece(rest[:1].upper() + rest[1:])] if re.search(r"\w", rest) else []) + pieces[1:]
    return [verdict, *remaining]


def _claims(text: str) -> list[str]:
    """Sentences and bullet items of a paragraph, with qualifying sentences and lead-ins joined."""
    text = re.sub(r"\?\s*(?:→|->|=>)\s*", ": ", text)
    text = re.sub(r"(?m)^\s*(?:[-*•+]|\d{1,2}[.)])\s+", "", text)  # list markers: each item is a claim
    pieces: list[str] = []
    for sentence in _sentences(text):
        sentence = _flat(sentence)
        if pieces and (pieces[-1].endswith(":") or _BACK_REFERENCE.match(sentence)):
            pieces[-1] = f"{pieces[-1]} {sentence}"
        else:
            pieces.append(sentence)
    return [_tidy(p).rstrip(" ;,") for p in pieces if re.search(r"\w", p)]


def _sentences(text: str) -> list[str]:
    """`grader.segment.sentences`, but a stop inside brackets ("(Cybenko, 1989; Hornik, 1991)") is no break."""
    masked, depth = [], 0
    for k, char in enumerate(text):
        depth += char in "([{"
        if depth > 0 and char in ".;!?" and k + 1 < len(text) and text[k + 1] in " \n":
            masked.append({".": "\u0001", ";": "\u0002", "!": "\u0003", "?": "\u0004"}[char])
        else:
            masked.append(char)
        depth = max(0, depth - (char in ")]}"))
    restore = str.maketrans({"\u0001": ".", "\u0002": ";", "\u0003": "!", "\u0004": "?"})
    return [s.translate(restore) for s in sentences("".join(masked))] or [text.strip()]


def _split_consequence(piece: _Piece) -> list[_Piece]:
    """One sentence making two claims ("X, making Y") as two points; the caller's notes say it was split."""
    masked, depth = [], 0
    for char in piece.text:
        depth += char in "([{"
        masked.append("\u0000" if depth > 0 else char)
        depth = max(0, depth - (char in ")]}"))
    m = _CONSEQUENCE.search("".join(masked))
    if not m:
        return [piece]
    first = piece.text[: m.start()].rstrip(" ,")
    lead = _CONSEQUENCE_LEAD[m["word"].casefold()]
    rest = piece.text[m.end() :].strip()
    second = f"{lead} {rest}" if lead else rest[:1].upper() + rest[1:]
    if not first.endswith((".", "!", "?")):
        first += "."
    note = f"one sentence split at '{m['word']}' into two points: check that each is a claim of its own"
    return [_Piece(first, notes=[note]), _Piece(second)]


def _fit(pieces: list[_Piece], marks: float) -> tuple[float, list[float], int]:
    """(step, point marks, claims merged from) for `marks` over the pieces, merged in place when too many."""
    before = len(pieces)
    steps = None
    for step in (0.5, 0.25):
        count = marks / step
        if math.isclose(count, round(count), abs_tol=1e-6) and len(pieces) <= min(round(count), MAX_POINTS):
            steps = step
            break
    if steps is None:
        steps = 0.25 if math.isclose(marks / 0.25, round(marks / 0.25), abs_tol=1e-6) else choose_step(marks)
        limit = max(1, min(round(marks / steps), MAX_POINTS))
        verdict = pieces[:1] if len(pieces) > 1 and limit > 1 and pieces[0].verdict else []
        pieces[:] = pieces[len(verdict) :]  # a verdict stays a point of its own, with its patterns
        while len(pieces) > limit - len(verdict):
            size = [len(p.text.split()) for p in pieces]
            i = min(range(len(pieces)), key=lambda j: size[j])
            left = i - 1 if i == len(pieces) - 1 or (i > 0 and size[i - 1] <= size[i + 1]) else i
            a, b = pieces[left], pieces[left + 1]
            joined = f"{a.text} {b.text}" if a.text.endswith((".", "!", "?", ":")) else f"{a.text}; {b.text}"
            merged = _Piece(joined, formula=a.formula and b.formula, verdict=False, patterns=a.patterns + b.patterns)
            merged.contradictions, merged.notes = a.contradictions + b.contradictions, a.notes + b.notes
            pieces[left : left + 2] = [merged]
        pieces[:0] = verdict
    units = round(marks / steps)
    base, extra = divmod(units, len(pieces))
    shares = [round((base + (1 if k < extra else 0)) * steps, 4) for k in range(len(pieces))]
    if 0 in shares:  # a step that does not divide: equal shares, the last taking the remainder
        share = round(marks / len(pieces), 4)
        shares = [share] * (len(pieces) - 1) + [round(marks - share * (len(pieces) - 1), 4)]
    return steps, shares, (before if len(pieces) < before else 0)


# ---- formulas as patterns -------------------------------------------------------------------------

_FORMULA_WORDS = frozenset(
    "sqrt exp log ln sum prod tanh sigmoid relu softmax max min argmax argmin var mean std sin cos tan lambda alpha "
    "beta gamma delta epsilon theta sigma mu pi omega eta rho tau phi where with and in for".split()
)


def _looks_like_formula(text: str) -> bool:
    """A line that is mostly mathematics: an operator or a call, and at most two ordinary words."""
    if not re.search(r"[=~^/±√∑]|\w\(", text):
        return False
    words = [w for w in re.findall(r"[A-Za-z]{3,}", text) if w.casefold() not in _FORMULA_WORDS]
    return len(words) <= 2


def _formula_piece(formula: str) -> _Piece:
    pattern = formula_pattern(formula)
    notes = ["the point's text is the formula itself: say it in words too (embeddings read formulas badly)"]
    if pattern:
        notes.append(f"the pattern matches '{_formula_core(formula)}' in common spellings: try it on real answers")
    else:
        notes.append("no pattern could be made for this formula: add one")
    return _Piece(formula, formula=True, patterns=(pattern,) if pattern else (), notes=notes)


def _split_top(text: str, separators: str) -> list[str]:
    parts, depth, current = [], 0, []
    for char in text:
        depth += char in "([{"
        depth -= char in ")]}"
        if depth == 0 and char in separators:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _formula_core(formula: str) -> str:
    """The distinctive part of a formula: the right-hand side, and inside a distribution U(a, b) its longest bound."""
    core = next((p for p in reversed(_split_top(formula, "=~≈")) if p.strip()), formula).strip()
    while True:
        m = re.fullmatch(r"([A-Za-z]{1,8})\s*\((.*)\)", core)
        if not m or not _balanced(m[2]):
            return core
        args = [a.strip().lstrip("+-−–± ").strip() for a in _split_top(m[2], ",")]
        if len(args) < 2 or not (len(m[1]) == 1 or m[1].casefold() in {"uniform", "normal", "gaussian"}):
            return core
        core = max(args, key=len)


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += char in "([{"
        depth -= char in ")]}"
        if depth < 0:
            return False
    return depth == 0


_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<id>[A-Za-z\u0370-\u03ff]+(?:_\(?[A-Za-z0-9]+\)?)?)"
    r"|(?P<op>\*\*|\+/-|<=|>=|[-+*/^=~,±×·−–√<>|÷])|(?P<open>[(\[{])|(?P<close>[)\]}]))"
)
_FUNCTIONS = {
    "sqrt": r"(sqrt|√|root)", "root": r"(sqrt|√|root)", "exp": r"(exp|e\^)", "log": r"(log|ln)", "ln": r"(ln|log)",
    "sum": r"(sum|Σ|∑)",
}
_GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "eta": "η", "theta": "θ", "lambda": "λ",
    "mu": "μ", "sigma": "σ", "tau": "τ", "phi": "φ", "pi": "π", "omega": "ω", "rho": "ρ",
}
_OPERATORS = {
    "+": r"\+", "-": r"[-−–]", "−": r"[-−–]", "–": r"[-−–]", "*": r"[*×·x]?", "×": r"[*×·x]?", "·": r"[*×·x]?",
    "/": r"(/|÷)", "÷": r"(/|÷)", "^": r"(\^|\*\*)\s*[({]?", "**": r"(\^|\*\*)\s*[({]?", "=": "=", "~": "~", ",": ",",
    "±": r"(±|\+/?-)", "+/-": r"(±|\+/?-)", "√": r"(sqrt|√|root)", "<": "<", ">": ">", "<=": "(<=|≤)", ">=": "(>=|≥)",
    "|": r"\|",
}


def formula_pattern(formula: str) -> str | None:
    """A case-insensitive regex for the core of `formula` as students write it, or None if it would be too loose.

    Brackets are optional (`sqrt 6/(n_in+n_out)`), `n_in` also reads nin, n_{in}, n in and fan_in,
    functions and Greek letters their usual spellings (sqrt/√/root, exp/e^, λ/lambda), spaces free.
    """
    core = _formula_core(formula)
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(core):
        m = _TOKEN.match(core, position)
        if not m or m.end() == position:
            if core[position:].strip():
                position += 1  # a symbol we do not know: skip it (the pattern only gets looser)
                continue
            break
        kind = m.lastgroup
        tokens.append((kind, m[kind]))
        position = m.end()
    parts: list[str] = []
    previous = None
    for kind, value in tokens:
        if kind == "num":
            piece = re.escape(value)
        elif kind == "id":
            piece = _identifier(value)
        elif kind == "op":
            piece = _OPERATORS.get(value, re.escape(value))
        elif kind == "open":
            piece = r"[(\[{]?"
        else:
            piece = r"[)\]}]?"
        follows = kind in ("num", "id") or (kind == "op" and value == "|") or (kind == "open" and previous != "id")
        if parts and previous in ("num", "id", "close") and follows:
            parts.append(r"[*×·]?")  # implicit multiplication: "2 n", "2*n"
        parts.append(piece)
        previous = kind
    optional = {r"[(\[{]?", r"[)\]}]?", r"[*×·]?", r"[*×·x]?"}
    while parts and parts[-1] in optional:
        parts.pop()
    while parts and parts[0] in optional:
        parts.pop(0)
    solid = [p for p in parts if p not in optional]
    if len(solid) < 3:
        return None
    pattern = r"\s*".join(parts)
    try:
        compiled = re.compile(pattern, re.IGNORECASE)
    except re.error:
        return None
    return pattern if compiled.search(core) else None


def _identifier(value: str) -> str:
    m = re.fullmatch(r"([A-Za-z\u0370-\u03ff]+)_\(?([A-Za-z0-9]+)\)?", value)
    if m:
        base, sub = _word(m[1]), re.escape(m[2])
        spelled = rf"{base}\s*_?\s*\{{?\s*{sub}\s*\}}?"
        if m[2].casefold() in ("in", "out"):
            return rf"({spelled}|fan[_ -]?{sub})"
        return spelled
    return _word(value)


def _word(word: str) -> str:
    lowered = word.casefold()
    if lowered in _FUNCTIONS:
        return _FUNCTIONS[lowered]
    if lowered in _GREEK:
        return f"({lowered}|{_GREEK[lowered]})"
    for name, symbol in _GREEK.items():
        if word == symbol:
            return f"({name}|{symbol})"
    return re.escape(word)


# ---- writing the draft: the rubric's YAML with comments -------------------------------------------


def draft_yaml(draft: Draft, suggestions: Suggestions | None = None) -> str:
    """The draft as YAML (`grader.reference.rubric_yaml`) with section headings, stems and `# check:` comments.

    Comments never change the data: the text loads back (`load_rubric`) to `draft.rubric`. LLM
    `suggestions` (`grader.suggest`) are commented-out YAML under the point or question they belong
    to, labelled `# suggested`: removing the leading `# ` of their lines accepts them.
    """
    body = rubric_yaml(draft.rubric)
    root = yaml.compose(body)
    questions = next(v for k, v in root.value if k.value == "questions")
    before: dict[int, list[str]] = {}
    first_of_section = {s.question_ids[0]: s for s in draft.sections}
    for node in questions.value:
        fields = {k.value: v for k, v in node.value}
        qid = fields["id"].value
        line = node.start_mark.line
        comments = before.setdefault(line, [])
        if qid in first_of_section:
            section = first_of_section[qid]
            marks = f": {section.marks:g} marks" if section.marks is not None else ""
            comments.append(f"  # ---------------- {section.name}{marks} ----------------")
        if qid in draft.stems:
            comments.extend(_comment(draft.stems[qid], "  ", ""))
        for note in draft.notes:
            if note.question_id == qid and note.point_id is None:
                comments.extend(_comment(note.text, "  "))
        if "points" in fields:
            for point in fields["points"].value:
                pid = next(v.value for k, v in point.value if k.value == "id")
                notes = [n for n in draft.notes if n.question_id == qid and n.point_id == pid]
                if notes:
                    lines = [c for n in notes for c in _comment(n.text, "      ")]
                    before.setdefault(point.start_mark.line, []).extend(lines)
                if suggestions is not None and suggestions.phrasings(qid, pid):
                    after, lines = _suggested_phrasings(point, suggestions.phrasings(qid, pid), suggestions.model)
                    before.setdefault(after + 1, []).extend(lines)
            if suggestions is not None and suggestions.extra_points(qid):
                question = draft.rubric.question(qid)
                lines = _suggested_points(fields["points"], question, suggestions.extra_points(qid), suggestions.model)
                before.setdefault(_last_line(fields["points"]) + 1, []).extend(lines)
    head = _comment(f"Drafted from {draft.source} by `grader rubric draft`: {draft.summary()}.", "", "")
    head += _comment("Review every question, above all those marked `# check:`, then `grader validate` it.", "", "")
    if suggestions is not None:
        how = (" Each is commented out under what it belongs to, labelled `# suggested`, and counts only once "
               "you uncomment its lines (remove the leading `# `).") if suggestions.made else ""
        head += _comment(f"{suggestions.summary()}.{how}", "", "")
    head.extend(c for n in draft.notes if n.question_id is None for c in _comment(n.text, ""))
    lines = body.splitlines()
    out = list(head)
    for number, line in enumerate(lines):
        out.extend(before.get(number, []))
        out.append(line)
    out.extend(before.get(len(lines), []))
    return "\n".join(out) + "\n"


def _suggested_phrasings(point: yaml.MappingNode, texts: Sequence[str], model: str) -> tuple[int, list[str]]:
    """The line after which a point's suggested phrasings go, and their commented-out `alternatives` lines.

    One phrasing a line, so each can be accepted alone: under the point's own list when it has one.
    """
    label = _suggested_label(model)
    fields = {k.value: v for k, v in point.value}
    if "alternatives" in fields:
        items = fields["alternatives"]
        indent = " " * items.start_mark.column
        return _last_line(items), [f"{indent}# - {_scalar(text)}{label}" for text in texts]
    indent = " " * point.start_mark.column
    head = f"{indent}# alternatives:{label}: uncomment this line and the phrasings you accept"
    return _last_line(point), [head, *(f"{indent}#   - {_scalar(text)}" for text in texts)]


def _suggested_points(points: yaml.SequenceNode, question: ShortQuestion, texts: Sequence[str], model: str) -> list[str]:
    """Commented-out extra points worth one step each: accepting one also means moving marks, said on its line."""
    indent = " " * points.start_mark.column
    taken = {p.id for p in question.points}
    ids = (f"s{n}" for n in itertools.count(1) if f"s{n}" not in taken)
    step = f"{question.step:g}"
    lines = []
    for text, pid in zip(texts, ids):
        lines += [
            f"{indent}# - id: {pid}{_suggested_label(model)}: the model answer implies it, no point covers it",
            f"{indent}#   text: {_scalar(text)}",
            f"{indent}#   marks: {step}  # adds {step} to {question.id}: raise its marks by {step}, or take {step} from other points",
        ]
    return lines


def _suggested_label(model: str) -> str:
    return f"  # suggested (LLM, model {_flat(model)})"


def _scalar(text: str) -> str:
    """`text` as a YAML scalar on one line, quoted where YAML needs it."""
    return yaml.safe_dump([text], allow_unicode=True, width=math.inf).removeprefix("- ").rstrip("\n")


def _last_line(node: yaml.Node) -> int:
    """The line a node's text ends on (a block scalar's end mark is at the start of the next line)."""
    while isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.value:
        last = node.value[-1]
        node = last[1] if isinstance(node, yaml.MappingNode) else last
    return node.end_mark.line if node.end_mark.column > 0 else node.end_mark.line - 1


def _comment(text: str, indent: str, tag: str = "check: ") -> list[str]:
    wrapped = textwrap.wrap(_flat(text), width=max(40, 100 - len(indent) - 2 - len(tag)))
    return [f"{indent}# {tag if k == 0 else ' ' * len(tag)}{line}" for k, line in enumerate(wrapped)]
