"""Polarity from words: what it reads as denied, and the false alarms it must not raise."""

from __future__ import annotations

import numpy as np
import pytest

from grader.scoring.negation import explain, numbers, opposed, polarity, signed_concepts, verdict


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ReLU is not necessary", {"relu": 1, "necessary": -1}),
        ("ReLU is unnecessary", {"relu": 1, "necessary": -1}),
        ("ReLU isn't needed", {"relu": 1, "necessary": -1}),
        ("ReLU is not unnecessary", {"relu": 1, "necessary": 1}),  # a double negative asserts
        ("It is not only fast but also accurate", {"fast": 1, "accurat": 1}),  # "not only" denies nothing
        ("signals neither vanish nor explode", {"signal": 1, "vanish": -1, "explod": -1}),
        (
            "it keeps the signal from exploding or vanishing through the layers",
            {"keep": 1, "signal": 1, "explod": -1, "vanish": -1, "layer": 1},
        ),
        ("prevents vanishing gradients", {"vanish": -1, "gradient": 1}),
        ("the gradients decrease", {"gradient": 1, "increase": -1}),
        ("the function is non-linear", {"function": 1, "linear": -1}),
        (
            "the universal approximation theorem no longer holds",
            {"universal": 1, "approximation": 1, "theorem": 1, "hold": -1},
        ),
        ("the series fails to converge", {"sery": 1, "converg": -1}),
        (
            "higher-order terms add little, so Grad-CAM is enough",
            {"higher-order": 1, "term": 1, "add": -1, "grad-cam": 1, "sufficient": 1},
        ),
        ("the map is less focused", {"map": 1, "more focus": -1}),
        ("terminal 1 is connected but terminal 2 is not connected", {"terminal": 1}),  # both said: no polarity kept
    ],
)
def test_signed_concepts(text, expected):
    assert signed_concepts(text) == expected


def test_verdicts_and_numbers():
    assert verdict("No, it will not be better.") == -1 and verdict("no because noise") == -1 and verdict("Yes") == 1
    assert verdict("No difference in the states") == 0 and verdict("Not necessarily") == 0
    assert numbers("28 x 28 x 64, a 1x1 conv, L2 loss, lr 0.50") == {"28", "64", "0.5"}


def test_opposed_is_the_pairwise_rule_as_matrix_work():
    segments = [
        "ReLU is not necessary",
        "ReLU is necessary for the heatmap",
        "terminal 1 is connected to the negative terminal",
        "Terminal 1 is connected to the positive terminal",
        "Yes, it is better",
        "a shorter string gives a higher pitch",
        "the output is 26 x 26",
    ]
    phrasings = [
        "ReLU is necessary",
        "Terminal 1 and the positive terminal are not connected",
        "No, it will not be better",
        "a longer string gives a lower pitch",
        "the output is 28 x 28",
    ]
    table = polarity(segments + phrasings)
    found = opposed(table.rows(range(len(segments))), table.rows(range(len(segments), len(segments) + len(phrasings))))
    expected = np.zeros((len(segments), len(phrasings)), bool)
    expected[0, 0] = True  # denies what the point asserts
    expected[3, 1] = True  # the same terminals, connected vs not
    expected[4, 2] = True  # yes vs no
    expected[6, 4] = True  # other numbers, same words
    # Not opposed: "negative terminal" is about another terminal (too little in common); the pitch
    # sentence flips both concepts (a contrapositive says the same thing).
    assert found.tolist() == expected.tolist()


def test_explain_says_why_in_words():
    assert explain("ReLU is not necessary", "ReLU is necessary") == "it denies 'necessary', which the point asserts"
    assert explain("Yes.", "No, it is not better") == "it answers yes where the point says no"
    assert explain("the output is 26 x 26", "the output is 28 x 28") == "it states 26 where the point states 28"
    assert explain("ReLU keeps positives", "ReLU keeps only positive values") == ""
