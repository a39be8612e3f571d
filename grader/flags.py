"""Flags: reasons a TA should look at a mark, each in words a TA can read.

A flag never changes a mark; it routes the answer to a person.
"""

from __future__ import annotations

from dataclasses import dataclass

BORDERLINE_MARGIN = 0.15
"""A raw mark within this share of a step from a rounding boundary is flagged as borderline."""


@dataclass(frozen=True)
class Flag:
    code: str
    """Short, stable, machine-readable: blank, unreadable-choice, contradiction, borderline."""
    reason: str
    """One sentence for the TA."""


def blank() -> Flag:
    return Flag("blank", "no answer was given")


def unreadable_choice(problem: str) -> Flag:
    return Flag("unreadable-choice", f"MCQ answer could not be read: {problem}")


def contradiction(point_id: str, text: str) -> Flag:
    return Flag("contradiction", f"'{text}' says the opposite of point {point_id}: no credit given for it")


def borderline(raw: float, step: float) -> Flag | None:
    """Flag a raw mark that sits near the half-step where rounding flips it up or down."""
    position = raw / step - int(raw / step)
    if abs(position - 0.5) < BORDERLINE_MARGIN:
        low = int(raw / step) * step
        return Flag("borderline", f"raw mark {raw:.2f} is close to the rounding boundary between {low:g} and {low + step:g}")
    return None
