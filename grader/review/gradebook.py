"""The gradebook: one SQLite file holding every run, answer, automatic mark, TA review and change.

A run's automatic marks are written in one transaction, and so is every TA change, so a process
killed mid-way leaves the file as it was before that step. TA reviews live apart from the
automatic marks: a re-grade adds a run and never touches them, so a TA's mark survives any
re-grade; where the automatic mark under a TA's mark moved, the entry says so (`auto_changed`).
Every TA change appends to the audit log, which triggers keep append-only.
"""

from __future__ import annotations

import getpass
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from grader import __version__
from grader.errors import GraderError, InputError
from grader.exam.rubric import Rubric, parse_rubric
from grader.exam.submissions import Submissions
from grader.scoring.flags import Flag
from grader.scoring.grade import Neighbour
from grader.scoring.match import PointMatch
from grader.sqlite import connect, is_damaged, rollback, transaction, use_wal

if TYPE_CHECKING:  # importing grade pulls in the model-side stack; the review screen must start fast
    from grader.scoring.grade import Grades

SCHEMA_VERSION = 4
BUSY_TIMEOUT_S = 30.0
"""How long a TA's change waits for another TA's write to the same gradebook."""

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        created_at TEXT NOT NULL,
        exam TEXT NOT NULL,
        rubric_fingerprint TEXT NOT NULL,
        rubric_version TEXT,
        rubric_path TEXT,
        rubric_json TEXT NOT NULL,
        model TEXT NOT NULL,
        curve_json TEXT NOT NULL,
        calibration_json TEXT,
        review_budget REAL,
        answers_source TEXT,
        grader_version TEXT NOT NULL
    );
    CREATE TABLE students (
        student_id TEXT PRIMARY KEY,
        position INTEGER NOT NULL,
        kept_json TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE auto_marks (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        student_id TEXT NOT NULL REFERENCES students(student_id),
        question_id TEXT NOT NULL,
        answer TEXT NOT NULL,
        mark REAL NOT NULL,
        max_mark REAL NOT NULL,
        raw_mark REAL NOT NULL,
        choice TEXT,
        flags_json TEXT NOT NULL,
        points_json TEXT NOT NULL,
        doubt REAL NOT NULL,
        queued INTEGER NOT NULL,
        PRIMARY KEY (run_id, student_id, question_id)
    );
    CREATE INDEX auto_marks_answer ON auto_marks (student_id, question_id, run_id);
    CREATE TABLE reviews (
        student_id TEXT NOT NULL,
        question_id TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('accepted', 'set', 'commented')),
        mark REAL,
        comment TEXT,
        ta TEXT NOT NULL,
        at TEXT NOT NULL,
        auto_at_review REAL,
        PRIMARY KEY (student_id, question_id)
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        ta TEXT NOT NULL,
        action TEXT NOT NULL,
        student_id TEXT,
        question_id TEXT,
        old_json TEXT,
        new_json TEXT,
        reason TEXT,
        run_id INTEGER,
        undoes INTEGER REFERENCES audit(id)
    );
    CREATE INDEX audit_answer ON audit (student_id, question_id);
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    """,
    2: """
    CREATE TABLE opinions (
        student_id TEXT NOT NULL,
        question_id TEXT NOT NULL,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        at TEXT NOT NULL,
        opinion_json TEXT NOT NULL,
        flag_code TEXT,
        flag_reason TEXT,
        PRIMARY KEY (student_id, question_id, run_id)
    );
    """,
    # Changes made together (a group mark in `grader serve`) share a batch: undo reverts them together.
    3: """
    ALTER TABLE audit ADD COLUMN batch INTEGER;
    """,
    # The nearest marked answers a calibrated mark leaned on (grader.calibration.exemplars), for the TA's eyes.
    4: """
    ALTER TABLE auto_marks ADD COLUMN neighbours_json TEXT;
    """,
}

_CURRENT = """
    SELECT a.*, r.status, r.mark AS ta_mark, r.comment, r.ta, r.at, r.auto_at_review, s.position,
        o.opinion_json, o.flag_code, o.flag_reason
    FROM auto_marks a
    JOIN (SELECT student_id, question_id, MAX(run_id) AS run_id FROM auto_marks GROUP BY student_id, question_id) m
        USING (student_id, question_id, run_id)
    JOIN students s USING (student_id)
    LEFT JOIN reviews r USING (student_id, question_id)
    LEFT JOIN opinions o USING (student_id, question_id, run_id)
"""


@dataclass(frozen=True)
class Student:
    student_id: str
    kept: dict[str, str] = field(default_factory=dict)
    """Columns of the answers file kept beside the answers (name, email, ...)."""


@dataclass(frozen=True)
class Entry:
    """One student's answer to one question as the gradebook holds it now.

    The mark that counts is the TA's when a TA set one (or accepted the automatic one), else the
    automatic mark of the latest run (nbgrader's manual_score over auto_score).
    """

    student_id: str
    question_id: str
    answer: str
    max_mark: float
    auto_mark: float
    """The latest run's automatic mark."""
    raw_mark: float
    choice: str | None = None
    """The MCQ letter read, or None."""
    flags: tuple[Flag, ...] = ()
    points: tuple[PointMatch, ...] = ()
    doubt: float = 0.0
    """How unsure the machine is: larger means review sooner."""
    queued: bool = False
    """Chosen for review (flagged, and within the run's review budget)."""
    run_id: int = 0
    ta_mark: float | None = None
    """The TA's mark (set, or the automatic mark they accepted), or None."""
    status: str | None = None
    """None (not reviewed), 'accepted', 'set' or 'commented' (a comment, no mark)."""
    comment: str | None = None
    """The TA's comment, shown to the student in feedback."""
    reviewed_by: str | None = None
    reviewed_at: str | None = None
    auto_at_review: float | None = None
    """The automatic mark the TA saw when they reviewed it."""
    opinion: dict | None = None
    """An LLM's second opinion on this run's answer (grader.llm.Opinion.to_dict()); never a mark."""
    neighbours: tuple[Neighbour, ...] = ()
    """The nearest marked answers a calibrated mark leaned on (for TAs; never in student feedback)."""

    @property
    def mark(self) -> float:
        return self.ta_mark if self.ta_mark is not None else self.auto_mark

    @property
    def source(self) -> str:
        """'ta' when a TA's mark counts, else 'auto'."""
        return "ta" if self.ta_mark is not None else "auto"

    @property
    def reviewed(self) -> bool:
        """A TA decided the mark (set it or accepted the automatic one)."""
        return self.status in ("accepted", "set")

    @property
    def auto_changed(self) -> bool:
        """A re-grade moved the automatic mark since the TA reviewed this answer (their mark still counts)."""
        return self.auto_at_review is not None and abs(self.auto_at_review - self.auto_mark) > 1e-9


@dataclass(frozen=True)
class Run:
    id: int
    created_at: str
    exam: str
    rubric_fingerprint: str
    rubric_path: str | None
    model: str
    calibration: dict | None
    review_budget: float | None
    answers_source: str | None
    grader_version: str


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str
    ta: str
    action: str
    """grade, accept, set, comment, clear, skip, undo."""
    student_id: str | None
    question_id: str | None
    old: dict | None
    new: dict | None
    reason: str | None
    run_id: int | None
    undoes: int | None
    batch: int | None = None
    """Changes applied together (`apply(..., together=True)`) share it: an undo reverts them all."""


@dataclass(frozen=True)
class RunRecord:
    """What recording a run did: its id, how many answers, and the TA marks it left in place."""

    run_id: int
    answers: int
    kept_reviews: int
    auto_changed: tuple[tuple[str, str, float, float], ...]
    """(student, question, old automatic mark, new automatic mark) under a TA's mark."""


@dataclass(frozen=True)
class Change:
    """A TA's change to one answer, as `apply` takes it (from the review screen or a flags sheet)."""

    student_id: str
    question_id: str
    action: str
    """'accept', 'set', 'comment' or 'clear'."""
    mark: float | None = None
    comment: str | None = None
    expected_audit_id: int | None = None
    """Refuse the change if the answer's last audit entry is no longer this one (someone else changed it)."""


class StaleChange(GraderError):
    """A change decided on a view of an answer that another TA changed since: refused, so neither TA's
    work is silently overwritten. Carries the answer as it is now, to show the other TA's mark."""

    def __init__(self, entry: Entry, by: str, when: str = "since you saw it") -> None:
        self.entry, self.by = entry, by
        super().__init__(
            f"student '{entry.student_id}', question '{entry.question_id}' was changed by {by} {when} "
            f"(now {describe_review(entry)}): nothing saved; look at it again"
        )


def describe_review(entry: Entry) -> str:
    """The answer's review state in a few words: whose mark counts, and what it is."""
    if entry.status == "accepted":
        return f"{entry.reviewed_by} accepted {entry.ta_mark:g}"
    if entry.status == "set":
        return f"{entry.reviewed_by} set {entry.ta_mark:g}"
    note = f", commented by {entry.reviewed_by}" if entry.status == "commented" else ""
    return f"the automatic mark {entry.auto_mark:g}{note}"


class Triaged(Protocol):
    doubt: float
    queued: bool


def default_ta() -> str:
    """Who is at the keyboard when --ta is not given: the login name."""
    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers): still record something honest
        return "unknown"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Gradebook:
    """A connection to one gradebook file. Open it with `Gradebook.open`; use it as a context manager."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self.path = path
        self._rubric: tuple[int, Rubric] | None = None

    # -- opening and schema ------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, create: bool = True) -> Gradebook:
        """Open (creating and migrating as needed) a gradebook; a foreign or newer file is refused."""
        path = Path(path)
        if not path.exists() and not create:
            raise InputError(path, "no such gradebook (create one with `grader grade ... --db FILE`)")
        try:
            db = connect(path, BUSY_TIMEOUT_S)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA foreign_keys = ON")
            mode = use_wal(db)
            version = db.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:  # refused, never moved aside: the file may hold TA marks
            if is_damaged(exc):
                raise InputError(path, f"not a gradebook (cannot read it as SQLite: {exc})") from None
            raise InputError(path, f"cannot open the gradebook ({exc})") from None
        if mode != "wal":  # a read-only or network file system; rollback journal still works
            db.execute("PRAGMA journal_mode = DELETE")
        if version > SCHEMA_VERSION:
            raise InputError(
                path,
                f"gradebook schema version {version} is newer than this grader knows ({SCHEMA_VERSION}): "
                "upgrade grader",
            )
        if version == 0 and tables:
            raise InputError(path, "not a gradebook: an SQLite file with other tables in it")
        book = cls(db, path)
        book._migrate(version)
        return book

    def _migrate(self, version: int) -> None:
        for target in range(version + 1, SCHEMA_VERSION + 1):
            try:  # each step and its version number in one transaction: a crash leaves the old version
                self._db.executescript(
                    f"BEGIN IMMEDIATE; {_MIGRATIONS[target]} PRAGMA user_version = {target}; COMMIT;"
                )
            except BaseException as exc:
                rollback(self._db)
                if isinstance(exc, sqlite3.OperationalError):
                    raise self._unwritable(exc) from None
                raise

    @property
    def schema_version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Gradebook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT: one writer at a time, all or nothing. A gradebook that cannot be
        written (read-only file or folder) is a one-line GraderError, with nothing changed."""
        try:
            with transaction(self._db) as db:
                yield db
        except sqlite3.OperationalError as exc:
            raise self._unwritable(exc) from None

    def _unwritable(self, exc: sqlite3.OperationalError) -> Exception:
        """A read-only gradebook as a one-line GraderError; any other SQLite failure as it was."""
        if "readonly" not in str(exc) and "read-only" not in str(exc):
            return exc
        return GraderError(
            f"{self.path}: cannot write to the gradebook ({exc}): nothing was changed; check the permissions "
            "of the file and of its folder"
        )

    # -- runs ----------------------------------------------------------------------------------

    def record_run(
        self,
        rubric: Rubric,
        submissions: Submissions,
        grades: Grades,
        *,
        rubric_path: str | None = None,
        calibration: dict | None = None,
        triaged: Mapping[tuple[str, str], Triaged] | None = None,
        review_budget: float | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> RunRecord:
        """Add a run's automatic marks in one transaction; TA reviews are left exactly as they were.

        `triaged` gives each answer's doubt and whether it is queued for review (see grader.scoring.triage);
        without it every flagged answer is queued.
        """
        known = self.check_exam(rubric)
        before = {(e.student_id, e.question_id): e for e in self.entries(reviewed_only=True)} if known else {}
        rows = []
        for g in grades.items:
            t = triaged.get((g.student_id, g.question_id)) if triaged is not None else None
            rows.append(
                (
                    g.student_id,
                    g.question_id,
                    submissions.answer(g.student_id, g.question_id),
                    g.mark,
                    g.max_mark,
                    g.raw_mark,
                    g.choice,
                    json.dumps([f.to_dict() for f in g.flags], ensure_ascii=False),
                    json.dumps([p.to_dict() for p in g.points], ensure_ascii=False),
                    float(t.doubt) if t is not None else 0.0,
                    int(t.queued) if t is not None else int(bool(g.flags)),
                    json.dumps([n.to_dict() for n in g.neighbours]) if g.neighbours else None,
                )
            )
        with self._transaction() as db:
            run_id = db.execute(
                "INSERT INTO runs (created_at, exam, rubric_fingerprint, rubric_version, rubric_path, rubric_json,"
                " model, curve_json, calibration_json, review_budget, answers_source, grader_version)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    _now(),
                    rubric.exam,
                    rubric.fingerprint,
                    str(rubric.version),
                    rubric_path,
                    json.dumps(rubric.model_dump(mode="json"), ensure_ascii=False),
                    grades.model,
                    json.dumps({"low": grades.curve.low, "high": grades.curve.high}),
                    json.dumps(calibration) if calibration is not None else None,
                    review_budget,
                    submissions.source,
                    __version__,
                ),
            ).lastrowid
            position = db.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM students").fetchone()[0]
            for offset, student in enumerate(grades.students):
                kept = json.dumps(dict(submissions.kept.get(student, {})), ensure_ascii=False)
                db.execute(
                    "INSERT INTO students (student_id, position, kept_json) VALUES (?, ?, ?)"
                    " ON CONFLICT (student_id) DO UPDATE SET kept_json = excluded.kept_json",
                    (student, position + offset, kept),
                )
            block = 2000
            for start in range(0, len(rows), block):
                db.executemany(
                    f"INSERT INTO auto_marks VALUES ({run_id}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows[start : start + block],
                )
                if progress is not None:
                    progress(min(start + block, len(rows)), len(rows))
            self._audit(
                db,
                "grader",
                "grade",
                reason=f"run {run_id}: {len(rows)} answers graded with {grades.model}",
                run_id=run_id,
            )
        changed = []
        new_auto = {(r[0], r[1]): r[3] for r in rows}
        for key, entry in before.items():
            if key in new_auto and abs(new_auto[key] - entry.auto_mark) > 1e-9:
                changed.append((key[0], key[1], entry.auto_mark, new_auto[key]))
        kept_reviews = sum(1 for key in before if key in new_auto)
        return RunRecord(run_id, len(rows), kept_reviews, tuple(changed))

    def check_exam(self, rubric: Rubric) -> Run | None:
        """Refuse a rubric of another exam (a gradebook holds one exam); returns the latest run."""
        known = self.latest_run()
        if known is not None and known.exam != rubric.exam:
            raise GraderError(
                f"{self.path}: this gradebook holds exam '{known.exam}', not '{rubric.exam}' (use another --db file)"
            )
        return known

    def runs(self) -> list[Run]:
        return [_run(r) for r in self._db.execute("SELECT * FROM runs ORDER BY id")]

    def latest_run(self) -> Run | None:
        row = self._db.execute("SELECT * FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        return _run(row) if row is not None else None

    def rubric(self) -> Rubric:
        """The rubric of the latest run (stored in the gradebook, so the file may have moved)."""
        row = self._db.execute("SELECT id, rubric_json FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            raise GraderError(f"{self.path}: the gradebook has no runs yet (grade with --db {self.path} first)")
        if self._rubric is None or self._rubric[0] != row[0]:
            self._rubric = (row[0], parse_rubric(json.loads(row[1]), f"{self.path} (stored rubric)"))
        return self._rubric[1]

    # -- reading -------------------------------------------------------------------------------

    def students(self) -> list[Student]:
        return [
            Student(r["student_id"], json.loads(r["kept_json"]))
            for r in self._db.execute("SELECT * FROM students ORDER BY position")
        ]

    def entries(
        self, student_id: str | None = None, question_id: str | None = None, reviewed_only: bool = False
    ) -> list[Entry]:
        """Current entries, student-major in the latest rubric's question order."""
        where, args = _answer_filter(student_id, question_id)
        if reviewed_only:
            where.append("r.status IS NOT NULL")
        sql = _CURRENT + (" WHERE " + " AND ".join(where) if where else "")
        found = [_entry(r) for r in self._db.execute(sql, args)]
        if not found:
            return []
        order = {q: i for i, q in enumerate(self.rubric().question_ids)}
        positions = dict(self._db.execute("SELECT student_id, position FROM students").fetchall())
        found = [e for e in found if e.question_id in order]
        return sorted(found, key=lambda e: (positions[e.student_id], order[e.question_id]))

    def entry(self, student_id: str, question_id: str) -> Entry:
        found = self.entries(student_id, question_id)
        if not found:
            raise GraderError(f"{self.path}: no answer of student '{student_id}' to question '{question_id}'")
        return found[0]

    def queue(self, include_reviewed: bool = False) -> list[Entry]:
        """Answers chosen for review, most doubtful first; answers skipped earlier go to the back.

        Without `include_reviewed`, only those no TA has decided yet: a second TA (or the same TA
        after a break) picks up exactly where the work stopped.
        """
        skipped = {
            (r[0], r[1]) for r in self._db.execute("SELECT student_id, question_id FROM audit WHERE action = 'skip'")
        }
        queued = [e for e in self.entries() if e.queued and (include_reviewed or not e.reviewed)]
        return sorted(queued, key=lambda e: ((e.student_id, e.question_id) in skipped and not e.reviewed, -e.doubt))

    def human_marks(self) -> dict[tuple[str, str], float]:
        """Marks a TA decided (set or accepted): what `grader calibrate --db` learns from."""
        return {
            (e.student_id, e.question_id): e.ta_mark for e in self.entries(reviewed_only=True) if e.ta_mark is not None
        }

    def submissions(self) -> Submissions:
        """The latest answers as a Submissions table (to re-grade or calibrate from the gradebook)."""
        students = self.students()
        answers = {(e.student_id, e.question_id): e.answer for e in self.entries() if e.answer}
        kept_columns = tuple(dict.fromkeys(c for s in students for c in s.kept))
        return Submissions(
            source=str(self.path),
            students=tuple(s.student_id for s in students),
            kept_columns=kept_columns,
            kept={s.student_id: s.kept for s in students},
            answers=answers,
            rows={},
        )

    def audit(self, student_id: str | None = None, question_id: str | None = None) -> list[AuditEntry]:
        where, args = _answer_filter(student_id, question_id)
        sql = "SELECT * FROM audit" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
        return [_audit_entry(r) for r in self._db.execute(sql, args)]

    def last_audit_id(self, student_id: str, question_id: str) -> int | None:
        """The id of the last TA change to this answer (0 if none): a version stamp for flags sheets."""
        row = self._db.execute(
            "SELECT MAX(id) FROM audit WHERE student_id = ? AND question_id = ? AND action != 'skip'",
            (student_id, question_id),
        ).fetchone()
        return row[0] or 0

    # -- TA changes ----------------------------------------------------------------------------

    def accept(self, student_id: str, question_id: str, ta: str, comment: str | None = None) -> Entry:
        """The TA agrees with the automatic mark: it becomes their mark (and stays if a re-grade moves it)."""
        return self.apply([Change(student_id, question_id, "accept", comment=comment)], ta)[0]

    def set_mark(self, student_id: str, question_id: str, mark: float, ta: str, comment: str | None = None) -> Entry:
        return self.apply([Change(student_id, question_id, "set", mark=mark, comment=comment)], ta)[0]

    def comment(self, student_id: str, question_id: str, text: str, ta: str) -> Entry:
        return self.apply([Change(student_id, question_id, "comment", comment=text)], ta)[0]

    def clear(self, student_id: str, question_id: str, ta: str) -> Entry:
        """Remove the TA's review: the automatic mark counts again (the audit log keeps what was there)."""
        return self.apply([Change(student_id, question_id, "clear")], ta)[0]

    def skip(self, student_id: str, question_id: str, ta: str) -> None:
        """Note that the TA passed over this answer for now (it moves to the back of the queue)."""
        with self._transaction() as db:
            self._audit(db, ta, "skip", student_id, question_id)

    def apply(
        self,
        changes: Iterable[Change],
        ta: str,
        reason: str | None = None,
        progress: Callable[[int, int], None] | None = None,
        together: bool = False,
    ) -> list[Entry]:
        """Apply TA changes all-or-nothing in one transaction, each recorded in the audit log.

        `together`: one decision over several answers (a group mark): `undo` reverts them as one.
        """
        changes = list(changes)
        if not ta.strip():
            raise GraderError("a TA name is needed for the audit log (--ta NAME)")
        with self._transaction() as db:
            # Inside BEGIN IMMEDIATE no one else writes: the next audit id names this batch.
            batch = db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM audit").fetchone()[0] if together else None
            for done, change in enumerate(changes, 1):
                self._apply_one(db, change, ta, reason, batch)
                if progress is not None:
                    progress(done, len(changes))
        return [self.entry(c.student_id, c.question_id) for c in changes]

    def _apply_one(
        self, db: sqlite3.Connection, change: Change, ta: str, reason: str | None, batch: int | None = None
    ) -> None:
        entry = self.entry(change.student_id, change.question_id)
        if change.expected_audit_id is not None:
            last = self.last_audit_id(change.student_id, change.question_id)
            if last != change.expected_audit_id:
                raise StaleChange(entry, self._changed_by(db, last))
        old = _review_state(entry)
        if change.action == "accept":
            new = {
                "status": "accepted",
                "mark": entry.auto_mark,
                "comment": change.comment if change.comment is not None else entry.comment,
            }
        elif change.action == "set":
            if change.mark is None or not 0 <= change.mark <= entry.max_mark + 1e-9:
                raise GraderError(
                    f"student '{change.student_id}', question '{change.question_id}': "
                    f"a mark must be between 0 and {entry.max_mark:g}, got {change.mark}"
                )
            new = {
                "status": "set",
                "mark": float(change.mark),
                "comment": change.comment if change.comment is not None else entry.comment,
            }
        elif change.action == "comment":
            new = {"status": entry.status or "commented", "mark": entry.ta_mark, "comment": change.comment or None}
        elif change.action == "clear":
            new = None
        else:
            raise ValueError(f"unknown change {change.action!r}")
        if new is not None:
            new["auto_at_review"] = entry.auto_mark if new["status"] != "commented" else None
            if new["status"] == "commented" and new["comment"] is None:
                new = None  # a comment removed from an unreviewed answer: nothing left
        self._write_review(db, change.student_id, change.question_id, new, ta)
        self._audit(db, ta, change.action, change.student_id, change.question_id, old, new, reason, batch=batch)

    def undo(self, ta: str) -> AuditEntry | None:
        """Revert this TA's most recent change that is not yet undone, and the changes made together with
        it (a group mark), in one transaction, each logged as an 'undo'; None if there is none.

        Refused (StaleChange) where another TA changed one of those answers since: undoing would
        silently overwrite their decision.
        """
        undoable = (
            "ta = ? AND action IN ('accept', 'set', 'comment', 'clear') "
            "AND NOT EXISTS (SELECT 1 FROM audit u WHERE u.undoes = a.id)"
        )
        with self._transaction() as db:
            row = db.execute(f"SELECT * FROM audit a WHERE {undoable} ORDER BY id DESC LIMIT 1", (ta,)).fetchone()
            if row is None:
                return None
            target = _audit_entry(row)
            together = [target]
            if target.batch is not None:
                rows = db.execute(
                    f"SELECT * FROM audit a WHERE {undoable} AND batch = ? ORDER BY id DESC", (ta, target.batch)
                )
                together = [_audit_entry(r) for r in rows]
            for change in together:
                entry = self.entry(change.student_id, change.question_id)
                current = _review_state(entry)
                if _decision(current) != _decision(change.new):
                    last = self.last_audit_id(change.student_id, change.question_id)
                    raise StaleChange(entry, self._changed_by(db, last), "after your change")
                self._write_review(db, change.student_id, change.question_id, change.old, ta, restore=True)
                self._audit(
                    db,
                    ta,
                    "undo",
                    change.student_id,
                    change.question_id,
                    current,
                    change.old,
                    f"undo of change {change.id}",
                    undoes=change.id,
                )
        return target

    def _changed_by(self, db: sqlite3.Connection, audit_id: int | None) -> str:
        who = db.execute("SELECT ta FROM audit WHERE id = ?", (audit_id,)).fetchone()
        return who[0] if who else "another TA"

    def record_opinion(self, student_id: str, question_id: str, opinion: dict, flag: Flag | None = None) -> None:
        """Store an LLM's second opinion beside the automatic mark of the latest run (it never changes a mark)."""
        entry = self.entry(student_id, question_id)
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO opinions VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    student_id,
                    question_id,
                    entry.run_id,
                    _now(),
                    json.dumps(opinion, ensure_ascii=False),
                    flag.code if flag else None,
                    flag.reason if flag else None,
                ),
            )

    def opinions(self) -> dict[tuple[str, str], tuple[dict, Flag | None]]:
        """The latest stored second opinion per answer, with its flag."""
        found = {}
        for r in self._db.execute("SELECT * FROM opinions ORDER BY run_id"):
            flag = Flag(r["flag_code"], r["flag_reason"]) if r["flag_code"] else None
            found[(r["student_id"], r["question_id"])] = (json.loads(r["opinion_json"]), flag)
        return found

    # -- internals -----------------------------------------------------------------------------

    def _write_review(
        self, db: sqlite3.Connection, student: str, question: str, state: dict | None, ta: str, restore: bool = False
    ) -> None:
        if state is None:
            db.execute("DELETE FROM reviews WHERE student_id = ? AND question_id = ?", (student, question))
            return
        db.execute(
            "INSERT OR REPLACE INTO reviews (student_id, question_id, status, mark, comment, ta, at, auto_at_review)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                student,
                question,
                state["status"],
                state["mark"],
                state["comment"],
                state.get("ta", ta) if restore else ta,
                state.get("at", _now()) if restore else _now(),
                state.get("auto_at_review"),
            ),
        )

    def _audit(
        self,
        db: sqlite3.Connection,
        ta: str,
        action: str,
        student_id: str | None = None,
        question_id: str | None = None,
        old: dict | None = None,
        new: dict | None = None,
        reason: str | None = None,
        run_id: int | None = None,
        undoes: int | None = None,
        batch: int | None = None,
    ) -> None:
        db.execute(
            "INSERT INTO audit (at, ta, action, student_id, question_id, old_json, new_json, reason, run_id, undoes,"
            " batch)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                _now(),
                ta,
                action,
                student_id,
                question_id,
                json.dumps(old) if old is not None else None,
                json.dumps(new) if new is not None else None,
                reason,
                run_id,
                undoes,
                batch,
            ),
        )


def _answer_filter(student_id: str | None, question_id: str | None) -> tuple[list[str], list[str]]:
    """SQL conditions (and their arguments) selecting one student's and/or one question's rows."""
    where, args = [], []
    for column, value in (("student_id", student_id), ("question_id", question_id)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    return where, args


def _decision(state: dict | None) -> tuple | None:
    """What a review state decides (status, mark, comment), leaving out who and when."""
    return None if state is None else (state["status"], state["mark"], state["comment"])


def _review_state(entry: Entry) -> dict | None:
    if entry.status is None:
        return None
    return {
        "status": entry.status,
        "mark": entry.ta_mark,
        "comment": entry.comment,
        "auto_at_review": entry.auto_at_review,
        "ta": entry.reviewed_by,
        "at": entry.reviewed_at,
    }


def _entry(r: sqlite3.Row) -> Entry:
    return Entry(
        student_id=r["student_id"],
        question_id=r["question_id"],
        answer=r["answer"],
        max_mark=r["max_mark"],
        auto_mark=r["mark"],
        raw_mark=r["raw_mark"],
        choice=r["choice"],
        flags=tuple(Flag.from_dict(f) for f in json.loads(r["flags_json"]))
        + ((Flag(r["flag_code"], r["flag_reason"]),) if r["flag_code"] else ()),
        points=tuple(PointMatch.from_dict(p) for p in json.loads(r["points_json"])),
        doubt=r["doubt"],
        queued=bool(r["queued"]),
        run_id=r["run_id"],
        ta_mark=r["ta_mark"],
        status=r["status"],
        comment=r["comment"],
        reviewed_by=r["ta"],
        reviewed_at=r["at"],
        auto_at_review=r["auto_at_review"],
        opinion=json.loads(r["opinion_json"]) if r["opinion_json"] else None,
        neighbours=tuple(Neighbour.from_dict(n) for n in json.loads(r["neighbours_json"] or "[]")),
    )


@cache
def _field_names(kind: type) -> frozenset[str]:
    return frozenset(f.name for f in fields(kind))


def _from_row(kind: type, r: sqlite3.Row, **converted: Any) -> Any:
    """A dataclass from the row's columns of the same names, plus the converted (JSON) ones."""
    names = _field_names(kind)
    return kind(**{k: r[k] for k in r.keys() if k in names and k not in converted}, **converted)


def _json(text: str | None) -> Any:
    return json.loads(text) if text else None


def _run(r: sqlite3.Row) -> Run:
    return _from_row(Run, r, calibration=_json(r["calibration_json"]))


def _audit_entry(r: sqlite3.Row) -> AuditEntry:
    return _from_row(AuditEntry, r, old=_json(r["old_json"]), new=_json(r["new_json"]))
