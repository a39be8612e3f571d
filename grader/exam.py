"""An exam's files read together: the rubric, the class's answers checked against it, a TA's marks.

Every command that grades starts here, before the slow model load, so bad input costs nothing.
Reading is `grader.rubric`'s, `grader.submissions`' and `grader.agreement`'s; what is here is the
order and the checks that tie the files to one another.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from grader.rubric import Rubric, load_rubric
from grader.submissions import Submissions, read_submissions


def read_exam(rubric: Path, answers: Path, warn: Callable[[str], None] = lambda _: None) -> tuple[Rubric, Submissions]:
    """The rubric and the answers to its questions; each warning about the answers goes to `warn`,
    prefixed with the answers file's path."""
    loaded = load_rubric(rubric)
    submissions = read_submissions(answers, loaded.question_ids)
    for warning in submissions.warnings:
        warn(f"{answers}: {warning}")
    return loaded, submissions


def read_marks(path: Path, rubric: Rubric) -> dict[tuple[str, str], float]:
    """A TA's marks file, checked against the rubric: known questions, marks within 0..max."""
    from grader.agreement import read_human_marks

    return read_human_marks(path, set(rubric.question_ids), {q.id: q.marks for q in rubric.questions})
