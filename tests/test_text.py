"""The one shortening rule: what a reason, a message or a table cell shows of a long text."""

from __future__ import annotations

import pytest

from grader.scoring.flags import QUOTE_CHARS, quote
from grader.text import shorten


def test_short_text_is_kept_whole_on_one_line():
    assert shorten("  ReLU avoids\n vanishing\tgradients ", 40) == "ReLU avoids vanishing gradients"
    assert shorten("", 5) == "" and shorten(" \n ", 5) == ""


@pytest.mark.parametrize("limit", [1, 2, 10, 31])
def test_a_long_text_fits_the_limit_exactly_and_ends_with_one_ellipsis(limit):
    text = "the learning rate is too high so the loss diverges"
    short = shorten(text, limit)
    assert len(short) == limit and short.endswith("…") and short.count("…") == 1
    assert text.startswith(short[:-1])


def test_the_limit_counts_collapsed_text():
    assert shorten("a  b  c", 5) == "a b c"  # 7 characters as typed, 5 once collapsed: no cut


def test_the_cut_keeps_a_space_before_the_ellipsis_unless_trimmed():
    assert shorten("dropout zeroes units", 9) == "dropout …"
    assert shorten("dropout zeroes units", 9, trim=True) == "dropout…"


def test_spacing_is_kept_when_asked():
    assert shorten("weights  start\nsmall", 40, collapse=False) == "weights  start\nsmall"
    assert shorten("weights  start small", 12, collapse=False) == "weights  st…"
    assert shorten("weights  start small", 10, collapse=False, trim=True) == "weights…"


def test_a_flag_quotes_the_shortened_text():
    assert quote("says  the\nopposite") == "'says the opposite'"
    long = quote("word " * 40)
    assert len(long) == QUOTE_CHARS + 2 and long.startswith("'word word") and long.endswith("…'")
