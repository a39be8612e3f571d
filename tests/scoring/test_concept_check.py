"""The concept check: its features, learning and threshold, saving, and grading with the shipped weights."""

from __future__ import annotations

import json

import numpy as np
import pytest

from grader.errors import GraderError
from grader.exam.rubric import ShortQuestion
from grader.scoring import concept_check
from grader.scoring.checker import Pair
from grader.scoring.checker_train import Marked
from grader.scoring.concept_check import (
    DEFAULT_DIR,
    META,
    READING,
    WEIGHTS,
    ConceptCheck,
    choose_threshold,
    fit,
    load,
    pair_features,
    pair_table,
    read_answers,
    read_table,
    reading_features,
    save,
    train,
)
from grader.scoring.engine import default_checker
from grader.scoring.negation import opposed, polarity, signed_concepts
from tests.scoring.test_checker import REVERSALS

# ---- features ------------------------------------------------------------------------------------


def test_features_name_what_only_one_side_says_and_what_the_sides_sign_oppositely():
    point = signed_concepts("The bulb lights because it is in a closed path with the battery.")
    answer = signed_concepts("The bulb does not light because there is a gap in the path.")
    found = set(pair_features(point, answer))
    assert "D:light" in found  # asserted by the point, denied by the answer
    assert "A:gap+" in found and "R:open-" in found and "X:open-|gap+" in found  # "closed" read as "not open"
    assert "opposite=1" in found
    agreeing = set(pair_features(point, signed_concepts("It lights: the path with the battery is closed.")))
    assert "opposite=0" in agreeing and not any(f.startswith("D:") for f in agreeing)


def test_features_are_binary_and_each_distinct_text_read_once():
    pairs = [("The switch is closed.", "The switch is open."), ("The switch is closed.", "The switch is open.")]
    table = concept_check.features(pairs)
    assert table.shape == (2, concept_check.FEATURES) and set(table.data) == {1.0}
    assert (table[0] != table[1]).nnz == 0


# ---- learning ------------------------------------------------------------------------------------

CLOSED = "The bulb lights because it is in a closed path with the battery."


def swapped_and_agreeing(n: int) -> list[Pair]:
    """Our own circuit answers: the reference turned around with a domain word (a gap, an open switch),
    not a negation, against ones that say it in other words."""
    wrong = ["There is a gap so the bulb is separated from the battery.", "The switch is open, a gap stops it."]
    right = ["The bulb is in a closed path with the battery.", "A closed path joins bulb and battery."]
    return [Pair(CLOSED, wrong[i % 2], "contradicts") for i in range(n)] + [
        Pair(CLOSED, right[i % 2], "entails") for i in range(n)
    ]


def test_a_regression_learns_a_reversal_in_domain_words_the_rules_do_not_oppose():
    weights, intercept = fit(swapped_and_agreeing(20))
    check = ConceptCheck(weights, intercept, 0.5)
    scores = check.contradiction([(CLOSED, "A gap separates the bulb."), (CLOSED, "It is a closed path.")])
    assert scores[0] > 0.5 > scores[1]
    assert concept_check.rules_flag([(CLOSED, "A gap separates the bulb.")]).tolist() == [False]


def test_learning_needs_both_kinds_of_pair():
    with pytest.raises(GraderError, match="both correct and other"):
        fit([Pair(CLOSED, "It is closed.", "entails")] * 3)


def test_the_threshold_flags_at_most_the_allowed_share_with_the_rules():
    scores = np.linspace(0, 1, 100)
    rules = np.zeros(100, dtype=bool)
    rules[:2] = True  # the rules already flag two low-scoring answers
    t = choose_threshold(scores, rules, 0.05)
    assert np.mean(rules | (scores >= t)) <= 0.05
    assert np.mean(rules | (scores >= np.nextafter(scores[scores < t].max(), 0))) > 0.05
    assert np.mean(choose_threshold(scores, rules, 0.0) <= scores) == 0  # nothing more may be flagged
    tied = np.array([0.9, 0.9, 0.9, 0.5, 0.4, 0.3, 0.2, 0.1, 0.1, 0.0])
    assert choose_threshold(tied, np.zeros(10, dtype=bool), 0.2) > 0.9  # the three tied stand or fall together
    assert choose_threshold(tied, np.zeros(10, dtype=bool), 0.3) == 0.9


def test_training_chooses_its_threshold_on_questions_it_did_not_learn():
    examples = [
        Marked(f"q{i % 10}", pair, pair) for i, pair in enumerate(swapped_and_agreeing(50))
    ]  # ten questions, both kinds in each
    check, meta = train(examples, rate=0.1)
    held = meta["out_of_fold"]
    assert held["questions"] == 10 and held["contradictory"] == 50 and held["correct"] == 50
    assert held["false_alarms_with_rules"] <= 0.1 and held["recall_with_rules"] > 0.5
    assert check.threshold == meta["threshold"]


# ---- reading an answer against every phrasing ------------------------------------------------------

MINIMAL = "The bulb is connected to both battery terminals."


def test_reading_features_sum_up_any_number_of_phrasings():
    scores = np.array([[0.9, 0.1, 0.5], [0.5, 0.5, 0.5]])
    opposite = np.array([[True, False, False], [True, True, True]])
    rows = reading_features(scores, opposite)
    assert rows.shape == (2, len(READING))
    named = dict(zip(READING, rows[0]))
    assert named["lowest"] == pytest.approx(np.log(0.1 / 0.9)) and named["first"] == pytest.approx(np.log(9))
    assert named["highest"] == named["first"] and named["rules_first"] == 1 and named["rules_any"] == 1
    assert named["rules_all"] == 0 and dict(zip(READING, rows[1]))["rules_all"] == 1
    alone = dict(zip(READING, reading_features(np.array([[0.7]]), np.array([[False]]))[0]))
    assert alone["lowest"] == alone["mean"] == alone["highest"] == alone["first"] and alone["log_phrasings"] == 0


def minimal_examples(n: int) -> list[Marked]:
    """Ten questions whose first reference is CLOSED and whose minimal one is MINIMAL: correct answers
    state one or the other, wrong ones a gap."""
    right = ["The bulb is in a closed path with the battery.", "Both battery terminals are connected to the bulb."]
    wrong = ["There is a gap so the bulb is separated from the battery.", "A gap separates the bulb from a terminal."]
    found = []
    for i in range(n):
        answer, label = (right, "entails") if i % 2 else (wrong, "contradicts")
        pair = Pair(CLOSED, answer[(i // 2) % 2], label)
        found.append(Marked(f"q{i % 10}", pair, pair))
    return found


def test_training_with_references_learns_how_to_read_an_answer_against_all_of_them():
    references = {f"q{q}": [CLOSED, MINIMAL] for q in range(10)}
    check, meta = train(minimal_examples(80), references=references, rate=0.1)
    assert check.reading is not None and check.reading.shape == (len(READING) + 1,)
    assert meta["reading"]["features"] == list(READING) and meta["reading"]["false_alarms"] <= 0.1
    states_minimal, gap = read_answers(
        check, [CLOSED, MINIMAL], ["Both battery terminals are connected to the bulb.", "A gap separates the bulb."]
    )
    assert states_minimal < gap
    assert train(minimal_examples(80), rate=0.1)[0].reading is None  # no references: nothing to learn it from


def test_the_opposition_learns_from_correct_and_contradictory_answers_alone():
    references = {f"q{q}": [CLOSED, MINIMAL] for q in range(10)}
    unrelated = Pair(CLOSED, "Plants need sunlight to grow.", "neither")
    examples = minimal_examples(80) + [Marked(f"q{i % 10}", unrelated, unrelated) for i in range(30)]
    check, meta = train(examples, references=references, rate=0.1)
    opposition, said = check.opposition, meta["opposition"]
    assert opposition is not None and opposition.reading is not None and opposition.name == "opposition"
    assert meta["pairs"]["answers"] == 110 and said["pairs"]["answers"] == 80  # the incorrect ones left out
    assert said["reading"]["with_rules"] and said["reading"]["false_alarms"] <= 0.1
    assert said["reading"]["recall"] > 0.5
    gap, states_minimal = read_answers(
        opposition,
        [CLOSED, MINIMAL],
        ["A gap separates the bulb.", "Both battery terminals are connected to the bulb."],
    )
    assert states_minimal < opposition.threshold <= gap
    assert train(examples, rate=0.1)[0].opposition is None  # no references: nothing to read an answer against


def test_without_a_reading_an_answer_is_read_against_the_first_phrasing_alone():
    weights, intercept = fit(swapped_and_agreeing(10))
    check = ConceptCheck(weights, intercept, 0.5)
    answers = ["A gap separates the bulb.", "It is a closed path."]
    assert np.allclose(
        read_answers(check, [CLOSED, MINIMAL], answers), check.contradiction([(CLOSED, a) for a in answers])
    )
    assert len(read_answers(check, [CLOSED], [])) == 0


def test_pairs_built_once_read_exactly_as_the_texts_with_and_without_a_reading():
    """Grading builds a block's pairs once for the check and its opposition (`pair_table`): read from
    them, each answer scores exactly as read from the texts, pair by pair."""
    weights, intercept = fit(swapped_and_agreeing(10))
    reading = np.linspace(-1, 1, len(READING) + 1)
    phrasings = [CLOSED, MINIMAL]
    answers = ["A gap separates the bulb.", "It is a closed path.", "The bulb does not light."]
    built = pair_table(phrasings, answers)
    assert built.answers == 3 and built.opposite[2, 0] and not built.opposite[:2].any()
    plain, read = ConceptCheck(weights, intercept, 0.5), ConceptCheck(-weights, intercept, 0.5, reading=reading)
    first = plain.contradiction([(CLOSED, a) for a in answers]).astype(np.float64)
    assert np.array_equal(read_table(plain, built), first)
    assert np.array_equal(read_table(plain, built), read_answers(plain, phrasings, answers))
    scores = read.contradiction([(p, a) for a in answers for p in phrasings]).reshape(3, 2)
    both = polarity([*phrasings, *answers])
    rows = reading_features(scores, opposed(both.rows([2, 3, 4]), both.rows([0, 1])))
    expected = 1.0 / (1.0 + np.exp(-(rows @ reading[:-1] + reading[-1])))
    assert np.array_equal(read_table(read, built), expected)
    assert np.array_equal(read_answers(read, phrasings, answers), expected)
    assert len(read_table(read, pair_table(phrasings, []))) == 0


# ---- saving --------------------------------------------------------------------------------------


def test_saved_check_loads_back_scoring_the_same(tmp_path):
    weights, intercept = fit(swapped_and_agreeing(10))
    check = ConceptCheck(weights, intercept, 0.7, "mine")
    save(check, tmp_path, {"command": "constructed"})
    loaded = load(tmp_path)
    pairs = [(CLOSED, "A gap separates the bulb."), (CLOSED, "It is a closed path.")]
    assert np.allclose(loaded.contradiction(pairs), check.contradiction(pairs))
    assert (loaded.threshold, loaded.name) == (0.7, "mine")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([WEIGHTS, META])  # no temporaries left


def test_a_saved_reading_loads_back_and_a_foreign_one_is_refused(tmp_path):
    weights, intercept = fit(swapped_and_agreeing(10))
    reading = np.linspace(-1, 1, len(READING) + 1)
    save(ConceptCheck(weights, intercept, 0.7, reading=reading), tmp_path, {})
    assert np.allclose(load(tmp_path).reading, reading)
    save(ConceptCheck(weights, intercept, 0.7, reading=reading[:4]), tmp_path, {})
    with pytest.raises(GraderError, match="a reading of 4 weights"):
        load(tmp_path)


def test_a_saved_opposition_loads_back_and_one_without_its_reading_is_refused(tmp_path):
    weights, intercept = fit(swapped_and_agreeing(10))
    reading = np.linspace(-1, 1, len(READING) + 1)
    opposition = ConceptCheck(-weights, intercept, 0.6, "opposition", reading[::-1].copy())
    save(ConceptCheck(weights, intercept, 0.7, reading=reading, opposition=opposition), tmp_path, {})
    loaded = load(tmp_path)
    assert loaded.opposition is not None and loaded.opposition.threshold == 0.6
    assert json.loads((tmp_path / META).read_text())["opposition"]["threshold"] == 0.6
    answers = ["A gap separates the bulb.", "It is a closed path."]
    assert np.allclose(read_answers(loaded.opposition, [CLOSED], answers), read_answers(opposition, [CLOSED], answers))
    assert np.allclose(loaded.reading, reading)
    save(ConceptCheck(weights, intercept, 0.7, opposition=ConceptCheck(weights, intercept, 0.6)), tmp_path, {})
    with pytest.raises(GraderError, match="an opposition without its reading"):
        load(tmp_path)


def test_a_missing_or_foreign_check_is_refused_in_one_line(tmp_path):
    with pytest.raises(GraderError, match="no concept check"):
        load(tmp_path)
    (tmp_path / WEIGHTS).write_bytes(b"not an npz")
    (tmp_path / META).write_text('{"features": 1048576, "threshold": 0.9}')
    with pytest.raises(GraderError, match="not a concept check") as err:
        load(tmp_path)
    assert "\n" not in str(err.value)


def test_grading_picks_the_check_by_what_the_folder_holds(tmp_path, monkeypatch):
    weights, intercept = fit(swapped_and_agreeing(10))
    save(ConceptCheck(weights, intercept, 0.7), tmp_path, {})
    said = []
    monkeypatch.setenv("GRADER_CHECKER", str(tmp_path))
    assert isinstance(default_checker(None, said.append), ConceptCheck) and said == []


# ---- grading with an opposition -------------------------------------------------------------------


def opposing(everything: bool) -> ConceptCheck:
    """A constructed check: its segment scores say every segment contradicts (threshold 0.5), and its
    opposition reads every answer as the opposite of its question, or none, whatever it says."""
    nothing = np.zeros(concept_check.FEATURES, dtype=np.float32)
    reading = np.zeros(len(READING) + 1)
    reading[-1] = 8.0 if everything else -8.0
    return ConceptCheck(nothing, 8.0, 0.5, opposition=ConceptCheck(nothing, 0.0, 0.5, "opposition", reading))


def test_an_answer_read_as_the_opposite_earns_no_point_and_is_flagged(rubric, encoder):
    from grader.exam.submissions import parse_submissions
    from grader.scoring.grade import apply_curve, grade
    from grader.scoring.match import DEFAULT_CURVE

    question = rubric.question("I4")  # no rubric pattern
    one = parse_submissions(f'student_id,I4\nx1,"{question.model_answer}"\n', "one.csv", rubric.question_ids)
    ruled = next(g for g in grade(rubric, one, encoder).items if g.question_id == "I4")
    assert ruled.mark == question.marks  # the model answer itself, with the rules alone
    # an opposition that reads nothing as the opposite: the same marks; the segment scores are not asked
    kept = next(g for g in grade(rubric, one, encoder, checker=opposing(False)).items if g.question_id == "I4")
    assert kept.mark == ruled.mark and [p.credit for p in kept.points] == [p.credit for p in ruled.points]
    assert "contradiction" not in {f.code for f in kept.flags}
    graded = grade(rubric, one, encoder, checker=opposing(True))
    turned = next(g for g in graded.items if g.question_id == "I4")
    assert turned.mark == 0 and all(p.credit == 0 for p in turned.points)
    assert all(p.opposite and p.opposite_probability == pytest.approx(1.0, abs=1e-3) for p in turned.points)
    reasons = [f.reason for f in turned.flags if f.code == "contradiction"]
    assert len(reasons) == len(question.points) and all("learned check" in r for r in reasons)
    assert graded.checker.startswith("concept-check (answers read whole: opposition threshold 0.500")
    again = next(g for g in apply_curve(graded, rubric, DEFAULT_CURVE).items if g.question_id == "I4")
    assert again.mark == 0  # a new credit curve does not give the points back


def test_a_rubric_pattern_still_earns_its_point_in_an_answer_read_as_the_opposite(rubric, encoder):
    from grader.exam.submissions import parse_submissions
    from grader.scoring.grade import grade

    answer = "Polynomials of a fixed degree are not dense in the continuous functions."  # I5's not-dense pattern
    one = parse_submissions(f'student_id,I5\nx1,"{answer}"\n', "one.csv", rubric.question_ids)
    graded = next(g for g in grade(rubric, one, encoder, checker=opposing(True)).items if g.question_id == "I5")
    hit = {p.point_id: p for p in graded.points}["not-dense"]
    assert hit.pattern and hit.credit == 1 and graded.mark > 0


# ---- the shipped weights -------------------------------------------------------------------------

shipped = pytest.mark.skipif(not (DEFAULT_DIR / WEIGHTS).is_file(), reason="no concept check in models/concept-check")


@shipped
def test_shipped_check_records_how_it_was_made_and_beats_the_rules_there():
    meta = json.loads((DEFAULT_DIR / META).read_text())
    assert "train-concept-check" in meta["command"] and "CC BY-SA 3.0" in meta["data"]
    held = meta["out_of_fold"]
    assert held["false_alarms_with_rules"] <= 0.03
    assert held["recall_with_rules"] > held["recall_rules_alone"]
    read = meta["reading"]  # every reference of the question, on the same unseen questions
    assert read["false_alarms"] <= 0.03 and read["recall"] > held["recall_with_rules"]
    said = meta["opposition"]["reading"]  # what grading flags: the opposition with the rules
    assert said["with_rules"] and said["false_alarms"] <= 0.03 and said["recall"] > read["recall"]
    shipped_check = load(DEFAULT_DIR)
    assert shipped_check.reading is not None and shipped_check.opposition is not None


@shipped
def test_grading_uses_the_shipped_check_unless_told_otherwise(monkeypatch):
    said = []
    monkeypatch.delenv("GRADER_CHECKER", raising=False)
    monkeypatch.setenv("GRADER_CROSS_ENCODER", "off")  # the second reading: tests/scoring/test_cross_reading.py
    assert isinstance(default_checker(None, said.append), ConceptCheck) and said == []
    monkeypatch.setenv("GRADER_CHECKER", "off")
    assert default_checker(None, said.append) is None and said == []


@shipped
def test_shipped_check_leaves_the_sample_full_marks_alone(rubric, sample):
    checked = sample.grades  # graded with the shipped check, as `grader grade` does
    full = [
        g
        for g in checked.items
        if (g.student_id, g.question_id) in sample.human
        and g.max_mark
        and sample.human[(g.student_id, g.question_id)] >= g.max_mark
        and isinstance(rubric.question(g.question_id), ShortQuestion)
    ]
    flagged = [g for g in full if any(p.opposite_probability is not None for p in g.points)]
    assert len(full) > 80 and len(flagged) <= 0.02 * len(full), [(g.student_id, g.question_id) for g in flagged]
    assert checked.checker.startswith("concept-check (answers read whole")


@shipped
def test_grading_reads_each_short_answer_whole_against_the_model_answer(rubric, encoder, sample):
    """The doubt a calibration weighs (`answer_doubts`): on every short answer graded with the check,
    on none without it; the model answer itself is doubted less than a non-answer on every question;
    and on the bundled sample the answers we marked full are doubted less than those we marked 0."""
    from grader.exam.submissions import parse_submissions
    from grader.scoring.concept_check import answer_doubts
    from grader.scoring.grade import grade

    check = load(DEFAULT_DIR)
    for question in (q for q in rubric.questions if isinstance(q, ShortQuestion)):
        itself, nothing = answer_doubts(check, question, [question.model_answer, "I do not know."])
        assert itself < 0.5 < nothing, question.id
    shorts = [g for g in sample.grades.items if g.points]
    assert shorts and all(0.0 <= g.concept_doubt <= 1.0 for g in shorts)
    assert all(g.concept_doubt is None for g in sample.grades.items if not g.points)  # MCQs and blanks
    share = {k: m / rubric.question(k[1]).marks for k, m in sample.human.items()}
    full = [g.concept_doubt for g in shorts if share.get((g.student_id, g.question_id)) == 1]
    zero = [g.concept_doubt for g in shorts if share.get((g.student_id, g.question_id)) == 0]
    assert len(full) > 50 and len(zero) > 50 and np.mean(full) < np.mean(zero) - 0.1
    one = parse_submissions('student_id,I5\nx1,"I do not know."\n', "one.csv", rubric.question_ids)
    assert all(g.concept_doubt is None for g in grade(rubric, one, encoder).items)


@shipped
@pytest.mark.parametrize(
    ("question", "answer"),
    [pytest.param(*case, id=case[0]) for case in REVERSALS],
)
def test_shipped_check_zeroes_our_own_seed_exam_reversals(rubric, encoder, grading_check, question, answer):
    from grader.exam.submissions import parse_submissions
    from grader.scoring.grade import grade

    submissions = parse_submissions(f'student_id,{question}\nx1,"{answer}"\n', "one.csv", rubric.question_ids)
    checked = grade(rubric, submissions, encoder, checker=grading_check)
    graded = next(g for g in checked.items if g.question_id == question)
    assert graded.mark == 0, [(p.point_id, p.credit, p.evidence) for p in graded.points]
    assert "contradiction" in {f.code for f in graded.flags}
