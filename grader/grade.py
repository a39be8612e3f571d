"""One grading run: a Rubric and Submissions in, Grades out. No files, no terminal.

MCQs are read and scored exactly. Short answers are segmented; every distinct text of the run
(segments of the whole class, point texts, alternatives) goes to the encoder in one call, so each
is encoded once, in large length-sorted batches; then each question is matched as matrix products.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from grader import flags as flagging
from grader.embed import Progress, TextEncoder
from grader.flags import Flag
from grader.match import (
    DEFAULT_CURVE,
    CreditCurve,
    PointMatch,
    TOPIC_WEIGHT,
    QuestionVectors,
    best_matches,
    point_matches,
    round_to_step,
    texts_to_encode,
)
from grader.mcq import read_choice, score_choice
from grader.rubric import McqQuestion, Rubric, ShortQuestion
from grader.segment import segments
from grader.submissions import Submissions

ANSWER_BLOCK = 4096
"""Answers matched per matrix product: bounds memory on large classes without slowing small ones."""


@dataclass(frozen=True)
class QuestionGrade:
    """One student's mark on one question, with what it rests on."""

    student_id: str
    question_id: str
    mark: float
    max_mark: float
    raw_mark: float
    """Before rounding to the question's step (equal to `mark` for MCQs)."""
    flags: tuple[Flag, ...] = ()
    choice: str | None = None
    """The MCQ letter read from the answer, or None."""
    points: tuple[PointMatch, ...] = ()
    words: int = 0
    """Length of the answer in words (a calibration feature)."""


@dataclass(frozen=True)
class Grades:
    """Every mark of a run, student-major in rubric question order, and what produced them."""

    exam: str
    rubric_fingerprint: str
    model: str
    curve: CreditCurve
    students: tuple[str, ...]
    items: tuple[QuestionGrade, ...]

    def by_student(self) -> Iterator[tuple[str, tuple[QuestionGrade, ...]]]:
        per = len(self.items) // len(self.students) if self.students else 0
        for i, student in enumerate(self.students):
            yield student, self.items[i * per : (i + 1) * per]

    def total(self, student_id: str) -> float:
        return sum(g.mark for g in self.items if g.student_id == student_id)


def grade(
    rubric: Rubric,
    submissions: Submissions,
    encoder: TextEncoder,
    curve: CreditCurve = DEFAULT_CURVE,
    progress: Progress | None = None,
    topic_weight: float = TOPIC_WEIGHT,
) -> Grades:
    """Grade every student on every question of the rubric (see `grader.match` for the scoring)."""
    shorts = [q for q in rubric.questions if isinstance(q, ShortQuestion)]
    pieces = {
        (s, q.id): segments(submissions.answer(s, q.id)) for q in shorts for s in submissions.students
    }
    texts = [t for q in shorts for t in texts_to_encode(q)]
    texts += [t for segs in pieces.values() for t in segs]
    unique = list(dict.fromkeys(texts))
    vectors = encoder.encode(unique, progress=progress) if unique else np.zeros((0, 1), np.float32)
    row = {text: i for i, text in enumerate(unique)}

    short_grades: dict[tuple[str, str], QuestionGrade] = {}
    for question in shorts:
        phrasings = QuestionVectors.build(question, lambda t: vectors[row[t]])
        answered = [s for s in submissions.students if pieces[(s, question.id)]]
        for start in range(0, len(answered), ANSWER_BLOCK):
            block = answered[start : start + ANSWER_BLOCK]
            segs = [pieces[(s, question.id)] for s in block]
            seg_rows = vectors[[row[t] for ss in segs for t in ss]]
            best = best_matches(seg_rows, [len(ss) for ss in segs], phrasings, topic_weight)
            for i, student in enumerate(block):
                answer = submissions.answer(student, question.id)
                matches = point_matches(question, answer, segs[i], best, i, curve)
                short_grades[(student, question.id)] = _short_grade(student, question, matches, len(answer.split()))

    items = []
    for student in submissions.students:
        for question in rubric.questions:
            if isinstance(question, McqQuestion):
                items.append(_mcq_grade(student, question, submissions.answer(student, question.id)))
            elif (student, question.id) in short_grades:
                items.append(short_grades[(student, question.id)])
            else:
                items.append(QuestionGrade(student, question.id, 0.0, question.marks, 0.0, (flagging.blank(),)))
    return Grades(
        exam=rubric.exam,
        rubric_fingerprint=rubric.fingerprint,
        model=encoder.name,
        curve=curve,
        students=tuple(submissions.students),
        items=tuple(items),
    )


def apply_curve(grades: Grades, rubric: Rubric, curve: CreditCurve) -> Grades:
    """Re-mark short answers under another credit curve without re-encoding (similarities are kept)."""
    items = []
    for g in grades.items:
        question = rubric.question(g.question_id)
        if isinstance(question, ShortQuestion) and g.points:
            matches = tuple(
                replace(m, credit=_credit(m, curve))
                for m in g.points
            )
            g = _short_grade(g.student_id, question, matches, g.words)
        items.append(g)
    return replace(grades, curve=curve, items=tuple(items))


def _credit(match: PointMatch, curve: CreditCurve) -> float:
    if match.pattern is not None:
        return 1.0
    if match.contradiction is not None:
        return 0.0
    return float(curve.credit(match.score))


def _short_grade(student: str, question: ShortQuestion, matches: tuple[PointMatch, ...], words: int) -> QuestionGrade:
    raw = sum(m.marks * m.credit for m in matches)
    mark = round_to_step(raw, question.step, question.marks)
    found = [flagging.contradiction(m.point_id, m.contradiction) for m in matches if m.contradiction is not None]
    near = flagging.borderline(raw, question.step)
    found += [near] if near else []
    return QuestionGrade(student, question.id, mark, question.marks, raw, tuple(found), None, matches, words)


def _mcq_grade(student: str, question: McqQuestion, answer: str) -> QuestionGrade:
    choice = read_choice(answer, question.options)
    found: list[Flag] = []
    if not answer.strip():
        found.append(flagging.blank())
    elif choice.problem is not None:
        found.append(flagging.unreadable_choice(choice.problem))
    mark = question.marks if question.void else score_choice(choice, question.keys, question.marks)
    return QuestionGrade(student, question.id, mark, question.marks, mark, tuple(found), choice.letter)
