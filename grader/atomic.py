"""Write output files so that a crash or Ctrl-C never leaves a half-written one.

Each file is written in full to a temporary file beside it, flushed to disk, and only then
renamed over the target (a rename within a directory is atomic on POSIX and Windows).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from grader.errors import GraderError


def write_atomically(files: Mapping[str | Path, str | bytes]) -> None:
    """Write every file's text (or bytes); all temporaries are complete before the first rename.

    A target that cannot be written (a read-only folder, a folder where a file goes, a file where a
    folder goes) is a GraderError naming it, raised before anything is replaced."""
    staged: list[tuple[str, Path]] = []
    try:
        for target, text in files.items():
            target = Path(target)
            check_writable(target)
            fd, temp = _staged(target)
            staged.append((temp, target))
            binary = isinstance(text, bytes)
            with os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                with contextlib.suppress(OSError):  # a file system without modes keeps mkstemp's private 0600
                    os.fchmod(handle.fileno(), _mode_for(target))
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        for temp, target in staged:
            try:
                os.replace(temp, target)
            except OSError as err:  # a folder made at the target meanwhile: earlier files are already in place
                raise GraderError(f"{target}: cannot write it: {err.strerror}") from None
    finally:
        for temp, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)


def check_writable(target: str | Path, folder: bool = False) -> None:
    """Refuse, in one line, a path that cannot be written: commands call it on their outputs before
    the slow work, so a bad --out costs nothing; `folder` when the path is a folder of outputs."""
    target = Path(target)
    if folder:
        if target.exists() and not target.is_dir():
            raise GraderError(f"{target}: exists and is not a folder: name a folder for the outputs")
        target = target / ".probe"
    if target.is_dir():
        raise GraderError(f"{target}: is a folder: name a file to write")
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise GraderError(f"{target}: cannot write it: {parent} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".grader-probe.", suffix=".tmp")
    except OSError as err:
        raise GraderError(f"{target}: cannot write in {parent}: {err.strerror}") from None
    os.close(fd)
    os.unlink(probe)


def _staged(target: Path) -> tuple[int, str]:
    """A temporary file beside `target` (its folder made first); OSError as a one-line GraderError."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as err:
        raise GraderError(f"{target}: cannot write it: {err.strerror}") from None


def _mode_for(target: Path) -> int:
    """The permissions a plain write would give: the old file's, else the umask's (mkstemp makes 0600)."""
    try:
        return target.stat().st_mode & 0o777
    except FileNotFoundError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask
