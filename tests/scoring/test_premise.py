"""What a "why is it required" question takes for granted, and the answers that deny it.

Every case is our own, about other exams than the bundled one's examples (dropout, validation sets,
kernels, learning rates), so the rules are tested on what they read, not on one exam's wordings.
"""

from __future__ import annotations

import pytest

from grader.scoring.premise import denial, explain, premise


@pytest.mark.parametrize(
    ("prompt", "head", "required"),
    [
        ("Why is dropout necessary during training?", {"dropout"}, ()),
        ("Q3 (b). Batch norm: why are the running statistics needed at test time?", {"run", "statistic"}, ()),
        ("Explain why a validation set is required.", {"validation", "set"}, ()),
        ("Why do we need a validation set?", {"validation", "set"}, ()),
        ("Why must the kernel be non-negative?", {"kernel"}, (("negativ", -1),)),
        ("Why does the step size have to be non-zero for SGD?", {"step", "size"}, (("zero", -1),)),
        ("Why can't the activation of a deep network be linear?", {"activation"}, (("linear", -1),)),
        ("Why does Grad-CAM need the ReLU at the end?", {"relu"}, ()),
    ],
)
def test_a_question_asking_why_something_is_required_takes_it_for_granted(prompt, head, required):
    found = premise(prompt)
    assert found is not None and found.head == frozenset(head) and found.required == required


@pytest.mark.parametrize(
    "prompt",
    [
        None,
        "",
        "What is dropout?",
        "Explain why the training loss decreases.",
        "Why does the validation loss rise after epoch 20?",
        "Is dropout necessary here?",  # asks whether, takes nothing for granted
    ],
)
def test_other_questions_take_nothing_for_granted(prompt):
    assert premise(prompt) is None


DROPOUT = premise("Why is dropout necessary when training a large network?")
KERNEL = premise("Why must the kernel be non-negative?")
LINEAR = premise("Why can't the activation of a deep network be linear?")
NEEDS = premise("Why does Grad-CAM need the ReLU?")


@pytest.mark.parametrize(
    ("found", "answer", "clause"),
    [
        (DROPOUT, "Dropout is not needed, a large network never overfits.", "Dropout is not needed"),
        (DROPOUT, "Honestly dropout isn't necessary at all", "Honestly dropout isn't necessary at all"),
        (DROPOUT, "Large networks generalise anyway. We do not need dropout.", "We do not need dropout."),
        (DROPOUT, "There is no need for dropout because of weight decay", "There is no need for dropout"),
        (DROPOUT, "Dropout is optional; it only slows training.", "Dropout is optional;"),
        (KERNEL, "A negative kernel works fine, the sum still converges.", "A negative kernel works fine"),
        (KERNEL, "The kernel doesn't have to be non-negative.", "The kernel doesn't have to be non-negative."),
        (KERNEL, "Negative kernels are perfectly acceptable", "Negative kernels are perfectly acceptable"),
        (DROPOUT, "It is not needed at all. Large networks never overfit.", "It is not needed at all."),
        (KERNEL, "It doesn't have to be non-negative, only bounded.", "It doesn't have to be non-negative"),
        (DROPOUT, "For large networks dropout is not important", "For large networks dropout is not important"),
        (
            LINEAR,
            "A linear activation works fine for deep networks.",
            "A linear activation works fine for deep networks.",
        ),
        (NEEDS, "Grad-CAM does not need the ReLU; negatives are informative.", "Grad-CAM does not need the ReLU;"),
    ],
)
def test_an_answer_that_denies_the_premise_is_caught_with_its_clause(found, answer, clause):
    assert denial(found, answer) == clause
    assert explain(found, answer).startswith("it denies what the question takes for granted, that")


@pytest.mark.parametrize(
    ("found", "answer"),
    [
        (DROPOUT, "Dropout is necessary because the network would otherwise memorise the training set."),
        (DROPOUT, "Without dropout the network overfits, so it is needed."),
        (DROPOUT, "It is not necessary to drop units at test time, but in training dropout regularises."),
        (DROPOUT, "Dropout is not needed if the network is small, but a large one overfits."),  # a condition
        (DROPOUT, "Weight decay is not needed when dropout is used."),  # another subject
        (DROPOUT, "Not dropout."),  # no claim of need either way
        (KERNEL, "If the kernel is negative, the weights can blow up."),  # a condition, not a claim
        (KERNEL, "A negative kernel does not work: the variance would be negative."),
        (KERNEL, "A negative kernel works only for symmetric inputs."),  # a restriction
        (KERNEL, "The kernel must be non-negative so that the Gram matrix is positive semi-definite."),
        (DROPOUT, "With dropout there is no need for early stopping."),  # no need for something else
        (DROPOUT, "Dropout does not need to be tuned much, it regularises the large network."),
        (DROPOUT, "Dropout makes the hidden units redundant, so none can rely on another."),
        (KERNEL, "The kernel does not have to be symmetric, but it must be non-negative."),  # another requirement
        (DROPOUT, "It is not needed to drop units at test time; in training it regularises."),  # another 'it'
        (DROPOUT, "Dropout regularises. It is not needed at test time, though."),  # 'it' later: not read so
        (DROPOUT, "Dropout can be switched off at test time: it is not necessary then."),
        (LINEAR, "If the activation is linear, the layers collapse into one linear map."),
        (LINEAR, "A linear activation does not work: the layers collapse into one."),
        (NEEDS, "Grad-CAM needs the ReLU because negative values belong to other classes."),
        (None, "Dropout is not needed."),  # no premise: nothing to deny
    ],
)
def test_an_answer_that_agrees_hedges_or_speaks_of_something_else_is_left_alone(found, answer):
    assert denial(found, answer) is None and explain(found, answer) == ""
