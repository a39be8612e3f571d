"""Calibrate on half the students of the bundled sample, grade the other half (README figure).

    .venv/bin/python bench/dev_halves.py [--splits N]

The 42 students are split in two halves N times (seeded); each half calibrates (`Calibrator()`, the
method chosen as `grader calibrate` chooses it) and the other half is graded with it, so every
student's short answers are scored by a calibration that never saw them. Printed per split and in
the mean: QWK (pooled short answers, steps of 0.25) and MAE, against the uncalibrated marks of the
same answers, and against each method forced.
"""

from __future__ import annotations

import argparse

import numpy as np
from devset import load_devset

from grader.calibration.agreement import agreement
from grader.calibration.calibrate import METHODS, Calibrator
from grader.calibration.exemplars import answer_vectors
from grader.exam.rubric import ShortQuestion


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=5)
    args = parser.parse_args()
    dev = load_devset()
    vectors = answer_vectors(dev.rubric, dev.submissions.answers, dev.encoder)
    # Every short answer, blanks included (0 by rule, as `dev_agreement.py` counts them).
    shorts = [
        (g.student_id, g.question_id)
        for g in dev.grades.items
        if isinstance(dev.rubric.question(g.question_id), ShortQuestion)
    ]
    students = list(dev.grades.students)
    rows: dict[str, list[tuple[float, float]]] = {}
    chosen: list[str] = []
    for split in range(args.splits):
        order = np.random.default_rng(split).permutation(len(students)) if split else np.arange(len(students))
        halves = [
            set(students[i] for i in order[: len(order) // 2]),
            set(students[i] for i in order[len(order) // 2 :]),
        ]
        for name in ("auto", *METHODS):
            predicted = {}
            for fit_on, score_on in (halves, halves[::-1]):
                human = {k: v for k, v in dev.human.items() if k[0] in fit_on}
                fitted = Calibrator(method=name).fit(dev.grades, dev.rubric, human, vectors)
                if name == "auto":
                    chosen.append(fitted.method_)
                predicted |= {
                    (g.student_id, g.question_id): g.mark
                    for g in fitted.predict(dev.grades, dev.rubric, vectors).items
                    if g.student_id in score_on
                }
            found = agreement([predicted[k] for k in shorts], [dev.human[k] for k in shorts], 0.25)
            rows.setdefault(name, []).append((found.qwk, found.mae))
        print(
            f"split {split}: auto QWK {rows['auto'][-1][0]:.3f} MAE {rows['auto'][-1][1]:.3f}; "
            f"no calibration QWK {rows['default'][-1][0]:.3f} MAE {rows['default'][-1][1]:.3f}",
            flush=True,
        )
    print(
        f"\n{len(shorts)} short answers, {args.splits} splits into halves; methods chosen: "
        + ", ".join(f"{m} {chosen.count(m)}" for m in dict.fromkeys(chosen))
        + "\n"
    )
    print("| calibrated on one half, graded on the other | QWK (mean, min-max over splits) | MAE |")
    print("|---|---|---|")
    for name, values in rows.items():
        qwk = [v[0] for v in values]
        label = {"auto": "**Calibrator (auto)**", "default": "no calibration"}.get(name, f"{name} alone")
        print(
            f"| {label} | {np.mean(qwk):.3f} ({min(qwk):.3f}-{max(qwk):.3f}) | {np.mean([v[1] for v in values]):.3f} |"
        )


if __name__ == "__main__":
    main()
