"""An answer key gathered at the end of the paper: where it starts, its entries, and how an entry fits a question."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from grader.authoring.draft.lines import _ENTRY_START, _LETTERS, _ONLY_LETTERS, _entries, _keys_in, _strip_tail
from grader.authoring.draft.markup import _flat, _tidy
from grader.authoring.draft.questions import _distribute, _Item, _paragraphs, _Question
from grader.authoring.draft.structure import _SECTION_MARKS, _SECTION_PLAIN, _question_start

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
        named = {
            name: next((k for k, cell in enumerate(cells) if pattern.search(cell)), None)
            for name, pattern in _KEY_COLUMNS.items()
        }
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
