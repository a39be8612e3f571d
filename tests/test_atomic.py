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
