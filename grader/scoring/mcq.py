"""Read which option a student chose from what they typed, and score it exactly.

Rules, in order (case-insensitive, runs of whitespace read as one space):
1. Blank is no choice. The full text of one option, typed exactly (trailing punctuation aside),
   is that option.
2. A leading "Answer:", "Ans -", "answer is", "Option", "choice" is dropped.
3. The choice ends at the first ")", "]", ".", ":", ";", "=", dash or "because"; the rest is an explanation
   and is ignored ("B - a is wrong because..." reads b) unless it is only letters ("b - c").
   Failing that, a comma followed by words ends it too ("B, because...").
4. The choice must then be one letter, bracketed or not: "b", "(b)", "[B]". Several letters
   ("a, b", "a and b", "b/c", "ab") are several choices; a letter outside the options, or anything
   else ("I think b", "idk"), is not read. Nothing is guessed: an answer not read goes to a
   person, never to the nearest option.
5. Question marks after what would be read ("B?", "(b) ??") do not hide the choice: the student
   chose that letter, and it is read, with a `doubt` so a TA sees the hesitation.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

_PREFIX = re.compile(r"^(?:(?:the|my|correct)\s+|(?:answer|ans|option|choice)s?\b\.?\s*(?:is\b)?\s*[:=\-–—]?\s*)+")
_SEPARATOR = re.compile(r"[)\].:;=\-–—]|\s+(?=[(\[])|\s+(?=(?:because|since|bcoz|coz|as)\b)")
_LETTER = r"[(\[]?\s*[a-z]\s*[)\]]?"
_JOINER = r"(?:\s*(?:,|/|&|\+|\band\b|\bor\b)\s*|\s+)"
_LETTER_LIST = re.compile(rf"{_LETTER}(?:{_JOINER}{_LETTER})*")
_LEADING_JOINER = re.compile(r"^\s*(?:,|/|&|\+|and\b|or\b)?\s*")
_LONE_LETTER = re.compile(r"(?<![a-z])[a-z](?![a-z])")
_STARTS_WITH_LETTER = re.compile(r"^\s*[(\[]?[a-z](?![a-z0-9])")
_COUNTS = {2: "two", 3: "three", 4: "four"}


@dataclass(frozen=True)
class Choice:
    """The option letter read from an answer, or why none could be read (to show a TA)."""

    letter: str | None
    problem: str | None
    doubt: str | None = None
    """Why a letter that was read may not be what the student settled on ("B?")."""


def read_choice(text: str, options: Mapping[str, str]) -> Choice:
    """Read the option letter a student meant, by the rules above; never a fuzzy match."""
    options = {letter.strip().casefold(): body for letter, body in options.items()}
    typed = " ".join(text.split())
    if not typed:
        return Choice(None, "blank answer")
    flat = typed.casefold()
    body = _PREFIX.sub("", flat, count=1)
    by_text = _option_typed_out(flat, options) or _option_typed_out(body, options)
    if by_text:
        return Choice(by_text, None)
    if typed.endswith("?") and typed.rstrip("? "):
        unsure = read_choice(typed.rstrip("? "), options)
        if unsure.letter is not None:
            return Choice(
                unsure.letter, None, f"'{_shown(typed)}' has a question mark after the choice, read as {unsure.letter}"
            )
    letters = _letters_named(body, options)
    if not letters:
        return Choice(None, f"could not read a choice from '{_shown(typed)}'")
    if len(letters) > 1:
        count = _COUNTS.get(len(letters), str(len(letters)))
        return Choice(None, f"{count} choices ({', '.join(letters)})")
    letter = letters[0]
    if letter not in options:
        return Choice(None, f"'{letter}' is not an option ({_span(options)})")
    return Choice(letter, None)


def _shown(typed: str) -> str:
    return typed if len(typed) <= 30 else typed[:29] + "…"


def score_choice(choice: Choice, keys: Collection[str], marks: float) -> float:
    """Full marks when the letter read is an accepted key, else none: no partial credit."""
    accepted = {key.strip().casefold() for key in keys}
    return float(marks) if choice.letter in accepted else 0.0


def _option_typed_out(text: str, options: Mapping[str, str]) -> str | None:
    """The letter whose option text equals `text` exactly, once both are normalised."""
    wanted = _normalised(text)
    return next((letter for letter, body in options.items() if _normalised(body) == wanted), None)


def _normalised(text: str) -> str:
    return " ".join(text.casefold().split()).rstrip(".,;:!? ")


def _letters_named(body: str, options: Mapping[str, str]) -> list[str]:
    """Sorted letters the answer's head names; [] when its head is not letters."""
    cut = _SEPARATOR.search(body)
    if cut:
        head = body[: cut.end()] if cut.group() in ")]" else body[: cut.start()]
        found = _letter_list(head, options)
        rest = _LEADING_JOINER.sub("", body[cut.end() :], count=1).strip(" .;:!")
        if found and rest and _LETTER_LIST.fullmatch(rest):
            found |= set(_LONE_LETTER.findall(rest))  # "b - c", "(a) (b)": still two choices
    else:
        found = _letter_list(body, options)
    if not found and "," in body:
        head, _, rest = body.partition(",")
        if not _STARTS_WITH_LETTER.match(rest):
            found = _letter_list(head, options)
    return sorted(found)


def _letter_list(head: str, options: Mapping[str, str]) -> set[str]:
    """Letters in a head made only of letters ("b", "(a) or (b)", "b/c"), or glued option
    letters ("ab"); empty for anything else."""
    head = head.strip()
    if _LETTER_LIST.fullmatch(head):
        return set(_LONE_LETTER.findall(head))
    glued = head.strip("()[] ")
    if len(glued) > 1 and len(set(glued)) == len(glued) and set(glued) <= options.keys():
        return set(glued)
    return set()


def _span(options: Mapping[str, str]) -> str:
    """Options as a person writes them: 'a-d' when consecutive, else 'a, b, d'."""
    letters = sorted(options)
    consecutive = all(ord(b) - ord(a) == 1 for a, b in zip(letters, letters[1:]))
    if len(letters) > 2 and consecutive:
        return f"{letters[0]}-{letters[-1]}"
    return ", ".join(letters) or "none given"
