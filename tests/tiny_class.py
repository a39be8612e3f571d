"""A four-student class graded by hand (no model): for tests of evaluation and the report.

    question  s1       s2      s3                    s4
    M1 (b)    b  1     b  1    c  0                  'a, b' 0 unreadable
    M2 (a)    a  1     b  0    a  1                  a  1
    S1 /0.5   1        0.5     0 (contradiction)     blank 0
    S2 /0.25  1        0.5     0.25 (pattern)        0.75

The TA agrees except: S1 s2 is 1; S2 s2 is 0.25; M2 s3 is 0; S2 s4 is not marked; and one mark
names a student who is not in the class (s9).
"""

from __future__ import annotations

from types import SimpleNamespace

from grader.exam.rubric import parse_rubric
from grader.outputs.results import write_results
from grader.scoring import flags
from grader.scoring.grade import Grades, QuestionGrade
from grader.scoring.match import DEFAULT_CURVE, PointMatch

RUBRIC = parse_rubric(
    {
        "exam": "tiny",
        "title": "Tiny exam",
        "questions": [
            {"id": "M1", "type": "mcq", "marks": 1, "options": {"a": "one", "b": "two", "c": "three"}, "key": "b"},
            {"id": "M2", "type": "mcq", "marks": 1, "options": {"a": "one", "b": "two", "c": "three"}, "key": "a"},
            {
                "id": "S1",
                "type": "short",
                "marks": 1,
                "step": 0.5,
                "prompt": "Why?",
                "model_answer": "Because.",
                "points": [
                    {"id": "p1", "text": "First reason.", "marks": 0.5},
                    {"id": "p2", "text": "Second reason.", "marks": 0.5},
                ],
            },
            {
                "id": "S2",
                "type": "short",
                "marks": 1,
                "step": 0.25,
                "prompt": "How?",
                "model_answer": "Thus.",
                "points": [
                    {"id": "q1", "text": "Main step.", "marks": 0.5},
                    {"id": "q2", "text": "Detail.", "marks": 0.25},
                    {"id": "q3", "text": "Caveat.", "marks": 0.25},
                ],
            },
        ],
    },
    "tiny.yaml",
)

HUMAN = {
    ("s1", "M1"): 1,
    ("s1", "M2"): 1,
    ("s1", "S1"): 1,
    ("s1", "S2"): 1,
    ("s2", "M1"): 1,
    ("s2", "M2"): 0,
    ("s2", "S1"): 1,
    ("s2", "S2"): 0.25,
    ("s3", "M1"): 0,
    ("s3", "M2"): 0,
    ("s3", "S1"): 0,
    ("s3", "S2"): 0.25,
    ("s4", "M1"): 0,
    ("s4", "M2"): 1,
    ("s4", "S1"): 0,
    ("s9", "S1"): 1,
}


def _short(student: str, question: str, mark: float, points: list[tuple], found: tuple = ()) -> QuestionGrade:
    matches = tuple(
        PointMatch(pid, marks, round(score + 0.2, 4), score, credit, f"{student} on {pid}", pattern, contra)
        for pid, marks, score, credit, pattern, contra in points
    )
    raw = sum(m.marks * m.credit for m in matches)
    return QuestionGrade(student, question, mark, 1.0, raw, found, None, matches, 12)


def _mcq(student: str, question: str, mark: float, choice: str | None, found: tuple = ()) -> QuestionGrade:
    return QuestionGrade(student, question, mark, 1.0, mark, found, choice)


def grades() -> Grades:
    items = (
        _mcq("s1", "M1", 1, "b"),
        _mcq("s1", "M2", 1, "a"),
        _short("s1", "S1", 1, [("p1", 0.5, 0.5, 1, None, None), ("p2", 0.5, 0.45, 1, None, None)]),
        _short(
            "s1",
            "S2",
            1,
            [("q1", 0.5, 0.6, 1, None, None), ("q2", 0.25, 0.5, 1, None, None), ("q3", 0.25, 0.43, 1, None, None)],
        ),
        _mcq("s2", "M1", 1, "b"),
        _mcq("s2", "M2", 0, "b"),
        _short("s2", "S1", 0.5, [("p1", 0.5, 0.5, 1, None, None), ("p2", 0.5, 0.2, 0, None, None)]),
        _short(
            "s2",
            "S2",
            0.5,
            [("q1", 0.5, 0.45, 1, None, None), ("q2", 0.25, 0.1, 0, None, None), ("q3", 0.25, 0.0, 0, None, None)],
        ),
        _mcq("s3", "M1", 0, "c"),
        _mcq("s3", "M2", 1, "a"),
        _short(
            "s3",
            "S1",
            0,
            [("p1", 0.5, 0.1, 0, None, None), ("p2", 0.5, 0.4, 0, None, "is not")],
            (flags.contradiction("p2", "is not"),),
        ),
        _short(
            "s3",
            "S2",
            0.25,
            [("q1", 0.5, -0.05, 0, None, None), ("q2", 0.25, 0.2, 1, "x = 1", None), ("q3", 0.25, 0.3, 0, None, None)],
        ),
        _mcq("s4", "M1", 0, None, (flags.unreadable_choice("two choices (a, b)"),)),
        _mcq("s4", "M2", 1, "a"),
        QuestionGrade("s4", "S1", 0.0, 1.0, 0.0, (flags.blank(),)),
        _short(
            "s4",
            "S2",
            0.75,
            [("q1", 0.5, 0.55, 1, None, None), ("q2", 0.25, 0.5, 1, None, None), ("q3", 0.25, 0.2, 0, None, None)],
        ),
    )
    return Grades("tiny", RUBRIC.fingerprint, "test-model", DEFAULT_CURVE, ("s1", "s2", "s3", "s4"), items)


def write_run(folder) -> None:
    """Write the class as `grader grade` would (marks.csv, totals.csv, evidence.jsonl, run.json)."""
    answers = SimpleNamespace(source="tiny.csv", kept_columns=(), kept={})
    write_results(folder, grades(), RUBRIC, answers)
