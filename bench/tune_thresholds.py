"""Choose the default scoring constants on the development set: the credit curve and the topic weight.

For each topic weight (how much of a segment's cosine to the prompt is discounted, see
grader/scoring/match.py), grade the bundled sample, then re-mark it under every (low, high) credit curve on a
grid and keep the pair with the lowest mean absolute error against our own marks on the short
answers. To show the choice is not a fit to noise, 5-fold cross-validation over students chooses
the curve on four fifths and measures the error on the fifth nobody tuned on.

    .venv/bin/python bench/tune_thresholds.py
"""

from __future__ import annotations

import random
import statistics

import numpy as np
from devset import load_devset, short_errors

from grader.scoring.grade import apply_curve, grade
from grader.scoring.match import DEFAULT_CURVE, TOPIC_WEIGHT, CreditCurve

GRID = [
    CreditCurve(round(low, 3), round(high, 3))
    for low in [0.10 + 0.025 * i for i in range(25)]
    for high in [0.25 + 0.025 * j for j in range(27)]
    if high - low >= 0.1 and high <= 0.9
]
TOPIC_WEIGHTS = [0.0, 0.25, 0.5, 0.75]


class Memo:
    """Encode each text once across the several gradings of this script."""

    def __init__(self, encoder):
        self.encoder, self.name, self.seen = encoder, encoder.name, {}

    def encode(self, texts, progress=None):
        new = [t for t in dict.fromkeys(texts) if t not in self.seen]
        if new:
            self.seen.update(zip(new, self.encoder.encode(new)))
        return np.stack([self.seen[t] for t in texts])


def choose(dev, regraded, students) -> CreditCurve:
    return min(GRID, key=lambda c: (statistics.mean(short_errors(dev, regraded[c], students)), c.high - c.low))


def cross_validate(dev, regraded, folds, everyone) -> tuple[float, list[CreditCurve]]:
    held_out, chosen = [], []
    for test in folds:
        curve = choose(dev, regraded, set(everyone) - test)
        chosen.append(curve)
        held_out += short_errors(dev, regraded[curve], test)
    return statistics.mean(held_out), chosen


def main() -> None:
    dev = load_devset()
    encoder = Memo(dev.encoder)
    everyone = list(dev.grades.students)
    shuffled = everyone[:]
    random.Random(0).shuffle(shuffled)
    folds = [set(shuffled[i::5]) for i in range(5)]
    print(f"{len(everyone)} students; {len(GRID)} credit curves per topic weight; MAE on short answers\n")
    print("| topic weight | curve chosen on all | MAE (in sample) | 5-fold CV MAE | curves chosen per fold |")
    print("|---|---|---|---|---|")
    for weight in TOPIC_WEIGHTS:
        graded = grade(dev.rubric, dev.submissions, encoder, topic_weight=weight)
        regraded = {c: apply_curve(graded, dev.rubric, c) for c in GRID}
        best = choose(dev, regraded, set(everyone))
        cv, chosen = cross_validate(dev, regraded, folds, everyone)
        per_fold = ", ".join(f"{c.low:g}-{c.high:g}" for c in chosen)
        mae = statistics.mean(short_errors(dev, regraded[best]))
        print(f"| {weight:g} | {best.low:g}-{best.high:g} | {mae:.3f} | {cv:.3f} | {per_fold} |")
    current = apply_curve(grade(dev.rubric, dev.submissions, encoder), dev.rubric, DEFAULT_CURVE)
    print(
        f"\nShipped defaults: topic weight {TOPIC_WEIGHT:g}, curve {DEFAULT_CURVE.low:g}-{DEFAULT_CURVE.high:g}: "
        f"MAE {statistics.mean(short_errors(dev, current)):.3f}"
    )


if __name__ == "__main__":
    main()
