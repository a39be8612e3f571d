"""Choose the default credit curve (similarity -> share of a point's marks) on the development set.

Grades the bundled sample once, then re-marks it under every (low, high) on a grid and keeps the
pair with the lowest mean absolute error against our own marks on the short answers. To show the
choice is not a fit to noise, it also runs 5-fold cross-validation over students: thresholds chosen
on four fifths, error measured on the fifth nobody tuned on.

    .venv/bin/python bench/tune_thresholds.py
"""

from __future__ import annotations

import random
import statistics

from devset import load_devset, short_errors

from grader.grade import apply_curve
from grader.match import DEFAULT_CURVE, CreditCurve

GRID = [
    CreditCurve(round(low, 3), round(high, 3))
    for low in [0.20 + 0.025 * i for i in range(17)]
    for high in [0.45 + 0.025 * j for j in range(19)]
    if high - low >= 0.1 and high <= 0.9
]


def choose(dev, regraded, students) -> CreditCurve:
    return min(GRID, key=lambda c: (statistics.mean(short_errors(dev, regraded[c], students)), c.high - c.low))


def main() -> None:
    dev = load_devset()
    regraded = {c: apply_curve(dev.grades, dev.rubric, c) for c in GRID}
    everyone = list(dev.grades.students)
    best = choose(dev, regraded, set(everyone))
    print(f"grid: {len(GRID)} curves; chosen on all {len(everyone)} students: low={best.low} high={best.high}, "
          f"MAE {statistics.mean(short_errors(dev, regraded[best])):.3f}")
    print(f"current default low={DEFAULT_CURVE.low} high={DEFAULT_CURVE.high}: "
          f"MAE {statistics.mean(short_errors(dev, apply_curve(dev.grades, dev.rubric, DEFAULT_CURVE))):.3f}")
    random.Random(0).shuffle(everyone)
    folds = [set(everyone[i::5]) for i in range(5)]
    held_out = []
    for k, test in enumerate(folds):
        chosen = choose(dev, regraded, set(everyone) - test)
        errors = short_errors(dev, regraded[chosen], test)
        held_out += errors
        print(f"fold {k}: chosen low={chosen.low} high={chosen.high}, held-out MAE {statistics.mean(errors):.3f}")
    print(f"5-fold cross-validated MAE on short answers: {statistics.mean(held_out):.3f}")


if __name__ == "__main__":
    main()
