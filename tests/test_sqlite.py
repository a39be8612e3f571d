"""The SQLite files grader keeps: connection, transactions, and telling a damaged file from a busy one."""

from __future__ import annotations

import sqlite3

import pytest

from grader.sqlite import DamagedFile, connect, is_damaged, set_aside, transaction, use_wal


@pytest.fixture
def db(tmp_path):
    connection = connect(tmp_path / "book.db", 5.0)
    assert use_wal(connection) == "wal"
    connection.execute("CREATE TABLE marks (student TEXT PRIMARY KEY, mark REAL)")
    yield connection
    connection.close()


def test_a_connection_waits_for_locks_and_leaves_no_write_pending(tmp_path):
    connection = connect(tmp_path / "x.db", 2.5)
    assert connection.execute("PRAGMA busy_timeout").fetchone()[0] == 2500
    connection.execute("CREATE TABLE t (x)")
    connection.execute("INSERT INTO t VALUES (1)")
    assert not connection.in_transaction  # autocommit: already on disk
    other = sqlite3.connect(tmp_path / "x.db")
    assert other.execute("SELECT x FROM t").fetchall() == [(1,)]
    other.close()
    connection.close()


def test_a_transaction_commits_all_or_nothing(tmp_path, db):
    with transaction(db):
        db.execute("INSERT INTO marks VALUES ('s1', 2)")
    with pytest.raises(sqlite3.IntegrityError):
        with transaction(db):
            db.execute("INSERT INTO marks VALUES ('s2', 1)")
            db.execute("INSERT INTO marks VALUES ('s1', 0)")  # the same student again: the whole batch goes
    with pytest.raises(KeyboardInterrupt):
        with transaction(db):
            db.execute("INSERT INTO marks VALUES ('s3', 1)")
            raise KeyboardInterrupt
    assert not db.in_transaction
    assert db.execute("SELECT * FROM marks").fetchall() == [("s1", 2.0)]


def test_a_write_takes_the_lock_up_front_and_a_read_takes_none(tmp_path, db):
    other = connect(tmp_path / "book.db", 0.0)
    with transaction(db):
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            with transaction(other):
                pass
    with transaction(db, write=False):
        assert db.execute("SELECT count(*) FROM marks").fetchone() == (0,)
        with transaction(other):  # WAL: a reader never holds a writer up
            other.execute("INSERT INTO marks VALUES ('s1', 1)")
    other.close()


def test_a_file_that_is_not_a_database_is_damaged_and_a_locked_one_is_not(tmp_path, db):
    notes = tmp_path / "notes.db"
    notes.write_bytes(b"these are lecture notes, not a database " * 50)
    reader = connect(notes, 1.0)
    with pytest.raises(sqlite3.DatabaseError) as caught:
        use_wal(reader)
    reader.close()
    assert is_damaged(caught.value)
    assert is_damaged(DamagedFile("integrity check: page 3 is never used"))
    other = connect(tmp_path / "book.db", 0.0)
    with transaction(db):
        with pytest.raises(sqlite3.OperationalError) as locked:
            other.execute("BEGIN IMMEDIATE")
    assert not is_damaged(locked.value)
    assert not is_damaged(ValueError("malformed"))
    other.close()


def test_a_damaged_file_is_set_aside_with_its_journals_gone(tmp_path):
    path = tmp_path / "cache.sqlite"
    (tmp_path / "cache.sqlite.corrupt").write_bytes(b"an older damaged file")
    path.write_bytes(b"damaged")
    for suffix in ("-wal", "-shm", "-journal"):
        (tmp_path / f"cache.sqlite{suffix}").write_bytes(b"its journal")
    aside = set_aside(path)
    assert aside == tmp_path / "cache.sqlite.corrupt" and aside.read_bytes() == b"damaged"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.sqlite.corrupt"]


def test_nothing_is_deleted_when_the_file_cannot_be_moved(tmp_path):
    (tmp_path / "gone.sqlite-wal").write_bytes(b"a journal")
    with pytest.raises(OSError):
        set_aside(tmp_path / "gone.sqlite")
    assert (tmp_path / "gone.sqlite-wal").read_bytes() == b"a journal"
