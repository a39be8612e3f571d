"""The learned contradiction check: training pairs from a rubric, the masking loop, loading, grading."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

from grader.exam.rubric import ShortQuestion
from grader.scoring.checker import (
    DEFAULT_DIR,
    META,
    WEIGHTS,
    checked_opposite,
    negations,
    phrasing_pairs,
    rubric_pairs,
)
from grader.scoring.checker_train import recall_at, split_questions, threshold_for
from grader.scoring.engine import default_checker
from grader.scoring.match import DEFAULT_CURVE, QuestionVectors

# ---- pairs made from a rubric ------------------------------------------------------------------


def test_negations_add_or_remove_not_after_the_auxiliary():
    assert "Batch norm does not speed up training." in negations("Batch norm does speed up training.")
    assert "The filters are shared across positions." in negations("The filters are not shared across positions.")
    assert "Max pooling cannot learn weights." in negations("Max pooling can learn weights.")


def test_negations_swap_antonyms_change_numbers_and_reverse_verdicts():
    assert any("decrease" in n for n in negations("Momentum helps increase the step along steady directions"))
    assert any("7" in n and "3" not in n for n in negations("A kernel of size 3 looks at 3 pixels")), "a number changed"
    assert any(n.startswith("No, ") for n in negations("Yes, dropout regularises the model."))
    assert negations("Gradient clipping") == []  # nothing to negate: no pair made up


def test_phrasing_pairs_label_negations_paraphrases_and_other_points():
    points = [["Dropout is a regulariser.", "Dropout reduces overfitting."], ["Adam adapts the step size per weight."]]
    pairs = phrasing_pairs(
        points, extra=["In short, dropout reduces overfitting of large nets."], prompt="Explain dropout and Adam."
    )
    by = {(p.point, p.segment): p.label for p in pairs}
    assert by[("Dropout is a regulariser.", "Dropout is not a regulariser.")] == "contradicts"
    assert by[("Dropout is a regulariser.", "Dropout reduces overfitting.")] == "entails"
    assert by[("Adam adapts the step size per weight.", "Dropout is a regulariser.")] == "neither"
    assert by[("Adam adapts the step size per weight.", "Explain dropout and Adam.")] == "neither"
    assert by[("Dropout is a regulariser.", "In short, dropout reduces overfitting of large nets.")] == "entails"
    assert all(p.point != p.segment for p in pairs)


def test_every_short_question_of_the_bundled_rubric_gets_all_three_kinds(rubric):
    for question in rubric.questions:
        if isinstance(question, ShortQuestion) and len(question.points) > 1:
            assert {p.label for p in rubric_pairs(question)} == {"entails", "contradicts", "neither"}, question.id


# ---- the masking loop, with a stand-in checker (no model) ----------------------------------------


@dataclass
class KeywordChecker:
    """Reads a segment with 'not' as contradicting: enough to test the loop without weights."""

    threshold: float = 0.5
    asked: list = None

    def contradiction(self, pairs):
        self.asked = (self.asked or []) + list(pairs)
        return np.array([0.9 if " not " in f" {segment} " else 0.1 for _, segment in pairs])


def _unit(*values):
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_a_contradicting_winner_is_masked_and_the_next_best_checked():
    # One point, two phrasings; answer 0 has a negated segment that matches best and a plain one;
    # answer 1 says it plainly; answer 2 says nothing near the point (never asked about).
    question = QuestionVectors(np.stack([_unit(1, 0, 0), _unit(1, 0.2, 0)]), np.array([0]))
    phrasings = ["ReLU is needed.", "ReLU is required."]
    segments = [["ReLU is not needed.", "ReLU is needed here."], ["ReLU is needed."], ["The weather is nice."]]
    rows = np.stack([_unit(1, 0.05, 0), _unit(1, 0.1, 0.3), _unit(1, 0, 0), _unit(0, 0, 1)])
    checker = KeywordChecker()
    found = checked_opposite(checker, question, phrasings, rows, segments, None, None, 0.0, DEFAULT_CURVE)
    assert found.opposite[0].all() and not found.opposite[1:].any()
    assert found.found == {(0, 0): ("ReLU is not needed.", 0.9)}
    assert {s for _, s in checker.asked} == {"ReLU is not needed.", "ReLU is needed here.", "ReLU is needed."}


def test_the_checker_reads_the_whole_sentence_around_a_fragment_and_masks_all_of_it():
    # The fragment "needed for the map." matches best; the sentence around it turns the point around.
    question = QuestionVectors(np.stack([_unit(1, 0, 0)]), np.array([0]))
    segments = [["ReLU is not needed for the map.", "ReLU is not", "needed for the map."]]
    rows = np.stack([_unit(1, 0.3, 0), _unit(0.2, 1, 0), _unit(1, 0.1, 0)])
    checker = KeywordChecker()
    found = checked_opposite(
        checker, question, ["ReLU is needed for the map."], rows, segments, None, None, 0.0, DEFAULT_CURVE
    )
    assert checker.asked == [("ReLU is needed for the map.", "ReLU is not needed for the map.")]
    assert found.opposite.all() and found.found == {(0, 0): ("needed for the map.", 0.9)}


def test_rule_masks_are_kept_and_nothing_is_asked_twice():
    question = QuestionVectors(np.stack([_unit(1, 0, 0)]), np.array([0]))
    segments = [["It is not so.", "It is not true."]]
    rows = np.stack([_unit(1, 0, 0), _unit(1, 0.1, 0)])
    rules = np.array([[True], [False]])
    checker = KeywordChecker()
    found = checked_opposite(checker, question, ["It is so."], rows, segments, rules, None, 0.0, DEFAULT_CURVE)
    assert found.opposite.all()
    assert [s for _, s in checker.asked] == ["It is not true."]


# ---- threshold and the question split ------------------------------------------------------------


def test_threshold_flags_at_most_the_allowed_share_of_correct_answers():
    correct = np.linspace(0, 1, 101)
    t = threshold_for(correct, 0.05)
    assert np.mean(correct >= t) <= 0.05 and np.mean(correct >= t - 0.011) > 0.05
    assert recall_at(np.array([0.99, 0.2]), t) == 0.5


def test_question_split_never_shares_a_question():
    learn, held = split_questions([f"q{i % 10}" for i in range(100)], 0.2, seed=3)
    assert len(held) == 2 and not learn & held and learn | held == {f"q{i}" for i in range(10)}


# ---- loading -------------------------------------------------------------------------------------


def test_without_weights_the_rules_run_and_it_is_said_once(tmp_path, monkeypatch):
    said = []
    monkeypatch.setenv("GRADER_CHECKER", str(tmp_path / "none-here"))
    assert default_checker(tmp_path, said.append) is None
    assert len(said) == 1 and "rules only" in said[0]
    monkeypatch.setenv("GRADER_CHECKER", "off")  # the rules alone, as asked: nothing to say
    assert default_checker(tmp_path, said.append) is None and len(said) == 1


def test_saved_weights_hold_only_the_trained_layers_and_load_back(tmp_path):
    import torch

    from grader.embedding.encoder import default_model_path
    from grader.scoring.checker import build_model, load, save

    base = default_model_path()
    torch.manual_seed(1)
    model = build_model(base, 1)
    save(model, tmp_path, {"trained_layers": 1, "threshold": 0.5, "name": "t"})
    from safetensors.torch import load_file

    stored = load_file(str(tmp_path / WEIGHTS))
    assert stored and all(k.startswith(("encoder.encoder.layer.5.", "head.")) for k in stored)
    assert all(v.dtype == torch.float16 for v in stored.values())
    loaded = load(tmp_path, base)
    pair = [("The bias is zero.", "The bias is not zero.")]
    with torch.inference_mode():
        model.eval()
        batch = loaded.tokenizer([pair[0][0]], [pair[0][1]], return_tensors="pt")
        direct = torch.softmax(model(dict(batch)), -1)[0, 1].item()
    assert loaded.contradiction(pair)[0] == pytest.approx(direct, abs=0.01)


# ---- grading with a checker ----------------------------------------------------------------------


def test_grading_masks_what_the_checker_refutes_and_says_how_sure(rubric, encoder):
    from grader.exam.submissions import parse_submissions
    from grader.scoring.grade import grade

    # A1a's keep-positive point, said plainly by one student and turned around by another, in words
    # the polarity rules do not oppose ("it is not the job of ReLU": the cue denies "job", not "keep").
    csv = (
        "student_id,A1a\n"
        'p1,"ReLU keeps only the positive contributions, so the heatmap shows the regions '
        'that raise the class score."\n'
        'p2,"It is not the job of ReLU to keep only the positive contributions to the class score in the heatmap."\n'
    )
    submissions = parse_submissions(csv, "two.csv", rubric.question_ids)
    plain = grade(rubric, submissions, encoder)
    checked = grade(rubric, submissions, encoder, checker=KeywordChecker())
    mark = {(g.student_id, g.question_id): g for g in checked.items}
    before = {(g.student_id, g.question_id): g for g in plain.items}
    assert mark[("p1", "A1a")].mark == before[("p1", "A1a")].mark
    point = next(p for p in mark[("p2", "A1a")].points if p.point_id == "keep-positive")
    assert point.credit == 0 and point.opposite_probability == pytest.approx(0.9)
    reasons = [f.reason for f in mark[("p2", "A1a")].flags if f.code == "contradiction"]
    assert any("p = 0.90" in r for r in reasons)
    assert plain.checker is None and checked.checker == "KeywordChecker (threshold 0.500)"


# ---- the shipped weights on answers nobody tuned them to --------------------------------------------

shipped = pytest.mark.skipif(not (DEFAULT_DIR / WEIGHTS).is_file(), reason="no checker weights in models/checker")


@shipped
def test_shipped_weights_record_how_they_were_made():
    meta = json.loads((DEFAULT_DIR / META).read_text())
    assert {"threshold", "trained_layers", "command", "held_out"} <= set(meta)
    assert meta["held_out"]["false_alarms"] <= 0.03


@shipped
def test_grading_uses_the_shipped_weights_when_asked(monkeypatch):
    from grader.embedding.encoder import default_model_path

    said = []
    monkeypatch.setenv("GRADER_CHECKER", "on")
    assert default_checker(default_model_path(), said.append) is not None and said == []


@pytest.fixture(scope="module")
def shipped_checker():
    from grader.embedding.encoder import default_model_path
    from grader.scoring.checker import load

    return load(DEFAULT_DIR, default_model_path())


@shipped
def test_bfloat16_reads_pairs_as_float32_does(shipped_checker):
    from dataclasses import replace

    pairs = [
        ("ReLU keeps only the positive contributions.", "ReLU keeps the positive part and drops the rest."),
        ("ReLU keeps only the positive contributions.", "ReLU does not keep the positive contributions."),
        ("The filters are shared across positions.", "Pooling halves the resolution."),
    ]
    full = replace(shipped_checker, bfloat16=False).probabilities(pairs)
    half = replace(shipped_checker, bfloat16=True).probabilities(pairs)
    assert half.dtype == np.float32 and np.abs(full - half).max() < 0.02
    assert (full.argmax(1) == half.argmax(1)).all()


REVERSALS = [
    # Our own wordings of answers that turn a point around (not from any issue or data set); also read
    # by bench/checker_probes.py.
    (
        "I4",
        "Neural networks cannot approximate discontinuous functions, "
        "while Fourier series handle discontinuities without trouble.",
    ),
    ("A1a", "ReLU is not needed here, the negative values matter and should stay in the heatmap."),
    (
        "I5",
        "A polynomial activation works fine as long as its degree is large enough, "
        "the network can still approximate anything.",
    ),
    ("I3", "The weights are drawn from a uniform distribution between minus and plus sqrt(3/(n_in + n_out))."),
]
"""All four are zeroed and flagged by the rules, with or without a learned check: I3 since a segment
opposing its nearest phrasing loses the whole point (`grader.scoring.match.nearest_opposed`), A1a and
I5 since they deny what their question takes for granted (`grader.scoring.premise`), I4 since a clause
about neural networks says the opposite of what the point says of them (`grader.scoring.comparison`)."""


@shipped
@pytest.mark.parametrize(
    ("question", "answer"),
    [pytest.param(*case, id=case[0]) for case in REVERSALS],
)
def test_shipped_weights_zero_answers_that_turn_a_point_around(rubric, encoder, shipped_checker, question, answer):
    from grader.exam.submissions import parse_submissions
    from grader.scoring.grade import grade

    submissions = parse_submissions(f'student_id,{question}\nx1,"{answer}"\n', "one.csv", rubric.question_ids)
    graded = next(
        g for g in grade(rubric, submissions, encoder, checker=shipped_checker).items if g.question_id == question
    )
    assert graded.mark == 0, [(p.point_id, p.credit, p.evidence) for p in graded.points]
    assert "contradiction" in {f.code for f in graded.flags}
