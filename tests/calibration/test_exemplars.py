"""Marked answers as exemplars: leave-one-out similarities, features, nearest answers, encoding once."""

from __future__ import annotations

import numpy as np
import pytest

from grader.calibration.exemplars import (
    FEATURES,
    AnswerTexts,
    MarkedAnswers,
    answer_vectors,
    exemplar_features,
    lexical_features,
    local_correction,
    nearest,
    normalise,
    similarities,
)


def _unit(*rows: list[float]) -> np.ndarray:
    m = np.array(rows, dtype=np.float64)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


@pytest.fixture
def marked() -> MarkedAnswers:
    # Three marked answers to a 2-mark question: s1 full marks, s2 half, s3 none.
    return MarkedAnswers(
        "Q", ("s1", "s2", "s3"), _unit([1, 0, 0], [0.8, 0.6, 0], [0, 0, 1]), np.array([2.0, 1.0, 0.0]), 2.0
    )


def test_an_answer_is_never_its_own_neighbour(marked):
    sims = similarities(marked.vectors, ["s1", "s2", "s3"], marked)
    assert np.isneginf(np.diag(sims)).all()
    features = exemplar_features(sims, marked)
    top_similarity, top_share = FEATURES.index("top_similarity"), FEATURES.index("top_share")
    # s1's nearest other answer is s2 (cosine 0.8, half marks), not itself (cosine 1, full marks).
    assert features[0, top_similarity] == pytest.approx(0.8)
    assert features[0, top_share] == pytest.approx(0.5)
    assert [n.student_id for n in nearest(sims, marked)[0]] == ["s2", "s3"]


def test_an_unmarked_answer_sees_every_marked_one(marked):
    sims = similarities(_unit([0.9, 0.1, 0]), ["new"], marked)
    features = exemplar_features(sims, marked)[0]
    named = dict(zip(FEATURES, features))
    assert named["top_share"] == 1.0  # closest to s1
    assert named["full_similarity"] > named["low_similarity"]
    assert 0.5 < named["neighbours_share"] < 1.0  # pulled towards s1's mark, weighted by similarity
    assert named["marked_mean"] == pytest.approx(0.5)
    shown = nearest(sims, marked)[0]
    assert [n.student_id for n in shown] == ["s1", "s2", "s3"] and shown[0].mark == 2.0


def test_the_local_correction_follows_the_nearest_residuals_and_never_its_own(marked):
    # The pooled model under-marked s1 by 0.3 of the marks and over-marked s3 by 0.2.
    residuals = np.array([0.3, 0.0, -0.2])
    near_s1 = local_correction(similarities(_unit([1, 0, 0.05]), ["new"], marked), residuals)[0]
    near_s3 = local_correction(similarities(_unit([0.05, 0, 1]), ["new"], marked), residuals)[0]
    assert 0.1 < near_s1 < 0.3 and -0.2 < near_s3 < -0.05  # pulled their way, shrunk towards 0
    # A marked answer's correction comes from the others: s1 alone would get nearly +0.3 from itself.
    own = local_correction(similarities(marked.vectors, ["s1", "s2", "s3"], marked), residuals)
    assert abs(own[0]) < 0.01
    assert local_correction(np.zeros((2, 0)), np.zeros(0)).tolist() == [0.0, 0.0]


def test_no_other_marked_answer_gives_missing_features():
    alone = MarkedAnswers("Q", ("s1",), _unit([1, 0]), np.array([1.0]), 1.0)
    features = exemplar_features(similarities(alone.vectors, ["s1"], alone), alone)
    assert np.isnan(features[0, :5]).all()
    empty = MarkedAnswers("Q", (), np.zeros((0, 2)), np.zeros(0), 1.0)
    assert np.isnan(exemplar_features(similarities(_unit([1, 0]), ["x"], empty), empty)).all()
    assert nearest(similarities(_unit([1, 0]), ["x"], empty), empty) == [()]


def test_lexical_features_read_the_model_answer_and_points():
    texts = AnswerTexts("ReLU keeps gradients alive for positive inputs", ("ReLU avoids vanishing gradients",))
    reference = _unit([1, 0])[0]
    on = lexical_features("ReLU keeps gradients alive", _unit([1, 0])[0], texts, reference)
    off = lexical_features("Dinner was nice", _unit([0, 1])[0], texts, reference)
    assert on[0] == pytest.approx(1.0) and off[0] == pytest.approx(0.0)
    assert on[1] > off[1] == 0.0 and on[2] > off[2] == 0.0


class _Counting:
    """The real encoder, counting the texts it is asked for."""

    def __init__(self, encoder):
        self.encoder, self.asked, self.name = encoder, [], encoder.name

    def encode(self, texts, progress=None):
        self.asked += list(texts)
        return self.encoder.encode(texts)


def test_each_distinct_answer_is_encoded_once_in_one_call(encoder, rubric):
    answers = {
        ("s1", "I3"): "Xavier keeps  the variance\nconstant",
        ("s2", "I3"): "Xavier keeps the variance constant",  # the same text once whitespace is collapsed
        ("s3", "I3"): "   ",  # blank: not encoded, no vector
        ("s1", "I4"): "Neural networks learn their basis.",
        ("s1", "B1"): "b",  # an MCQ: not encoded
    }
    counting = _Counting(encoder)
    found = answer_vectors(rubric, answers, counting)
    assert set(found.vectors) == {("s1", "I3"), ("s2", "I3"), ("s1", "I4")}
    assert len(counting.asked) == len(set(counting.asked))
    assert normalise(answers[("s1", "I3")]) in counting.asked and "b" not in counting.asked
    assert np.array_equal(found.vectors[("s1", "I3")], found.vectors[("s2", "I3")])
    assert np.linalg.norm(found.vectors[("s1", "I4")]) == pytest.approx(1.0, abs=1e-3)
    assert len(found.lexical[("s1", "I4")]) == len(FEATURES) - 8
