"""Replies already paid for, in a SQLite file keyed by `prompt.cache_key`, so a re-run asks nothing twice.

Apart from the client because what a damaged, locked or foreign file means (set it aside, refuse
it, fall back to memory) is its own set of rules.
"""

from __future__ import annotations

import sqlite3
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from grader.errors import GraderError
from grader.sqlite import DamagedFile, connect, is_damaged, set_aside

BUSY_TIMEOUT_S = 5.0
"""How long a run waits for another run writing a reply to the same cache (each write is one short statement)."""


class LlmCacheWarning(UserWarning):
    """The reply cache could not be used as it was (it was set aside and rebuilt, or switched off)."""


class _NotACache(Exception):
    """A good SQLite file that holds something else (a gradebook, say): never to be moved aside."""


class ReplyCache:
    """Replies by cache key, in a SQLite file (or in memory when there is no path). Survives a corrupt file."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._memory: dict[str, str] = {}
        self._db: sqlite3.Connection | None = None
        if path is not None:
            self._db = self._open(path)

    def _open(self, path: Path) -> sqlite3.Connection:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GraderError(f"{path}: cannot create the folder for the LLM cache ({_reason(exc)})") from None
        try:
            return self._connect(path)
        except _NotACache as exc:
            raise GraderError(f"{path}: {exc}, so it is not an LLM cache: give the cache a file of its own") from None
        except sqlite3.DatabaseError as exc:
            if not is_damaged(exc):  # locked, unreadable, read-only: the file itself may be fine
                raise GraderError(f"{path}: cannot use the LLM cache ({exc})") from None
            problem = exc
        try:
            aside = set_aside(path)
        except OSError as exc:
            raise GraderError(
                f"{path}: the LLM cache is unreadable ({problem}) and cannot be moved aside ({_reason(exc)})"
            ) from None
        warnings.warn(
            f"{path}: the LLM cache was unreadable ({problem}); moved it to {aside.name} and started a new one "
            "(answers it held will be asked again)",
            LlmCacheWarning,
            stacklevel=4,
        )
        return self._connect(path)

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        db = connect(path, BUSY_TIMEOUT_S)
        try:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables - {"llm_replies"}:
                raise _NotACache(f"it holds other tables ({', '.join(sorted(tables))})")
            db.execute(
                "CREATE TABLE IF NOT EXISTS llm_replies "
                "(key TEXT PRIMARY KEY, reply TEXT NOT NULL, model TEXT, saved_at TEXT)"
            )
            check = db.execute("PRAGMA quick_check").fetchone()
            if check is None or check[0] != "ok":
                raise DamagedFile(f"integrity check: {check[0] if check else 'no answer'}")
            db.execute("SELECT key, reply FROM llm_replies LIMIT 1").fetchall()
        except (sqlite3.DatabaseError, _NotACache):
            db.close()
            raise
        return db

    def get(self, key: str) -> str | None:
        if key in self._memory:
            return self._memory[key]
        if self._db is None:
            return None
        try:
            row = self._db.execute("SELECT reply FROM llm_replies WHERE key = ?", (key,)).fetchone()
        except sqlite3.DatabaseError as exc:
            self._give_up(exc)
            return None
        return row[0] if row else None

    def put(self, key: str, reply: str, model: str) -> None:
        self._memory[key] = reply
        if self._db is None:
            return
        try:
            # one statement in autocommit: each reply paid for is kept at once, even if the run is interrupted
            self._db.execute(
                "INSERT OR REPLACE INTO llm_replies VALUES (?, ?, ?, ?)",
                (key, reply, model, datetime.now(timezone.utc).isoformat(timespec="seconds")),
            )
        except sqlite3.DatabaseError as exc:
            self._give_up(exc)

    def _give_up(self, exc: Exception) -> None:
        warnings.warn(
            f"{self.path}: the LLM cache failed ({exc}); keeping replies in memory for this run only",
            LlmCacheWarning,
            stacklevel=4,
        )
        self.close()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _reason(reason: Any) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__
