"""Rubric patterns run on student text: in linear time, or within a time limit.

Patterns are written by instructors and run on text written by students, so a backtracking engine
(Python's `re`) lets one answer stall the whole class: `(a+)+$` against forty a's and a `!` takes
hours, and even `sqrt\\s*\\(?\\s*6` against `sqrt` and 120,000 spaces takes minutes (quadratic).
Every pattern RE2 can run is therefore run by RE2 (google-re2), whose time is linear in the text
whatever the pattern. RE2 lacks what needs backtracking (lookahead and lookbehind, backreferences,
atomic groups); a pattern that uses them runs on the `regex` package with a limit of
PATTERN_SECONDS per answer, and an answer that hits the limit earns nothing from that pattern and
is flagged for a TA (`PatternTimeout`), so a hostile answer costs a second, not the run.

Syntax is Python's (`re`), case-insensitive. Under RE2, `\\w`, `\\d`, `\\s` and `\\b` are ASCII
(Python's are Unicode): write `é` or `\\p{L}` where a pattern must read accented letters.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from re import _parser as sre_parse  # the parse tree of a pattern, to find nested repeats
from typing import TYPE_CHECKING

import re2
import regex

if TYPE_CHECKING:
    from grader.exam.rubric import Rubric

PATTERN_SECONDS = 1.0
"""Most time one backtracking pattern may take on one answer (RE2 patterns need no limit)."""


class PatternTimeout(Exception):
    """A backtracking pattern ran past PATTERN_SECONDS on an answer: it could not be checked."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        super().__init__(f"pattern {pattern!r} took more than {PATTERN_SECONDS:g} s on this answer")


@dataclass(frozen=True)
class RubricPattern:
    """One compiled rubric pattern and the engine that runs it."""

    source: str
    linear: bool
    """True when RE2 runs it (linear time); False when it needs the backtracking engine."""
    compiled: object

    def search(self, text: str) -> str | None:
        """The first text the pattern matches (case-insensitive), or None; PatternTimeout past the limit."""
        if self.linear:
            found = self.compiled.search(text)
        else:
            try:
                found = self.compiled.search(text, timeout=PATTERN_SECONDS)
            except TimeoutError:
                raise PatternTimeout(self.source) from None
        return found.group(0) if found else None


def _re2_options() -> re2.Options:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # a pattern RE2 cannot run is expected: it goes to the other engine
    return options


_RE2_OPTIONS = _re2_options()


@functools.lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> RubricPattern:
    """Compile a rubric pattern for the engine that can run it; ValueError names what is wrong."""
    try:
        re.compile(pattern, re.IGNORECASE)  # the documented syntax is Python's
    except re.error as exc:
        raise ValueError(f"pattern {pattern!r} is not a valid regular expression: {exc}") from None
    try:
        return RubricPattern(pattern, True, re2.compile(pattern, _RE2_OPTIONS))
    except re2.error:
        pass
    try:
        return RubricPattern(pattern, False, regex.compile(pattern, regex.IGNORECASE | regex.VERSION0))
    except regex.error as exc:
        raise ValueError(f"pattern {pattern!r} is not a valid regular expression: {exc}") from None


def find_pattern(patterns: Sequence[str], answer: str) -> str | None:
    """The first non-blank text in `answer` that one of the patterns matches, in order. When none
    matched and a backtracking pattern ran out of time, PatternTimeout: the answer is undecided."""
    timed_out: PatternTimeout | None = None
    for pattern in patterns:
        try:
            found = compile_pattern(pattern).search(answer)
        except PatternTimeout as timeout:
            timed_out = timed_out or timeout
            continue
        if found and found.strip():
            return found.strip()
    if timed_out is not None:
        raise timed_out
    return None


def pattern_warnings(rubric: Rubric) -> list[str]:
    """What `validate` says about patterns that will not run as an instructor may expect: those
    that need the time-limited backtracking engine, and repeats nested in repeats (`(a+)+`), which
    backtrack catastrophically in every engine but RE2 (spreadsheets, editors, Python's re)."""
    warnings: list[str] = []
    for question in rubric.questions:
        for point in getattr(question, "points", ()):
            for field in ("patterns", "contradictions"):
                for pattern in getattr(point, field):
                    where = f"question {question.id}, point {point.id}, {field[:-1]} '{pattern}'"
                    if not compile_pattern(pattern).linear:
                        warnings.append(
                            f"{where} uses lookaround, a backreference or an atomic group, which only a backtracking "
                            f"engine runs: it is checked with a limit of {PATTERN_SECONDS:g} s per answer, and an "
                            "answer that reaches it earns nothing from it and is flagged (rewrite it without them to "
                            "lift the limit)"
                        )
                    if _nested_repeat(pattern):
                        warnings.append(
                            f"{where} repeats a group that itself repeats, such as (a+)+: backtracking engines take "
                            "exponential time on it; grader runs it in linear time (RE2) where it can, but a "
                            "pattern without the nesting is safer"
                        )
    return warnings


_REPEATS = (sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT, getattr(sre_parse, "POSSESSIVE_REPEAT", None))
_UNBOUNDED = 100
"""A repeat allowing more than this many matches counts as unbounded for the nesting check."""


def _nested_repeat(pattern: str) -> bool:
    """Whether an unbounded repeat sits inside an unbounded repeat (star height 2: `(a+)+`, `(a*b?)*`)."""
    try:
        tree = sre_parse.parse(pattern)
    except (re.error, RecursionError):
        return False

    def walk(items, inside: bool) -> bool:
        for op, arg in items:
            if op in _REPEATS and op is not None:
                low, high, body = arg
                unbounded = high > _UNBOUNDED
                if unbounded and inside and _can_repeat_text(body):
                    return True
                found = walk(body, inside or unbounded)
                if found:
                    return found
            elif op is sre_parse.SUBPATTERN:
                found = walk(arg[-1], inside)
                if found:
                    return found
            elif op is sre_parse.BRANCH:
                for branch in arg[1]:
                    found = walk(branch, inside)
                    if found:
                        return found
            elif op in (sre_parse.ASSERT, sre_parse.ASSERT_NOT):
                found = walk(arg[1], inside)
                if found:
                    return found
        return False

    return walk(tree, False)


def _can_repeat_text(body) -> bool:
    """A repeated body that can match text (not only an empty string or an anchor)."""
    return any(op not in (sre_parse.AT,) for op, _ in body)
