"""Matching on the real model: these are the behaviours a TA would notice."""

from __future__ import annotations

import numpy as np
import pytest

from grader.embedding.segment import segments
from grader.scoring.match import (
    DEFAULT_CURVE,
    CreditCurve,
    PointMatch,
    QuestionVectors,
    best_matches,
    credits,
    find_pattern,
    nearest_opposed,
    point_matches,
    round_to_step,
    texts_to_encode,
)


def _match(rubric, encoder, question_id: str, answer: str):
    question = rubric.question(question_id)
    segs = segments(answer)
    texts = texts_to_encode(question)
    vectors = dict(zip(texts + segs, encoder.encode(texts + segs)))
    best = best_matches(
        np.stack([vectors[s] for s in segs]), [len(segs)], QuestionVectors.build(question, vectors.__getitem__)
    )
    return {m.point_id: m for m in point_matches(question, answer, segs, best, 0, DEFAULT_CURVE)}


def test_a_paraphrase_with_other_words_outscores_an_off_topic_answer(rubric, encoder):
    paraphrase = (
        "Sines and cosines cannot follow a sudden jump in a function, "
        "but a net with a squashing nonlinearity can fit it."
    )
    off_topic = "Dropout randomly switches off neurons during training to reduce overfitting."
    good = _match(rubric, encoder, "I4", paraphrase)["any-function"]
    bad = _match(rubric, encoder, "I4", off_topic)["any-function"]
    assert good.similarity > bad.similarity + 0.15
    assert good.score > bad.score + 0.1
    assert good.credit > bad.credit


def test_restating_the_topic_earns_less_than_making_the_point(rubric, encoder):
    """Naming the question's subjects is not an answer: the topic discount keeps it below the point."""
    topical = "Fourier series is used for signals and neural network is used for images."
    point = (
        "Neural networks are nonlinear so they can approximate discontinuous functions, which Fourier series cannot."
    )
    said = _match(rubric, encoder, "I4", point)["any-function"]
    named = _match(rubric, encoder, "I4", topical)["any-function"]
    assert named.similarity > 0.6  # plain cosine alone sits high for it
    assert said.credit == 1.0 and named.credit < 1.0


def test_evidence_is_the_segment_that_made_the_point(rubric, encoder):
    answer = (
        "Grad-CAM++ is a visualisation method used a lot in practice. If the activation were a polynomial, "
        "hmm no. Negative values mean that lowering the activation would raise the class score, "
        "and ReLU keeps only the positive contributions in the heatmap."
    )
    found = _match(rubric, encoder, "A1a", answer)
    assert "ReLU keeps only the positive" in found["keep-positive"].evidence
    assert "Negative values" in found["negative-meaning"].evidence
    assert found["keep-positive"].credit == pytest.approx(1.0)


@pytest.mark.parametrize(
    "formula",
    [
        "W ~ U(-sqrt(6/(n_in+n_out)), sqrt(6/(n_in+n_out)))",
        "uniform in [-√(6/(nin + nout)), +√(6/(nin + nout))]",
        "limit = sqrt(6)/sqrt(fan_in + fan_out)",
        "W ~ N(0, 2/(n_in+n_out))",
        "for relu he init: std = sqrt(2/n_in)",
    ],
)
def test_a_pattern_catches_the_formula_in_its_spellings(rubric, encoder, formula):
    found = _match(rubric, encoder, "I3", formula)["formula"]
    assert found.pattern is not None and found.credit == 1.0
    assert found.evidence == found.pattern and found.pattern in formula


def test_wrong_formulas_are_not_caught_by_patterns(rubric):
    patterns = rubric.question("I3").points[0].patterns
    for wrong in ["W ~ U(-sqrt(1/n), sqrt(1/n))", "6/(n_in*n_out)", "sqrt(6/(n_in - n_out))"]:
        assert find_pattern(patterns, wrong) is None, wrong


def test_credit_curve_and_rounding():
    curve = CreditCurve(0.4, 0.6)
    assert curve.credit(np.array([0.3, 0.5, 0.9])).tolist() == pytest.approx([0.0, 0.5, 1.0])
    with pytest.raises(ValueError):
        CreditCurve(0.6, 0.4)
    assert round_to_step(0.74, 0.5, 1) == 0.5
    assert round_to_step(0.75, 0.5, 1) == 1.0
    assert round_to_step(0.3, 0.25, 1) == 0.25
    assert round_to_step(1.3, 0.5, 1) == 1.0
    # Element-wise for arrays (per-row steps and maxima), the same numbers as the scalar rule.
    rounded = round_to_step(
        np.array([0.74, 0.75, 0.3, 1.3, -0.2]), np.array([0.5, 0.5, 0.25, 0.5, 0.5]), np.array([1, 1, 1, 1, 1])
    )
    assert rounded.tolist() == [0.5, 1.0, 0.25, 1.0, 0.0]


def test_the_credit_rule_pattern_then_contradiction_then_the_curve():
    curve = CreditCurve(0.4, 0.6)

    def match(score: float, pattern: str | None = None, contradiction: str | None = None) -> PointMatch:
        return PointMatch("p", 1.0, score, score, 0.0, "e", pattern, contradiction)

    assert match(0.1, pattern="W ~ U").credit_under(curve) == 1.0  # a pattern hit pays whatever the score
    assert match(0.9, contradiction="not needed").credit_under(curve) == 0.0  # a contradiction pays nothing
    assert match(0.1, pattern="x", contradiction="y").fixed_credit == 1.0  # the pattern wins
    assert match(0.5).fixed_credit is None and match(0.5).credit_under(curve) == pytest.approx(0.5)
    assert match(0.5).credit_under(curve, shift=0.1) == pytest.approx(1.0)  # a moved score moves the credit
    assert match(0.5, pattern="x").credit_under(curve, shift=-0.5) == 1.0  # ... never a rule's
    assert match(0.2).credit_with(0.7) == 0.7 and match(0.2, contradiction="c").credit_with(0.7) == 0.0
    together = [match(0.5), match(0.1, pattern="x"), match(0.9, contradiction="c")]
    assert credits(together, curve).tolist() == pytest.approx([0.5, 1.0, 0.0])


def test_best_similarities_is_matrix_work_over_many_answers():
    rng = np.random.default_rng(0)
    segs = rng.normal(size=(7, 4)).astype(np.float32)
    phr = QuestionVectors(rng.normal(size=(3, 4)).astype(np.float32), np.array([0, 2]))
    best = best_matches(segs, [3, 4], phr)
    sims = segs @ phr.rows.T
    per_point = np.stack([sims[:, :2].max(1), sims[:, 2]], axis=1)
    assert best.score == pytest.approx(np.stack([per_point[:3].max(0), per_point[3:].max(0)]))
    assert best.segment[1].tolist() == per_point[3:].argmax(0).tolist()
    assert best.similarity == pytest.approx(best.score)  # no prompt: no topic discount


def test_topic_discount_is_subtracted_per_segment():
    segs = np.eye(3, dtype=np.float32)
    question = QuestionVectors(
        np.array([[0.6, 0.8, 0.0]], np.float32), np.array([0]), prompt=np.array([0.0, 1.0, 0.0], np.float32)
    )
    best = best_matches(segs, [3], question, topic_weight=0.5)
    # segment 0: 0.6 - 0; segment 1: 0.8 - 0.5 = 0.3; so segment 0 wins with raw cosine 0.6
    assert (
        best.segment[0, 0] == 0
        and best.score[0, 0] == pytest.approx(0.6)
        and best.similarity[0, 0] == pytest.approx(0.6)
    )


def test_a_stated_opposite_earns_nothing_where_embeddings_would_pay(rubric, encoder):
    wrong = _match(rubric, encoder, "A1c", "Yes, Grad-CAM++ will be better with noisy gradients.")["verdict-no"]
    assert wrong.similarity > 0.7  # the embedding alone cannot see the verdict is reversed
    assert wrong.credit == 0.0 and wrong.contradiction == "Yes" and wrong.evidence == "Yes"
    right = _match(rubric, encoder, "A1c", "It won't be better, the second derivatives amplify noise.")["verdict-no"]
    assert right.credit == 1.0 and right.pattern == "won't be better" and right.contradiction is None


def test_masked_pairs_earn_nothing_and_the_unmasked_winner_is_kept():
    segs = np.eye(3, dtype=np.float32)
    question = QuestionVectors(np.array([[0.9, 0.3, 0.1], [0.0, 0.1, 1.0]], np.float32), np.array([0, 1]))
    opposite = np.zeros((3, 2), bool)
    opposite[0, 0] = True  # segment 0 says the opposite of the first point
    excluded = np.array([False, False, True])  # segment 2 is a keyword list
    best = best_matches(segs, [3], question, opposite=opposite, excluded=excluded)
    assert best.score[0].tolist() == pytest.approx([0.3, 0.1])  # segment 1 wins point 0; point 1 lost segment 2
    assert best.segment[0].tolist() == [1, 1]
    assert best.unopposed_score[0, 0] == pytest.approx(0.9) and best.unopposed_segment[0, 0] == 0
    assert best.top_similarity[0].tolist() == pytest.approx([0.9, 1.0])  # before any mask (off-topic check)


def test_a_segment_opposing_the_phrasing_it_is_nearest_to_loses_the_whole_point():
    # Point 0 has a precise phrasing (row 0) and a loose one (row 1); point 1 one phrasing (row 2).
    question = QuestionVectors(np.eye(3, dtype=np.float32), np.array([0, 2]))
    segs = np.array([[0.9, 0.6, 0.4], [0.5, 0.8, 0.0]], np.float32)
    segs /= np.linalg.norm(segs, axis=1, keepdims=True)
    opposite = np.zeros((2, 3), bool)
    opposite[:, 0] = True  # both segments oppose the precise phrasing
    spread = nearest_opposed(opposite, segs @ question.rows.T, question.offsets)
    assert spread[0].tolist() == [True, True, False]  # nearest to what it opposes: the loose one cannot pay
    assert spread[1].tolist() == [True, False, False]  # nearest to the loose one, which it does not oppose
    alone = best_matches(segs[:1], [1], question, opposite=opposite[:1])
    assert alone.score[0, 0] == 0.0 and alone.unopposed_score[0, 0] == pytest.approx(segs[0, 0])
    assert alone.score[0, 1] == pytest.approx(segs[0, 2])  # the other point is untouched
    kept = best_matches(segs[1:], [1], question, opposite=opposite[1:])
    assert kept.score[0, 0] == pytest.approx(segs[1, 1])


def test_winners_are_the_first_argmax_of_each_answer():
    rng = np.random.default_rng(1)
    segs = rng.normal(size=(9, 4)).astype(np.float32)
    segs[4] = segs[3]  # a tie: the first one wins, as argmax does
    question = QuestionVectors(rng.normal(size=(3, 4)).astype(np.float32), np.array([0, 1, 2]))
    best = best_matches(segs, [2, 4, 3], question)
    per_point = segs @ question.rows.T
    for a, (start, stop) in enumerate([(0, 2), (2, 6), (6, 9)]):
        assert best.segment[a].tolist() == per_point[start:stop].argmax(0).tolist()


def test_a_point_match_has_one_serialised_form_read_back_whole():
    full = PointMatch("p1", 0.5, 0.812345, 0.61234, 1.0, "W ~ U", "W ~ U", None, None, "slow(", 0.912345)
    assert PointMatch.from_dict(full.to_dict()) == full
    rounded = full.to_dict(digits=4)
    assert rounded["similarity"] == 0.8123 and rounded["opposite_probability"] == 0.9123
    assert list(rounded)[:3] == ["point_id", "point_marks", "similarity"]  # evidence.jsonl's order
    plain = PointMatch("p2", 1.0, 0.3, 0.2, 0.0, "text")
    assert "unchecked" not in plain.to_dict()  # only when a pattern timed out
    older = {k: v for k, v in plain.to_dict().items() if k != "point_marks"} | {"marks": 1.0, "added_later": 1}
    assert PointMatch.from_dict(older) == plain  # gradebooks written before named it `marks`
    with pytest.raises(KeyError):
        PointMatch.from_dict({"point_id": "p"})
