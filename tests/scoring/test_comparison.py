"""Questions that compare two things, and answers that turn the comparison around.

Our own cases, about other comparisons than the bundled exam's (bagging and boosting, TCP and UDP,
CNNs and MLPs), so the rules are tested on what they read, not on one exam's wordings.
"""

from __future__ import annotations

import numpy as np
import pytest

from grader.embedding.segment import segments
from grader.exam.rubric import parse_rubric
from grader.scoring.comparison import compared, explain, read, reversals, withheld


@pytest.mark.parametrize(
    ("prompt", "names"),
    [
        ("What is the difference between TCP and UDP?", ("tcp", "udp")),
        ("How is a CNN different from an MLP?", ("cnn", "mlp")),
        ("Compare bagging and boosting.", ("bagging", "boosting")),
        ("Explain momentum SGD compared to plain SGD on a ravine.", ("momentum sgd", "plain sgd")),
        ("Q2. Batch norm versus layer norm: which suits RNNs?", ("batch norm", "layer norm")),
    ],
)
def test_a_question_comparing_two_things_names_them(prompt, names):
    found = compared(prompt)
    assert found is not None and found.names == names
    assert all(found.concepts) and not found.concepts[0] & found.concepts[1]


@pytest.mark.parametrize(
    "prompt",
    [
        None,
        "What is dropout?",
        "Why does the validation loss differ?",  # one thing
        "What is the difference between a while and a do-while loop?",  # 'while' names nothing
        "What is the difference between a CNN and a CNN?",  # nothing tells them apart
    ],
)
def test_other_questions_compare_nothing(prompt):
    assert compared(prompt) is None


ENSEMBLES = compared("What is the difference between bagging and boosting?")


def test_each_clause_is_read_as_about_the_thing_it_names_or_the_one_before_it():
    reading = read(
        ENSEMBLES,
        "Boosting fits models one after another, so it lowers bias. Bagging averages, and it lowers variance. "
        "Bagging and boosting both use many models.",
    )
    about = [{c.rsplit("@", 1)[1] for c in concepts} for concepts in reading.concepts]
    assert about == [{"1"}, {"1"}, {"0"}, {"0"}]  # the last sentence names both: not read
    assert reading.sentence == (0, 0, 1, 1)
    assert "bag@0" not in reading.concepts[2] and "averag@0" in reading.concepts[2]  # the name is the tag


QUESTION = parse_rubric(
    {
        "exam": "Ensembles",
        "questions": [
            {
                "id": "E1",
                "type": "short",
                "marks": 1,
                "step": 0.5,
                "prompt": "What is the difference between bagging and boosting?",
                "model_answer": "Boosting reduces bias, while bagging reduces variance. Bagging trains its models "
                "independently on bootstrap samples.",
                "points": [
                    {"id": "bias", "marks": 0.5, "text": "Boosting reduces bias, while bagging reduces variance."},
                    {
                        "id": "samples",
                        "marks": 0.5,
                        "text": "Bagging trains its models independently on bootstrap samples.",
                    },
                ],
            }
        ],
    },
    "ensembles.yaml",
).question("E1")


@pytest.mark.parametrize(
    ("answer", "clause", "points"),
    [
        ("Boosting does not reduce bias, bagging does.", "Boosting does not reduce bias", {"bias"}),
        ("Unlike bagging, boosting cannot reduce bias.", "boosting cannot reduce bias.", {"bias"}),
        ("Bagging never reduces variance; boosting does that.", "Bagging never reduces variance;", {"bias"}),
    ],
)
def test_an_answer_turning_the_comparison_around_reverses_the_point(answer, clause, points):
    [found] = reversals(ENSEMBLES, QUESTION, [answer])
    assert found is not None and found.clause == clause and found.points == points
    assert explain(ENSEMBLES, QUESTION, answer).startswith("read as about bagging and boosting")


@pytest.mark.parametrize(
    "answer",
    [
        "Boosting lowers bias, and bagging lowers variance.",
        "Boosting reduces bias. Bagging does not reduce bias much, it reduces variance.",  # other concepts
        "Bagging and boosting do not reduce bias in the same way.",  # names both: not read
        "Random forests do not reduce bias.",  # names neither
    ],
)
def test_an_answer_keeping_the_roles_or_naming_neither_reverses_nothing(answer):
    assert reversals(ENSEMBLES, QUESTION, [answer]) == [None]
    assert explain(ENSEMBLES, QUESTION, answer) == ""


def test_without_a_comparison_nothing_is_read():
    assert reversals(None, QUESTION, ["Boosting does not reduce bias.", ""]) == [None, None]


def test_a_reversal_withholds_its_point_everywhere_and_every_point_from_its_sentence():
    answer = "Boosting does not reduce bias, bagging does. Bagging trains models on bootstrap samples."
    [found] = reversals(ENSEMBLES, QUESTION, [answer])
    mask = withheld(found, QUESTION, answer)
    pieces = segments(answer)
    assert mask.shape == (len(pieces), 2) and mask[:, 0].all()  # the reversed point, from every segment
    second = pieces.index("Bagging trains models on bootstrap samples.")
    assert not mask[second, 1]  # the other sentence keeps the other point
    assert all(mask[i, 1] for i, p in enumerate(pieces) if "Boosting" in p)
    assert np.array_equal(mask, withheld(found, QUESTION, answer))  # a pure function
