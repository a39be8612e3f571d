"""What one line of a question block says: its tail markers (marks, key), a lettered option or sub-part, an
answer label, key letters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from grader.authoring.draft.markup import _BOXES, _tidy

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


_CHECKS = "✓✔☑✅"
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
