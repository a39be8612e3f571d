"""The draft as rubric YAML with section headings, stems, `# check:` comments and commented-out LLM suggestions."""

from __future__ import annotations

import itertools
import math
import textwrap
from collections.abc import Sequence
from typing import Protocol

import yaml

from grader.authoring.draft.markup import _flat
from grader.authoring.draft.record import Draft
from grader.authoring.reference import rubric_yaml
from grader.exam.rubric import ShortQuestion


class SuggestionsView(Protocol):
    """What `draft_yaml` reads of `grader.authoring.suggest.Suggestions`: typed here because
    `grader.authoring.suggest` imports this package, which must not import it back."""

    @property
    def model(self) -> str: ...

    @property
    def made(self) -> int: ...

    def phrasings(self, question_id: str, point_id: str) -> Sequence[str]: ...

    def extra_points(self, question_id: str) -> Sequence[str]: ...

    def summary(self) -> str: ...


def draft_yaml(draft: Draft, suggestions: SuggestionsView | None = None) -> str:
    """The draft as YAML (`grader.authoring.reference.rubric_yaml`) with section headings, stems and `# check:`
    comments.

    Comments never change the data: the text loads back (`load_rubric`) to `draft.rubric`. LLM
    `suggestions` (`grader.authoring.suggest`) are commented-out YAML under the point or question they belong
    to, labelled `# suggested`: removing the leading `# ` of their lines accepts them.
    """
    body = rubric_yaml(draft.rubric)
    root = yaml.compose(body)
    questions = next(v for k, v in root.value if k.value == "questions")
    before: dict[int, list[str]] = {}
    first_of_section = {s.question_ids[0]: s for s in draft.sections}
    for node in questions.value:
        fields = {k.value: v for k, v in node.value}
        qid = fields["id"].value
        line = node.start_mark.line
        comments = before.setdefault(line, [])
        if qid in first_of_section:
            section = first_of_section[qid]
            marks = f": {section.marks:g} marks" if section.marks is not None else ""
            comments.append(f"  # ---------------- {section.name}{marks} ----------------")
        if qid in draft.stems:
            comments.extend(_comment(draft.stems[qid], "  ", ""))
        for note in draft.notes:
            if note.question_id == qid and note.point_id is None:
                comments.extend(_comment(note.text, "  "))
        if "points" in fields:
            for point in fields["points"].value:
                pid = next(v.value for k, v in point.value if k.value == "id")
                notes = [n for n in draft.notes if n.question_id == qid and n.point_id == pid]
                if notes:
                    lines = [c for n in notes for c in _comment(n.text, "      ")]
                    before.setdefault(point.start_mark.line, []).extend(lines)
                if suggestions is not None and suggestions.phrasings(qid, pid):
                    after, lines = _suggested_phrasings(point, suggestions.phrasings(qid, pid), suggestions.model)
                    before.setdefault(after + 1, []).extend(lines)
            if suggestions is not None and suggestions.extra_points(qid):
                question = draft.rubric.question(qid)
                lines = _suggested_points(fields["points"], question, suggestions.extra_points(qid), suggestions.model)
                before.setdefault(_last_line(fields["points"]) + 1, []).extend(lines)
    head = _comment(f"Drafted from {draft.source} by `grader rubric draft`: {draft.summary()}.", "", "")
    head += _comment("Review every question, above all those marked `# check:`, then `grader validate` it.", "", "")
    if suggestions is not None:
        how = (
            (
                " Each is commented out under what it belongs to, labelled `# suggested`, and counts only once "
                "you uncomment its lines (remove the leading `# `)."
            )
            if suggestions.made
            else ""
        )
        head += _comment(f"{suggestions.summary()}.{how}", "", "")
    head.extend(c for n in draft.notes if n.question_id is None for c in _comment(n.text, ""))
    lines = body.splitlines()
    out = list(head)
    for number, line in enumerate(lines):
        out.extend(before.get(number, []))
        out.append(line)
    out.extend(before.get(len(lines), []))
    return "\n".join(out) + "\n"


def _suggested_phrasings(point: yaml.MappingNode, texts: Sequence[str], model: str) -> tuple[int, list[str]]:
    """The line after which a point's suggested phrasings go, and their commented-out `alternatives` lines.

    One phrasing a line, so each can be accepted alone: under the point's own list when it has one.
    """
    label = _suggested_label(model)
    fields = {k.value: v for k, v in point.value}
    if "alternatives" in fields:
        items = fields["alternatives"]
        indent = " " * items.start_mark.column
        return _last_line(items), [f"{indent}# - {_scalar(text)}{label}" for text in texts]
    indent = " " * point.start_mark.column
    head = f"{indent}# alternatives:{label}: uncomment this line and the phrasings you accept"
    return _last_line(point), [head, *(f"{indent}#   - {_scalar(text)}" for text in texts)]


def _suggested_points(
    points: yaml.SequenceNode, question: ShortQuestion, texts: Sequence[str], model: str
) -> list[str]:
    """Commented-out extra points worth one step each: accepting one also means moving marks, said on its line."""
    indent = " " * points.start_mark.column
    taken = {p.id for p in question.points}
    ids = (f"s{n}" for n in itertools.count(1) if f"s{n}" not in taken)
    step = f"{question.step:g}"
    lines = []
    for text, pid in zip(texts, ids):
        lines += [
            f"{indent}# - id: {pid}{_suggested_label(model)}: the model answer implies it, no point covers it",
            f"{indent}#   text: {_scalar(text)}",
            f"{indent}#   marks: {step}  # adds {step} to {question.id}: "
            f"raise its marks by {step}, or take {step} from other points",
        ]
    return lines


def _suggested_label(model: str) -> str:
    return f"  # suggested (LLM, model {_flat(model)})"


def _scalar(text: str) -> str:
    """`text` as a YAML scalar on one line, quoted where YAML needs it."""
    return yaml.safe_dump([text], allow_unicode=True, width=math.inf).removeprefix("- ").rstrip("\n")


def _last_line(node: yaml.Node) -> int:
    """The line a node's text ends on (a block scalar's end mark is at the start of the next line)."""
    while isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.value:
        last = node.value[-1]
        node = last[1] if isinstance(node, yaml.MappingNode) else last
    return node.end_mark.line if node.end_mark.column > 0 else node.end_mark.line - 1


def _comment(text: str, indent: str, tag: str = "check: ") -> list[str]:
    wrapped = textwrap.wrap(_flat(text), width=max(40, 100 - len(indent) - 2 - len(tag)))
    return [f"{indent}# {tag if k == 0 else ' ' * len(tag)}{line}" for k, line in enumerate(wrapped)]
