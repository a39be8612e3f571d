"""grade(): a tiny class graded with the real model, checked the way a TA would check the marks."""

from __future__ import annotations

import csv
import io

import pytest

from grader.embedding.segment import segments
from grader.exam.rubric import McqQuestion, ShortQuestion
from grader.exam.submissions import parse_submissions
from grader.scoring.grade import apply_curve, grade
from grader.scoring.match import DEFAULT_CURVE, CreditCurve, texts_to_encode
from tests.scoring.test_checker import REVERSALS

MCQ_IDS = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "B10", "I1", "I2"]
SHORT_IDS = ["I3", "I4", "I5", "A1a", "A1b", "A1c", "A1d"]

EXCELLENT = {
    **dict(zip(MCQ_IDS, ["b", "B", "d", "(a)", "c", "b", "C", "c", "a", "a", "c", "b"])),
    "I3": "W ~ U(-sqrt(6/(n_in+n_out)), sqrt(6/(n_in+n_out))). This keeps the variance of the activations and "
    "of the gradients the same across layers, so signals neither vanish nor explode.",
    "I4": "Neural networks are nonlinear and can approximate any function, even discontinuous ones where a Fourier "
    "series suffers from the Gibbs phenomenon. Deep networks also have a better approximation rate: fewer "
    "parameters for the same accuracy.",
    "I5": "With a polynomial activation the whole network is just a polynomial of the inputs of bounded degree, "
    "however many hidden units it has. Polynomials of a fixed degree are not dense in the continuous functions, "
    "so the universal approximation theorem only holds for non-polynomial activations.",
    "A1a": "Negative values mark regions where decreasing the activation would increase the class score, so they "
    "are evidence against the class. ReLU keeps only the positive contributions, so the heatmap shows the regions "
    "that increase the class score.",
    "A1b": "The first and second order gradients of the class score become nearly zero, so the weights alpha are "
    "near zero. Grad-CAM++ becomes ineffective: the heatmap is uniform and fails to localise the object.",
    "A1c": "No. Grad-CAM++ relies on second-order gradients, which are more sensitive to noise and amplify it, "
    "so it may highlight irrelevant regions.",
    "A1d": "In very deep networks the second-order gradients vanish and the map becomes diffused.\n"
    "In very wide networks the gradients saturate across many feature maps, so the map is less focused.\n"
    "In shallow networks the features are simple and plain Grad-CAM is enough.",
}
OFF_TOPIC = {
    **{qid: "a" for qid in MCQ_IDS},
    "I3": "I had pasta with tomato sauce for dinner yesterday.",
    "I4": "The weather in Delhi was very hot this week.",
    "I5": "My favourite football team won the league last season.",
    "A1a": "Trains in India are usually crowded during the festival season.",
    "A1b": "I think the library closes at eight in the evening.",
    "A1c": "Cricket is a popular sport played with a bat and a ball.",
    "A1d": "Gardening on weekends is relaxing, especially growing tomatoes.",
}
MESSY = {
    **dict(
        zip(
            MCQ_IDS,
            [
                "Answer - B",
                "(b)",
                "a, b",
                "idk",
                "e",
                "Option B",
                "It helps prevent overfitting by reducing the model's complexity.",
                "c) smoother derivative",
                "B",
                "a.",
                "20",
                "b because it upsamples",
            ],
        )
    ),
    "I3": "not sure",
    "I5": "because polynomial",
}
CLASS = {"s1": EXCELLENT, "s2": {}, "s3": OFF_TOPIC, "s4": MESSY}

MCQ_MARKS = {  # worked out by hand from the keys: b b d a c b c c a a c b
    "s1": dict.fromkeys(MCQ_IDS, 1.0),
    "s2": dict.fromkeys(MCQ_IDS, 0.0),
    "s3": {qid: float(qid in ("B4", "B9", "B10")) for qid in MCQ_IDS},
    "s4": {qid: float(qid not in ("B3", "B4", "B5", "B9")) for qid in MCQ_IDS},
}


def wide_csv(students: dict[str, dict[str, str]], question_ids) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["student_id", *question_ids])
    writer.writerows([sid, *(answers.get(q, "") for q in question_ids)] for sid, answers in students.items())
    return buffer.getvalue()


def long_csv(students: dict[str, dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["student_id", "question_id", "answer"])
    writer.writerows([sid, qid, answer] for sid, answers in students.items() for qid, answer in answers.items())
    return buffer.getvalue()


class CountingEncoder:
    """The real encoder, recording every list of texts grading hands it."""

    def __init__(self, encoder) -> None:
        self.inner, self.name, self.calls = encoder, encoder.name, []

    def encode(self, texts, progress=None):
        self.calls.append(list(texts))
        return self.inner.encode(texts, progress)


@pytest.fixture(scope="module")
def submissions(rubric):
    return parse_submissions(wide_csv(CLASS, rubric.question_ids), "tiny.csv", rubric.question_ids)


@pytest.fixture(scope="module")
def counted(encoder, rubric, submissions):
    counting = CountingEncoder(encoder)
    return counting, grade(rubric, submissions, counting)


@pytest.fixture(scope="module")
def grades(counted):
    return counted[1]


def item(grades, student, qid):
    return next(g for g in grades.items if g.student_id == student and g.question_id == qid)


def test_one_mark_per_student_and_question_in_rubric_order(grades, rubric):
    assert grades.students == ("s1", "s2", "s3", "s4")
    assert [(g.student_id, g.question_id) for g in grades.items] == [
        (s, q) for s in grades.students for q in rubric.question_ids
    ]
    assert grades.model == "all-MiniLM-L6-v2" and grades.rubric_fingerprint == rubric.fingerprint


def test_mcq_marks_are_exact(grades):
    for student, expected in MCQ_MARKS.items():
        assert {q: item(grades, student, q).mark for q in MCQ_IDS} == expected, student


def test_unread_mcq_answers_are_flagged_never_guessed(grades):
    flagged = {q for q in MCQ_IDS if any(f.code == "unreadable-choice" for f in item(grades, "s4", q).flags)}
    assert flagged == {"B3", "B4", "B5"}  # "a, b", "idk", "e"
    assert item(grades, "s4", "B3").choice is None
    assert item(grades, "s4", "B9").flags == () and item(grades, "s4", "B9").choice == "b"  # wrong, but read
    assert item(grades, "s4", "I1").choice == "c"  # "20" typed out


def test_blank_answers_get_zero_and_the_blank_flag(grades, rubric):
    for qid in rubric.question_ids:
        g = item(grades, "s2", qid)
        assert g.mark == 0 and [f.code for f in g.flags] == ["blank"], qid
    assert [f.code for f in item(grades, "s4", "I4").flags] == ["blank"]
    assert grades.total("s2") == 0


def test_excellent_answers_beat_off_topic_ones(grades):
    for qid in SHORT_IDS:
        good, bad = item(grades, "s1", qid), item(grades, "s3", qid)
        assert good.raw_mark > bad.raw_mark, qid
        assert max(p.similarity for p in good.points) > max(p.similarity for p in bad.points), qid
    assert sum(item(grades, "s1", q).mark for q in SHORT_IDS) >= 5  # of 8
    assert sum(item(grades, "s3", q).mark for q in SHORT_IDS) == 0


def test_each_question_encodes_its_distinct_texts_once_in_one_call(counted, rubric, submissions):
    counting, _ = counted
    shorts = [q for q in rubric.questions if isinstance(q, ShortQuestion)]
    answered = [q for q in shorts if any(submissions.answer(s, q.id).strip() for s in submissions.students)]
    assert len(counting.calls) == len(answered)
    for question, texts in zip(answered, counting.calls):
        assert len(texts) == len(set(texts))
        expected = set(texts_to_encode(question))  # point phrasings and the prompt
        expected |= {t for s in submissions.students for t in segments(submissions.answer(s, question.id))}
        assert set(texts) == expected, question.id


def test_grading_in_small_blocks_gives_the_same_marks(monkeypatch, grades, rubric, submissions, encoder):
    import grader.scoring.grade as grading

    monkeypatch.setattr(grading, "ENCODE_BLOCK", 3)
    monkeypatch.setattr(grading, "ANSWER_BLOCK", 2)
    again = grade(rubric, submissions, encoder.with_segments("separate"))  # as `grades`, which counted texts
    assert [(g.mark, g.flags) for g in again.items] == [(g.mark, g.flags) for g in grades.items]


def test_marks_sit_on_the_step_within_bounds(grades, rubric):
    for g in grades.items:
        question = rubric.question(g.question_id)
        assert 0 <= g.mark <= question.marks and g.max_mark == question.marks
        if isinstance(question, McqQuestion):
            assert g.mark in (0, question.marks)
        else:
            steps = g.mark / question.step
            assert steps == pytest.approx(round(steps)), (g.student_id, g.question_id, g.mark)
            assert abs(g.mark - g.raw_mark) <= question.step / 2 + 1e-9


def test_evidence_is_what_the_student_wrote(grades, submissions):
    checked = 0
    for g in grades.items:
        answer = " ".join(submissions.answer(g.student_id, g.question_id).split())
        for p in g.points:
            if p.credit > 0:
                # Segments join sentences with one space, so compare whitespace-normalised text.
                assert " ".join(p.evidence.split()) in answer, (g.student_id, g.question_id, p.point_id)
                assert p.pattern is None or p.evidence == p.pattern
                checked += 1
    assert checked >= 5
    formula = next(p for p in item(grades, "s1", "I3").points if p.point_id == "formula")
    assert formula.pattern and formula.credit == 1.0  # the sqrt(6/(n_in+n_out)) pattern fired


def test_apply_curve_stricter_never_raises_a_mark(grades, rubric):
    strict = CreditCurve(low=DEFAULT_CURVE.low + 0.1, high=DEFAULT_CURVE.high + 0.1)
    stricter = apply_curve(grades, rubric, strict)
    assert stricter.curve == strict
    for before, after in zip(grades.items, stricter.items):
        assert after.mark <= before.mark, (before.student_id, before.question_id)
        if before.question_id in MCQ_IDS or not before.points:
            assert after == before
    assert apply_curve(grades, rubric, DEFAULT_CURVE) == grades  # re-marking with the same curve changes nothing


def test_long_shape_gives_the_same_marks_as_wide(encoder, rubric, grades):
    three = {sid: CLASS[sid] for sid in ("s1", "s3", "s4")}
    long = parse_submissions(long_csv(three), "long.csv", rubric.question_ids)
    from_long = grade(rubric, long, encoder.with_segments("separate"))  # as `grades`
    assert from_long.students == ("s1", "s3", "s4")
    wide = [(g.student_id, g.question_id, g.mark, g.flags) for g in grades.items if g.student_id != "s2"]
    assert [(g.student_id, g.question_id, g.mark, g.flags) for g in from_long.items] == wide


def test_pooled_segments_read_each_answer_once_and_mark_the_same_twice(encoder, rubric, submissions, grades):
    pooled = encoder.with_segments("pooled")
    pooled.encoded = 0
    first = grade(rubric, submissions, pooled)
    shorts = [q for q in rubric.questions if isinstance(q, ShortQuestion)]
    answers = {(q.id, submissions.answer(s, q.id)) for q in shorts for s in submissions.students}
    rubric_texts = sum(len(set(texts_to_encode(q))) for q in shorts)
    assert pooled.encoded == len({(q, a) for q, a in answers if a.strip()}) + rubric_texts  # each answer read once
    assert first.segments == "pooled" and grades.segments == "separate"
    again = grade(rubric, submissions, pooled)
    assert [(g.mark, g.raw_mark, g.flags, g.points) for g in again.items] == [
        (g.mark, g.raw_mark, g.flags, g.points) for g in first.items
    ]
    for qid in SHORT_IDS:  # the same judgement of good and bad answers
        assert item(first, "s1", qid).raw_mark > item(first, "s3", qid).raw_mark, qid


def test_a_wrong_constant_close_to_another_phrasing_earns_nothing_and_is_flagged(encoder, rubric):
    # Our wording: the Xavier bound with 1 where the rubric has 6. It opposes the formula's own phrasing,
    # its nearest; before `grader.scoring.match.nearest_opposed` the normal-variance alternative
    # (2 / (n_in + n_out)), which it shares too few words with for the number check, paid it in full.
    bound = (
        "Weights are drawn from a uniform distribution between -sqrt({0}/(n_in + n_out)) and sqrt({0}/(n_in + n_out))."
    )
    csv_text = f'student_id,I3\nwrong,"{bound.format(1)}"\nright,"{bound.format(6)}"\n'
    graded = {
        g.student_id: g
        for g in grade(rubric, parse_submissions(csv_text, "two.csv", rubric.question_ids), encoder).items
        if g.question_id == "I3"
    }
    formula = {s: next(p for p in g.points if p.point_id == "formula") for s, g in graded.items()}
    assert formula["wrong"].credit == 0.0 and "contradiction" in {f.code for f in graded["wrong"].flags}
    assert formula["right"].credit == 1.0 and not any(f.code == "contradiction" for f in graded["right"].flags)


DROPOUT_EXAM = {
    "exam": "Regularisation quiz",
    "questions": [
        {
            "id": "R1",
            "type": "short",
            "marks": 1,
            "step": 0.5,
            "prompt": "Why is dropout necessary when training a very large network on a small data set?",
            "model_answer": "A large network memorises a small training set. Dropout randomly switches units off, "
            "so no unit can rely on others and the network overfits less.",
            "points": [
                {"id": "overfit", "marks": 0.5, "text": "A large network overfits a small training set."},
                {
                    "id": "co-adapt",
                    "marks": 0.5,
                    "text": "Dropping random units stops units from co-adapting, which regularises the network.",
                },
            ],
        }
    ],
}


def test_an_answer_denying_what_its_question_takes_for_granted_earns_nothing_and_says_why(encoder):
    # Our own exam and wordings: the denial reuses the points' words (overfitting, units, regularising),
    # which is what lets it earn marks from the embeddings alone.
    from grader.exam.rubric import parse_rubric

    rubric = parse_rubric(DROPOUT_EXAM, "dropout.yaml")
    answers = {
        "denies": "Dropout is not needed here: a large network does not overfit, the units regularise each other.",
        "agrees": "Without dropout a large network overfits the small training set; dropping random units stops "
        "them from co-adapting, so it regularises.",
        "hedges": "Dropout is not needed if the data set is large, but here the large network overfits, and "
        "dropping units stops them from co-adapting.",
    }
    csv_text = "student_id,R1\n" + "".join(f'{s},"{a}"\n' for s, a in answers.items())
    graded = {g.student_id: g for g in grade(rubric, parse_submissions(csv_text, "r.csv", ["R1"]), encoder).items}
    denied = [f for f in graded["denies"].flags if f.code == "contradiction"]
    assert graded["denies"].mark == 0 and denied
    assert all("Dropout is not needed here" in f.reason and "takes for granted" in f.reason for f in denied)
    for kept in ("agrees", "hedges"):
        assert graded[kept].mark == 1 and not any(f.code == "contradiction" for f in graded[kept].flags), kept
    without = grade(rubric, parse_submissions(csv_text, "r.csv", ["R1"]), encoder, negation=False).items
    assert next(g for g in without if g.student_id == "denies").mark > 0  # the embeddings alone pay it


def test_an_answer_turning_the_comparison_around_loses_the_point_and_says_why(encoder, monkeypatch):
    # Our own exam and wordings. The reversal keeps the point's words and swaps who does what; its other
    # sentence makes the second point, which it keeps.
    from grader.exam.rubric import parse_rubric
    from tests.scoring.test_comparison import QUESTION

    rubric = parse_rubric(
        {"exam": "Ensembles", "questions": [QUESTION.model_dump(exclude_none=True)]}, "ensembles.yaml"
    )
    answers = {
        "swaps": "Boosting does not reduce bias, while bagging reduces bias a lot. Bagging trains its models "
        "independently on bootstrap samples.",
        "keeps": "Boosting reduces bias, while bagging reduces variance. Bagging trains its models "
        "independently on bootstrap samples.",
    }
    csv_text = "student_id,E1\n" + "".join(f'{s},"{a}"\n' for s, a in answers.items())
    submissions = parse_submissions(csv_text, "e.csv", ["E1"])
    graded = {g.student_id: g for g in grade(rubric, submissions, encoder).items}
    point = {p.point_id: p for p in graded["swaps"].points}
    assert point["bias"].credit == 0 and point["bias"].opposite == "Boosting does not reduce bias"
    assert point["samples"].credit == 1
    flagged = [f.reason for f in graded["swaps"].flags if f.code == "contradiction"]
    assert flagged and "point bias" in flagged[0]
    assert graded["keeps"].mark == 1 and not any(f.code == "contradiction" for f in graded["keeps"].flags)
    monkeypatch.setattr("grader.scoring.comparison.READ_COMPARISONS", False)
    unread = {g.student_id: g for g in grade(rubric, submissions, encoder).items}
    assert unread["swaps"].mark == 1  # the sentence whole: the embeddings pay it and the polarity rules see no flip


@pytest.mark.parametrize(("question", "answer"), [pytest.param(*case, id=case[0]) for case in REVERSALS])
def test_the_rules_alone_zero_and_flag_our_seed_exam_reversals(encoder, rubric, question, answer):
    # The learned checks' own tests: tests/scoring/test_checker.py and test_concept_check.py.
    submissions = parse_submissions(f'student_id,{question}\nx1,"{answer}"\n', "one.csv", rubric.question_ids)
    graded = next(g for g in grade(rubric, submissions, encoder, checker=None).items if g.question_id == question)
    assert graded.mark == 0 and "contradiction" in {f.code for f in graded.flags}
