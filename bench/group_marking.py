"""Marking by answer group against one answer at a time: TA actions on the shared corpora.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/group_marking.py [--dataset mohler|saf|semeval|all]
        [--thresholds 0.8,0.85,0.9,0.95]

Per question, the answers are grouped as `grader serve` groups them (`grader.review.grouping`, whole answers
encoded with the default model). A TA reviewing one answer at a time takes one action per answer.
By group, the TA reads a group, marks it in one action with the mark its most typical answer
deserves (its human mark), then sets each member whose human mark differs in one action more; a
lone answer is one action. Both ways end with every answer at its human mark: marks as accurate,
by construction; what differs is the number of actions. The table also gives the share of grouped
answers whose human mark differs from their group's, and the error (MAE, in the corpus's marks)
a TA would leave by marking groups without correcting any member. Results: README ("grader serve").
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpora as data  # noqa: E402  (bench/corpora.py, which puts the repo on the path)
import numpy as np  # noqa: E402

from grader.embedding.encoder import Encoder  # noqa: E402
from grader.review.grouping import group_answers  # noqa: E402


def count_actions(texts: list[str], human: list[float], vectors: np.ndarray, threshold: float) -> dict[str, float]:
    """Actions one at a time and by group for one question's answers, and what groups get wrong."""
    groups = group_answers(texts, vectors, threshold)
    actions = grouped = differ = 0
    error = 0.0
    for g in groups:
        mark = human[g.members[0]]
        wrong = [i for i in g.members if abs(human[i] - mark) > 1e-9]
        actions += 1 + len(wrong)
        if len(g.members) > 1:
            grouped += len(g.members)
            differ += len(wrong)
            error += sum(abs(human[i] - mark) for i in wrong)
    return {
        "answers": len(texts),
        "groups": sum(len(g.members) > 1 for g in groups),
        "grouped": grouped,
        "by_group": actions,
        "differ": differ,
        "error": error,
    }


def corpora(which: str) -> list[data.Corpus]:
    chosen = []
    if which in ("mohler", "all"):
        chosen.append(data.mohler())
    if which in ("saf", "all"):
        chosen.append(data.saf(0))
    if which in ("semeval", "all"):
        chosen += [data.semeval("beetle", 0), data.semeval("sciEntsBank", 0)]
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="all", choices=["mohler", "saf", "semeval", "all"])
    parser.add_argument("--thresholds", default="0.8,0.85,0.9,0.95")
    args = parser.parse_args()
    thresholds = [float(t) for t in args.thresholds.split(",")]
    encoder = Encoder.load(device="cpu")
    print(
        "| corpus | answers | group cosine | groups (2+) | answers in them | actions one at a time "
        "| actions by group | saved | grouped answers off their group's mark "
        "| MAE if no member is corrected |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for corpus in corpora(args.dataset):
        start = time.perf_counter()
        by_question: dict[str, list[data.Answer]] = defaultdict(list)
        for a in corpus.answers:
            by_question[a.question_id].append(a)
        texts = [a.text for a in corpus.answers]
        rows = dict(zip(dict.fromkeys(texts), encoder.encode(list(dict.fromkeys(texts)))))
        for t in thresholds:
            total: dict[str, float] = defaultdict(float)
            for answers in by_question.values():
                found = count_actions(
                    [a.text for a in answers], [a.human for a in answers], np.stack([rows[a.text] for a in answers]), t
                )
                for k, v in found.items():
                    total[k] += v
            n = int(total["answers"])
            print(
                f"| {corpus.name} | {n} | {t:g} | {int(total['groups'])} | {int(total['grouped'])} | {n} | "
                f"{int(total['by_group'])} | {1 - total['by_group'] / n:.1%} | "
                f"{int(total['differ'])} ({total['differ'] / max(total['grouped'], 1):.1%}) | "
                f"{total['error'] / n:.3f} |",
                flush=True,
            )
        print(f"<!-- {corpus.name}: {time.perf_counter() - start:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
