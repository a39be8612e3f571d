"""Feedback to students: points earned and missed with their words, the TA's word, nothing to game."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from grader.errors import GraderError
from grader.exam.rubric import ShortQuestion, load_rubric, parse_rubric
from grader.outputs.feedback import (
    entries_by_student,
    feedback_files,
    feedback_html,
    feedback_markdown,
    feedback_text,
    safe_file_stem,
    student_feedback,
)
from grader.review.gradebook import Entry, Student
from grader.scoring.flags import blank as blank_flag
from grader.scoring.match import PointMatch

MIDSEM = Path(__file__).resolve().parents[2] / "rubrics" / "dl-midsem.yaml"

RUBRIC = parse_rubric(
    {
        "exam": "quiz1",
        "title": "Quiz 1",
        "questions": [
            {
                "id": "Q1",
                "type": "mcq",
                "marks": 1,
                "prompt": "Capital of France?",
                "options": {"a": "Paris", "b": "Rome"},
                "key": "a",
            },
            {"id": "Q2", "type": "mcq", "marks": 1, "options": {"a": "yes", "b": "no"}, "void": True},
            {
                "id": "Q3",
                "type": "short",
                "marks": 1,
                "step": 0.5,
                "prompt": "Why is ReLU needed in Grad-CAM?",
                "model_answer": "Negative values do not support the class; ReLU keeps the positive evidence.",
                "points": [
                    {
                        "id": "neg",
                        "text": "Negative values do not support the class.",
                        "marks": 0.5,
                        "patterns": ["zz-secret-pattern"],
                    },
                    {
                        "id": "pos",
                        "text": "ReLU keeps only the positive evidence.",
                        "marks": 0.5,
                        "alternatives": ["zz-secret alternative"],
                    },
                ],
            },
        ],
    },
    "quiz1.yaml",
)


def mcq(student: str, question: str, choice: str | None, auto: float, **review) -> Entry:
    return Entry(student, question, choice or "", 1.0, auto, auto, choice=choice, **review)


def short(
    student: str,
    credits: dict[str, float],
    evidence: dict[str, str] | None = None,
    answer: str = "an answer",
    opposite: dict[str, str] | None = None,
    **review,
) -> Entry:
    """A Q3 entry whose points earned `credits` (0..1) with `evidence` (or matched a contradiction,
    `opposite`); the automatic mark rounds as grade.py rounds it."""
    question = RUBRIC.question("Q3")
    assert isinstance(question, ShortQuestion)
    evidence, opposite = evidence or {}, opposite or {}
    points = tuple(
        PointMatch(
            p.id,
            p.marks,
            0.4321,
            0.3876,
            credits.get(p.id, 0.0),
            evidence.get(p.id, "some segment"),
            contradiction=opposite.get(p.id),
        )
        for p in question.points
    )
    raw = sum(m.marks * m.credit for m in points)
    auto = min(max(int(raw / question.step + 0.5 + 1e-9) * question.step, 0.0), question.marks)
    return Entry(student, "Q3", answer, 1.0, auto, raw, points=points, **review)


def class_of(*students: Student, **overrides: list[Entry]) -> list[Entry]:
    """A complete gradebook: Q1 right, Q2 void, Q3 half earned, unless a student's entries are given."""
    entries = []
    for s in students:
        entries += overrides.get(s.student_id) or [
            mcq(s.student_id, "Q1", "a", 1.0),
            mcq(s.student_id, "Q2", "b", 1.0),
            short(s.student_id, {"neg": 1.0}, {"neg": "negative parts point to other classes"}),
        ]
    return entries


ASHA = Student("s1", {"Name": "Asha Rao", "Email Address": "asha@uni.edu"})


def test_points_earned_and_missed_with_the_students_words():
    entries = class_of(ASHA)
    md = feedback_markdown(RUBRIC, ASHA, entries)
    assert "Feedback for Asha Rao (s1). Total: **2.5 / 3**." in md
    assert "## Q3: 0.5 / 1" in md
    assert "- Earned 0.5 of 0.5: Negative values do not support the class." in md
    assert "  - Your words: `negative parts point to other classes`" in md
    assert "- Missed, 0 of 0.5: ReLU keeps only the positive evidence." in md
    text = feedback_text(RUBRIC, ASHA, entries)
    assert text.startswith("Quiz 1: 2.5 / 3\n")
    assert (
        "- Earned 0.5 of 0.5: Negative values do not support the class. "
        "Your words: “negative parts point to other classes”" in text
    )
    assert "- Missed, 0 of 0.5: ReLU keeps only the positive evidence." in text
    page = feedback_html(RUBRIC, ASHA, entries)
    assert '<li class="earned"><strong>Earned 0.5 of 0.5</strong>: Negative values do not support the class.' in page
    assert "Your words: <q>negative parts point to other classes</q>" in page
    assert '<li class="missed"><strong>Missed, 0 of 0.5</strong>: ReLU keeps only the positive evidence.</li>' in page


def test_a_missed_point_does_not_quote_the_nearest_segment():
    entries = class_of(
        ASHA, s1=[mcq("s1", "Q1", "a", 1), mcq("s1", "Q2", "a", 1), short("s1", {}, {"pos": "unrelated musings"})]
    )
    for out in (
        feedback_markdown(RUBRIC, ASHA, entries),
        feedback_text(RUBRIC, ASHA, entries),
        feedback_html(RUBRIC, ASHA, entries),
    ):
        assert "unrelated musings" not in out


def test_partial_credit_in_marks_and_the_rounding_said():
    entries = class_of(
        ASHA,
        s1=[
            mcq("s1", "Q1", "a", 1),
            mcq("s1", "Q2", "a", 1),
            short("s1", {"neg": 0.5, "pos": 0.1}, {"neg": "half of it"}),
        ],
    )
    text = feedback_text(RUBRIC, ASHA, entries)
    assert "Q3: 0.5 / 1." in text  # raw 0.3 rounds to 0.5
    assert "- Partly earned, 0.25 of 0.5: Negative values do not support the class. Your words: “half of it”" in text
    assert "- Partly earned, 0.05 of 0.5: ReLU keeps only the positive evidence." in text
    assert "The points add up to 0.3; this question is marked in steps of 0.5." in text


def test_no_similarities_scores_patterns_or_alternatives_reach_the_student():
    entries = class_of(
        ASHA, s1=[mcq("s1", "Q1", "a", 1), mcq("s1", "Q2", "a", 1), short("s1", {"neg": 1.0, "pos": 0.3})]
    )
    for out in (
        feedback_markdown(RUBRIC, ASHA, entries),
        feedback_text(RUBRIC, ASHA, entries),
        feedback_html(RUBRIC, ASHA, entries),
    ):
        assert "zz-secret" not in out
        assert "0.4321" not in out and "0.3876" not in out and "0.43" not in out and "0.39" not in out
        assert "similarity" not in out.lower() and "pattern" not in out.lower()


def test_the_ta_mark_counts_and_is_noted_with_the_comment():
    entries = class_of(
        ASHA,
        s1=[
            mcq(
                "s1",
                "Q1",
                "b",
                0.0,
                ta_mark=1.0,
                status="set",
                comment="Rome was accepted: the question was ambiguous.",
            ),
            mcq("s1", "Q2", "a", 1.0),
            short("s1", {"neg": 1.0}, ta_mark=0.5, status="accepted"),
        ],
    )
    fb = student_feedback(RUBRIC, ASHA, entries)
    assert fb.total == 2.5
    md = feedback_markdown(RUBRIC, ASHA, entries)
    assert "## Q1: 1 / 1 (set by a TA)" in md
    assert "> Rome was accepted: the question was ambiguous." in md
    assert "## Q3: 0.5 / 1 (checked by a TA)" in md
    text = feedback_text(RUBRIC, ASHA, entries)
    assert "Q1: 1 / 1 (set by a TA). Your answer: b, wrong. The key: a." in text
    assert "TA's comment: Rome was accepted: the question was ambiguous." in text
    assert '<span class="by">set by a TA</span>' in feedback_html(RUBRIC, ASHA, entries)


def test_a_ta_mark_that_overrules_the_points_says_so():
    entries = class_of(
        ASHA,
        s1=[mcq("s1", "Q1", "a", 1), mcq("s1", "Q2", "a", 1), short("s1", {"neg": 1.0}, ta_mark=1.0, status="set")],
    )
    text = feedback_text(RUBRIC, ASHA, entries)
    assert "Q3: 1 / 1 (set by a TA)." in text
    assert "A TA set this mark; the points above are the automatic marking's reading of your answer." in text


def test_mcq_letter_key_right_wrong_void_blank_unreadable():
    entries = class_of(ASHA, s1=[mcq("s1", "Q1", "b", 0.0), mcq("s1", "Q2", None, 1.0), short("s1", {}, answer="")])
    md = feedback_markdown(RUBRIC, ASHA, entries)
    assert "Your answer: b (Rome), wrong. The key: a (Paris)." in md
    assert "This question was withdrawn: everyone scored its 1 mark, whatever they chose." in md
    assert "No answer was given." in md
    right = feedback_text(RUBRIC, ASHA, class_of(ASHA))
    assert "Q1: 1 / 1. Your answer: a, right." in right
    unread = Entry("s1", "Q1", "a or b", 1.0, 0.0, 0.0, choice=None)
    text = feedback_text(RUBRIC, ASHA, [unread, mcq("s1", "Q2", "a", 1), short("s1", {})])
    assert "Your answer could not be read as exactly one of the options. The key: a." in text
    blank_mcq = Entry("s1", "Q1", "", 1.0, 0.0, 0.0, flags=(blank_flag(),))
    assert "Q1: 0 / 1. No answer was given. The key: a." in feedback_text(
        RUBRIC, ASHA, [blank_mcq, mcq("s1", "Q2", "a", 1), short("s1", {})]
    )


def test_a_contradiction_quotes_the_students_opposite_words():
    entry = short("s1", {}, opposite={"pos": "ReLU is useless here"})
    text = feedback_text(RUBRIC, ASHA, [mcq("s1", "Q1", "a", 1), mcq("s1", "Q2", "a", 1), entry])
    assert (
        "- Missed, 0 of 0.5: ReLU keeps only the positive evidence. "
        "Your answer says the opposite: “ReLU is useless here”" in text
    )


@pytest.mark.skipif("opposite" not in PointMatch.__dataclass_fields__, reason="PointMatch has no negation field")
def test_a_negated_segment_is_quoted_as_the_opposite():
    negated = replace(
        short("s1", {}), points=(PointMatch("neg", 0.5, 0.7, 0.5, 0.0, "x", opposite="negative values do not matter"),)
    )
    md = feedback_markdown(RUBRIC, ASHA, [mcq("s1", "Q1", "a", 1), mcq("s1", "Q2", "a", 1), negated])
    assert (
        "- Missed, 0 of 0.5: Negative values do not support the class.\n"
        "  - Your answer says the opposite: `negative values do not matter`" in md
    )


def test_html_escapes_student_and_ta_text_and_runs_nothing():
    attack = "<script>alert('x')</script> & <img src=x onerror=alert(1)>"
    evil = Student("s9", {"name": "<b>Mallory</b>"})
    entries = [
        mcq("s9", "Q1", "a", 1),
        mcq("s9", "Q2", "a", 1),
        short("s9", {"neg": 1.0}, {"neg": attack}, comment="</p><script>steal()</script>"),
    ]
    page = feedback_html(RUBRIC, evil, entries)
    assert "<script" not in page and "<img" not in page and "<b>Mallory" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;/p&gt;&lt;script&gt;steal()&lt;/script&gt;" in page
    assert "default-src 'none'" in page  # and the page itself forbids scripts
    assert not re.search(r"<(link|script|iframe)|src=\"http", page)
    md = feedback_markdown(RUBRIC, evil, entries)
    assert f"Your words: `{attack}`" in md  # a code span renders nothing
    assert "\\<b\\>Mallory\\</b\\>" in md and "\\</p\\>\\<script\\>" in md


def test_code_spans_survive_backticks_in_student_words():
    entries = class_of(
        ASHA,
        s1=[
            mcq("s1", "Q1", "a", 1),
            mcq("s1", "Q2", "a", 1),
            short("s1", {"neg": 1.0}, {"neg": "use `relu` and ``x``"}),
        ],
    )
    assert "Your words: ``` use `relu` and ``x`` ```" in feedback_markdown(RUBRIC, ASHA, entries)


def test_feedback_files_are_safe_and_unique():
    students = [
        Student("../evil"),
        Student("evil"),
        Student("a/b"),
        Student("a_b"),
        Student("A"),
        Student("a"),
        Student("CON"),
        Student(".hidden"),
    ]
    files = feedback_files(RUBRIC, students, class_of(*students))
    names = list(files)
    assert len(names) == len(students) == len({n.casefold() for n in names})
    for name in names:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*\.md", name), name
        assert "/" not in name and "\\" not in name and ".." not in name
    assert names[1] == "evil.md" and names[0].startswith("evil-") and names[3] == "a_b.md"
    assert names[6].split(".")[0].lower() != "con"
    assert "Feedback for s1" not in files["evil.md"] and "Feedback for evil." in files["evil.md"]
    pages = feedback_files(RUBRIC, students[:2], class_of(*students[:2]), fmt="html")
    assert list(pages) == [f"{safe_file_stem('../evil')}.html", "evil.html"]
    assert all(p.startswith("<!doctype html>") for p in pages.values())
    with pytest.raises(GraderError, match="feedback format must be md or html"):
        feedback_files(RUBRIC, students, class_of(*students), fmt="pdf")


def test_a_missing_or_foreign_mark_is_refused_in_one_line():
    entries = class_of(ASHA)
    with pytest.raises(GraderError, match="student 's1' has no mark for question Q2") as missing:
        feedback_text(RUBRIC, ASHA, [e for e in entries if e.question_id != "Q2"])
    assert "\n" not in str(missing.value)
    with pytest.raises(GraderError, match="question 'Z9', which rubric 'quiz1' does not have"):
        entries_by_student(RUBRIC, [ASHA], [*entries, mcq("s1", "Z9", "a", 1)])
    with pytest.raises(GraderError, match="two marks for student 's1', question 'Q1'"):
        entries_by_student(RUBRIC, [ASHA], [*entries, mcq("s1", "Q1", "a", 1)])


def test_the_real_midsem_rubric():
    rubric = load_rubric(MIDSEM)
    student = Student("2021001", {"Name": "Ravi K", "email": "ravi@iiitd.ac.in"})
    entries = []
    for q in rubric.questions:
        if isinstance(q, ShortQuestion):
            points = tuple(PointMatch(p.id, p.marks, 0.6, 0.5, 1.0, f"my words for {p.id}") for p in q.points)
            entries.append(Entry(student.student_id, q.id, "answer", q.marks, q.marks, q.marks, points=points))
        else:
            entries.append(
                Entry(
                    student.student_id,
                    q.id,
                    q.keys[0] if q.keys else "a",
                    q.marks,
                    q.marks,
                    q.marks,
                    choice=q.keys[0] if q.keys else "a",
                )
            )
    md = feedback_markdown(rubric, student, entries)
    assert md.startswith("# Deep Learning (CSE641/ECE555) Mid-Sem\n")
    assert "Total: **20 / 20**" in md
    assert "## I5: 2 / 2" in md
    assert "- Earned 1 of 1: With a polynomial activation the whole network collapses" in md
    assert "  - Your words: `my words for collapse`" in md
    assert "Your answer: c (20), right." in md  # I1
    assert "Negative values" in feedback_html(rubric, student, entries)
