"""Question blocks as questions (MCQ, short, or with sub-parts) and their model answers, before marks are settled."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from grader.authoring.draft.lines import (
    _ENTRY_START,
    _IMPERATIVE,
    _ONLY_LETTERS,
    _answer_label,
    _entries,
    _Entry,
    _inline_chain,
    _keys_in,
    _option_text,
    _strip_tail,
)
from grader.authoring.draft.markup import _tidy
from grader.authoring.draft.structure import _Block


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
