from __future__ import annotations

import pytest

from grader.scoring.mcq import Choice, read_choice, score_choice

NUMBERS = {"a": "3", "b": "5", "c": "20", "d": "21"}
VAE = {
    "a": "Can only reconstruct binary data.",
    "b": "Allow for more complex and diverse reconstructions.",
    "c": "Require less training data.",
    "d": "Are always guaranteed to produce perfect reconstructions.",
}


@pytest.mark.parametrize(
    ("typed", "letter"),
    [
        ("b", "b"),
        ("B", "b"),
        ("(b)", "b"),
        ("B)", "b"),
        ("b.", "b"),
        ("B.", "b"),
        ("[b]", "b"),
        (" c ", "c"),
        ("\tc\n", "c"),
        ("Option B", "b"),
        ("option b", "b"),
        ("Ans: B", "b"),
        ("Ans. B", "b"),
        ("Answer: b", "b"),
        ("answer is c", "c"),
        ("The answer is (c)", "c"),
        ("my answer: d", "d"),
        ("Answer - B", "b"),
        ("B - because the KL term regularises the latent space", "b"),
        ("B – because the KL term", "b"),
        ("B) because the KL term", "b"),
        ("B: the KL term", "b"),
        ("b because it is more complex", "b"),
        ("A because deeper nets train", "a"),
        ("b,", "b"),
        ("B, because the KL-term", "b"),
        ("c) 20", "c"),
        ("c - 20", "c"),
        ("(B) Allow for more complex and diverse reconstructions", "b"),
        ("B - a is wrong because it ignores the prior", "b"),
        ("b. a and c are too strong", "b"),
        ("B) a VAE samples", "b"),
        ("b, b", "b"),
        # the full text of an option, exactly
        ("20", "c"),
        ("21.", "d"),
        (" 3 ", "a"),
    ],
)
def test_reads_the_letter(typed: str, letter: str) -> None:
    assert read_choice(typed, NUMBERS) == Choice(letter, None)


@pytest.mark.parametrize(
    ("typed", "letter"),
    [
        ("Allow for more complex and diverse reconstructions.", "b"),
        ("allow for more  complex and diverse reconstructions", "b"),
        ("Answer: require less training data", "c"),
    ],
)
def test_option_text_typed_exactly(typed: str, letter: str) -> None:
    assert read_choice(typed, VAE) == Choice(letter, None)


@pytest.mark.parametrize(
    "typed",
    [
        "Allow for more complex reconstructions",  # close is not exact
        "A VAE allows more complex reconstructions",  # a leading article is not option a
        "I think b",
    ],
)
def test_near_misses_are_not_read(typed: str) -> None:
    choice = read_choice(typed, VAE)
    assert choice.letter is None
    assert choice.problem is not None and choice.problem.startswith("could not read")


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("", "blank answer"),
        ("   \n ", "blank answer"),
        ("?", "could not read a choice from '?'"),
        ("idk", "could not read a choice from 'idk'"),
        ("-", "could not read a choice from '-'"),
        ("answer", "could not read a choice from 'answer'"),
        ("a, b", "two choices (a, b)"),
        ("a b", "two choices (a, b)"),
        ("a and b", "two choices (a, b)"),
        ("b and a", "two choices (a, b)"),
        ("b/c", "two choices (b, c)"),
        ("a & c", "two choices (a, c)"),
        ("ab", "two choices (a, b)"),
        ("a or b", "two choices (a, b)"),
        ("(a) (b)", "two choices (a, b)"),
        ("a) and b)", "two choices (a, b)"),
        ("b - c", "two choices (b, c)"),
        ("Options a and b", "two choices (a, b)"),
        ("a,b,c", "three choices (a, b, c)"),
        ("e", "'e' is not an option (a-d)"),
        ("E)", "'e' is not an option (a-d)"),
        ("Answer: f", "'f' is not an option (a-d)"),
    ],
)
def test_does_not_read(typed: str, problem: str) -> None:
    assert read_choice(typed, NUMBERS) == Choice(None, problem)


def test_long_unreadable_answer_is_shortened_in_the_problem() -> None:
    problem = read_choice("I am not sure but probably the second one", NUMBERS).problem
    assert problem == "could not read a choice from 'I am not sure but probably th…'"


def test_non_consecutive_options_are_listed() -> None:
    assert read_choice("c", {"a": "x", "b": "y", "d": "z"}).problem == "'c' is not an option (a, b, d)"


def test_upper_case_option_letters_in_the_rubric() -> None:
    assert read_choice("(b)", {"A": "x", "B": "y"}) == Choice("b", None)


@pytest.mark.parametrize(
    ("typed", "keys", "marks"),
    [
        ("b", ["b"], 1.0),
        ("B)", {"b", "d"}, 1.0),
        ("d", ("b", "d"), 1.0),
        ("Ans: D", ["B", "D"], 1.0),
        ("c", ["b", "d"], 0.0),
        ("b, d", ["b", "d"], 0.0),  # two choices never score, even when both are accepted
        ("", ["b"], 0.0),
        ("e", ["e"], 0.0),  # not an option: nothing was read
    ],
)
def test_score_choice(typed: str, keys: list[str], marks: float) -> None:
    assert score_choice(read_choice(typed, NUMBERS), keys, 1.0) == marks


def test_score_choice_gives_the_question_marks() -> None:
    assert score_choice(Choice("b", None), ["b"], 2) == 2.0
    assert isinstance(score_choice(Choice("b", None), ["b"], 2), float)


def test_a_question_mark_after_the_letter_is_read_and_doubted():
    options = {"a": "one", "b": "two", "c": "three"}
    for typed in ("B?", "(b) ??", "Ans: B?"):
        choice = read_choice(typed, options)
        assert choice.letter == "b" and choice.problem is None and "question mark" in choice.doubt
    assert read_choice("?", options).letter is None
    assert read_choice("b or c?", options).letter is None
    assert read_choice("b", options).doubt is None
