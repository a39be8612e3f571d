"""Review budget: reviewing the most doubtful answers first, against reviewing at random.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/flag_budget.py [--dataset dev|mohler|saf|semeval|all]
        [--saf-per-question N] [--semeval-sample N]

For a budget b, the ceil(b x n) most doubtful of the n answers with a human mark are reviewed (they
take the human mark; `grader.scoring.triage`), and the mean absolute error of the machine's marks on the
answers left is printed beside the same after reviewing a random choice of as many (mean of 20).

- dev: the bundled sample graded with the shipped defaults, all answers and short answers only;
- Mohler, SAF, SemEval (bench/corpora.py loaders and rubrics): graded once, then marked as a TA who
  calibrates would see them: held-out marks from a Calibrator fitted on the other folds (5 folds
  within each question, as bench/corpora.py's unseen-answers protocol), flags recomputed for the
  calibrated marks. Errors are in each corpus's marks (Mohler 0-5, SAF points, SemEval 0/1).
Results: bench/README.md.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace

import corpora as data
import numpy as np
from devset import load_devset

from grader.calibration.calibrate import Calibrator
from grader.embedding.encoder import Encoder
from grader.exam.rubric import ShortQuestion
from grader.scoring.grade import Grades
from grader.scoring.triage import budget_curve

BUDGETS = (0.0, 0.1, 0.2, 0.3, 0.5)


def row(
    label: str, grades: Grades, rubric, human: Mapping[tuple[str, str], float], budgets: Sequence[float] = BUDGETS
) -> str:
    points = budget_curve(grades, rubric, human, budgets)
    cells = " | ".join(f"{p.mae_unreviewed:.3f} / {p.mae_random:.3f}" for p in points)
    return f"| {label} | {len(human)} | {cells} |"


def header() -> str:
    return "| answers | n | " + " | ".join(f"{b:.0%}" for b in BUDGETS) + " |\n|---|---|" + "---|" * len(BUDGETS) + "\n"


def held_out(corpus: data.Corpus, graded: data.Graded) -> Grades:
    """Every answer's grade as predicted by a Calibrator fitted without its fold (unseen answers)."""
    fold = data.unseen_answer_folds(corpus, data.FOLDS)
    items = {}
    for k in np.unique(fold):
        human = {key: a.human for key, a, f in zip(graded.keys, corpus.answers, fold) if f != k}
        predicted = Calibrator().fit(graded.grades, graded.rubric, human).predict(graded.grades, graded.rubric)
        held = {graded.keys[i] for i in np.flatnonzero(fold == k)}
        items.update(
            {(g.student_id, g.question_id): g for g in predicted.items if (g.student_id, g.question_id) in held}
        )
    return replace(graded.grades, items=tuple(items.get((g.student_id, g.question_id), g) for g in graded.grades.items))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("dev", "mohler", "saf", "semeval", "all"), default="all")
    parser.add_argument("--saf-per-question", type=int, default=20)
    parser.add_argument("--semeval-sample", type=int, default=1000)
    args = parser.parse_args()
    start = time.perf_counter()
    print("Cells: MAE of the unreviewed answers, most doubtful first / random order, by share reviewed.\n")
    print(header(), end="")
    encoder = None
    if args.dataset in ("dev", "all"):
        dev = load_devset()
        encoder = dev.encoder
        shorts = {k: v for k, v in dev.human.items() if isinstance(dev.rubric.question(k[1]), ShortQuestion)}
        print(row("dev, all answers (default marks)", dev.grades, dev.rubric, dev.human), flush=True)
        print(row("dev, short answers (default marks)", dev.grades, dev.rubric, shorts), flush=True)
    builders = {
        "mohler": [data.mohler],
        "saf": [lambda: data.saf(args.saf_per_question)],
        "semeval": [
            lambda: data.semeval("beetle", args.semeval_sample),
            lambda: data.semeval("sciEntsBank", args.semeval_sample),
        ],
    }
    wanted = [b for name, bs in builders.items() if args.dataset in (name, "all") for b in bs]
    if wanted:
        memory = data.MemoryEncoder(encoder or Encoder.load(device="cpu"))
        for build in wanted:
            corpus = build()
            graded = data.grade_corpus(corpus, memory, data.MAX_POINTS, data.TOPIC_WEIGHT)
            human = {key: a.human for key, a in zip(graded.keys, corpus.answers)}
            print(row(f"{corpus.name} (default marks)", graded.grades, graded.rubric, human), flush=True)
            print(
                row(f"{corpus.name} (calibrated, held out)", held_out(corpus, graded), graded.rubric, human), flush=True
            )
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
