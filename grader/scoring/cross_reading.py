"""A second reading by a cross-encoder, of the answers the opposition doubts most.

The concept check's opposition (`grader.scoring.concept_check`) reads every answer against every
phrasing of its question for the price of a sparse product, but only through hashed concepts. A
cross-encoder reads a phrasing and an answer together: all-MiniLM-L6-v2 (the packaged weights), every
layer fine-tuned on a GPU to tell SemEval-2013's correct answers from its contradictory ones and on the
dl-midsem rubric's own pairs (`models/cross-encoder/`, `bench/cross_encoder_gpu.py`). At about 250
pairs/s on two cores it cannot read every answer, so it reads those the opposition ranks in the top
quarter of SemEval's answers (`gate`), against every phrasing; a stack (a logistic regression on the
opposition's `READING` features and the network's `CROSS` features) then decides for them, at its own
threshold. The other answers are left to the rules.

On SemEval questions neither had seen (five question-grouped folds, thresholds nested) this flags
41.7-43.5 % of contradictory answers for 2.1-2.7 % of correct ones over three fold deals, where the
opposition alone flags 38.5-40.2 % (bench/README.md, "The cross-encoder on a GPU", "The second reading
shipped"). The stack and its
cut are fitted on out-of-fold scores (`fit`; `bench/cross_encoder_gpu.py stack`) and stored beside the
weights (`stack.json`); without them grading reads with the opposition alone and says so once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader.atomic import write_atomically
from grader.errors import GraderError
from grader.scoring.checker import LABELS, Checker, load
from grader.scoring.concept_check import (
    READING,
    ConceptCheck,
    PairTable,
    choose_threshold,
    phrasing_features,
    reading_probability,
)

CROSS = tuple(f"{label}_{how}" for how in ("lowest", "mean", "highest", "first") for label in LABELS[:2])
"""What `cross_features` gives of one answer read against every phrasing: the lowest, mean, highest and
first-phrasing logits of P(entails) and P(contradicts)."""
SHARE = 0.25
"""The share of SemEval's answers (every label) the gate lets through: at 15 % the network's gain was
lost on unseen questions (bench/README.md)."""
WEIGHTS = "cross-encoder.safetensors"
META = "cross-encoder.json"
STACK = "stack.json"
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "models" / "cross-encoder"


@dataclass(frozen=True)
class CrossReading:
    """A loaded second reading: the network, the stack on both readings, its cut, and the gate."""

    checker: Checker
    stack: np.ndarray
    """(len(READING) + len(CROSS) + 1,): the coefficients of the opposition's and the network's features,
    then the intercept."""
    threshold: float
    """The stacked P(says the opposite) at or above which an answer read again earns no point."""
    gate: float
    """The opposition's P at or above which the network reads the answer."""

    @property
    def summary(self) -> str:
        """What run.json and a calibration record of the second reading: the marks depend on its gate and
        cut (not on the precision a machine runs it in: bfloat16 moves P by under 0.01)."""
        return f"cross-encoder (gate {self.gate:.3f}, threshold {self.threshold:.3f})"


def cross_features(probabilities: np.ndarray, groups: Sequence[np.ndarray]) -> np.ndarray:
    """(answers, len(CROSS)) from (pairs, LABELS) probabilities: each group holds one answer's rows, its
    first phrasing first (the model answer, or SemEval's scored reference)."""
    clipped = np.clip(probabilities[:, :2].astype(np.float64), 1e-6, 1 - 1e-6)
    logits = np.log(clipped) - np.log1p(-clipped)
    if not len(groups):
        return np.zeros((0, len(CROSS)))
    return np.vstack(
        [
            np.concatenate([logits[rows].min(0), logits[rows].mean(0), logits[rows].max(0), logits[rows[0]]])
            for rows in groups
        ]
    )


def stacked(stack: np.ndarray, reading: np.ndarray, crossed: np.ndarray) -> np.ndarray:
    """The stack's P(says the opposite) from both readings' features (rows of answers)."""
    logits = np.hstack([reading, crossed]) @ stack[:-1] + stack[-1]
    return 1.0 / (1.0 + np.exp(-logits))


def reread(
    cross: CrossReading, reading: np.ndarray, opposition_p: np.ndarray, phrasings: Sequence[str], answers: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Which answers say the opposite of their question, and with what probability: those the opposition
    reads at or above the gate (`opposition_p`, its P; `reading`, its `READING` features) are read by the
    network against every phrasing and judged by the stack; the others are not flagged (their P stays
    the opposition's). Each distinct pair run once, in one batched call."""
    said, probability = np.zeros(len(answers), dtype=bool), np.asarray(opposition_p, dtype=np.float64).copy()
    gated = np.flatnonzero(probability >= cross.gate)
    if len(gated):
        n = len(phrasings)
        probabilities = cross.checker.probabilities([(p, answers[i]) for i in gated for p in phrasings])
        groups = [np.arange(j * n, (j + 1) * n) for j in range(len(gated))]
        probability[gated] = stacked(cross.stack, reading[gated], cross_features(probabilities, groups))
        said[gated] = probability[gated] >= cross.threshold
    return said, probability


def opposite_answers(
    check: ConceptCheck, pairs: PairTable, phrasings: Sequence[str], answers: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Which answers say the opposite of their question, and the probability shown as evidence: the
    check's opposition reads them all (`pairs`, every answer against `phrasings`); where the check has
    a second reading (`check.cross`), the answers it gates are decided by the stack (`reread`), and
    the opposition's own threshold plays no part."""
    opposition = check.opposition
    if opposition is None:
        raise ValueError("a check without an opposition reads no answer whole")
    rows = phrasing_features(opposition, pairs)
    opposition_p = reading_probability(opposition, rows)
    if check.cross is None:
        return opposition_p >= opposition.threshold, opposition_p
    return reread(check.cross, rows, opposition_p, phrasings, answers)


def fit(
    reading: np.ndarray,
    crossed: np.ndarray,
    opposition_p: np.ndarray,
    labels: np.ndarray,
    folds: np.ndarray,
    rules: np.ndarray,
    rate: float,
    share: float = SHARE,
) -> tuple[np.ndarray, float, float, dict]:
    """The stack (fitted on every correct and contradictory answer), its cut and the gate, from
    out-of-fold features of marked answers (`labels`: entails / contradicts / other).

    The cut is chosen as the opposition's is (`concept_check.choose_threshold`, with the rules' flags,
    at `rate` of correct answers) on scores each fold gets from a stack fitted on the others; the gate
    is the opposition's P (`opposition_p`) that `share` of all the answers reach. Returns also what the
    cascade flags out of fold."""
    from sklearn.linear_model import LogisticRegression

    table = np.hstack([reading, crossed])
    correct, contradicts = labels == "entails", labels == "contradicts"
    learn, target = correct | contradicts, ~correct
    held_out = np.zeros(len(table))
    for k in np.unique(folds):
        fit_on = learn & (folds != k)
        model = LogisticRegression(max_iter=5000).fit(table[fit_on], target[fit_on])
        held_out[folds == k] = model.predict_proba(table[folds == k])[:, 1]
    cut = choose_threshold(held_out[correct], rules[correct], rate)
    gate = float(np.quantile(opposition_p, 1 - share))
    model = LogisticRegression(max_iter=5000).fit(table[learn], target[learn])
    flagged = rules | ((opposition_p >= gate) & (held_out >= cut))
    report = {
        "answers": len(table),
        "read_again": round(float((opposition_p >= gate).mean()), 4),
        "recall": round(float(flagged[contradicts].mean()), 4),
        "false_alarms": round(float(flagged[correct].mean()), 4),
    }
    return np.append(model.coef_[0], model.intercept_[0]), float(cut), gate, report


def save_stack(directory: Path, stack: np.ndarray, threshold: float, gate: float, meta: dict) -> None:
    """The stack, its cut and the gate as one JSON file beside the network's weights, written whole."""
    record = {**meta, "features": [*READING, *CROSS], "stack": [float(c) for c in stack]}
    record |= {"threshold": threshold, "gate": gate}
    write_atomically({directory / STACK: json.dumps(record, indent=1, sort_keys=True) + "\n"})


def load_reading(directory: Path, base: Path) -> CrossReading:
    """The network in `directory` on the base weights at `base`, with its stack; refused in one line."""
    path = directory / STACK
    if not path.is_file():
        raise GraderError(f"{directory}: no stack ({STACK}); run `bench/cross_encoder_gpu.py stack`")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        stack = np.array(record["stack"], dtype=np.float64)
        if list(record["features"]) != [*READING, *CROSS] or stack.shape != (len(READING) + len(CROSS) + 1,):
            raise ValueError(f"{len(stack)} weights on {record['features']}")
        threshold, gate = float(record["threshold"]), float(record["gate"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise GraderError(f"{path}: not a stack this grader reads ({err})") from None
    how = "see models/cross-encoder/README.md"
    return CrossReading(load(directory, base, (WEIGHTS, META), how), stack, threshold, gate)
