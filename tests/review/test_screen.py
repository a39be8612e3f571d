"""The review screen over a real gradebook file: scripted TAs (one command per line), what the screen
shows, what the gradebook and its audit log hold afterwards, and the screen in a real terminal (tmux)."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

from grader.exam.rubric import parse_rubric
from grader.exam.submissions import Submissions
from grader.review.gradebook import Gradebook
from grader.review.screen import locate, render, review
from grader.scoring import flags
from grader.scoring.grade import Grades, QuestionGrade
from grader.scoring.match import DEFAULT_CURVE, PointMatch

ROOT = Path(__file__).resolve().parents[2]

RUBRIC_DATA = {
    "exam": "dl-quiz",
    "title": "Deep learning quiz",
    "questions": [
        {
            "id": "B1",
            "type": "mcq",
            "marks": 1,
            "prompt": "The loss function of a VAE includes a term for:",
            "options": {
                "a": "an adversarial loss",
                "b": "the KL divergence between the approximate posterior and the prior",
                "c": "an L1 penalty on the weights",
                "d": "a contrastive margin",
            },
            "key": "b",
        },
        {
            "id": "I3",
            "type": "short",
            "marks": 1,
            "step": 0.5,
            "prompt": "Write the Xavier initialization formula for the weights and explain it.",
            "model_answer": "W ~ U(-sqrt(6/(n_in + n_out)), sqrt(6/(n_in + n_out)))",
            "points": [
                {
                    "id": "formula",
                    "text": "The weights are drawn uniformly between ± sqrt(6/(n_in + n_out)).",
                    "marks": 0.5,
                },
                {
                    "id": "purpose",
                    "text": "It keeps the variance of activations and gradients the same across layers.",
                    "marks": 0.5,
                },
            ],
        },
        {
            "id": "R1",
            "type": "short",
            "marks": 1,
            "step": 0.25,
            "prompt": "Why does ReLU help against vanishing gradients?",
            "model_answer": "Its gradient is 1 for positive inputs; it is sparse and cheap.",
            "points": [
                {
                    "id": "gradient",
                    "text": "Its gradient is 1 for positive inputs, so gradients do not shrink through the layers.",
                    "marks": 0.5,
                },
                {"id": "sparse", "text": "Negative inputs give zero: sparse activations.", "marks": 0.25},
                {"id": "cheap", "text": "It is cheap to compute.", "marks": 0.25},
            ],
        },
    ],
}
RUBRIC = parse_rubric(RUBRIC_DATA, "dl-quiz.yaml")

ANSWERS = {
    ("s01", "B1"): "b",
    (
        "s01",
        "I3",
    ): (
        "W ~ U(-sqrt(6/(n_in+n_out)), sqrt(6/(n_in+n_out))). "
        "This keeps the variance of the activations constant across layers."
    ),
    ("s01", "R1"): "Gradient is 1 for x > 0 so it does not vanish; negative inputs give 0 (sparse); cheap.",
    ("s02", "B1"): "a, b",
    (
        "s02",
        "I3",
    ): (
        "Xavier keeps the variance of the activations about the same in every layer "
        "so the signal neither explodes nor vanishes. Weights are random, small."
    ),
    (
        "s02",
        "R1",
    ): (
        "ReLU has gradient 1 when x > 0,\n"
        "so the gradient does not shrink as it goes back through many layers. It is also cheap."
    ),
    ("s03", "B1"): "B",
    ("s03", "R1"): "The gradient becomes zero for positive inputs, which is why ReLU avoids vanishing gradients.",
}


def _pm(pid, marks, credit, evidence, score=0.5, pattern=None, contradiction=None) -> PointMatch:
    return PointMatch(pid, marks, round(score + 0.2, 4), score, credit, evidence, pattern, contradiction)


def _short(student, question, mark, points, found=()) -> QuestionGrade:
    raw = sum(p.marks * p.credit for p in points)
    return QuestionGrade(student, question, mark, 1.0, raw, tuple(found), None, tuple(points), 12)


def quiz_grades() -> Grades:
    a = ANSWERS
    items = (
        QuestionGrade("s01", "B1", 1, 1, 1, (), "b"),
        _short(
            "s01",
            "I3",
            1,
            [
                _pm("formula", 0.5, 1, "sqrt(6/(n_in+n_out", pattern="sqrt(6/(n_in+n_out"),
                _pm("purpose", 0.5, 1, "This keeps the variance of the activations constant across layers."),
            ],
        ),
        _short(
            "s01",
            "R1",
            1,
            [
                _pm("gradient", 0.5, 1, "Gradient is 1 for x > 0 so it does not vanish"),
                _pm("sparse", 0.25, 1, "negative inputs give 0 (sparse)"),
                _pm("cheap", 0.25, 1, "cheap"),
            ],
        ),
        QuestionGrade("s02", "B1", 0, 1, 0, (flags.unreadable_choice("two choices (a, b)"),), None),
        _short(
            "s02",
            "I3",
            0.5,
            [
                _pm("formula", 0.5, 0.4, "Weights are random, small.", score=0.365),
                _pm("purpose", 0.5, 1, a[("s02", "I3")].split(". ")[0], score=0.47),
            ],
            [flags.borderline(0.7, 0.5)],
        ),
        # Evidence joined across the line break, as the segmenter writes it (one space).
        _short(
            "s02",
            "R1",
            0.75,
            [
                _pm(
                    "gradient",
                    0.5,
                    1,
                    (
                        "ReLU has gradient 1 when x > 0, "
                        "so the gradient does not shrink as it goes back through many layers."
                    ),
                ),
                _pm("sparse", 0.25, 0, "It is also cheap.", score=0.1),
                _pm("cheap", 0.25, 0.5, "It is also cheap.", score=0.375),
            ],
            [flags.borderline(0.625, 0.25)],
        ),
        QuestionGrade("s03", "B1", 1, 1, 1, (), "b"),
        QuestionGrade("s03", "I3", 0, 1, 0, (flags.blank(),)),
        _short(
            "s03",
            "R1",
            0,
            [
                _pm(
                    "gradient", 0.5, 0, a[("s03", "R1")], score=0.44, contradiction="gradient becomes zero for positive"
                ),
                _pm("sparse", 0.25, 0, a[("s03", "R1")], score=0.2),
                _pm("cheap", 0.25, 0, a[("s03", "R1")], score=0.05),
            ],
            [flags.contradiction("gradient", "gradient becomes zero for positive")],
        ),
    )
    return Grades("dl-quiz", RUBRIC.fingerprint, "test-model", DEFAULT_CURVE, ("s01", "s02", "s03"), items)


QUEUE = [("s03", "R1"), ("s02", "I3"), ("s02", "B1"), ("s03", "I3"), ("s02", "R1")]
"""The queued answers, most doubtful first."""


def build_gradebook(path: Path) -> Path:
    """A real gradebook file holding the quiz's one run, five flagged answers queued."""
    doubt = {key: 0.9 - 0.1 * i for i, key in enumerate(QUEUE)}
    triaged = {
        (g.student_id, g.question_id): SimpleNamespace(
            doubt=doubt.get((g.student_id, g.question_id), 0.0), queued=(g.student_id, g.question_id) in doubt
        )
        for g in quiz_grades().items
    }
    answers = Submissions("quiz.csv", ("s01", "s02", "s03"), (), {}, ANSWERS, {})
    with Gradebook.open(path) as gb:
        gb.record_run(RUBRIC, answers, quiz_grades(), triaged=triaged, rubric_path="dl-quiz.yaml")
    return path


@pytest.fixture
def db(tmp_path) -> Path:
    return build_gradebook(tmp_path / "exam.db")


def screen_console(width: int = 100, **options) -> Console:
    """A console that records what it prints (and prints it nowhere else)."""
    return Console(file=io.StringIO(), record=True, width=width, **options)


def answer_box(screen: str) -> str:
    """The text inside the answer panel(s), lines joined: what the TA reads, whatever the wrapping."""
    inside, lines = False, []
    for line in screen.splitlines():
        if line.startswith("╭─ answer"):
            inside = True
        elif line.startswith("╰"):
            inside = False
        elif inside:
            lines.append(line.strip().strip("│").strip())
    return " ".join(lines)


def scripted(*lines: str):
    """A `read` that types these lines, then Ctrl-D (EOF); the prompts it was given are kept."""
    queue = list(lines)
    prompts: list[str] = []

    def read(prompt: str) -> str:
        prompts.append(prompt)
        if not queue:
            raise EOFError
        line = queue.pop(0)
        if line == "^C":
            raise KeyboardInterrupt
        return line

    read.prompts = prompts  # type: ignore[attr-defined]
    return read


def run(db: Path, ta: str, *lines: str):
    console = screen_console()
    with Gradebook.open(db, create=False) as gb:
        summary = review(gb, ta, console, scripted(*lines))
    return summary, console.export_text()


# -- render ------------------------------------------------------------------------------------


def test_render_shows_progress_question_highlighted_evidence_points_and_flags(db):
    with Gradebook.open(db) as gb:
        entry = gb.entry("s02", "I3")
        console = screen_console(200, color_system="truecolor")
        console.print(render(entry, gb.rubric(), 2, 5, "alice"))
    text = console.export_text(styles=False, clear=False)
    styled = console.export_text(styles=True)
    assert (
        "2 of 5" in text and "student s02" in text and "question I3 (1 mark, step 0.5)" in text and "TA alice" in text
    )
    assert "Write the Xavier initialization formula" in text
    # credited evidence is highlighted in the answer and labelled with the point's number
    assert "neither explodes nor vanishes[2]" in text and "Weights are random, small.[1]" in text
    assert "\x1b[" in styled  # colours, not just labels
    assert "[1] formula" in text and "[2] purpose" in text
    for column in ("point", "rubric", "earned", "evidence", "notes"):
        assert column in text
    assert "0.2/0.5" in text and "0.5/0.5" in text and "score 0.36" in text
    assert "proposed mark 0.5 of 1" in text and "raw 0.70" in text
    assert "borderline" in text and "close to the rounding boundary between 0.5 and 1" in text


def test_render_shows_mcq_options_key_and_letter_read(db):
    with Gradebook.open(db) as gb:
        console = screen_console()
        console.print(render(gb.entry("s02", "B1"), gb.rubric(), 3, 5))
        console.print(render(gb.entry("s03", "B1"), gb.rubric(), None, 5))
    text = console.export_text()
    assert "b) the KL divergence between the approximate posterior and the prior ✓ key" in text
    assert "no letter could be read from the answer" in text and "unreadable-choice" in text and "a, b" in text
    assert "✓ key ← read" in text and "not in the queue (5 queued)" in text


def test_evidence_across_a_line_break_is_still_found_and_missing_evidence_stays_in_the_table(db):
    assert locate("gradient 1 when x > 0, so the gradient", "has gradient 1 when x > 0,\nso the gradient") == (4, 42)
    assert locate("first point. second point", "- First point.\n- second point") == (2, 29)
    assert locate("nowhere", "an answer") is None
    with Gradebook.open(db) as gb:
        console = screen_console(200)
        console.print(render(gb.entry("s02", "R1"), gb.rubric(), 5, 5))
        entry = gb.entry("s01", "I3")
        moved = replace(entry.points[1], evidence="keeps variance the same")
        console.print(render(replace(entry, points=(entry.points[0], moved)), gb.rubric(), 1, 5))
    text = console.export_text()
    assert "many layers.[1]" in text  # highlighted although the evidence has a space where the answer has a newline
    assert "“keeps variance the same”" in text and "not found verbatim" in text
    assert "[2] purpose: evidence not found verbatim, see the table" in text


def test_render_shows_blank_and_contradiction_and_the_ta_state(db):
    with Gradebook.open(db) as gb:
        gb.set_mark("s03", "R1", 0.25, "alice", comment="sparse is implied")
        console = screen_console(200)
        console.print(render(gb.entry("s03", "I3"), gb.rubric(), 4, 5))
        console.print(render(gb.entry("s03", "R1"), gb.rubric(), 1, 5))
    text = console.export_text()
    assert "(blank: no answer was given)" in text and "blank: no answer was given" in text
    assert "positive[1✗] inputs" in answer_box(text) and "contradiction “gradient" in text and "no credit" in text
    assert "TA mark 0.25: alice set it" in text and "sparse is implied" in text


# -- the loop ----------------------------------------------------------------------------------


def test_accept_set_and_quit(db):
    summary, text = run(db, "alice", "a", "1", "q")
    with Gradebook.open(db) as gb:
        first, second = gb.entry(*QUEUE[0]), gb.entry(*QUEUE[1])
        assert (first.status, first.ta_mark, first.reviewed_by) == ("accepted", 0.0, "alice")
        assert (second.status, second.ta_mark) == ("set", 1.0)
        assert [(a.ta, a.action, a.student_id, a.question_id) for a in gb.audit() if a.action != "grade"] == [
            ("alice", "accept", "s03", "R1"),
            ("alice", "set", "s02", "I3"),
        ]
        assert [(e.student_id, e.question_id) for e in gb.queue()] == QUEUE[2:]
    assert (summary.reviewed, summary.skipped, summary.left, summary.total, summary.stopped) == (2, 0, 3, 5, "quit")
    assert "1 of 5" in text and "2 of 5" in text and "3 of 5" in text
    assert "saved: s03 R1 accepted 0" in text and "saved: s02 I3 set 1 (proposed 0.5)" in text
    assert f"reviewed 2, skipped 0; 3 left; run `grader review {db}` to resume" in text


def test_invalid_marks_and_commands_give_one_line_and_the_same_answer_again(db):
    summary, text = run(db, "alice", "1.5", "0.3", "m", "m abc", "-1", "zz", "", "a extra", "0.75")
    assert "a mark for R1 must be between 0 and 1, not 1.5" in text
    assert "0.3 is off R1's step of 0.25 (marks: 0, 0.25, 0.5, 0.75, 1); type 0.3! to set it anyway" in text
    assert "m needs the mark: m 0.5" in text and "not a mark: 'abc'" in text
    assert (
        "unknown command 'zz'" in text and "unknown command 'a extra'" in text and "type a command (? for help)" in text
    )
    assert "Traceback" not in text
    assert text.count("1 of 5") == 9 and "2 of 5" in text  # the same answer after each mistake
    with Gradebook.open(db) as gb:
        assert gb.entry("s03", "R1").ta_mark == 0.75 and [a.action for a in gb.audit("s03", "R1")] == ["set"]
    assert (summary.reviewed, summary.stopped) == (1, "end of input")


def test_an_off_step_mark_is_set_when_forced(db):
    run(db, "alice", "0.3!")
    with Gradebook.open(db) as gb:
        assert gb.entry("s03", "R1").ta_mark == pytest.approx(0.3)


def test_comment_stays_on_the_answer_and_is_saved(db):
    summary, text = run(db, "alice", "c see the sign of the gradient", "a", "c -", "q")
    with Gradebook.open(db) as gb:
        first = gb.entry(*QUEUE[0])
        assert (first.comment, first.status) == ("see the sign of the gradient", "accepted")
        assert gb.entry(*QUEUE[1]).comment is None
        assert [a.action for a in gb.audit() if a.action != "grade"] == ["comment", "accept", "comment"]
    assert "comment saved" in text and "comment (alice, shown to the student): see the sign of the gradient" in text
    assert summary.commented == 1 and summary.reviewed == 1


def test_skip_sends_the_answer_to_the_back_and_it_comes_back_after_the_rest(db):
    summary, text = run(db, "alice", "s", "a", "a", "a", "a", "a")
    with Gradebook.open(db) as gb:
        assert gb.queue() == []
        assert [(a.action, a.student_id, a.question_id) for a in gb.audit() if a.action != "grade"] == [
            ("skip", "s03", "R1"),
            *[("accept", s, q) for s, q in QUEUE[1:]],
            ("accept", "s03", "R1"),
        ]
    assert "skipped s03 R1: it comes back at the end" in text and "only answers you skipped are left (1)" in text
    assert (summary.reviewed, summary.skipped, summary.left, summary.stopped) == (5, 0, 0, "done")
    assert "all 5 queued answers are decided" in text


def test_skipping_everything_cycles_and_the_summary_counts_the_skips(db):
    summary, _ = run(db, "alice", *["s"] * 7)
    assert (summary.reviewed, summary.skipped, summary.left) == (0, 5, 5)


def test_back_shows_the_previous_answer_to_change_it_then_goes_on(db):
    summary, text = run(db, "alice", "a", "b", "0.5", "b", "s", "q")
    with Gradebook.open(db) as gb:
        assert gb.entry(*QUEUE[0]).ta_mark == 0.5 and gb.entry(*QUEUE[0]).status == "set"
        assert [a.action for a in gb.audit() if a.action != "grade"] == [
            "accept",
            "set",
        ]  # `s` on a decided answer logs nothing
        assert gb.entry(*QUEUE[1]).status is None
    assert "back one answer" in text and "s03 R1 left as alice decided it" in text
    assert summary.reviewed == 1 and summary.left == 4


def test_back_at_the_first_answer_says_so(db):
    _, text = run(db, "alice", "b")
    assert "this is the first answer of this session" in text


def test_undo_reverts_the_last_change_and_shows_that_answer(db):
    summary, text = run(db, "alice", "a", "1", "u", "u", "u", "q")
    with Gradebook.open(db) as gb:
        assert gb.entry(*QUEUE[0]).status is None and gb.entry(*QUEUE[1]).status is None
        assert [a.action for a in gb.audit() if a.action != "grade"] == ["accept", "set", "undo", "undo"]
    assert "undone: your set of s02 I3 (1); the mark is now 0.5 (automatic)" in text
    assert "undone: your accept of s03 R1 (0); the mark is now 0 (automatic)" in text
    assert "nothing of yours to undo" in text
    assert summary.reviewed == 0 and summary.left == 5


def test_ctrl_c_and_eof_end_cleanly_with_a_summary(db):
    summary, text = run(db, "alice", "a", "^C")
    assert summary.stopped == "interrupted" and "reviewed 1, skipped 0; 4 left" in text and "Traceback" not in text
    summary, text = run(db, "alice")
    assert summary.stopped == "end of input" and "reviewed 0, skipped 0; 4 left" in text


def test_help_lists_the_keys(db):
    _, text = run(db, "alice", "?")
    assert "accept the proposed mark" in text and "undo your last change" in text


def test_two_tas_one_after_the_other_share_the_queue_and_the_audit_log(db):
    run(db, "alice", "a", "s", "q")
    with Gradebook.open(db) as gb:
        assert [(e.student_id, e.question_id) for e in gb.queue()] == [QUEUE[2], QUEUE[3], QUEUE[4], QUEUE[1]]
    summary, text = run(db, "bob", "0", "a", "a", "a")
    first_header = next(line for line in text.splitlines() if " of 5 " in line)
    assert (
        "2 of 5" in first_header
        and "student s02" in first_header
        and "question B1" in first_header
        and "TA bob" in first_header
    )
    with Gradebook.open(db) as gb:
        assert gb.queue() == []
        log = [(a.ta, a.action, a.student_id, a.question_id) for a in gb.audit() if a.action != "grade"]
        assert log == [
            ("alice", "accept", "s03", "R1"),
            ("alice", "skip", "s02", "I3"),
            ("bob", "set", "s02", "B1"),
            ("bob", "accept", "s03", "I3"),
            ("bob", "accept", "s02", "R1"),
            ("bob", "accept", "s02", "I3"),
        ]
        assert gb.entry("s03", "R1").reviewed_by == "alice" and gb.entry("s02", "I3").reviewed_by == "bob"
    assert (summary.reviewed, summary.left, summary.stopped) == (4, 0, "done")
    # a third session finds nothing to do; bob cannot undo alice's work
    summary, text = run(db, "carol", "u")
    assert "Nothing to review" in text and summary.left == 0


def test_a_resumed_session_shows_the_previous_review_and_a_moved_automatic_mark(db):
    """TA marks survive a re-grade; going back to one shows the mark the TA saw and the new one."""
    run(db, "alice", "1", "q")
    with Gradebook.open(db) as gb:
        g = quiz_grades()
        moved = replace(
            g, items=tuple(replace(i, mark=0.25) if (i.student_id, i.question_id) == QUEUE[0] else i for i in g.items)
        )
        gb.record_run(
            RUBRIC,
            Submissions("quiz.csv", ("s01", "s02", "s03"), (), {}, ANSWERS, {}),
            moved,
            triaged={
                (i.student_id, i.question_id): SimpleNamespace(
                    doubt=0.9 if (i.student_id, i.question_id) in QUEUE else 0,
                    queued=(i.student_id, i.question_id) in QUEUE,
                )
                for i in g.items
            },
        )
        console = screen_console()
        console.print(render(gb.entry(*QUEUE[0]), gb.rubric(), 1, 5))
    text = console.export_text()
    assert "the automatic mark changed since alice reviewed it: 0 then, 0.25 now (alice's 1 still counts)" in text


# -- a real terminal ---------------------------------------------------------------------------

TMUX = shutil.which("tmux")


class Pane:
    """A tmux session running the review screen in a 120x45 terminal."""

    def __init__(self, name: str, command: str, env: dict[str, str]) -> None:
        self.name = name
        self.env = env
        subprocess.run(
            [TMUX, "-u", "new-session", "-d", "-s", name, "-x", "120", "-y", "45", command], check=True, env=env
        )

    def send(self, *keys: str) -> None:
        subprocess.run([TMUX, "send-keys", "-t", self.name, *keys], check=True, env=self.env)

    def capture(self, colours: bool = False) -> str:
        args = [TMUX, "capture-pane", "-p", "-t", self.name] + (["-e"] if colours else [])
        return subprocess.run(args, check=True, capture_output=True, text=True, env=self.env).stdout

    def wait_for(self, *texts: str, timeout: float = 20.0) -> str:
        """The screen once every one of `texts` is on it (wait for the prompt too, or a screen still
        being drawn is read half-way)."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.capture()
            if all(_squeezed(text) in _squeezed(screen) for text in texts):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{texts!r} never all appeared; the screen was:\n{screen}")

    def close(self) -> None:
        subprocess.run([TMUX, "kill-session", "-t", self.name], env=self.env, capture_output=True)


def _squeezed(text: str) -> str:
    """Text without any white space: where the terminal wraps a line (between words, or inside a long
    path) depends on the path's length, so what the screen says is compared without it."""
    return "".join(text.split())


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
def test_review_in_a_real_terminal_driven_through_tmux(db, tmp_path):
    # tmux's socket path must fit a Unix socket's ~100 bytes, whatever the length of tmp_path.
    socket_dir = tempfile.mkdtemp(prefix="grader-tmux-", dir="/tmp" if os.path.isdir("/tmp") else None)
    env = {**os.environ, "TMUX_TMPDIR": socket_dir, "LANG": "C.UTF-8", "TERM": "xterm-256color"}
    env.pop("TMUX", None)
    env.pop("NO_COLOR", None)
    done = tmp_path / "exit-status"
    command = f"cd {ROOT} && {sys.executable} -m grader.cli review {db} --ta alice; echo $? > {done}; sleep 30"
    pane = Pane(f"review-{os.getpid()}", command, env)
    try:
        first = pane.wait_for("alice>")
        assert "1 of 5" in first and "student s03" in first and "question R1 (1 mark, step 0.25)" in first
        assert "The gradient becomes zero for positive[1✗] inputs" in answer_box(first) and "⚑ contradiction" in first
        coloured = pane.capture(colours=True)
        assert re.search(r"\x1b\[(\d+;)*41m", coloured)  # the contradiction on red, as the terminal shows it
        pane.send("a", "Enter")
        second = pane.wait_for("2 of 5", "alice>")  # the prompt is drawn last
        assert "saved: s03 R1 accepted 0" in second
        assert "neither explodes nor vanishes[2]. Weights are random, small.[1]" in answer_box(second)
        coloured = pane.capture(colours=True)
        assert re.search(r"\x1b\[(\d+;)*102mWeights are random", coloured) and re.search(
            r"\x1b\[(\d+;)*106mXavier", coloured
        )
        assert "1 of 5" not in second  # the screen was cleared: one answer at a time
        assert len(second.rstrip("\n").splitlines()) <= 45 and max(len(line) for line in second.splitlines()) <= 120
        pane.send("0.3", "Enter")
        assert "off I3's step of 0.5" in pane.wait_for("off I3")
        pane.send("q", "Enter")
        final = pane.wait_for("to resume")
        assert _squeezed(f"reviewed 1, skipped 0; 4 left; run `grader review {db}` to resume") in _squeezed(final)
        deadline = time.monotonic() + 10
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert done.read_text().strip() == "0"
    finally:
        pane.close()
        shutil.rmtree(socket_dir, ignore_errors=True)
    with Gradebook.open(db) as gb:
        assert [(a.ta, a.action) for a in gb.audit() if a.action != "grade"] == [("alice", "accept")]
        assert len(gb.queue()) == 4


def test_an_answer_another_ta_decided_meanwhile_is_passed_over(db):
    def read(prompt: str, lines=["a", "a", "q"]) -> str:
        if len(lines) == 3:  # while alice looks at her first answer, bob decides her second
            with Gradebook.open(db) as bob:
                bob.set_mark(*QUEUE[1], 1.0, "bob")
        return lines.pop(0)

    console = screen_console()
    with Gradebook.open(db) as gb:
        summary = review(gb, "alice", console, read)
        assert gb.entry(*QUEUE[1]).reviewed_by == "bob" and gb.entry(*QUEUE[2]).reviewed_by == "alice"
    text = console.export_text()
    assert "3 of 5" in text and "student s02  question B1" in text and "student s02  question I3" not in text
    assert (summary.reviewed, summary.left) == (2, 2)


def test_the_review_command_refuses_a_missing_gradebook_in_one_line(tmp_path, capsys):
    from grader.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["review", str(tmp_path / "nope.db"), "--ta", "alice"], prog_name="grader")
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "no such gradebook" in err and "Traceback" not in err
    assert not (tmp_path / "nope.db").exists()


def test_brackets_in_answers_and_rubric_text_are_shown_as_typed_not_read_as_markup(db):
    import copy

    data = copy.deepcopy(RUBRIC_DATA)
    data["questions"][1]["points"][0]["text"] = "w[i] ~ U[-a, a] with a = [bold]sqrt(6/(n_in + n_out))"
    data["questions"][0]["options"]["a"] = "[red]an adversarial loss[/red]"
    rubric = parse_rubric(data, "brackets.yaml")
    with Gradebook.open(db) as gb:
        entry = replace(gb.entry("s02", "I3"), answer="[bold]w[/bold] is random. " + gb.entry("s02", "I3").answer)
        console = screen_console(200)
        console.print(render(entry, rubric, 1, 5))
        console.print(render(gb.entry("s02", "B1"), rubric, 2, 5))
    text = console.export_text()
    assert "w[i] ~ U[-a, a] with a = [bold]sqrt(6/(n_in + n_out))" in text
    assert "[red]an adversarial loss[/red]" in text and "[bold]w[/bold] is random." in text
