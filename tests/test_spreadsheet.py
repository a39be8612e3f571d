"""The one spreadsheet formula guard: what it makes inert, what it leaves, and that it reads back exactly."""

from __future__ import annotations

import pytest

from grader.spreadsheet import runs_as_formula, spreadsheet_safe, spreadsheet_unsafe


@pytest.mark.parametrize(
    "text",
    ['=HYPERLINK("http://evil.example")', "@SUM(A1)", "+1+1", "-2*3", " =1", "\t=1", "\r=1", "\n=1", "=", "-x"],
)
def test_formulas_are_prefixed(text):
    assert runs_as_formula(text)
    assert spreadsheet_safe(text) == "'" + text


@pytest.mark.parametrize("text", ["", "s01", "-1", "+2.5", "1e3", "a = b", "ReLU", "'quoted'", "x@y.z"])
def test_plain_text_and_numbers_are_left_alone(text):
    assert spreadsheet_safe(text) == text


@pytest.mark.parametrize(
    "text",
    ["=1", "'=1", "''=1", "'", "''", "'plain", "-1", "@", " @x", "plain", "", "'-1", "'@SUM(A1)"],
)
def test_reading_back_gives_exactly_what_was_written(text):
    assert spreadsheet_unsafe(spreadsheet_safe(text)) == text
