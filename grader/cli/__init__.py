"""The command line (`grader ...`): typer commands, each a few lines over the library."""

from grader.cli.app import app, main

__all__ = ["app", "main"]
