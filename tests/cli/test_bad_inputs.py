"""Hostile and careless inputs, through the real `grader` command on real files.

Every refused input exits 2 with one line naming the file (and row and column where there is one),
never a traceback, and leaves earlier outputs as they were. Inputs a person may mean are used, with
a warning in words, printed once. One real grading run (the model loads once, in a module fixture)
carries the hostile answers: catastrophic and quadratic patterns, 120,000 spaces, 100,000 digits,
invisible characters, formula-like ids and answers, an MCQ letter with a question mark.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import sqlite3
from pathlib import Path

import pytest
import yaml

from grader.embedding.segment import overlong, segments
from grader.errors import GraderError
from grader.exam.files import marks_warnings
from grader.exam.patterns import find_pattern
from grader.exam.rubric import load_rubric
from grader.outputs.export import canvas_csv, moodle_csv
from grader.review.flagsheet import import_flags_sheet
from grader.review.gradebook import Gradebook
from grader.scoring.gaming import rubric_terms, screen
from grader.scoring.mcq import read_choice
from grader.scoring.negation import polarity, verdict
from tests.cli.test_app import assert_one_line_error, grader
from tests.outputs.test_export import ASHA, BEN, ta_overruled
from tests.outputs.test_export import RUBRIC as EXPORT_RUBRIC

XAVIER = r"(sqrt|√|root)\s*\(?\s*6\s*/\s*\(?\s*(n_?\{?in\}?|fan[_ -]?in)\s*\+\s*(n_?\{?out\}?|fan[_ -]?out)"
NESTED = r"(a+)+$"
BACKTRACKING = r"(?=a)(a|aa)+$"
"""Needs lookahead, so it runs on the time-limited engine; on 60 a's and a '!' it would take hours."""

RUBRIC_DATA = {
    "exam": "hostile",
    "questions": [
        {"id": "M1", "type": "mcq", "marks": 1, "options": {"a": "one", "b": "two", "c": "three"}, "key": "b"},
        {
            "id": "S1",
            "type": "short",
            "marks": 1,
            "step": 0.5,
            "prompt": "Write the Xavier initialization formula.",
            "model_answer": "W ~ U(-sqrt(6/(n_in + n_out)), sqrt(6/(n_in + n_out)))",
            "points": [
                {
                    "id": "formula",
                    "text": "Weights are uniform within sqrt(6/(n_in + n_out)).",
                    "marks": 0.5,
                    "patterns": [XAVIER, NESTED],
                },
                {
                    "id": "purpose",
                    "text": "It keeps the variance of activations constant across layers.",
                    "marks": 0.5,
                    "patterns": [BACKTRACKING],
                },
            ],
        },
        {
            "id": "S2",
            "type": "short",
            "marks": 1,
            "step": 0.5,
            "prompt": "Why ReLU?",
            "model_answer": "It does not saturate.",
            "points": [{"id": "sat", "text": "ReLU does not saturate for positive inputs.", "marks": 1}],
        },
    ],
}
FORMULA_ID = '=HYPERLINK("http://evil.example/x")'
HOSTILE = {  # student -> (name, M1, S1); there is no S2 column at all
    FORMULA_ID: ("Mallory", "b", "sqrt(6/(n_in + n_out)) bounds the uniform distribution."),
    "s-nested": ("@SUM(A1)", "a", "a" * 60 + "!"),
    "s-spaces": ("Sam", "c", "sqrt" + " " * 120_000),
    "s-invisible": ("Ivy", "b", "\u200b\u200c\ufeff \u2060"),
    "s-hesitant": ("Hana", "B?", "+1 is all I know"),
    "s-digits": ("Dan", "b", "1" * 100_000 + "x"),
    "s-gap": ("Gus", "b", "ReLU" + " " * 120_000 + "saturates, " + "\n" * 5_000 + "no"),
}
LONG_RUNS = [  # each took minutes somewhere in segmenting, screening or the negation check (quadratic)
    "sqrt" + " " * 120_000,
    "a" + " " * 120_000 + "b",
    "sqrt" + " \n" * 60_000,
    "1" * 120_000 + "x",
    "a" * 120_000,
    "you must " + " " * 120_000,
    "ab, " * 30_000,
    "(" * 120_000,
]


def write_rubric(folder: Path) -> Path:
    path = folder / "hostile.yaml"
    path.write_text(yaml.safe_dump(RUBRIC_DATA, allow_unicode=True), encoding="utf-8")
    return path


def excel_unicode_text(rows: list[list[str]]) -> bytes:
    """What Excel's "Unicode text" saves: UTF-16 little-endian with a BOM, tab-separated."""
    buffer = io.StringIO()
    csv.writer(buffer, delimiter="\t", lineterminator="\r\n").writerows(rows)
    return codecs.BOM_UTF16_LE + buffer.getvalue().encode("utf-16-le")


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """One real `grade --db` run on the hostile class, then a flags sheet exported from it."""
    folder = tmp_path_factory.mktemp("hostile")
    rubric = write_rubric(folder)
    answers = folder / "answers.txt"
    answers.write_bytes(
        excel_unicode_text([["student_id", "name", "M1", "S1"], *([s, *row] for s, row in HOSTILE.items())])
    )
    out, db = folder / "results", folder / "exam.db"
    run = grader("grade", rubric, answers, "--out", out, "--db", db, "--no-cache", "--device", "cpu")
    sheet = folder / "queue.csv"
    exported = grader("flags", "export", db, sheet, "--all")
    return folder, rubric, answers, out, db, run, sheet, exported


# ---------------------------------------------------------------- the hostile class is graded, whole


def test_the_hostile_class_is_graded_whole_with_the_missing_column_warned_once(hostile):
    *_, out, db, run, sheet, exported = hostile
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    warnings = [line for line in run.stderr.splitlines() if line.startswith("warning:")]
    assert sum("no column for question(s) S2: every student is marked blank (0)" in w for w in warnings) == 1
    marks = read_csv(out / "marks.csv")
    assert len(marks) == len(HOSTILE) * 3  # nobody swallowed, nobody dropped
    by = {(spreadsheet_id(r["student_id"]), r["question_id"]): r for r in marks}
    assert set(by) == {(s, q) for s in HOSTILE for q in ("M1", "S1", "S2")}
    assert by[FORMULA_ID, "S1"]["mark"] != "0"  # the formula pattern read it
    assert "pattern-timeout" in by["s-nested", "S1"]["flags"]  # the backtracking pattern ran out of time, flagged
    assert by["s-invisible", "S1"]["flags"] == "blank" and by["s-invisible", "S1"]["mark"] == "0"
    assert by["s-hesitant", "M1"]["mark"] == "1" and by["s-hesitant", "M1"]["flags"] == "hesitant-choice"
    assert all(by[s, "S2"]["flags"] == "blank" for s in HOSTILE)


def spreadsheet_id(cell: str) -> str:
    return cell[1:] if cell.startswith("'=") else cell


def test_every_sheet_a_person_opens_has_formulas_made_inert(hostile):
    *_, out, db, run, sheet, exported = hostile
    assert exported.returncode == 0, exported.stderr
    marks = (out / "marks.csv").read_text(encoding="utf-8")
    totals = (out / "totals.csv").read_text(encoding="utf-8")
    queue = sheet.read_text(encoding="utf-8")
    for text in (marks, totals, queue):
        cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
        assert not [c for c in cells if c.lstrip(" ")[:1] in ("=", "@") or c.startswith("+1 ")], text[:500]
    assert "'=HYPERLINK" in marks and "'=HYPERLINK" in totals and "'@SUM(A1)" in totals and "'=HYPERLINK" in queue


def test_the_flags_sheet_reads_back_its_own_escaped_cells(hostile):
    folder, *_, db, run, sheet, exported = hostile
    result = grader("flags", "import", db, sheet, "--ta", "bob")
    assert result.returncode == 0, result.stderr
    assert "nothing new" in result.stdout


def test_moodle_export_by_student_id_refuses_a_formula_like_id_in_one_line(hostile):
    folder, *_, db, run, sheet, exported = hostile
    target = folder / "moodle.csv"
    target.write_text("previous\n")
    result = grader("export", db, "--format", "moodle", "--id-column", "student_id", "--out", target)
    assert_one_line_error(result, "moodle export", "=HYPERLINK", "formula")
    assert target.read_text() == "previous\n"


def test_export_into_a_folder_or_an_unwritable_place_is_one_line(hostile, tmp_path):
    folder, *_, db, run, sheet, exported = hostile
    assert_one_line_error(grader("export", db, "--out", tmp_path), str(tmp_path), "is a folder")
    unwritable = unwritable_folder(tmp_path)
    assert_one_line_error(grader("export", db, "--out", unwritable / "grades.csv"), "grades.csv", "cannot write")


def test_flags_import_into_a_read_only_gradebook_changes_nothing(hostile, tmp_path):
    folder, *_, db, run, sheet, exported = hostile
    copy = tmp_path / "exam.db"
    with sqlite3.connect(db) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    filled = tmp_path / "filled.csv"
    rows = list(csv.reader(io.StringIO(sheet.read_text(encoding="utf-8"))))
    rows[1][rows[0].index("ta_mark")] = "0"
    with filled.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    before = audit_log(copy)
    if os.geteuid() != 0:  # root writes whatever the permissions say: open it read-only instead
        copy.chmod(0o444)
        tmp_path.chmod(0o555)
        try:
            assert_one_line_error(
                grader("flags", "import", copy, filled, "--ta", "bob"), str(copy), "cannot write to the gradebook"
            )
        finally:
            tmp_path.chmod(0o755)
    else:
        with Gradebook.open(copy, create=False) as book:
            book._db.close()
            book._db = sqlite3.connect(f"file:{copy}?mode=ro", uri=True, isolation_level=None)
            book._db.row_factory = sqlite3.Row
            with pytest.raises(GraderError, match="cannot write to the gradebook .*nothing was changed"):
                import_flags_sheet(filled, book, "bob")
    assert audit_log(copy) == before


def audit_log(db: Path) -> list[tuple[str, str]]:
    with Gradebook.open(db, create=False) as book:
        return [(a.ta, a.action) for a in book.audit()]


# ---------------------------------------------------------------- rubric patterns


def test_validate_warns_about_nested_and_backtracking_patterns_once_each(tmp_path):
    result = grader("validate", write_rubric(tmp_path))
    assert result.returncode == 0, result.stderr
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 2, result.stderr
    assert "point formula, pattern '(a+)+$' repeats a group that itself repeats" in warnings[0]
    assert "point purpose, pattern '(?=a)(a|aa)+$' uses lookaround" in warnings[1] and "1 s per answer" in warnings[1]


def test_adversarial_patterns_and_answers_finish_at_once():
    """Linear-time matching: these took minutes to hours on Python's re (issue 13)."""
    assert find_pattern([NESTED], "a" * 40 + "!") is None
    assert find_pattern([XAVIER], "sqrt" + " " * 120_000) is None
    assert (
        find_pattern(
            load_rubric(Path(__file__).parents[2] / "rubrics" / "dl-midsem.yaml").question("I3").points[0].patterns,
            "sqrt" + " " * 120_000,
        )
        is None
    )
    assert find_pattern([XAVIER], "W ~ U(±SQRT(6 / (fan_in + fan_out)))") == "SQRT(6 / (fan_in + fan_out"


def test_long_runs_of_one_character_pass_every_text_check_at_once():
    """The checks that read an answer's words, on what a hostile student can paste: each is linear."""
    question = load_rubric(Path(__file__).parents[2] / "rubrics" / "dl-midsem.yaml").question("I3")
    terms = rubric_terms(question)
    for text in LONG_RUNS:
        pieces = segments(text)
        assert all(len(p.split()) <= 100 for p in pieces)
        overlong(text)
        screen(question, text, pieces, terms)
        polarity(pieces[:50])
        verdict(text)
        read_choice(text, {"a": "one", "b": "two"})
        assert find_pattern(question.points[0].patterns, text) is None


# ---------------------------------------------------------------- answers files refused, outputs kept


def previous_results(folder: Path) -> Path:
    out = folder / "results"
    out.mkdir()
    (out / "marks.csv").write_text("student_id,question_id,mark\nold,M1,1\n")
    return out


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        (
            b'student_id,M1,S1\ns1,b,"an answer that never ends\ns2,a,two\ns3,c,three\n',
            ("answers.csv, row 2", "never closed", 'two ("")'),
        ),
        (b'student_id,M1,S1\ns1,b,"quoted" then more\n', ("answers.csv, row 2", "text follows the closing quote")),
        (b"student_id,M1,S1\n", ("answers.csv, row 1", "no students")),
        (b"", ("answers.csv", "empty")),
        (
            b"student_id,M1,S1\ns1,b,ok\ns2,b," + b"x" * 140_000 + b"\n",
            ("answers.csv, row 3", "longer than 131,072 characters"),
        ),
        (b"student_id,M1,S1\ns1,b,o\x00k\n", ("answers.csv", "NUL")),
        ("student_id,M1,S1\ns1,b,ok\n".encode("utf-16-le"), ("answers.csv", "UTF-16 without a byte order mark")),
        (codecs.BOM_UTF16_LE + b"s\x00\xd8", ("answers.csv", "not valid UTF-16")),
        (b"student_id,M1,S1\n\xe2\x80\x8b,b,ok\n", ("answers.csv, row 2, column 'student_id'", "empty student id")),
    ],
    ids=[
        "unterminated-quote",
        "text-after-quote",
        "header-only",
        "empty",
        "huge-cell",
        "nul",
        "utf16-no-bom",
        "bad-utf16",
        "invisible-id",
    ],
)
def test_a_refused_answers_file_is_one_line_and_keeps_the_previous_results(tmp_path, content, fragments):
    answers = tmp_path / "answers.csv"
    answers.write_bytes(content)
    out = previous_results(tmp_path)
    result = grader("grade", write_rubric(tmp_path), answers, "--out", out)
    assert_one_line_error(result, *fragments)
    assert (out / "marks.csv").read_text() == "student_id,question_id,mark\nold,M1,1\n"
    assert sorted(p.name for p in out.iterdir()) == ["marks.csv"]


def test_grade_out_naming_a_file_or_an_unwritable_folder_fails_before_the_model(tmp_path):
    answers = tmp_path / "answers.csv"
    answers.write_text("student_id,M1,S1,S2\ns1,b,ok,fine\n")
    existing = tmp_path / "results"
    existing.write_text("not a folder")
    assert_one_line_error(
        grader("grade", write_rubric(tmp_path), answers, "--out", existing), "results", "not a folder"
    )
    assert existing.read_text() == "not a folder"
    unwritable = unwritable_folder(tmp_path)
    assert_one_line_error(
        grader("grade", write_rubric(tmp_path), answers, "--out", unwritable / "results"), "cannot write"
    )


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot write in: read-only by its mode, or (for root, whom modes do not
    stop) a read-only file system."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    if not os.path.isdir("/sys"):
        pytest.skip("running as root without /sys: no folder root cannot write")
    return Path("/sys")


# ---------------------------------------------------------------- marks files


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        ("s1,S1,NaN\n", ("marks.csv, row 2, column 'mark'", "'NaN' is not a number")),
        ("s1,S1,inf\n", ("row 2, column 'mark'", "'inf' is not a number")),
        ("s1,S1,1\ns2,S1\n", ("marks.csv, row 3", "2 field(s) but the header has 3")),
        ("s1,S1,1.5\n", ("row 2, column 'mark'", "mark 1.5 is outside 0..1 for S1")),
        ("s1,S1,-0.5\n", ("row 2, column 'mark'", "mark -0.5 is outside 0..1 for S1")),
        ("s1,S9,1\n", ("row 2, column 'question_id'", "unknown question 'S9'")),
    ],
    ids=["nan", "inf", "short-row", "above-max", "negative", "unknown-question"],
)
@pytest.mark.parametrize("command", ["calibrate", "evaluate"])
def test_a_bad_marks_file_is_refused_alike_by_calibrate_and_evaluate(tmp_path, body, fragments, command):
    answers = tmp_path / "answers.csv"
    answers.write_text("student_id,M1,S1,S2\ns1,b,ok,fine\ns2,a,no,nope\n")
    marks = tmp_path / "marks.csv"
    marks.write_text("student_id,question_id,mark\n" + body)
    result = grader(command, write_rubric(tmp_path), answers, marks, "--out", tmp_path / "out")
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "out").exists()


def test_calibrate_warns_in_words_about_few_or_uniform_marks():
    marks = {("s1", "S1"): 1.0, ("s2", "S1"): 1.0, **{(f"s{i}", "S2"): i % 2 for i in range(12)}}
    warnings = marks_warnings(marks, {"S1": 1.0, "S2": 1.0, "S3": 2.0}, enough=10)
    assert warnings == [
        "few marked answers (S1 2; about 10 per question are needed): those questions borrow the map fitted on all "
        "questions, and the cross-validated errors rest on few answers",
        "no marked answer for S3: they borrow the map fitted on the others",
        "a single distinct mark on S1 (all 1): nothing shows what separates a better answer from a worse one there",
    ]
    assert marks_warnings({(f"s{i}", "S2"): i % 2 for i in range(12)}, {"S2": 1.0}, enough=10) == []


def test_calibrate_prints_each_warning_once(hostile, tmp_path):
    folder, rubric, answers, *_ = hostile
    marks = tmp_path / "marks.csv"
    marks.write_text("student_id,question_id,mark\ns-hesitant,S1,0\ns-digits,S1,0\ns-spaces,S1,0\n")
    result = grader(
        "calibrate", rubric, answers, marks, "--out", tmp_path / "cal.json", "--no-cache", "--device", "cpu"
    )
    assert "Traceback" not in result.stderr + result.stdout
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert sum("no column for question(s) S2" in w for w in warnings) == 1
    assert sum("few marked answers (S1 3;" in w for w in warnings) == 1
    assert sum("a single distinct mark on S1 (all 0)" in w for w in warnings) == 1


# ---------------------------------------------------------------- exports by the answers file's own ids


def test_moodle_and_canvas_export_by_student_id():
    entries = ta_overruled()
    moodle = list(csv.reader(io.StringIO(moodle_csv(EXPORT_RUBRIC, [ASHA, BEN], entries, id_column="student_id"))))
    assert moodle[0][0] == "student_id" and [r[0] for r in moodle[1:]] == ["s1", "s2"]
    canvas = list(
        csv.reader(io.StringIO(canvas_csv(EXPORT_RUBRIC, [ASHA, BEN], entries, "Quiz 1 (77)", id_column="Student ID")))
    )
    assert [r[3] for r in canvas[2:]] == ["s1", "s2"]  # SIS Login ID
