"""What long work shows a person while it runs: the library calls a `Watcher`, the command line
implements one (spinners, progress bars, one-line warnings on stderr; `grader.cli.app`).

The library's default, `QUIET`, shows nothing, so a notebook, a test or a web page runs the same
work silently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

Progress = Callable[[int, int], None]
"""progress(done, total)."""


class Watcher:
    """Shows nothing; subclass it to show something."""

    def warn(self, message: str) -> None:
        """The input was used, but a person may want to look."""

    @contextmanager
    def loading(self, what: str) -> Iterator[None]:
        """Around loading `what` ("the embedding model", "the contradiction checker")."""
        yield

    @contextmanager
    def counting(self, what: str) -> Iterator[Progress | None]:
        """Around work counted as it goes (`what`: "Grading answers", "Asking the LLM"): gives the
        progress(done, total) to call, if any."""
        yield None


QUIET = Watcher()
