"""What a draft is: the `Draft` record, its `Note`s and `Section`s, and the TODO texts written where the
paper says nothing.

The lowest module of the package, importing none of it: `grader.authoring.suggest` reads drafts from here, and nothing
here imports `grader.authoring.suggest`, so the two do not import each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from grader.exam.rubric import McqQuestion, Rubric, ShortQuestion

TODO_ANSWER = "TODO: the paper has no model answer for this question"
TODO_POINT = "TODO: write the points a full answer makes"


@dataclass(frozen=True)
class Note:
    """Something the parser was unsure of, shown as a `# check:` comment above what it concerns."""

    question_id: str | None
    """None: the paper as a whole (the comment goes at the top)."""
    point_id: str | None
    text: str


@dataclass(frozen=True)
class Section:
    """A section of the paper, shown as a heading comment above its first question."""

    name: str
    marks: float | None
    question_ids: tuple[str, ...]


@dataclass(frozen=True)
class Draft:
    """A drafted rubric (already valid) and what a person should check before grading with it."""

    rubric: Rubric
    notes: tuple[Note, ...]
    source: str
    sections: tuple[Section, ...] = ()
    stems: dict[str, str] = field(default_factory=dict)
    """Shared text of a question with sub-parts, keyed by its first sub-part's id."""
    key_entries: int = 0
    """Entries of the answer key gathered at the end of the paper (0: it has none)."""
    unmatched: tuple[str, ...] = ()
    """Answer-key entries that name no question of the paper ("17", "Section D 2"): not used."""

    @property
    def checks(self) -> int:
        """How many `# check:` comments the YAML carries."""
        return len(self.notes)

    @property
    def unkeyed(self) -> tuple[str, ...]:
        """MCQs the paper gave no key for (drafted `void: true`)."""
        return tuple(q.id for q in self.rubric.questions if isinstance(q, McqQuestion) and not q.keys)

    def summary(self) -> str:
        """One line: what was found (what the CLI prints)."""
        mcqs = [q for q in self.rubric.questions if isinstance(q, McqQuestion)]
        shorts = [q for q in self.rubric.questions if isinstance(q, ShortQuestion)]
        keyed = sum(1 for q in mcqs if q.keys)
        points = sum(len(q.points) for q in shorts)
        found = (
            f"{_count(len(self.rubric.questions), 'question')} ({len(mcqs)} MCQ, {keyed} with a key; "
            f"{len(shorts)} short, {_count(points, 'point')}), {_count(self.rubric.max_total, 'mark')}, "
            f"{_count(self.checks, '`# check:` comment')}"
        )
        if self.key_entries:
            found += f"; an answer key at the end with {_count(self.key_entries, 'entry', 'entries')}"
        if self.unmatched:
            found += f", {len(self.unmatched)} naming no question ({', '.join(self.unmatched)})"
        return found


def _count(number: float, thing: str, things: str | None = None) -> str:
    return f"{number:g} {thing if number == 1 else things or thing + 's'}"
