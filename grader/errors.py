"""Errors a user can fix: the CLI prints them as one line and exits non-zero, never a traceback."""

from __future__ import annotations

from pathlib import Path


class GraderError(Exception):
    """Base for every error caused by the user's input or environment (not a bug in grader)."""


class InputError(GraderError):
    """Bad content in an input file, located as precisely as we can: file, row, column."""

    def __init__(
        self,
        file: str | Path,
        message: str,
        *,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.file = str(file)
        self.row = row
        self.column = column
        self.message = message
        where = self.file
        if row is not None:
            where += f", row {row}"
        if column is not None:
            where += f", column '{column}'"
        super().__init__(f"{where}: {message}")
