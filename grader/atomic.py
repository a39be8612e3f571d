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


def write_atomically(files: Mapping[str | Path, str]) -> None:
    """Write every file's text; all temporaries are complete before the first rename."""
    staged: list[tuple[str, Path]] = []
    try:
        for target, text in files.items():
            target = Path(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            staged.append((temp, target))
            os.chmod(temp, _mode_for(target))
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        for temp, target in staged:
            os.replace(temp, target)
    finally:
        for temp, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)


def _mode_for(target: Path) -> int:
    """The permissions a plain write would give: the old file's, else the umask's (mkstemp makes 0600)."""
    try:
        return target.stat().st_mode & 0o777
    except FileNotFoundError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask
