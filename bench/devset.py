"""Shared by the development-set scripts: grade the bundled sample once and pair it with our marks."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.calibration.agreement import agreement  # noqa: E402
from grader.embedding.encoder import Encoder  # noqa: E402
from grader.exam.files import read_human_marks  # noqa: E402
from grader.exam.rubric import Rubric, ShortQuestion, load_rubric  # noqa: E402
from grader.exam.submissions import Submissions, read_submissions  # noqa: E402
from grader.scoring.grade import Grades, grade  # noqa: E402

RUBRIC = ROOT / "rubrics" / "dl-midsem.yaml"
SAMPLE = ROOT / "submissions" / "dl-midsem-sample.csv"
MARKS = ROOT / "submissions" / "dl-midsem-sample-marks.csv"


@dataclass
class DevSet:
    rubric: Rubric
    submissions: Submissions
    encoder: Encoder
    grades: Grades
    """Graded with the shipped defaults."""
    human: dict[tuple[str, str], float]


def load_devset() -> DevSet:
    rubric = load_rubric(RUBRIC)
    submissions = read_submissions(SAMPLE, rubric.question_ids)
    encoder = Encoder.load(device="cpu")
    grades = grade(rubric, submissions, encoder)
    return DevSet(rubric, submissions, encoder, grades, read_human_marks(MARKS, set(rubric.question_ids)))


def short_errors(dev: DevSet, grades: Grades, students: set[str] | None = None) -> list[float]:
    """Absolute errors, machine vs human, on the short answers of `students` (all by default)."""
    return [
        abs(g.mark - dev.human[(g.student_id, g.question_id)])
        for g in grades.items
        if isinstance(dev.rubric.question(g.question_id), ShortQuestion)
        and (students is None or g.student_id in students)
    ]


def per_question(dev: DevSet, grades: Grades) -> list[tuple[str, object]]:
    """(question id, Agreement) for each short question, in rubric order."""
    rows = []
    for q in dev.rubric.questions:
        if isinstance(q, ShortQuestion):
            items = [g for g in grades.items if g.question_id == q.id]
            rows.append(
                (q.id, agreement([g.mark for g in items], [dev.human[(g.student_id, q.id)] for g in items], q.step))
            )
    return rows
