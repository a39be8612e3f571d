"""Answer groups: every two answers of a group alike, identical and blank answers together."""

from __future__ import annotations

import numpy as np
import pytest

from grader.review.grouping import group_answers, most_like, same_text, word_differences


def test_complete_linkage_never_chains_unlike_answers_through_a_middle_one():
    # a ~ b (0.95) and b ~ c (0.95), but a and c only 0.8 apart: not one group at 0.9.
    angle = np.arccos(0.95)
    vectors = np.array([[1, 0], [np.cos(angle), np.sin(angle)], [np.cos(2 * angle), np.sin(2 * angle)], [-1, 0]])
    groups = group_answers(["a", "b", "c", "d"], vectors, threshold=0.9)
    assert sorted(len(g.members) for g in groups) == [1, 1, 2]
    pair = next(g for g in groups if len(g.members) == 2)
    assert pair.cohesion == pytest.approx(0.95) and set(pair.members) in ({0, 1}, {1, 2})
    assert sorted(i for g in groups for i in g.members) == [0, 1, 2, 3]


def test_identical_and_blank_answers_share_a_group_whatever_their_vectors():
    texts = ["ReLU.", "relu", "  ", "", "Sigmoid saturates"]
    vectors = np.array([[1.0, 0], [0, 1.0], [0, 0], [1.0, 0], [1.0, 0.01]])
    groups = group_answers(texts, vectors)
    as_sets = [set(g.members) for g in groups]
    assert {0, 1, 4} in as_sets  # "relu" reads as "ReLU." and both are like the sigmoid one
    assert {2, 3} in as_sets  # blanks together, never with a written answer
    assert same_text("  ReLU  works. ") == same_text("relu works")


def test_real_answers_that_say_the_same_thing_group_and_a_different_one_does_not(encoder):
    texts = [
        "ReLU avoids vanishing gradients because its gradient is 1 for positive inputs.",
        "ReLU avoids the vanishing gradient since its gradient is one for positive inputs.",
        "Dropout randomly removes units during training to reduce overfitting.",
    ]
    groups = group_answers(texts, encoder.encode(texts))
    assert [set(g.members) for g in groups] == [{0, 1}, {2}]


def test_most_like_orders_by_cosine_and_leaves_the_answer_itself_out():
    vectors = np.array([[1.0, 0], [0.9, 0.1], [0, 1.0], [0.6, 0.4]])
    found = most_like(vectors, 0, [0, 1, 2, 3], limit=2)
    assert [i for i, _ in found] == [1, 3] and found[0][1] > found[1][1]


def test_word_differences_mark_what_a_member_says_beyond_the_typical_answer():
    pieces = word_differences("ReLU avoids vanishing gradients.", "ReLU clearly avoids vanishing gradients.")
    assert "".join(text for text, _ in pieces) == "ReLU clearly avoids vanishing gradients."
    assert [text for text, changed in pieces if changed] == ["clearly"]
    assert word_differences("same words", "Same   words") == [("Same   words", False)]
