"""Exports: the marks table, Moodle's and Canvas's import files; the TA's mark counts in each."""

from __future__ import annotations

import csv
import io
from dataclasses import replace

import pytest

from grader.errors import GraderError
from grader.exam.rubric import ShortQuestion, load_rubric
from grader.outputs.export import canvas_csv, marks_csv, moodle_csv, spreadsheet_safe
from grader.review.gradebook import Entry, Student
from grader.scoring.match import PointMatch
from tests.outputs.test_feedback import MIDSEM, RUBRIC, class_of, mcq, short

ASHA = Student("s1", {"Name": "Asha Rao", "Email Address": "asha@uni.edu", "ID number": "2021001", "Section": "CSE-A"})
BEN = Student("s2", {"Name": "Ben, Jr.", "Email Address": "ben@uni.edu", "ID number": "2021002", "Section": "CSE-B"})


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def ta_overruled() -> list[Entry]:
    """Asha: Q1 right, Q2 void, Q3 automatically 0.5 but set to 1 by a TA (total 3); Ben: Q1 wrong (total 1.5)."""
    return class_of(
        ASHA,
        BEN,
        s1=[
            mcq("s1", "Q1", "a", 1.0),
            mcq("s1", "Q2", "b", 1.0),
            short("s1", {"neg": 1.0}, ta_mark=1.0, status="set", comment="Both points made."),
        ],
        s2=[mcq("s2", "Q1", "b", 0.0), mcq("s2", "Q2", "a", 1.0), short("s2", {"pos": 1.0})],
    )


def test_marks_csv_totals_and_sources():
    table = rows(marks_csv(RUBRIC, [ASHA, BEN], ta_overruled()))
    assert table == [
        [
            "student_id",
            "Name",
            "Email Address",
            "ID number",
            "Section",
            "Q1",
            "Q2",
            "Q3",
            "total",
            "max_total",
            "source",
        ],
        ["s1", "Asha Rao", "asha@uni.edu", "2021001", "CSE-A", "1", "1", "1", "3", "3", "1 ta + 2 auto"],
        ["s2", "Ben, Jr.", "ben@uni.edu", "2021002", "CSE-B", "0", "1", "0.5", "1.5", "3", "auto"],
    ]


def test_the_ta_mark_counts_in_every_format():
    entries = ta_overruled()
    assert rows(marks_csv(RUBRIC, [ASHA], entries))[1][-4:-1] == ["1", "3", "3"]
    assert rows(moodle_csv(RUBRIC, [ASHA], entries, questions=True))[1] == ["asha@uni.edu", "3", "1", "1", "1"]
    canvas_asha = Student("s1", {**ASHA.kept, "SIS Login ID": "asha"})
    assert rows(canvas_csv(RUBRIC, [canvas_asha], entries, "Quiz 1 (77)"))[2][-1] == "3"
    feedback = rows(marks_csv(RUBRIC, [ASHA], entries, feedback=True))[1][-1]
    assert feedback.startswith("Quiz 1: 3 / 3\n") and "Q3: 1 / 1 (set by a TA)." in feedback


def test_the_round_trip_through_csv_reader():
    odd = Student(
        "s3",
        {"Name": 'Zoë "Zed" O\'Neil, PhD', "Email Address": "zed@uni.edu", "ID number": "", "Section": "line\nbreak"},
    )
    entries = [*ta_overruled(), *class_of(odd)]
    text = marks_csv(RUBRIC, [ASHA, BEN, odd], entries, feedback=True)
    table = rows(text)
    assert [len(r) for r in table] == [12] * 4
    assert table[3][:5] == ["s3", 'Zoë "Zed" O\'Neil, PhD', "zed@uni.edu", "", "line\nbreak"]
    assert table[3][5:11] == ["1", "1", "0.5", "2.5", "3", "auto"]
    assert table[1][-1].splitlines()[:2] == ["Quiz 1: 3 / 3", "Q1: 1 / 1. Your answer: a, right."]
    assert "TA's comment: Both points made." in table[1][-1]
    assert marks_csv(RUBRIC, [ASHA, BEN, odd], entries, feedback=True) == text  # deterministic


def test_moodle_with_an_email_column():
    text = moodle_csv(RUBRIC, [ASHA, BEN], ta_overruled(), feedback=True)
    table = rows(text)
    assert table[0] == ["Email address", "Quiz 1", "Feedback"]
    assert [r[:2] for r in table[1:]] == [["asha@uni.edu", "3"], ["ben@uni.edu", "1.5"]]
    assert table[1][2].startswith("Quiz 1: 3 / 3\n")
    # Google Forms' "Email Address", or "email_address", are the same column
    forms = Student("s1", {"email_address": "asha@uni.edu"})
    assert rows(moodle_csv(RUBRIC, [forms], class_of(forms), item="Mid-sem"))[0:2] == [
        ["Email address", "Mid-sem"],
        ["asha@uni.edu", "2.5"],
    ]


def test_moodle_without_an_email_column():
    no_email = [
        Student(s.student_id, {k: v for k, v in s.kept.items() if k != "Email address" and k != "Email Address"})
        for s in (ASHA, BEN)
    ]
    table = rows(moodle_csv(RUBRIC, no_email, ta_overruled()))
    assert table == [["ID number", "Quiz 1"], ["2021001", "3"], ["2021002", "1.5"]]
    forced = rows(moodle_csv(RUBRIC, [ASHA, BEN], ta_overruled(), id_column="idnumber"))
    assert forced[0][0] == "ID number" and forced[1][0] == "2021001"
    nothing = [Student("s1", {"Name": "Asha Rao", "Section": "A"})]
    with pytest.raises(GraderError) as refused:
        moodle_csv(RUBRIC, nothing, class_of(*nothing))
    message = str(refused.value)
    assert "\n" not in message
    assert "'Email address', 'ID number' or 'Username'" in message and "it kept Name, Section" in message
    with pytest.raises(
        GraderError, match=r"moodle export: no 'Username' column to identify students by \(it kept Name, Email Address"
    ):
        moodle_csv(RUBRIC, [ASHA], class_of(ASHA), id_column="username")


def test_moodle_refuses_a_student_it_could_not_match():
    nameless = Student("s2", {"Email Address": "  "})
    with pytest.raises(
        GraderError, match="moodle export: student 's2' has no 'Email Address': Moodle could not match the row"
    ):
        moodle_csv(RUBRIC, [ASHA, nameless], class_of(ASHA, nameless))
    twin = Student("s2", {"Email Address": "asha@uni.edu"})
    with pytest.raises(GraderError, match="students 's1' and 's2' have the same 'Email Address'"):
        moodle_csv(RUBRIC, [ASHA, twin], class_of(ASHA, twin))


def test_moodle_feedback_cannot_become_markup():
    entries = class_of(
        ASHA,
        s1=[
            mcq("s1", "Q1", "a", 1),
            mcq("s1", "Q2", "a", 1),
            short("s1", {"neg": 1.0}, {"neg": '<b>bold</b> say \\"hi\\"'}),
        ],
    )
    cell = rows(moodle_csv(RUBRIC, [ASHA], entries, feedback=True))[1][2]
    assert "&lt;b&gt;bold&lt;/b&gt;" in cell and "<b>" not in cell
    assert '\\"' not in cell  # PHP's fgetcsv would read a backslash-quote as an escape


def test_canvas_header_and_points_possible_row_exact():
    canvas = [
        Student(
            "s1",
            {
                "Student": "Rao, Asha",
                "ID": "1201",
                "SIS User ID": "2021001",
                "SIS Login ID": "asha",
                "Section": "CSE-A",
            },
        ),
        Student(
            "s2", {"Student": "Ben", "ID": "1202", "SIS User ID": "2021002", "SIS Login ID": "ben", "Section": "CSE-B"}
        ),
    ]
    text = canvas_csv(RUBRIC, canvas, ta_overruled(), "Quiz 1 (77)")
    assert text.splitlines()[:2] == ["Student,ID,SIS User ID,SIS Login ID,Section,Quiz 1 (77)", "Points Possible,,,,,3"]
    assert rows(text)[2:] == [
        ["Rao, Asha", "1201", "2021001", "asha", "CSE-A", "3"],
        ["Ben", "1202", "2021002", "ben", "CSE-B", "1.5"],
    ]
    # as a Canvas quiz report or a hand-made sheet spells them
    quiz_report = [
        Student("s1", {"name": "Asha", "id": "1201", "sis_id": "2021001", "login_id": "asha", "section": "A"})
    ]
    assert rows(canvas_csv(RUBRIC, quiz_report, class_of(*quiz_report), "Quiz 1 (77)"))[2] == [
        "Asha",
        "1201",
        "2021001",
        "asha",
        "A",
        "2.5",
    ]


def test_canvas_uses_whatever_ids_it_has_and_refuses_none():
    only_login = [Student("s1", {"Name": "Asha", "SIS Login ID": "asha"})]
    assert rows(canvas_csv(RUBRIC, only_login, class_of(*only_login), "Quiz 1 (77)"))[2] == [
        "Asha",
        "",
        "",
        "asha",
        "",
        "2.5",
    ]
    by_email = rows(canvas_csv(RUBRIC, [ASHA], class_of(ASHA), "Quiz 1 (77)", id_column="Email Address"))
    assert by_email[2] == ["Asha Rao", "", "", "asha@uni.edu", "CSE-A", "2.5"]
    with pytest.raises(GraderError) as refused:
        canvas_csv(RUBRIC, [ASHA, BEN], ta_overruled(), "Quiz 1 (77)")
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("canvas export: Canvas matches students by 'ID', 'SIS User ID' or 'SIS Login ID'")
    assert "it kept Name, Email Address, ID number, Section" in message
    no_id = Student("s2", {"SIS Login ID": ""})
    with pytest.raises(
        GraderError, match="canvas export: student 's2' has no 'SIS Login ID': Canvas could not match the row"
    ):
        canvas_csv(RUBRIC, [only_login[0], no_id], class_of(only_login[0], no_id), "Quiz 1 (77)")
    roll = Student("s1", {"id": "CS-21-001"})
    with pytest.raises(GraderError, match="Canvas's ID is its numeric user id"):
        canvas_csv(RUBRIC, [roll], class_of(roll), "Quiz 1 (77)")


def test_canvas_wants_the_assignment_with_its_id():
    login = [Student("s1", {"SIS Login ID": "asha"})]
    with pytest.raises(GraderError, match=r"'Name \(1234\)' with the assignment's id, not 'Quiz 1'"):
        canvas_csv(RUBRIC, login, class_of(*login), "Quiz 1")


def test_formula_cells_are_neutralised_and_numbers_stay_numbers():
    evil = Student(
        "=1+1",
        {
            "Name": '=HYPERLINK("http://x","click")',
            "Email Address": "m@uni.edu",
            "phone": "+91 98765 43210",
            "note": "@SUM(A1)",
            "roll": "-12",
        },
    )
    entries = class_of(
        evil,
        **{"=1+1": [mcq("=1+1", "Q1", "a", 1), mcq("=1+1", "Q2", "a", 1), short("=1+1", {}, comment="-2+3 marks")]},
    )
    table = rows(marks_csv(RUBRIC, [evil], entries, feedback=True))
    row = dict(zip(table[0], table[1]))
    assert row["student_id"] == "'=1+1"
    assert row["Name"] == '\'=HYPERLINK("http://x","click")'
    assert row["phone"] == "'+91 98765 43210" and row["note"] == "'@SUM(A1)"
    assert row["roll"] == "-12"  # a plain number cannot run anything
    assert (row["Q1"], row["total"], row["max_total"]) == ("1", "2", "3")
    assert row["feedback"][0] not in "=+-@" and "TA's comment: -2+3 marks" in row["feedback"]
    canvas = Student("s1", {"Student": "-cmd|' /C calc'!A0", "SIS Login ID": "m", "Section": "\t=A"})
    assert rows(canvas_csv(RUBRIC, [canvas], class_of(canvas), "Quiz 1 (77)"))[2][0::4] == [
        "'-cmd|' /C calc'!A0",
        "'=A",
    ]
    for plain, cell in [("plain", "plain"), ("=x", "'=x"), (" =x", "' =x"), ("-0.5", "-0.5"), ("1e3", "1e3"), ("", "")]:
        assert spreadsheet_safe(plain) == cell


def test_an_identifier_that_looks_like_a_formula_is_refused_not_altered():
    sneaky = Student("s1", {"Email Address": "=cmd@x"})
    with pytest.raises(
        GraderError,
        match="moodle export: student 's1' has 'Email Address' '=cmd@x', which a spreadsheet would run as a formula",
    ):
        moodle_csv(RUBRIC, [sneaky], class_of(sneaky))
    sneaky_login = Student("s1", {"SIS Login ID": "@x"})
    with pytest.raises(GraderError, match="canvas export: student 's1' has 'SIS Login ID' '@x'"):
        canvas_csv(RUBRIC, [sneaky_login], class_of(sneaky_login), "Quiz 1 (77)")


def test_a_missing_mark_is_refused_not_zeroed():
    entries = [e for e in ta_overruled() if not (e.student_id == "s2" and e.question_id == "Q3")]
    for export in (lambda: marks_csv(RUBRIC, [ASHA, BEN], entries), lambda: moodle_csv(RUBRIC, [ASHA, BEN], entries)):
        with pytest.raises(GraderError, match="student 's2' has no mark for question Q3: grade every answer first"):
            export()


def test_the_real_midsem_rubric():
    rubric = load_rubric(MIDSEM)
    students = [
        Student(f"2021{i:03d}", {"Name": f"Student {i}", "email": f"s{i}@iiitd.ac.in", "SIS Login ID": f"s{i}"})
        for i in (1, 2)
    ]
    entries = []
    for s in students:
        for q in rubric.questions:
            full = s.student_id.endswith("1")
            if isinstance(q, ShortQuestion):
                points = tuple(PointMatch(p.id, p.marks, 0.6, 0.5, 1.0 if full else 0.0, "words") for p in q.points)
                entries.append(
                    Entry(
                        s.student_id,
                        q.id,
                        "answer",
                        q.marks,
                        q.marks if full else 0.0,
                        q.marks if full else 0.0,
                        points=points,
                    )
                )
            else:
                entries.append(
                    Entry(
                        s.student_id, q.id, "a", q.marks, q.marks if full else 0.0, q.marks if full else 0.0, choice="a"
                    )
                )
    # a TA gives the second student 1.5 on I5 (automatically 0)
    entries = [
        replace(e, ta_mark=1.5, status="set") if (e.student_id, e.question_id) == ("2021002", "I5") else e
        for e in entries
    ]
    table = rows(marks_csv(rubric, students, entries))
    assert table[0][:4] == ["student_id", "Name", "email", "SIS Login ID"] and table[0][4:23] == list(
        rubric.question_ids
    )
    assert [r[-3:] for r in table[1:]] == [["20", "20", "auto"], ["1.5", "20", "1 ta + 18 auto"]]
    assert rows(canvas_csv(rubric, students, entries, "Mid-Sem (4242)"))[1] == ["Points Possible", "", "", "", "", "20"]
    assert rows(moodle_csv(rubric, students, entries))[0] == ["Email address", "Deep Learning (CSE641/ECE555) Mid-Sem"]
