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

from dataclasses import dataclass

from grader.text import shorten

BORDERLINE_MARGIN = 0.15
"""A raw mark within this share of a step from a rounding boundary is flagged as borderline."""
QUOTE_CHARS = 90
"""Quotes in reasons are cut to this many characters (the evidence file has the whole text)."""
MARK_DEPENDENT = frozenset({"borderline", "low-confidence"})
MEANINGS = {
    "blank": "no answer",
    "unreadable-choice": "no single option letter could be read",
    "hesitant-choice": "the option letter was read, but a question mark follows it (\"B?\")",
    "pattern-timeout": "a rubric pattern ran out of time on the answer (its point was marked by similarity alone)",
    "contradiction": "a segment says the opposite of a point it resembles (no credit from it)",
    "keyword-stuffing": "rubric terms listed without sentences that connect them (no credit from them)",
    "injection": "an instruction to the grader (no credit from it)",
    "copied-question": "the answer restates the question",
    "off-topic": "the answer is unlike every point and the question",
    "possible-collusion": "near-identical to another student's answer (named)",
    "too-long": "a sentence longer than the model reads, split into overlapping windows",
    "borderline": "the raw mark sits near a rounding boundary",
    "low-confidence": "a small change in the match scores would change the mark",
    "llm-disagrees": "an LLM's second opinion differs by a step or more (it never changes the mark)",
}
"""Every flag code, most serious first, with what it means (report and documentation)."""
"""Flags that follow from the mark: recomputed whenever an answer is re-marked (calibration)."""


@dataclass(frozen=True)
class Flag:
    code: str
    """Short, stable, machine-readable (see the module docstring)."""
    reason: str
    """One sentence for the TA."""


def quote(text: str, limit: int = QUOTE_CHARS) -> str:
    """`text` on one line, shortened to `limit` characters, in single quotes."""
    return f"'{shorten(text, limit)}'"


def blank() -> Flag:
    return Flag("blank", "no answer was given")


def unreadable_choice(problem: str) -> Flag:
    return Flag("unreadable-choice", f"MCQ answer could not be read: {problem}")


def pattern_timeout(point_id: str, pattern: str) -> Flag:
    return Flag(
        "pattern-timeout",
        f"the rubric pattern {quote(pattern)} of point {point_id} ran out of time on this answer: "
        "that point was marked by similarity alone",
    )


def hesitant_choice(doubt: str) -> Flag:
    return Flag("hesitant-choice", f"MCQ answer {doubt}: check the student meant it")


def contradiction(point_id: str, text: str, why: str = "") -> Flag:
    """A rubric contradiction pattern matched `text`, or (with `why`) a segment's polarity opposes the point."""
    detail = f" ({why})" if why else ""
    return Flag("contradiction", f"{quote(text)} says the opposite of point {point_id}{detail}: no credit given for it")


def borderline(raw: float, step: float) -> Flag | None:
    """Flag a raw mark that sits near the half-step where rounding flips it up or down."""
    position = raw / step - int(raw / step)
    if abs(position - 0.5) < BORDERLINE_MARGIN:
        low = int(raw / step) * step
        return Flag("borderline", f"raw mark {raw:.2f} is close to the rounding boundary between {low:g} and {low + step:g}")
    return None


def low_confidence(mark: float, other: float, shift: float, detail: str = "") -> Flag:
    """The mark would be `other` if the match scores moved by `shift` (the similarity model's noise)."""
    detail = f" ({detail})" if detail else ""
    return Flag(
        "low-confidence",
        f"a change of {shift:g} in the match scores would make the mark {other:g} instead of {mark:g}{detail}",
    )


def keyword_stuffing(text: str) -> Flag:
    return Flag("keyword-stuffing", f"{quote(text)} lists rubric terms without sentences connecting them: it earned nothing")


def injection(text: str) -> Flag:
    return Flag("injection", f"{quote(text)} is an instruction to the grader, not an answer: it earned nothing")


def copied_question(share: float) -> Flag:
    return Flag("copied-question", f"the answer mostly restates the question ({share:.0%} of its words are the prompt's)")


def off_topic(similarity: float) -> Flag:
    return Flag("off-topic", f"the answer is unlike every rubric point and the question (best cosine {similarity:.2f})")


def too_long(words: int, window: int) -> Flag:
    return Flag("too-long", f"a sentence of {words} words is longer than the model reads: it was read in windows of {window} words")


def possible_collusion(other: str, similarity: float) -> Flag:
    return Flag("possible-collusion", f"near-identical to student {other}'s answer (similarity {similarity:.2f})")
