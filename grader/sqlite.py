"""The SQLite files grader keeps (the gradebook, the embedding cache, the LLM reply cache): how each is
opened, written in transactions, and told apart from a damaged file.

What a damaged file means is each file's own policy, made through these functions: the gradebook
holds TA marks and refuses it with a clear error (never moving or discarding it); a cache, whose
content can be computed again, moves it aside with `set_aside` and starts afresh.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_DAMAGED_CODES = {getattr(sqlite3, "SQLITE_CORRUPT", 11), getattr(sqlite3, "SQLITE_NOTADB", 26)}
_COMPANIONS = ("-wal", "-shm", "-journal")
"""The files SQLite keeps beside a database, named after it."""


class DamagedFile(sqlite3.DatabaseError):
    """A file SQLite can open whose content fails a check of ours (an integrity check, a schema
    this code did not write): it counts as damaged, like one SQLite itself cannot read."""


def connect(path: str | Path, timeout: float, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """A connection that waits up to `timeout` seconds for another process's lock, in autocommit
    mode: every write goes through `transaction`, so none is left pending."""
    return sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=check_same_thread)


def use_wal(db: sqlite3.Connection) -> str:
    """Ask for the WAL journal (readers never wait for the writer) and return the journal mode in
    use: 'wal', or what the file system allowed instead (a network or read-only one). The first
    statement that reads the file: a file that is not a database fails here."""
    return str(db.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()


@contextmanager
def transaction(db: sqlite3.Connection, *, write: bool = True) -> Iterator[sqlite3.Connection]:
    """All or nothing: COMMIT at the end, ROLLBACK on any error (the error is raised as it was).

    `write` takes the write lock up front (`BEGIN IMMEDIATE`), so two processes queue on the busy
    timeout instead of failing mid-way on a read-to-write upgrade; a read (`write=False`) takes none.
    """
    db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        rollback(db)
        raise


def rollback(db: sqlite3.Connection) -> None:
    """Undo the open transaction, if any; a failure to do so never hides the error that led here."""
    if db.in_transaction:
        try:
            db.execute("ROLLBACK")
        except sqlite3.DatabaseError:
            pass


def is_damaged(exc: BaseException) -> bool:
    """Whether an error says the file is not a database or is damaged (not: locked, read-only, missing)."""
    if isinstance(exc, DamagedFile):
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _DAMAGED_CODES
    text = str(exc).lower()
    return isinstance(exc, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text)


def set_aside(path: Path) -> Path:
    """Move a damaged file to `<name>.corrupt` (replacing an older one there) and return where it went.

    Its journal files belong to it and are deleted: left beside a new file of the same name, SQLite
    would replay them into it. Raises OSError when the file cannot be moved (then nothing is deleted).
    """
    aside = path.with_name(path.name + ".corrupt")
    os.replace(path, aside)
    for suffix in _COMPANIONS:
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return aside
