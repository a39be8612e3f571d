"""A persistent table of sentence embeddings: a text met again under the same model is never re-encoded.

Grading the same class twice (a rubric edit, a new calibration, a re-run after a crash) encodes the
same answer segments again; on a CPU that is nearly all of a run's time. `EmbeddingCache` keeps each
vector in one SQLite file, keyed by sha256(model identity, text). The model identity names the model,
a hash of its files' content (a changed or fine-tuned model never meets the old vectors), the
precision it ran in (float16 on CUDA, float32 on CPU: the vectors differ slightly, and a re-run must
give the same marks) and its input length limit.

What the caller can rely on:
- Two processes may share the file at once: WAL journal, a busy timeout, and every write one
  short `BEGIN IMMEDIATE` transaction (a text stored twice stores the same vector).
- The file stays bounded: past `max_entries` rows the least recently used are evicted in one batch
  down to 90 % of the bound, so eviction runs rarely, and freed pages go back to the disk.
- Nothing read from the file is trusted blindly: a file that is not a SQLite database, or not
  this cache's schema, or is damaged, is moved aside to `<name>.corrupt` and started afresh; a row
  whose vector has the wrong size, is not finite or is not unit length empties the table. Each
  case raises a `CacheWarning` (a `UserWarning`: Python prints it once; the CLI can show it its own
  way), and the texts are simply encoded again.
- A cache that cannot be used at all (a read-only folder, a lock held too long) costs a warning,
  never a grading run: lookups then miss and stores are skipped.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from grader.sqlite import DamagedFile, connect, is_damaged, set_aside, transaction, use_wal

FORMAT = "grader-embeddings"
SCHEMA_VERSION = 1
DEFAULT_MAX_ENTRIES = 500_000
"""About 0.8 GB on disk for 384-dimensional vectors: several large classes, every segment of each."""
EVICT_TO = 0.9
"""Eviction deletes down to this share of the bound, so a full cache is not trimmed on every store."""
BUSY_TIMEOUT_S = 60.0
TOUCH_AFTER_S = 3600
"""A hit rewrites a row's last-use time only when it is older than this: least recently used to the
hour is precise enough, and a second run over 100k segments then costs no write per hit."""
READ_CHUNK = 4096
"""Rows read from the file at a time: a lookup of 200k texts never holds their bytes twice."""
UNIT_TOLERANCE = 1e-2
"""A stored vector's norm may differ from 1 by this much (float16 rounding on CUDA is ~1e-3)."""
ENV_VAR = "GRADER_CACHE"

_SCHEMA = {"meta": ["name", "value"], "vectors": ["key", "vector", "used"]}
_SAMPLE_BLOCKS, _BLOCK = 16, 1 << 16
_WHOLE_FILE_LIMIT = 16 << 20


class CacheWarning(UserWarning):
    """The embedding cache was rebuilt or bypassed; grading went on and its results are unaffected."""


def default_cache_path(environ: Mapping[str, str] = os.environ) -> Path | None:
    """Where a run keeps its cache when the user said nothing: $GRADER_CACHE (a path, or "off"),
    else $XDG_CACHE_HOME/grader/embeddings.sqlite, else ~/.cache/grader/embeddings.sqlite."""
    value = environ.get(ENV_VAR, "").strip()
    if value.lower() in ("off", "0", "none", "false"):
        return None
    if value:
        return Path(value).expanduser()
    base = environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".cache") / "grader" / "embeddings.sqlite"


def resolve_cache(path: Path | None, disabled: bool = False, environ: Mapping[str, str] = os.environ) -> Path | None:
    """The CLI's rule: --no-cache wins, then --cache PATH, then the default (see `default_cache_path`)."""
    if disabled:
        return None
    return path if path is not None else default_cache_path(environ)


def model_fingerprint(directory: Path) -> str:
    """A hash of a model directory's content, cheap for large weight files and independent of where
    the directory lies or when it was copied: small files are hashed whole, a large one by its size
    and 16 blocks spread over it (any retraining changes bytes everywhere)."""
    digest = hashlib.sha256()
    files = sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.startswith("."))
    for path in files:
        size = path.stat().st_size
        digest.update(f"{path.relative_to(directory).as_posix()}\0{size}\0".encode())
        with path.open("rb") as handle:
            if size <= _WHOLE_FILE_LIMIT:
                digest.update(handle.read())
                continue
            for k in range(_SAMPLE_BLOCKS):
                handle.seek((size - _BLOCK) * k // (_SAMPLE_BLOCKS - 1))
                digest.update(handle.read(_BLOCK))
    return digest.hexdigest()[:32]


class EmbeddingCache:
    """Float32 vectors of one model's texts in a SQLite file shared by every run (see the module doc).

    `model` is the model identity (texts are keyed by it), `dim` the vector length. `clock` gives
    the time recorded as a row's last use (seconds; tests pass their own).
    """

    def __init__(
        self,
        path: str | Path,
        model: str,
        dim: int,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.time,
        unit: bool = True,
    ) -> None:
        if dim < 1 or max_entries < 1:
            raise ValueError(f"dim and max_entries must be positive, got {dim} and {max_entries}")
        self.path, self.model, self.dim = Path(path), model, dim
        self.max_entries, self.unit, self._clock = max_entries, unit, clock
        self._prefix = hashlib.sha256(f"{FORMAT}\0{model}\0".encode())
        self._db: sqlite3.Connection | None = None
        self.hits = self.misses = self.evicted = 0
        try:
            self._open()
        except sqlite3.DatabaseError as exc:
            if is_damaged(exc):
                self._rebuild(exc)
            else:
                self._give_up("cannot open", exc)
        except OSError as exc:
            self._give_up("cannot create", exc)

    # ---- the two operations ------------------------------------------------------------------

    def get_many(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Vectors for `texts` (rows of zeros where missing) and a boolean mask of those found.

        One query for the whole batch, read in chunks straight into the result (memory: the result
        and one chunk); hits older than `TOUCH_AFTER_S` get their last-use time renewed.
        """
        unique = list(dict.fromkeys(texts))
        if len(unique) != len(texts):
            vectors, found = self.get_many(unique)
            index = {t: i for i, t in enumerate(unique)}
            rows = [index[t] for t in texts]
            return vectors[rows], found[rows]
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        found = np.zeros(len(texts), dtype=bool)
        if self._db is not None and texts:
            try:
                trusted = self._lookup([self._key(t) for t in texts], vectors, found)
            except sqlite3.DatabaseError as exc:
                self._failed("read", exc)
                trusted = False
            if not trusted:
                vectors[:], found[:] = 0.0, False
        self.hits += int(found.sum())
        self.misses += len(texts) - int(found.sum())
        return vectors, found

    def put_many(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store vectors (one row per text) in one transaction, then evict if over the bound."""
        if self._db is None or not len(texts):
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(texts), self.dim):
            raise ValueError(f"expected {len(texts)} vectors of {self.dim}, got shape {vectors.shape}")
        now = int(self._clock())
        for attempt in range(2):  # a damaged file is rebuilt once, then the store is tried again
            try:
                with self._transaction() as db:
                    rows = (
                        (self._key(t), v.tobytes(), now) for t, v in zip(texts, vectors)
                    )  # streamed: no second copy
                    db.executemany("INSERT OR REPLACE INTO vectors(key, vector, used) VALUES (?, ?, ?)", rows)
                    evicted = self._evict(db)
                if evicted:
                    self._db.executescript(
                        "PRAGMA incremental_vacuum;"
                    )  # give the freed pages back (execute() frees one)
                return
            except sqlite3.DatabaseError as exc:
                self._failed("write", exc)
                if self._db is None:
                    return

    def __len__(self) -> int:
        if self._db is None:
            return 0
        return self._db.execute("SELECT count(*) FROM vectors").fetchone()[0]

    @property
    def enabled(self) -> bool:
        """False once the cache was given up for this process (after a warning)."""
        return self._db is not None

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- inside -----------------------------------------------------------------------------

    def _key(self, text: str) -> bytes:
        digest = self._prefix.copy()
        digest.update(text.encode("utf-8", "surrogatepass"))
        return digest.digest()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = connect(self.path, BUSY_TIMEOUT_S, check_same_thread=False)
        self._db = db
        db.execute("PRAGMA auto_vacuum = INCREMENTAL")  # only takes effect on a new file: freed pages can go back
        mode = use_wal(db)
        if mode != "wal":  # e.g. a network file system: still correct, only more lock waits
            warnings.warn(
                f"{self.path}: SQLite could not use WAL here ({mode}); concurrent runs will wait more",
                CacheWarning,
                stacklevel=3,
            )
        db.execute("PRAGMA synchronous = NORMAL")
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            with self._transaction():
                db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
                db.execute(
                    "CREATE TABLE IF NOT EXISTS vectors "
                    "(key BLOB PRIMARY KEY, vector BLOB NOT NULL, used INTEGER NOT NULL)"
                )
                db.execute("CREATE INDEX IF NOT EXISTS vectors_used ON vectors(used)")
                db.executemany(
                    "INSERT OR IGNORE INTO meta VALUES (?, ?)", [("format", FORMAT), ("schema", str(SCHEMA_VERSION))]
                )
        self._check_schema()
        db.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (key BLOB PRIMARY KEY, position INTEGER NOT NULL)")

    def _check_schema(self) -> None:
        db = self._db
        assert db is not None
        for table, columns in _SCHEMA.items():
            found = [row[1] for row in db.execute(f"PRAGMA main.table_info({table})")]
            if found != columns:
                raise DamagedFile(f"not a grader embedding cache (table {table!r} has columns {found or 'none'})")
        meta = dict(db.execute("SELECT name, value FROM meta"))
        if meta.get("format") != FORMAT or meta.get("schema") != str(SCHEMA_VERSION):
            raise DamagedFile(
                f"cache format {meta.get('format')!r} version {meta.get('schema')!r}, "
                f"expected {FORMAT!r} version {SCHEMA_VERSION}"
            )

    def _lookup(self, keys: list[bytes], vectors: np.ndarray, found: np.ndarray) -> bool:
        """Fill `vectors` and `found` from the file; False (after emptying the table) if a row is not a vector we
        wrote."""
        db = self._db
        assert db is not None
        stale, problem = False, None
        now = int(self._clock())
        with transaction(db, write=False):  # a read: in WAL it never waits for a writer, nor makes one wait
            db.execute("DELETE FROM temp.wanted")
            db.executemany("INSERT INTO temp.wanted(key, position) VALUES (?, ?)", ((k, i) for i, k in enumerate(keys)))
            cursor = db.execute(
                "SELECT w.position, v.vector, v.used FROM temp.wanted AS w JOIN main.vectors AS v ON v.key = w.key"
            )
            while problem is None and (rows := cursor.fetchmany(READ_CHUNK)):
                index = [position for position, _, _ in rows]
                matrix, problem = self._check([blob for _, blob, _ in rows])
                if matrix is not None:
                    vectors[index] = matrix
                    found[index] = True
                stale = stale or any(used < now - TOUCH_AFTER_S for _, _, used in rows)
            cursor.close()
        if problem is not None:
            db.execute("DELETE FROM temp.wanted")
            self._distrust(problem)
            return False
        if stale:
            try:  # renewing last use is worth a short write, not a failed run
                with self._transaction():
                    db.execute(
                        "UPDATE main.vectors SET used = ? WHERE used < ? AND key IN (SELECT key FROM temp.wanted)",
                        (now, now - TOUCH_AFTER_S),
                    )
            except sqlite3.OperationalError:
                pass
        db.execute("DELETE FROM temp.wanted")
        return True

    def _check(self, blobs: list[bytes]) -> tuple[np.ndarray | None, str | None]:
        """The rows as a float32 matrix, or what is wrong with them if any is not a vector we wrote."""
        size = self.dim * 4
        bad = next((len(b) for b in blobs if not isinstance(b, bytes) or len(b) != size), None)
        if bad is not None:
            return None, f"a stored vector has {bad} bytes where {self.dim} float32 take {size}"
        matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), self.dim)
        if not np.isfinite(matrix).all():
            return None, "a stored vector holds NaN or infinity"
        with np.errstate(over="ignore", invalid="ignore"):  # garbage may overflow: inf fails the check below
            squares = np.einsum("ij,ij->i", matrix, matrix)
        if self.unit and not (np.abs(squares - 1.0) <= 2 * UNIT_TOLERANCE).all():  # |v|^2 - 1 ~ 2 (|v| - 1)
            return None, "a stored vector is not unit length"
        return matrix, None

    def _evict(self, db: sqlite3.Connection) -> int:
        """Delete the least recently used rows down to EVICT_TO x max_entries when over the bound."""
        count = db.execute("SELECT count(*) FROM vectors").fetchone()[0]
        if count <= self.max_entries:
            return 0
        surplus = count - int(self.max_entries * EVICT_TO)
        db.execute("DELETE FROM vectors WHERE key IN (SELECT key FROM vectors ORDER BY used LIMIT ?)", (surplus,))
        self.evicted += surplus
        return surplus

    def _transaction(self):
        assert self._db is not None
        return transaction(self._db)

    def _distrust(self, reason: str) -> None:
        """Rows that are not what this code writes: the whole table is suspect, so it is emptied."""
        warnings.warn(f"{self.path}: {reason}; emptied the cache (texts are encoded again)", CacheWarning, stacklevel=4)
        try:
            with self._transaction() as db:
                db.execute("DELETE FROM vectors")
        except sqlite3.DatabaseError as exc:
            self._failed("empty", exc)

    def _failed(self, what: str, exc: sqlite3.DatabaseError) -> None:
        if is_damaged(exc):
            self._rebuild(exc)
        else:
            self._give_up(f"cannot {what}", exc)

    def _rebuild(self, reason: BaseException) -> None:
        """Move the damaged file aside (never delete what may be someone's data) and start afresh."""
        self.close()
        try:
            aside = set_aside(self.path)
            self._open()
        except (OSError, sqlite3.DatabaseError) as exc:
            self._give_up("cannot rebuild", exc)
            return
        warnings.warn(
            f"{self.path}: {reason}; moved it to {aside.name} and started an empty cache", CacheWarning, stacklevel=4
        )

    def _give_up(self, what: str, exc: BaseException) -> None:
        self.close()
        warnings.warn(
            f"{self.path}: {what} the embedding cache ({exc}); going on without it", CacheWarning, stacklevel=4
        )
