"""The review screen: a TA walks the gradebook's queue one answer at a time, in a terminal.

Every decision goes to the gradebook at once (one audited transaction each), so `q`, Ctrl-C, end
of input or a dropped connection loses nothing, and the next `grader review` (this TA or another)
starts where the gradebook's queue says the work stopped. Input is one command per line, so a
person, tmux, a script or a test drives it the same way. `render` draws one answer and does no
I/O; `review` is the loop over it.
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from grader.errors import GraderError
from grader.exam.rubric import McqQuestion, Rubric, ShortQuestion
from grader.review.gradebook import Entry, Gradebook, default_ta
from grader.scoring.grade import describe_neighbours
from grader.scoring.match import PointMatch
from grader.text import shorten

POINT_STYLES = (
    "black on bright_green",
    "black on bright_cyan",
    "black on bright_yellow",
    "black on bright_magenta",
    "black on green",
    "black on cyan",
    "black on yellow",
    "black on magenta",
)
"""Background per rubric point (in rubric order): the terminal's own 16 colours, which every
terminal and tmux show and which stay distinct there (rich folds 256-colour pastels into white on a
16-colour terminal); red is kept for contradictions. Each highlight also carries an [n] label, so it
survives colour blindness, no-colour terminals and `tmux capture-pane` without -e."""
CONTRADICTION_STYLE = "bold white on red"
EVIDENCE_IN_TABLE = 120
"""Evidence found in the answer is highlighted there in full; the table quotes at most this many characters."""
CLOSEST_IN_TABLE = 60
"""The closest segment of a point not earned is a hint, not evidence: quoted shorter."""

KEYS = "a accept · 0.5 or m 0.5 set mark · c TEXT comment · s skip · b back · u undo · q quit · ? help"
HELP = """\
a          accept the proposed mark (it becomes your mark), then the next answer
0.5, m 0.5 set that mark (0 to the question's marks, on its step; add ! to allow an off-step mark: 0.3!)
c TEXT     comment for the student (c - removes it); the answer stays on screen
s          skip: leave it for later (it goes to the back of the queue)
b          back to the previous answer of this session (to change what you did)
u          undo your last change (in this session or an earlier one) and show that answer
q          quit (Ctrl-C and Ctrl-D too); everything you did is already saved
?          this help"""

# Segments join sentences with one space, and the whole-answer segment collapses whitespace, so
# evidence may differ from the answer in spacing and in line-start bullets only.
_GAP = r"\s+(?:(?:[-*•]|\d+[.)])\s+)?"


@dataclass(frozen=True)
class ReviewSummary:
    """What one review session did: its own changes as the gradebook holds them at the end."""

    gradebook: str
    reviewed: int
    """Answers this TA decided (accepted or set) in this session and still decided at the end."""
    skipped: int
    """Answers skipped in this session and still undecided."""
    commented: int
    left: int
    """Queued answers not decided yet (as this session last saw the queue)."""
    total: int
    """All queued answers of the gradebook, decided or not."""
    stopped: str
    """'done' (queue empty), 'quit', 'end of input' or 'interrupted'."""

    def __str__(self) -> str:
        done = f"reviewed {self.reviewed}, skipped {self.skipped}"
        if self.commented:
            done += f", commented {self.commented}"
        if self.left == 0:
            return f"{done}; all {self.total} queued answers are decided."
        return f"{done}; {self.left} left; run `grader review {self.gradebook}` to resume"


def render(entry: Entry, rubric: Rubric, position: int | None, total: int, ta: str | None = None) -> RenderableType:
    """One answer as a TA sees it: header, question, answer with evidence highlighted, points, marks, flags.

    `position` is the answer's place among the `total` queued answers (None: not in the queue).
    Pure: no I/O, so it can be tested (or drawn elsewhere) without a terminal.
    """
    question = rubric.question(entry.question_id)
    parts: list[RenderableType] = [_header(entry, question, position, total, ta)]
    prompt = Text.assemble((f"{question.id}  ", "bold"), question.prompt or "(no prompt in the rubric)")
    parts.append(prompt)
    if isinstance(question, McqQuestion):
        parts.append(_options(entry, question))
        parts.append(_answer_panel(Text(entry.answer) if entry.answer.strip() else None))
    else:
        highlighted, found = _highlight(entry, question)
        parts.append(_answer_panel(highlighted if entry.answer.strip() else None))
        if entry.answer.strip():
            parts.append(_legend(entry, question, found))
        parts.append(_points_table(entry, question, found))
    parts.append(_marks(entry, question))
    return Group(*parts)


def review(gb: Gradebook, ta: str, console: Console, read: Callable[[str], str] = input) -> ReviewSummary:
    """Review the gradebook's queue as `ta`, one command per line from `read`, drawing on `console`.

    Returns (and prints) the summary when the queue is empty, on `q`, at end of input or on Ctrl-C.
    """
    if not ta.strip():
        raise GraderError("a TA name is needed for the audit log (--ta NAME)")
    return _Session(gb, ta, console, read).run()


Key = tuple[str, str]
"""(student id, question id): one answer."""


@dataclass
class _Shown:
    key: Key
    position: int | None
    """Its place in the queue when it was shown (kept for `b`: a decided answer has left the queue)."""


@dataclass
class _Session:
    """One TA's sitting at the review screen.

    The queue is read from the gradebook once, at the start, then kept in step with what this
    session does: `Gradebook.queue` rebuilds every entry of the class (seconds for a large class),
    too slow for every key press. Each answer is read afresh before it is shown, so one that another
    TA decided meanwhile is passed over.
    """

    gb: Gradebook
    ta: str
    console: Console
    read: Callable[[str], str]
    total: int = 0
    """Queued answers, decided or not."""
    queued: set[Key] = field(default_factory=set)
    pending: list[Key] = field(default_factory=list)
    """Queued answers not decided yet, in the order they come up; a skipped one moves to the back."""
    history: list[_Shown] = field(default_factory=list)
    cursor: int = -1
    decided: set[Key] = field(default_factory=set)
    commented: set[Key] = field(default_factory=set)
    skipped: set[Key] = field(default_factory=set)
    message: Text | None = None

    def run(self) -> ReviewSummary:
        stopped = "done"
        try:
            everything = self.gb.queue(include_reviewed=True)
            self.total = len(everything)
            self.queued = {(e.student_id, e.question_id) for e in everything}
            self.pending = [(e.student_id, e.question_id) for e in everything if not e.reviewed]
            if not self._advance():
                self.console.print(
                    f"Nothing to review in {self.gb.path}: all {self.total} queued answers are decided.",
                    markup=False,
                    highlight=False,
                )
                return self._summary(stopped)
            while True:
                self._draw()
                try:
                    line = self.read(f"{self.ta}> ")
                except EOFError:
                    stopped = "end of input"
                    break
                outcome = self._command(line.strip())
                if outcome is not None:
                    stopped = outcome
                    break
        except KeyboardInterrupt:  # a change in flight was rolled back by its transaction
            stopped = "interrupted"
        self.console.print()
        summary = self._summary(stopped)
        self.console.print(str(summary), markup=False, highlight=False, soft_wrap=True)
        return summary

    # -- what is on screen -------------------------------------------------------------------

    @property
    def current(self) -> _Shown:
        return self.history[self.cursor]

    def _draw(self) -> None:
        entry = self.gb.entry(*self.current.key)
        position = self.current.position if entry.reviewed else self._position(self.current.key)
        self.console.clear()
        self.console.print(render(entry, self.gb.rubric(), position, self.total, self.ta))
        self.console.print(Text(KEYS, style="dim"))
        if self.message is not None:
            self.console.print(self.message)
            self.message = None

    def _position(self, key: Key) -> int | None:
        """Decided answers first, then this one's place among the undecided; None outside the queue."""
        if key not in self.pending:
            return None
        return self.total - len(self.pending) + 1 + self.pending.index(key)

    def _show(self, key: Key) -> None:
        """Make `key` the current answer, at the end of this session's history."""
        del self.history[self.cursor + 1 :]
        if not self.history or self.history[-1].key != key:
            self.history.append(_Shown(key, self._position(key)))
        self.cursor = len(self.history) - 1

    def _advance(self) -> bool:
        """Show the next undecided answer; False when there is none."""
        while self.pending:
            head = self.pending[0]
            if self.gb.entry(*head).reviewed:  # another TA decided it while this session ran
                self.pending.pop(0)
                continue
            if head in self.skipped:
                self._say(f"only answers you skipped are left ({len(self.pending)}): here they come again", "yellow")
            self._show(head)
            return True
        return False

    def _say(self, text: str, style: str = "") -> None:
        self.message = Text(text, style=style)

    # -- commands ----------------------------------------------------------------------------

    def _command(self, line: str) -> str | None:
        """Carry out one line; returns 'quit' or 'done' when the session ends."""
        word, _, rest = line.partition(" ")
        word, rest = word.lower(), rest.strip()
        try:
            if line == "":
                self._say("type a command (? for help)", "yellow")
            elif word in ("?", "h", "help"):
                self.message = Text(HELP)
            elif word in ("q", "quit", "exit"):
                return "quit"
            elif word == "a" and not rest:
                return self._decide(lambda s, q: self.gb.accept(s, q, self.ta))
            elif word == "m" or _looks_like_mark(line):
                return self._set(rest if word == "m" else line)
            elif word == "c":
                self._comment(rest)
            elif word == "s" and not rest:
                return self._skip()
            elif word == "b" and not rest:
                self._back()
            elif word == "u" and not rest:
                self._undo()
            else:
                self._say(f"unknown command {line!r}: {KEYS}", "red")
        except (GraderError, sqlite3.Error) as exc:  # e.g. another TA held the file for too long
            self._say(f"not saved: {exc}", "red")
        return None

    def _next(self) -> str | None:
        return None if self._advance() else "done"

    def _decide(self, change: Callable[[str, str], Entry]) -> str | None:
        key = self.current.key
        before = self.gb.entry(*key)
        after = change(*key)
        self.decided.add(key)
        if key in self.pending:
            self.pending.remove(key)
        verb = "accepted" if after.status == "accepted" else "set"
        was = "" if verb == "accepted" else f" (proposed {before.auto_mark:g})"
        self._say(f"saved: {after.student_id} {after.question_id} {verb} {after.ta_mark:g}{was}", "green")
        return self._next()

    def _set(self, text: str) -> str | None:
        if not text:
            self._say("m needs the mark: m 0.5", "red")
            return None
        entry = self.gb.entry(*self.current.key)
        mark, problem = _parse_mark(text, entry.max_mark, self.gb.rubric().question(entry.question_id))
        if problem:
            self._say(problem, "red")
            return None
        return self._decide(lambda s, q: self.gb.set_mark(s, q, mark, self.ta))

    def _comment(self, text: str) -> None:
        if not text:
            self._say("c needs the comment: c TEXT (c - removes the comment)", "red")
            return
        after = self.gb.comment(*self.current.key, "" if text == "-" else text, self.ta)
        self.commented.add(self.current.key)
        self._say("comment removed" if after.comment is None else "comment saved", "green")

    def _skip(self) -> str | None:
        key = self.current.key
        entry = self.gb.entry(*key)
        if entry.reviewed:  # reached with `b`: leave the decision as it is and go on
            self._say(f"{key[0]} {key[1]} left as {entry.reviewed_by} decided it", "green")
        else:
            self.gb.skip(*key, self.ta)
            self.skipped.add(key)
            if key in self.pending:
                self.pending.remove(key)
                self.pending.append(key)
            self._say(f"skipped {key[0]} {key[1]}: it comes back at the end", "yellow")
        return self._next()

    def _back(self) -> None:
        if self.cursor <= 0:
            self._say("this is the first answer of this session", "yellow")
            return
        self.cursor -= 1
        self._say("back one answer: a, a mark or c changes it; s leaves it as it is and goes on", "yellow")

    def _undo(self) -> None:
        target = self.gb.undo(self.ta)
        if target is None:
            self._say("nothing of yours to undo", "yellow")
            return
        key = (target.student_id, target.question_id)
        now = self.gb.entry(*key)
        if now.reviewed:
            self.pending = [k for k in self.pending if k != key]
        else:
            self.decided.discard(key)
            if key in self.queued and key not in self.pending:
                self.pending.insert(0, key)  # it is back in the queue, and shown now
        was = target.new.get("mark") if target.new else None
        self._say(
            f"undone: your {target.action} of {key[0]} {key[1]}"
            + (f" ({was:g})" if isinstance(was, (int, float)) else "")
            + f"; the mark is now {now.mark:g} ({'yours' if now.source == 'ta' else 'automatic'})",
            "green",
        )
        self._show(key)

    def _summary(self, stopped: str) -> ReviewSummary:
        now = {k: self.gb.entry(*k) for k in self.decided | self.skipped | self.commented}
        return ReviewSummary(
            gradebook=str(self.gb.path),
            reviewed=sum(1 for k in self.decided if now[k].reviewed),
            skipped=sum(1 for k in self.skipped if not now[k].reviewed),
            commented=sum(1 for k in self.commented if now[k].comment),
            left=len(self.pending),
            total=self.total,
            stopped=stopped,
        )


def _looks_like_mark(line: str) -> bool:
    return bool(re.fullmatch(r"[-+]?(\d+([.,]\d*)?|[.,]\d+)!?", line))


def _parse_mark(text: str, max_mark: float, question: McqQuestion | ShortQuestion) -> tuple[float, str | None]:
    """A typed mark, or why it is refused: outside 0..max, or off the question's step without a `!`."""
    text = text.strip()
    force = text.endswith("!")
    text = text.rstrip("!").strip().replace(",", ".")
    try:
        mark = float(text)
    except ValueError:
        return 0.0, f"not a mark: {text!r} (type a number such as 0.5, or m 0.5)"
    if not math.isfinite(mark) or not -1e-9 <= mark <= max_mark + 1e-9:
        return 0.0, f"a mark for {question.id} must be between 0 and {max_mark:g}, not {text}"
    step = question.step if isinstance(question, ShortQuestion) else question.marks
    steps = mark / step
    if not force and not math.isclose(steps, round(steps), abs_tol=1e-6):
        allowed = [k * step for k in range(int(round(max_mark / step)) + 1)]
        listed = ", ".join(f"{m:g}" for m in allowed) if len(allowed) <= 9 else f"multiples of {step:g}"
        return 0.0, f"{text} is off {question.id}'s step of {step:g} (marks: {listed}); type {text}! to set it anyway"
    return max(0.0, min(mark, max_mark)), None


# -- drawing -----------------------------------------------------------------------------------


def _header(
    entry: Entry, question: McqQuestion | ShortQuestion, position: int | None, total: int, ta: str | None
) -> Rule:
    where = f"{position} of {total}" if position is not None else f"not in the queue ({total} queued)"
    marks = f"{question.marks:g} mark{'s' if question.marks != 1 else ''}"
    if isinstance(question, ShortQuestion):
        marks += f", step {question.step:g}"
    title = Text.assemble(
        (f" {where} ", "bold reverse"),
        "  student ",
        (entry.student_id, "bold"),
        "  question ",
        (question.id, "bold"),
        f" ({marks})",
        *(("  TA ", (ta, "bold")) if ta else ()),
        " ",
    )
    return Rule(title, align="left", style="dim")


def _options(entry: Entry, question: McqQuestion) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(justify="right")
    table.add_column()
    table.add_column()
    for letter, text in question.options.items():
        notes = Text()
        if letter in question.keys and not question.void:
            notes.append("✓ key ", style="bold green")
        if entry.choice == letter:
            notes.append("← read", style="bold cyan")
        table.add_row(f"{letter})", Text(text), notes)
    if question.void:
        table.add_row("", Text("void question: everyone gets the marks", style="yellow"), "")
    if entry.choice is None:
        table.add_row("", Text("no letter could be read from the answer", style="yellow"), "")
    return table


def _answer_panel(text: Text | None) -> Panel:
    body = text if text is not None else Text("(blank: no answer was given)", style="dim italic")
    return Panel(body, title="answer", title_align="left", box=box.ROUNDED, padding=(0, 1))


def locate(evidence: str, answer: str) -> tuple[int, int] | None:
    """Where `evidence` sits in `answer`: exactly, else ignoring case, spacing and line-start bullets."""
    if not evidence.strip():
        return None
    at = answer.find(evidence)
    if at >= 0:
        return at, at + len(evidence)
    found = re.search(_GAP.join(re.escape(w) for w in evidence.split()), answer, re.IGNORECASE)
    return found.span() if found else None


def _earned(p: PointMatch) -> bool:
    return p.credit > 0


def _against(p: PointMatch) -> list[str]:
    """Text that says the opposite of the point and cost it its credit: a rubric contradiction
    pattern's match, or a segment of opposite polarity (`opposite`, where this grader records it)."""
    if _earned(p):
        return []
    return [t for t in (p.contradiction, getattr(p, "opposite", None)) if t]


def _highlight(entry: Entry, question: ShortQuestion) -> tuple[Text, dict[str, tuple[int, int] | None]]:
    """The answer with each credited point's evidence on its colour, labelled [n]; contradictions in red.

    Returns the text and, per point id, where its evidence was found (None: not in the answer).
    """
    answer = entry.answer
    number = {p.id: i for i, p in enumerate(question.points, 1)}
    spans: list[tuple[int, int, str, str]] = []  # start, end, style, label
    found: dict[str, tuple[int, int] | None] = {}
    for p in entry.points:
        span = locate(p.evidence, answer)
        found[p.point_id] = span
        n = number.get(p.point_id, 0)
        if span is not None and _earned(p):
            spans.append((*span, POINT_STYLES[(n - 1) % len(POINT_STYLES)], f"[{n}]"))
        for against_text in _against(p):
            against = locate(against_text, answer)
            if against is not None:
                spans.append((*against, CONTRADICTION_STYLE, f"[{n}✗]"))
    text = Text(answer)
    # Longest first: evidence nested in another point's (a clause inside a sentence) stays visible on
    # top of it; the outer one shows around it and by its label.
    for start, end, style, _ in sorted(spans, key=lambda s: s[0] - s[1]):
        text.stylize(style, start, end)
    labels: dict[int, list[tuple[str, str]]] = {}
    for start, end, style, label in spans:
        labels.setdefault(end, []).append((label, style))
    if not labels:
        return text, found
    pieces = text.divide(sorted(labels))
    out = Text()
    for piece, cut in zip(pieces, [*sorted(labels), None]):
        out.append_text(piece)
        for label, style in labels.get(cut, []) if cut is not None else []:
            out.append(label, style=f"bold {style}")
    return out, found


def _legend(entry: Entry, question: ShortQuestion, found: dict[str, tuple[int, int] | None]) -> Text:
    by_id = {p.point_id: p for p in entry.points}
    items: list[Text] = []
    for n, point in enumerate(question.points, 1):
        match = by_id.get(point.id)
        style = POINT_STYLES[(n - 1) % len(POINT_STYLES)]
        if match is not None and _earned(match) and found.get(point.id) is not None:
            items.append(Text.assemble((f"[{n}]", style), f" {point.id}"))
        elif match is not None and _against(match):
            items.append(Text.assemble((f"[{n}✗]", CONTRADICTION_STYLE), f" {point.id}: contradiction"))
        elif match is not None and _earned(match):
            items.append(Text(f"[{n}] {point.id}: evidence not found verbatim, see the table", style="yellow"))
        else:
            items.append(Text(f"[{n}] {point.id}: not earned", style="dim"))
    return Text("  ").join(items)


def _points_table(entry: Entry, question: ShortQuestion, found: dict[str, tuple[int, int] | None]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, expand=True, padding=(0, 1), pad_edge=False, show_edge=False)
    table.add_column("point", no_wrap=True)
    table.add_column("rubric", ratio=4)
    table.add_column("earned", justify="right", no_wrap=True)
    table.add_column("evidence", ratio=3)
    table.add_column("notes", width=24)
    by_id = {p.point_id: p for p in entry.points}
    for n, point in enumerate(question.points, 1):
        style = POINT_STYLES[(n - 1) % len(POINT_STYLES)]
        match = by_id.get(point.id)
        label = Text.assemble((f"[{n}]", style), f" {point.id}")
        if match is None:
            table.add_row(label, Text(point.text), f"0/{point.marks:g}", Text("—", style="dim"), "")
            continue
        earned = f"{round(match.marks * match.credit, 2):g}/{match.marks:g}"
        if found.get(point.id) is None:
            evidence = match.evidence
        else:
            evidence = _quoted(match.evidence, EVIDENCE_IN_TABLE if _earned(match) else CLOSEST_IN_TABLE)
        quoted = Text(f"“{evidence}”", style="" if _earned(match) else "dim")
        notes = []
        if match.pattern:  # the pattern's match is the evidence then: not quoted twice
            same = match.pattern == match.evidence
            notes.append(Text("pattern matched" if same else f"pattern matched “{match.pattern}”", style="green"))
        if match.contradiction:
            notes.append(
                Text(f"contradiction “{match.contradiction}”" + ("" if match.pattern else ": no credit"), style="red")
            )
        opposite = getattr(match, "opposite", None)
        if opposite and not _earned(match):
            notes.append(Text(f"says the opposite: “{_quoted(opposite, CLOSEST_IN_TABLE)}”: no credit", style="red"))
        if not match.pattern and not match.contradiction and not opposite:
            notes.append(Text(f"score {match.score:.2f}" + ("" if _earned(match) else " (too low)"), style="dim"))
        if found.get(point.id) is None and match.evidence.strip():
            notes.append(Text("not found verbatim in the answer", style="yellow"))
        table.add_row(
            label,
            Text(point.text),
            Text(earned, style="bold" if _earned(match) else "dim"),
            quoted,
            Text("\n").join(notes),
        )
    return table


def _quoted(text: str, limit: int) -> str:
    """Evidence as the answer has it (spacing kept: it was found verbatim in the answer shown above), shortened."""
    return shorten(text, limit, collapse=False, trim=True)


def _marks(entry: Entry, question: McqQuestion | ShortQuestion) -> Group:
    lines: list[RenderableType] = []
    proposed = Text.assemble(
        ("proposed mark ", "bold"), (f"{entry.auto_mark:g}", "bold cyan"), f" of {entry.max_mark:g}"
    )
    if isinstance(question, ShortQuestion):
        proposed.append(f"   raw {entry.raw_mark:.2f} (rounded to the step of {question.step:g})", style="dim")
    lines.append(proposed)
    for flag in entry.flags:
        lines.append(Text.assemble(("⚑ ", "yellow"), (flag.code, "bold yellow"), f": {flag.reason}"))
    if entry.neighbours:  # the calibration leaned on these marked answers: the TA can compare
        lines.append(Text(describe_neighbours(entry.neighbours), style="cyan"))
    if entry.status in ("accepted", "set"):
        verb = "accepted" if entry.status == "accepted" else "set"
        lines.append(
            Text.assemble(
                ("TA mark ", "bold"),
                (f"{entry.ta_mark:g}", "bold green"),
                f": {entry.reviewed_by} {verb} it ({entry.reviewed_at})",
            )
        )
    if entry.comment:
        lines.append(
            Text.assemble(
                ("comment ", "bold"), f"({entry.reviewed_by}, shown to the student): ", (entry.comment, "italic")
            )
        )
    if entry.auto_changed:
        lines.append(
            Text(
                f"⚠ the automatic mark changed since {entry.reviewed_by} reviewed it: {entry.auto_at_review:g} then, "
                f"{entry.auto_mark:g} now ({entry.reviewed_by}'s {entry.ta_mark:g} still counts)",
                style="bold yellow",
            )
        )
    return Group(*lines)


def review_gradebook(db: Path, ta: str | None = None, console: Console | None = None) -> ReviewSummary:
    """What `grader review DB` runs: the gradebook's queue, reviewed in this terminal as `ta` (default:
    the login name). Input lines can be edited and recalled with the arrow keys where readline exists."""
    try:
        import readline  # noqa: F401  (input() then edits the line and recalls earlier ones with the arrow keys)
    except ImportError:  # Windows
        pass
    with Gradebook.open(db, create=False) as gb:
        return review(gb, ta or default_ta(), console or Console())
