"""Text for people, one rule each: shortening a text to one line of a reason, a message or a table
cell, and writing a mark as people write it. Every caller imports these.

`shorten(text, limit)` never returns more than `limit` characters; a longer text is cut after
`limit - 1` and ends with "…" (one character, so the limit holds). By default white space is first
collapsed to single spaces, so a quoted answer or a server's error page stays on one line. The review
screen quotes evidence as it stands in the answer (`collapse=False`) and trims the cut (`trim=True`):
its output predates this module and is kept exactly.
"""

from __future__ import annotations

ELLIPSIS = "…"


def shorten(text: str, limit: int, *, collapse: bool = True, trim: bool = False) -> str:
    """`text` in at most `limit` characters (`limit` >= 1), cut with "…" when longer.

    collapse: runs of white space become one space, and the ends are stripped, before measuring.
    trim: white space left at the cut is dropped, so the ellipsis follows a word ("word…").
    """
    if collapse:
        text = " ".join(text.split())
    if len(text) <= limit:
        return text
    kept = text[: limit - 1]
    return (kept.rstrip() if trim else kept) + ELLIPSIS


def number(value: float) -> str:
    """Marks as people write them: 1, 0.5, 0.25 (never 1.0 or 0.30000000000000004)."""
    return f"{round(value, 6):g}"
