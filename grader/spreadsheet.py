"""The one guard against spreadsheet formula injection, for every CSV a person opens.

A cell that starts with = + - @ (or a tab, carriage return or line feed, after any spaces) is run
as a formula by Excel, LibreOffice and Google Sheets: `=HYPERLINK("http://...")` typed as an
answer or a student id would become a link in a TA's spreadsheet. Text that came from students or
TAs is therefore written through `spreadsheet_safe`, which makes such a cell inert with a leading
apostrophe (OWASP's CSV injection advice); a plain number (a student id such as -1) is left alone,
since a number cannot run anything. Files grader reads back (the flags sheet) undo it with
`spreadsheet_unsafe`, exactly: unsafe(safe(text)) == text for every text.
"""

from __future__ import annotations

import re

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def runs_as_formula(text: str) -> bool:
    """Whether a spreadsheet would read this cell as a formula."""
    head = text.lstrip(" ")[:1]
    return bool(head) and head in FORMULA_START and not _PLAIN_NUMBER.fullmatch(text.strip())


def _guarded(text: str) -> bool:
    """Whether `spreadsheet_safe` prefixes `text`: a formula, or an apostrophe before one (so that
    reading it back cannot mistake the student's own apostrophe for ours)."""
    while text.startswith("'"):
        text = text[1:]
    return runs_as_formula(text)


def spreadsheet_safe(text: str) -> str:
    """`text` with a leading apostrophe when a spreadsheet would run it (see the module docstring)."""
    return "'" + text if _guarded(text) else text


def spreadsheet_unsafe(text: str) -> str:
    """Undo `spreadsheet_safe` on a cell read back from a sheet grader wrote."""
    return text[1:] if text.startswith("'") and _guarded(text[1:]) else text
