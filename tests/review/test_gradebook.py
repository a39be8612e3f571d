"""The gradebook on real SQLite files: TA marks survive re-grades, every change is audited, and a
process killed mid-write leaves the file as it was."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest

from grader.errors import GraderError, InputError
from grader.exam.submissions import Submissions
from grader.review import gradebook
from grader.review.gradebook import SCHEMA_VERSION, Change, Gradebook, StaleChange
from grader.scoring.flags import Flag
from tests import tiny_class

ROOT = Path(__file__).resolve().parents[2]


def tiny_answers() -> Submissions:
    answers = {
        (g.student_id, g.question_id): f"answer of {g.student_id} to {g.question_id}" for g in tiny_class.grades().items
    }
    answers.pop(("s4", "S1"))  # blank
    return Submissions(
        "tiny.csv",
        ("s1", "s2", "s3", "s4"),
        ("email",),
        {s: {"email": f"{s}@uni.edu"} for s in ("s1", "s2", "s3", "s4")},
        answers,
        {},
    )


@pytest.fixture
def book(tmp_path):
    gb = Gradebook.open(tmp_path / "exam.db")
    gb.record_run(tiny_class.RUBRIC, tiny_answers(), tiny_class.grades(), rubric_path="tiny.yaml")
    yield gb
    gb.close()


def regraded(change: dict[tuple[str, str], float]):
    """The tiny class with some automatic marks moved (as a re-grade after a rubric edit would)."""
    g = tiny_class.grades()
    return replace(g, items=tuple(replace(i, mark=change.get((i.student_id, i.question_id), i.mark)) for i in g.items))


def test_a_new_gradebook_holds_the_run_the_rubric_and_the_students(book):
    assert book.schema_version == SCHEMA_VERSION
    entries = book.entries()
    assert len(entries) == 16 and [e.question_id for e in entries[:4]] == ["M1", "M2", "S1", "S2"]
    assert book.rubric() == tiny_class.RUBRIC
    assert [s.kept["email"] for s in book.students()] == ["s1@uni.edu", "s2@uni.edu", "s3@uni.edu", "s4@uni.edu"]
    s3 = book.entry("s3", "S1")
    assert s3.flags[0].code == "contradiction" and s3.points[1].contradiction == "is not" and s3.source == "auto"
    assert book.entry("s4", "S1").answer == ""


def test_ta_marks_count_over_automatic_ones_and_survive_a_regrade(book):
    book.set_mark("s2", "S1", 1.0, "alice", comment="both reasons are there")
    book.accept("s1", "S2", "alice")
    assert book.entry("s2", "S1").mark == 1.0 and book.entry("s2", "S1").source == "ta"

    record = book.record_run(tiny_class.RUBRIC, tiny_answers(), regraded({("s2", "S1"): 0.0, ("s1", "S2"): 0.75}))
    assert record.kept_reviews == 2
    assert sorted(record.auto_changed) == [("s1", "S2", 1.0, 0.75), ("s2", "S1", 0.5, 0.0)]
    s2 = book.entry("s2", "S1")
    assert (s2.mark, s2.auto_mark, s2.comment, s2.auto_changed) == (1.0, 0.0, "both reasons are there", True)
    s1 = book.entry("s1", "S2")
    assert (s1.mark, s1.auto_mark, s1.status, s1.auto_changed) == (1.0, 0.75, "accepted", True)
    assert book.entry("s3", "S2").source == "auto" and len(book.runs()) == 2


def test_every_change_is_in_the_audit_log_and_the_log_cannot_be_edited(book):
    book.set_mark("s2", "S1", 1.0, "alice")
    book.comment("s2", "S1", "see me", "bob")
    book.clear("s2", "S1", "bob")
    log = [a for a in book.audit("s2", "S1")]
    assert [(a.ta, a.action) for a in log] == [("alice", "set"), ("bob", "comment"), ("bob", "clear")]
    assert log[0].old is None and log[0].new["mark"] == 1.0
    assert log[1].old["mark"] == 1.0 and log[1].new["comment"] == "see me"
    assert log[2].old["comment"] == "see me" and log[2].new is None
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        book._db.execute("UPDATE audit SET ta = 'mallory'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        book._db.execute("DELETE FROM audit")


def test_undo_walks_back_one_tas_changes_and_is_itself_audited(book):
    book.set_mark("s2", "S1", 1.0, "alice")
    book.set_mark("s2", "S1", 0.0, "alice", comment="no")
    book.set_mark("s3", "S2", 1.0, "bob")
    assert book.undo("alice").new["mark"] == 0.0
    assert book.entry("s2", "S1").mark == 1.0 and book.entry("s2", "S1").comment is None
    book.undo("alice")
    assert book.entry("s2", "S1").source == "auto"
    assert book.undo("alice") is None
    assert book.entry("s3", "S2").mark == 1.0  # bob's change is bob's to undo
    assert [a.action for a in book.audit("s2", "S1")] == ["set", "set", "undo", "undo"]


def test_the_queue_is_flagged_answers_most_doubtful_first_and_resumes_for_the_next_ta(tmp_path):
    from types import SimpleNamespace

    gb = Gradebook.open(tmp_path / "exam.db")
    triaged = {
        (g.student_id, g.question_id): SimpleNamespace(doubt=0.0, queued=False) for g in tiny_class.grades().items
    }
    triaged[("s3", "S1")] = SimpleNamespace(doubt=0.9, queued=True)
    triaged[("s4", "M1")] = SimpleNamespace(doubt=0.5, queued=True)
    triaged[("s2", "S2")] = SimpleNamespace(doubt=0.7, queued=True)
    gb.record_run(tiny_class.RUBRIC, tiny_answers(), tiny_class.grades(), triaged=triaged, review_budget=0.2)
    assert [(e.student_id, e.question_id) for e in gb.queue()] == [("s3", "S1"), ("s2", "S2"), ("s4", "M1")]
    gb.accept("s3", "S1", "alice")
    gb.skip("s2", "S2", "alice")
    gb.close()
    with Gradebook.open(tmp_path / "exam.db") as bob:
        assert [(e.student_id, e.question_id) for e in bob.queue()] == [("s4", "M1"), ("s2", "S2")]
        assert len(bob.queue(include_reviewed=True)) == 3
        assert bob.latest_run().review_budget == 0.2


def test_changes_are_all_or_nothing(book):
    with pytest.raises(GraderError, match="between 0 and 1"):
        book.apply([Change("s1", "S1", "set", mark=0.5), Change("s2", "S1", "set", mark=7)], "alice")
    assert book.entry("s1", "S1").source == "auto" and book.audit("s1", "S1") == []


def test_a_stale_sheet_cannot_overwrite_another_tas_mark(book):
    stamp = book.last_audit_id("s2", "S1")
    book.set_mark("s2", "S1", 1.0, "alice")
    with pytest.raises(GraderError, match="changed by alice"):
        book.apply([Change("s2", "S1", "set", mark=0.0, expected_audit_id=stamp)], "bob")
    assert book.entry("s2", "S1").mark == 1.0


def test_foreign_newer_and_other_exam_files_are_refused(tmp_path, book):
    (tmp_path / "notes.db").write_text("not a database at all" * 100)
    with pytest.raises(InputError, match="not a gradebook"):
        Gradebook.open(tmp_path / "notes.db")
    other = sqlite3.connect(tmp_path / "other.db")
    other.execute("CREATE TABLE things (x)")
    other.commit()
    other.close()
    with pytest.raises(InputError, match="other tables"):
        Gradebook.open(tmp_path / "other.db")
    newer = sqlite3.connect(tmp_path / "newer.db")
    newer.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    newer.close()
    with pytest.raises(InputError, match="newer than this grader"):
        Gradebook.open(tmp_path / "newer.db")
    with pytest.raises(InputError, match="no such gradebook"):
        Gradebook.open(tmp_path / "missing.db", create=False)
    other_exam = tiny_class.RUBRIC.model_copy(update={"exam": "another"})
    with pytest.raises(GraderError, match="holds exam 'tiny'"):
        book.record_run(other_exam, tiny_answers(), tiny_class.grades())


def test_a_version_1_gradebook_is_migrated_keeping_its_data(tmp_path):
    from grader.review import gradebook

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(gradebook._MIGRATIONS[1] + "PRAGMA user_version = 1;")
    db.close()
    with Gradebook.open(path) as gb:
        assert gb.schema_version == SCHEMA_VERSION
        gb.record_run(tiny_class.RUBRIC, tiny_answers(), tiny_class.grades())
        gb.record_opinion("s2", "S1", {"implied_mark": 1.0}, Flag("llm-disagrees", "second opinion (LLM) suggests 1"))
        assert gb.opinions()[("s2", "S1")][0] == {"implied_mark": 1.0}
        entry = gb.entry("s2", "S1")
        assert entry.opinion == {"implied_mark": 1.0} and entry.flags[-1].code == "llm-disagrees" and entry.mark == 0.5


KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from grader.review.gradebook import Change, Gradebook
    from tests import tiny_class
    from tests.review.test_gradebook import tiny_answers, regraded

    def stall(done, total):
        Path({marker!r}).write_text("inside the transaction")
        time.sleep(60)

    gb = Gradebook.open({db!r})
    if {what!r} == "grade":
        gb.record_run(tiny_class.RUBRIC, tiny_answers(), regraded({{("s2", "S1"): 0.0}}), progress=stall)
    else:
        gb.apply([Change("s1", "S1", "set", mark=0.0), Change("s3", "S2", "set", mark=1.0)], "bob", progress=stall)
    """
)


@pytest.mark.parametrize("what", ["grade", "import"])
def test_a_process_killed_mid_write_leaves_the_gradebook_as_it_was(tmp_path, book, what):
    book.set_mark("s2", "S1", 1.0, "alice")
    before = (book.entries(), book.audit(), book.runs())
    marker = tmp_path / "marker"
    script = KILLED_WRITER.format(root=str(ROOT), marker=str(marker), db=str(book.path), what=what)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, "the writer died before it got into its transaction"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with Gradebook.open(book.path) as after:
        assert after._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert (after.entries(), after.audit(), after.runs()) == before
        after.set_mark("s1", "S1", 0.5, "carol")  # and it is writable again: no lock left behind


def test_changes_made_together_are_undone_together(book):
    book.set_mark("s1", "S1", 0.5, "alice")
    book.apply(
        [Change("s2", "S1", "set", mark=0.0), Change("s3", "S1", "set", mark=0.0)],
        "alice",
        reason="group mark",
        together=True,
    )
    target = book.undo("alice")
    assert target.batch is not None and target.reason == "group mark"
    assert book.entry("s2", "S1").source == "auto" and book.entry("s3", "S1").source == "auto"
    assert book.entry("s1", "S1").mark == 0.5  # the change before the group is the next undo's
    undone = [a for a in book.audit() if a.action == "undo"]
    assert len(undone) == 2 and {a.student_id for a in undone} == {"s2", "s3"}


def test_undo_never_overwrites_another_tas_later_change(book):
    book.set_mark("s2", "S1", 1.0, "alice")
    book.set_mark("s2", "S1", 0.0, "bob")
    with pytest.raises(StaleChange, match="changed by bob after your change .now bob set 0.: nothing saved"):
        book.undo("alice")
    assert book.entry("s2", "S1").mark == 0.0 and book.audit("s2", "S1")[-1].ta == "bob"


def test_a_stale_change_shows_the_other_tas_mark(book):
    stamp = book.last_audit_id("s2", "S1")
    book.accept("s2", "S1", "alice")
    with pytest.raises(StaleChange, match="changed by alice since you saw it .now alice accepted 0.5.") as caught:
        book.apply([Change("s2", "S1", "set", mark=1.0, expected_audit_id=stamp)], "bob")
    assert caught.value.entry.ta_mark == 0.5 and caught.value.by == "alice"


def test_a_version_2_gradebook_gains_the_batch_column(tmp_path):
    old = sqlite3.connect(tmp_path / "v2.db")
    old.executescript(f"BEGIN; {gradebook._MIGRATIONS[1]} {gradebook._MIGRATIONS[2]} PRAGMA user_version = 2; COMMIT;")
    old.execute("INSERT INTO audit (at, ta, action) VALUES ('2024-01-01', 'alice', 'grade')")
    old.commit()
    old.close()
    with Gradebook.open(tmp_path / "v2.db") as gb:
        assert gb.schema_version == SCHEMA_VERSION and gb.audit()[0].batch is None and gb.audit()[0].ta == "alice"


def test_the_nearest_marked_answers_are_kept_and_shown_to_tas_not_students(tmp_path):
    """A calibrated mark's nearest marked answers are stored with the answer, shown on the review screen
    and in the flags sheet, and never in a student's feedback."""
    from grader.outputs.feedback import feedback_text
    from grader.review.flagsheet import flags_sheet
    from grader.review.screen import render
    from grader.scoring.grade import Neighbour

    near = (Neighbour("s1", 1.0, 0.93), Neighbour("s3", 0.5, 0.81))
    g = tiny_class.grades()
    leaned = replace(
        g,
        items=tuple(
            replace(i, neighbours=near) if (i.student_id, i.question_id) == ("s3", "S1") else i for i in g.items
        ),
    )
    with Gradebook.open(tmp_path / "exam.db") as gb:
        gb.record_run(tiny_class.RUBRIC, tiny_answers(), leaned, rubric_path="tiny.yaml")
        entry = gb.entry("s3", "S1")
        assert entry.neighbours == near and gb.entry("s1", "S1").neighbours == ()
        from io import StringIO

        from rich.console import Console

        screen = Console(file=StringIO(), width=200)
        screen.print(render(entry, gb.rubric(), 1, 1, "alice"))
        assert "nearest marked answers: s1 (mark 1, similarity 0.93), s3 (mark 0.5" in screen.file.getvalue()
        sheet = flags_sheet(gb, include_reviewed=True)
        assert entry.queued and "nearest marked answers: s1 (mark 1, similarity 0.93)" in sheet
        student = next(s for s in gb.students() if s.student_id == "s3")
        text = feedback_text(gb.rubric(), student, gb.entries())
        assert "S1: 0 / 1" in text and "nearest" not in text and "0.93" not in text
