"""Flags: reasons a TA should look at a mark, each in words a TA can read.

A flag routes the answer to a person. Most never change a mark; where the check behind a flag also
withholds credit (a contradicting segment, a keyword list, an instruction to the grader), the reason
says what earned nothing. Codes are short and stable (marks.csv lists them):

    blank, unreadable-choice               what was written could not be marked
    hesitant-choice                        an MCQ letter read, with a question mark after it
    pattern-timeout                        a rubric pattern could not be checked in time on it
    contradiction                          a segment says the opposite of a point it resembles
    keyword-stuffing, injection            text written for the grader, not the reader
    copied-question, off-topic             restates the prompt / is about something else
    possible-collusion                     near-identical to another student's answer
    too-long                               a sentence longer than the model reads, split into windows
    borderline, low-confidence             the mark sits near a rounding or credit boundary
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from grader.text import shorten

BORDERLINE_MARGIN = 0.15
"""A raw mark within this share of a step from a rounding boundary is flagged as borderline."""
QUOTE_CHARS = 90
"""Quotes in reasons are cut to this many characters (the evidence file has the whole text)."""


class FlagCode(StrEnum):
    """Every flag code, most serious first. A StrEnum: it is written, compared and stored as its text."""

    BLANK = "blank"
    UNREADABLE_CHOICE = "unreadable-choice"
    HESITANT_CHOICE = "hesitant-choice"
    PATTERN_TIMEOUT = "pattern-timeout"
    CONTRADICTION = "contradiction"
    KEYWORD_STUFFING = "keyword-stuffing"
    INJECTION = "injection"
    COPIED_QUESTION = "copied-question"
    OFF_TOPIC = "off-topic"
    POSSIBLE_COLLUSION = "possible-collusion"
    TOO_LONG = "too-long"
    BORDERLINE = "borderline"
    LOW_CONFIDENCE = "low-confidence"
    LLM_DISAGREES = "llm-disagrees"


MARK_DEPENDENT = frozenset({FlagCode.BORDERLINE, FlagCode.LOW_CONFIDENCE})
"""Flags that follow from the mark: recomputed whenever an answer is re-marked (calibration)."""
MEANINGS = {
    FlagCode.BLANK: "no answer",
    FlagCode.UNREADABLE_CHOICE: "no single option letter could be read",
    FlagCode.HESITANT_CHOICE: 'the option letter was read, but a question mark follows it ("B?")',
    FlagCode.PATTERN_TIMEOUT: (
        "a rubric pattern ran out of time on the answer (its point was marked by similarity alone)"
    ),
    FlagCode.CONTRADICTION: "a segment says the opposite of a point it resembles (no credit from it)",
    FlagCode.KEYWORD_STUFFING: "rubric terms listed without sentences that connect them (no credit from them)",
    FlagCode.INJECTION: "an instruction to the grader (no credit from it)",
    FlagCode.COPIED_QUESTION: "the answer restates the question",
    FlagCode.OFF_TOPIC: "the answer is unlike every point and the question",
    FlagCode.POSSIBLE_COLLUSION: "near-identical to another student's answer (named)",
    FlagCode.TOO_LONG: "a sentence longer than the model reads, split into overlapping windows",
    FlagCode.BORDERLINE: "the raw mark sits near a rounding boundary",
    FlagCode.LOW_CONFIDENCE: "a small change in the match scores would change the mark",
    FlagCode.LLM_DISAGREES: "an LLM's second opinion differs by a step or more (it never changes the mark)",
}
"""What each flag code means, most serious first (report and documentation)."""


@dataclass(frozen=True)
class Flag:
    code: FlagCode
    """Short, stable, machine-readable (see the module docstring); a code read back from a file
    becomes a FlagCode, and an unknown one is refused (ValueError)."""
    reason: str
    """One sentence for the TA."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", FlagCode(self.code))

    def to_dict(self) -> dict[str, str]:
        return {"code": str(self.code), "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> Flag:
        return cls(data["code"], data["reason"])


def quote(text: str, limit: int = QUOTE_CHARS) -> str:
    """`text` on one line, shortened to `limit` characters, in single quotes."""
    return f"'{shorten(text, limit)}'"


def blank() -> Flag:
    return Flag(FlagCode.BLANK, "no answer was given")


def unreadable_choice(problem: str) -> Flag:
    return Flag(FlagCode.UNREADABLE_CHOICE, f"MCQ answer could not be read: {problem}")


def pattern_timeout(point_id: str, pattern: str) -> Flag:
    return Flag(
        FlagCode.PATTERN_TIMEOUT,
        f"the rubric pattern {quote(pattern)} of point {point_id} ran out of time on this answer: "
        "that point was marked by similarity alone",
    )


def hesitant_choice(doubt: str) -> Flag:
    return Flag(FlagCode.HESITANT_CHOICE, f"MCQ answer {doubt}: check the student meant it")


def contradiction(point_id: str, text: str, why: str = "") -> Flag:
    """A rubric contradiction pattern matched `text`, or (with `why`) a segment's polarity opposes the point."""
    detail = f" ({why})" if why else ""
    return Flag(
        FlagCode.CONTRADICTION, f"{quote(text)} says the opposite of point {point_id}{detail}: no credit given for it"
    )


def borderline(raw: float, step: float) -> Flag | None:
    """Flag a raw mark that sits near the half-step where rounding flips it up or down."""
    position = raw / step - int(raw / step)
    if abs(position - 0.5) < BORDERLINE_MARGIN:
        low = int(raw / step) * step
        return Flag(
            FlagCode.BORDERLINE,
            f"raw mark {raw:.2f} is close to the rounding boundary between {low:g} and {low + step:g}",
        )
    return None


def low_confidence(mark: float, other: float, shift: float, detail: str = "") -> Flag:
    """The mark would be `other` if the match scores moved by `shift` (the similarity model's noise)."""
    detail = f" ({detail})" if detail else ""
    return Flag(
        FlagCode.LOW_CONFIDENCE,
        f"a change of {shift:g} in the match scores would make the mark {other:g} instead of {mark:g}{detail}",
    )


def keyword_stuffing(text: str) -> Flag:
    return Flag(
        FlagCode.KEYWORD_STUFFING,
        f"{quote(text)} lists rubric terms without sentences connecting them: it earned nothing",
    )


def injection(text: str) -> Flag:
    return Flag(FlagCode.INJECTION, f"{quote(text)} is an instruction to the grader, not an answer: it earned nothing")


def copied_question(share: float) -> Flag:
    return Flag(
        FlagCode.COPIED_QUESTION, f"the answer mostly restates the question ({share:.0%} of its words are the prompt's)"
    )


def off_topic(similarity: float) -> Flag:
    return Flag(
        FlagCode.OFF_TOPIC, f"the answer is unlike every rubric point and the question (best cosine {similarity:.2f})"
    )


def too_long(words: int, window: int) -> Flag:
    return Flag(
        FlagCode.TOO_LONG,
        f"a sentence of {words} words is longer than the model reads: it was read in windows of {window} words",
    )


def possible_collusion(other: str, similarity: float) -> Flag:
    return Flag(
        FlagCode.POSSIBLE_COLLUSION, f"near-identical to student {other}'s answer (similarity {similarity:.2f})"
    )
