from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from grader.atomic import write_atomically


def test_writes_all_files_and_leaves_no_temporaries(tmp_path):
    write_atomically({tmp_path / "a.csv": "x\n", tmp_path / "sub" / "b.txt": "y"})
    assert (tmp_path / "a.csv").read_text() == "x\n"
    assert (tmp_path / "sub" / "b.txt").read_text() == "y"
    assert sorted(p.name for p in tmp_path.rglob(".*")) == []


def test_a_replaced_file_keeps_its_permissions_and_a_new_one_gets_the_umasks(tmp_path):
    """As a plain write would: not the private 0600 of the temporary file it was renamed from."""
    kept = tmp_path / "kept.csv"
    kept.write_text("old")
    kept.chmod(0o640)
    mask = os.umask(0o022)
    try:
        write_atomically({kept: "new", tmp_path / "fresh.csv": "x"})
    finally:
        os.umask(mask)
    assert kept.read_text() == "new" and kept.stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "fresh.csv").stat().st_mode & 0o777 == 0o644


def test_failure_while_writing_keeps_the_old_files(tmp_path):
    (tmp_path / "a.csv").write_text("old")

    class Boom(dict):
        def items(self):
            yield tmp_path / "a.csv", "new"
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(Boom())
    assert (tmp_path / "a.csv").read_text() == "old"
    assert list(tmp_path.iterdir()) == [tmp_path / "a.csv"]


def test_a_killed_writer_never_leaves_a_torn_file(tmp_path):
    """Kill a process in the middle of writing a large file: the target is old or new, never partial."""
    target = tmp_path / "marks.csv"
    target.write_text("old\n")
    script = textwrap.dedent(
        f"""
        import sys
        from grader.atomic import write_atomically
        print("ready", flush=True)
        while True:
            write_atomically({{{str(target)!r}: "row\\n" * 2_000_000}})
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"ready"
    import time

    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    text = target.read_text()
    assert text == "old\n" or text == "row\n" * 2_000_000


def test_a_file_system_that_refuses_modes_still_gets_the_file(tmp_path, monkeypatch):
    """chmod refused (some network and FAT mounts): the file is written all the same, private."""

    def refuse(fd, mode):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "fchmod", refuse)
    write_atomically({tmp_path / "marks.csv": "x\n"})
    assert (tmp_path / "marks.csv").read_text() == "x\n"
    assert (tmp_path / "marks.csv").stat().st_mode & 0o777 == 0o600
