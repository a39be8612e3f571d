"""The cross-encoder's second reading: its features, the stack and gate it learns, saving, loading, and
grading with the shipped network."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from grader.errors import GraderError
from grader.scoring import cross_reading
from grader.scoring.concept_check import READING, pair_table, phrasing_features, question_phrasings, read_table
from grader.scoring.cross_reading import (
    CROSS,
    CrossReading,
    cross_features,
    fit,
    load_reading,
    opposite_answers,
    reread,
    save_stack,
)
from grader.scoring.engine import second_reading

shipped = pytest.mark.skipif(
    not all((cross_reading.DEFAULT_DIR / n).is_file() for n in (cross_reading.WEIGHTS, cross_reading.STACK)),
    reason="no cross-encoder in models/cross-encoder",
)


def logit(p: float) -> float:
    return float(np.log(p) - np.log1p(-p))


# ---- features ------------------------------------------------------------------------------------


def test_cross_features_sum_up_each_answers_rows_its_first_phrasing_first():
    probabilities = np.array(
        [
            [0.9, 0.05, 0.05],  # answer 0 against its first phrasing
            [0.2, 0.7, 0.1],
            [0.5, 0.25, 0.25],
            [0.1, 0.8, 0.1],  # answer 1, one phrasing
        ]
    )
    rows = cross_features(probabilities, [np.arange(3), np.arange(3, 4)])
    assert rows.shape == (2, len(CROSS))
    named = dict(zip(CROSS, rows[0]))
    assert named["entails_lowest"] == pytest.approx(logit(0.2))
    assert named["contradicts_highest"] == pytest.approx(logit(0.7))
    assert named["entails_mean"] == pytest.approx(np.mean([logit(0.9), logit(0.2), logit(0.5)]))
    assert named["entails_first"] == pytest.approx(logit(0.9)) and named["contradicts_first"] == pytest.approx(
        logit(0.05)
    )
    one = dict(zip(CROSS, rows[1]))  # a single row is its own lowest, mean, highest and first
    assert (
        one["contradicts_lowest"] == one["contradicts_highest"] == one["contradicts_first"] == pytest.approx(logit(0.8))
    )


def test_certain_probabilities_give_finite_features():
    rows = cross_features(np.array([[1.0, 0.0, 0.0]]), [np.arange(1)])
    assert np.isfinite(rows).all()


# ---- fitting the stack ---------------------------------------------------------------------------


def marked(n: int, seed: int = 0):
    """`n` answers of each label, in 5 folds: the network's contradicts features separate contradictory
    from correct answers (noisily), the opposition's reading a little; incorrect ones lie between."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.array(["entails", "contradicts", "incorrect"]), n)
    sign = np.select([labels == "entails", labels == "contradicts"], [-1.0, 1.0], 0.0)
    reading = rng.normal(size=(3 * n, len(READING))) + 0.3 * sign[:, None]
    crossed = rng.normal(size=(3 * n, len(CROSS))) + 1.5 * sign[:, None] * (np.arange(len(CROSS)) % 2 == 1)
    opposition_p = 1 / (1 + np.exp(-(sign + rng.normal(size=3 * n))))
    folds = np.arange(3 * n) % 5
    return reading, crossed, opposition_p, labels, folds


def test_the_stack_learns_the_separating_features_and_cuts_within_the_rate():
    reading, crossed, opposition_p, labels, folds = marked(300)
    rules = np.zeros(len(labels), dtype=bool)
    rules[:3] = True  # three correct answers the rules flag: the cut leaves room for them
    stack, cut, gate, report = fit(reading, crossed, opposition_p, labels, folds, rules, rate=0.025, share=0.25)
    assert stack.shape == (len(READING) + len(CROSS) + 1,)
    weights = dict(zip(CROSS, stack[len(READING) : -1]))
    assert min(weights[f"contradicts_{how}"] for how in ("lowest", "mean", "highest", "first")) > 0
    assert report["false_alarms"] <= 0.025 and report["recall"] > 0.1
    assert np.mean(opposition_p >= gate) == pytest.approx(0.25, abs=0.01) and report["read_again"] == pytest.approx(
        0.25, abs=0.01
    )


def test_a_wider_gate_lets_the_stack_flag_more():
    reading, crossed, opposition_p, labels, folds = marked(300, seed=1)
    rules = np.zeros(len(labels), dtype=bool)
    narrow = fit(reading, crossed, opposition_p, labels, folds, rules, 0.025, share=0.1)
    wide = fit(reading, crossed, opposition_p, labels, folds, rules, 0.025, share=0.5)
    assert wide[2] < narrow[2] and wide[3]["recall"] > narrow[3]["recall"]


# ---- saving and loading --------------------------------------------------------------------------


def saved(tmp_path, **change) -> dict:
    """A stack saved in `tmp_path`, then one of its entries changed; the stack is read before the network."""
    stack = np.linspace(-1, 1, len(READING) + len(CROSS) + 1)
    save_stack(tmp_path, stack, 0.75, 0.35, {"command": "made in a test"})
    record = json.loads((tmp_path / cross_reading.STACK).read_text())
    if change:
        (tmp_path / cross_reading.STACK).write_text(json.dumps({**record, **change}))
    return record


@shipped
def test_a_saved_stack_loads_back_with_the_network():
    from grader.embedding.encoder import default_model_path

    loaded = load_reading(cross_reading.DEFAULT_DIR, default_model_path())
    record = json.loads((cross_reading.DEFAULT_DIR / cross_reading.STACK).read_text())
    assert np.allclose(loaded.stack, record["stack"]) and loaded.threshold == record["threshold"]
    assert loaded.gate == record["gate"] and record["features"] == [*READING, *CROSS]


@pytest.mark.parametrize(
    "change",
    [{"features": ["lowest"]}, {"stack": [1.0, 2.0]}, {"threshold": "high"}, {"gate": None}],
    ids=["other features", "too few weights", "a word for a threshold", "no gate"],
)
def test_a_foreign_stack_is_refused_in_one_line(tmp_path, change):
    from grader.embedding.encoder import default_model_path

    saved(tmp_path, **change)
    with pytest.raises(GraderError) as err:
        load_reading(tmp_path, default_model_path())
    assert str(tmp_path / cross_reading.STACK) in str(err.value) and "\n" not in str(err.value)


@shipped
@pytest.mark.parametrize("damaged", [cross_reading.WEIGHTS, cross_reading.META])
def test_damaged_network_files_are_refused_in_one_line(tmp_path, damaged):
    import shutil

    from grader.embedding.encoder import default_model_path

    for name in (cross_reading.WEIGHTS, cross_reading.META, cross_reading.STACK):
        shutil.copy(cross_reading.DEFAULT_DIR / name, tmp_path / name)
    (tmp_path / damaged).write_bytes(b"{not what was saved")
    with pytest.raises(GraderError) as err:
        load_reading(tmp_path, default_model_path())
    assert str(tmp_path / damaged) in str(err.value) and "\n" not in str(err.value)


def test_a_folder_without_a_stack_is_refused_in_one_line(tmp_path):
    with pytest.raises(GraderError, match="no stack") as err:
        load_reading(tmp_path, tmp_path)
    assert "\n" not in str(err.value)


# ---- choosing it for grading ---------------------------------------------------------------------


@shipped
def test_grading_reads_again_with_the_shipped_network_unless_told_otherwise(monkeypatch, grading_check):
    from grader.embedding.encoder import default_model_path

    assert isinstance(grading_check.cross, CrossReading)
    bare = replace(grading_check, cross=None)
    said: list[str] = []
    monkeypatch.setenv("GRADER_CROSS_ENCODER", "off")
    assert second_reading(bare, default_model_path(), said.append).cross is None and said == []


@shipped
def test_without_the_network_grading_says_so_once_and_the_opposition_decides(monkeypatch, tmp_path, grading_check):
    bare = replace(grading_check, cross=None)
    said: list[str] = []
    monkeypatch.setenv("GRADER_CROSS_ENCODER", str(tmp_path))  # an empty folder
    assert second_reading(bare, None, said.append) is bare
    assert len(said) == 1 and str(tmp_path) in said[0] and "opposition alone" in said[0]
    monkeypatch.delenv("GRADER_CROSS_ENCODER")
    said.clear()
    assert second_reading(bare, None, said.append) is bare  # the weights are there, the base model is not
    assert len(said) == 1 and "all-MiniLM-L6-v2" in said[0]


# ---- reading answers again -----------------------------------------------------------------------


class Recording:
    """The shipped network, remembering the pairs it was asked to read."""

    def __init__(self, checker) -> None:
        self.checker, self.pairs = checker, []

    def probabilities(self, pairs):
        self.pairs += pairs
        return self.checker.probabilities(pairs)


@shipped
def test_only_the_answers_at_or_above_the_gate_are_read_again_and_the_stack_decides(grading_check, rubric):
    question = rubric.question("A1a")
    phrasings = question_phrasings(question)
    answers = [
        question.model_answer,
        "ReLU is not needed: negative values matter and should be kept.",
        "Without a nonlinearity the layers collapse into one linear map.",
        "Pooling halves the resolution.",
    ]
    pairs = pair_table(phrasings, answers)
    reading = phrasing_features(grading_check.opposition, pairs)
    opposition_p = read_table(grading_check.opposition, pairs)
    gate = float(np.sort(opposition_p)[-2])  # the two answers the opposition doubts most
    recording = Recording(grading_check.cross.checker)
    cross = replace(grading_check.cross, checker=recording, gate=gate)
    said, probability = reread(cross, reading, opposition_p, phrasings, answers)
    gated = np.flatnonzero(opposition_p >= gate)
    assert {a for _, a in recording.pairs} == {answers[i] for i in gated}
    assert len(recording.pairs) == len(gated) * len(phrasings)  # every phrasing, once
    probabilities = grading_check.cross.checker.probabilities([(p, answers[i]) for i in gated for p in phrasings])
    groups = [np.arange(j * len(phrasings), (j + 1) * len(phrasings)) for j in range(len(gated))]
    stacked = cross_reading.stacked(cross.stack, reading[gated], cross_features(probabilities, groups))
    assert np.allclose(probability[gated], stacked, atol=1e-6)
    assert (said[gated] == (stacked >= cross.threshold)).all()
    below = np.setdiff1d(np.arange(len(answers)), gated)
    assert not said[below].any() and np.allclose(probability[below], opposition_p[below])  # left to the rules


@shipped
def test_with_no_answer_at_the_gate_the_network_reads_nothing(grading_check, rubric):
    question = rubric.question("A1a")
    phrasings = question_phrasings(question)
    answers = [question.model_answer]
    recording = Recording(grading_check.cross.checker)
    check = replace(grading_check, cross=replace(grading_check.cross, checker=recording, gate=1.01))
    said, probability = opposite_answers(check, pair_table(phrasings, answers), phrasings, answers)
    assert recording.pairs == [] and not said.any() and 0 <= probability[0] <= 1


@shipped
def test_shipped_stack_records_how_it_was_made_and_what_it_flags_on_unseen_questions():
    record = json.loads((cross_reading.DEFAULT_DIR / cross_reading.STACK).read_text())
    assert "bench/cross_encoder_gpu.py stack" in record["command"]
    held = record["out_of_fold"]  # five question-grouped folds of SemEval train
    assert held["false_alarms"] <= 0.03 and held["recall"] >= 0.40
    assert held["read_again"] == pytest.approx(cross_reading.SHARE, abs=0.01)
