"""One answer as the browser shows it: the answer cut into pieces by the evidence behind each rubric
point, the points table, the flags. Plain data for the templates (which escape every string), built
by the same rules as the terminal screen (`grader.review.screen`): no HTML here, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from grader.exam.rubric import McqQuestion, ShortQuestion
from grader.review.gradebook import Entry
from grader.review.screen import _against, locate

POINT_COLOURS = 8
"""CSS classes p1..p8 (rubric order, wrapping round); the contradiction class is `against`."""


@dataclass(frozen=True)
class Piece:
    text: str
    css: str = ""
    """'' (no evidence), 'p1'..'p8' (a point's evidence) or 'against' (says the opposite of a point)."""
    labels: tuple[tuple[str, str], ...] = ()
    """(label, css) to show after this piece: '[2]' where point 2's evidence ends, '[2✗]' for a contradiction."""


@dataclass(frozen=True)
class PointRow:
    number: int
    point_id: str
    text: str
    earned: str
    """'0.5/1' as the screen shows it."""
    credited: bool
    evidence: str
    css: str
    notes: tuple[tuple[str, str], ...] = ()
    """(note, css): pattern matched, contradiction, opposite, score, not found verbatim."""


@dataclass(frozen=True)
class AnswerView:
    pieces: tuple[Piece, ...]
    points: tuple[PointRow, ...] = ()
    options: tuple[tuple[str, str, bool, bool], ...] = ()
    """MCQ: (letter, text, is a key, was read)."""
    neighbours: tuple[dict, ...] = field(default_factory=tuple)
    """The nearest marked answers the calibration used, where the grade records them."""


def answer_view(entry: Entry, question: McqQuestion | ShortQuestion) -> AnswerView:
    """What the queue page shows of one answer (see the module docstring)."""
    neighbours = tuple(n.to_dict() for n in entry.neighbours)
    if isinstance(question, McqQuestion):
        options = tuple(
            (letter, text, letter in question.keys and not question.void, entry.choice == letter)
            for letter, text in question.options.items()
        )
        return AnswerView((Piece(entry.answer),), options=options, neighbours=neighbours)
    number = {p.id: i for i, p in enumerate(question.points, 1)}
    spans: list[tuple[int, int, str, str]] = []
    found: dict[str, bool] = {}
    for p in entry.points:
        n = number.get(p.point_id, 0)
        span = locate(p.evidence, entry.answer)
        found[p.point_id] = span is not None
        if span is not None and p.credit > 0:
            spans.append((*span, _css(n), f"[{n}]"))
        for text in _against(p):
            against = locate(text, entry.answer)
            if against is not None:
                spans.append((*against, "against", f"[{n}✗]"))
    rows = tuple(_row(n, point, entry, found) for n, point in enumerate(question.points, 1))
    return AnswerView(_pieces(entry.answer, spans), rows, neighbours=neighbours)


def _css(n: int) -> str:
    return f"p{(n - 1) % POINT_COLOURS + 1}"


def _pieces(answer: str, spans: list[tuple[int, int, str, str]]) -> tuple[Piece, ...]:
    """Cut the answer at every span edge; each piece takes the shortest span over it (evidence nested
    in another point's stays visible), and labels follow the piece where their span ends."""
    cuts = sorted({0, len(answer), *(s for s, _, _, _ in spans), *(e for _, e, _, _ in spans)})
    pieces = []
    for start, end in zip(cuts, cuts[1:]):
        over = [s for s in spans if s[0] <= start and end <= s[1]]
        css = min(over, key=lambda s: s[1] - s[0])[2] if over else ""
        labels = tuple((label, css_) for s, e, css_, label in spans if e == end)
        pieces.append(Piece(answer[start:end], css, labels))
    return tuple(pieces)


def _row(n: int, point, entry: Entry, found: dict[str, bool]) -> PointRow:
    match = next((p for p in entry.points if p.point_id == point.id), None)
    if match is None:
        return PointRow(n, point.id, point.text, f"0/{point.marks:g}", False, "", _css(n))
    credited = match.credit > 0
    notes: list[tuple[str, str]] = []
    if match.pattern:
        notes.append(
            ("pattern matched" if match.pattern == match.evidence else f"pattern matched “{match.pattern}”", "good")
        )
    if match.contradiction:
        notes.append((f"contradiction “{match.contradiction}”" + ("" if match.pattern else ": no credit"), "bad"))
    opposite = getattr(match, "opposite", None)
    if opposite and not credited:
        notes.append((f"says the opposite: “{opposite}”: no credit", "bad"))
    if not match.pattern and not match.contradiction and not opposite:
        notes.append((f"score {match.score:.2f}" + ("" if credited else " (too low)"), "dim"))
    if not found.get(point.id) and match.evidence.strip():
        notes.append(("not found verbatim in the answer", "warn"))
    earned = f"{round(match.marks * match.credit, 2):g}/{match.marks:g}"
    return PointRow(n, point.id, point.text, earned, credited, match.evidence, _css(n), tuple(notes))
