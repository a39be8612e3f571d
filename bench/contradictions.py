"""Does the polarity check catch answers that say the opposite, and what does it wrongly catch?

    HF_HUB_OFFLINE=1 .venv/bin/python bench/contradictions.py [--semeval-sample N]

SemEval-2013 train (Beetle and SciEntsBank, /work/shared/datasets) labels each answer correct,
contradictory or incorrect. The answers labelled correct or contradictory are graded twice against
the rubric built from the reference answers (`bench/corpora.py`'s loader and rubric builder), with
the same vectors: before (`grade(..., negation=False)`: only rubric contradiction regexes, and these
rubrics have none) and after (the polarity mask of `grader.scoring.negation`). For each: how many
contradictory answers are flagged `contradiction` (caught) and how many correct answers are
(wrongly caught); and how many of each get a mark of at least half (called correct).

Then the development set (submissions/dl-midsem-sample.csv and our marks): answers flagged
contradiction, and the agreement of short-answer marks with ours, before and after.
Results: bench/README.md.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import corpora as data
from devset import MARKS, RUBRIC, SAMPLE

from grader.authoring.reference import MAX_POINTS, references_to_rubric
from grader.calibration.agreement import agreement
from grader.embedding.encoder import Encoder
from grader.exam.files import read_human_marks
from grader.exam.rubric import ShortQuestion, load_rubric
from grader.exam.submissions import parse_submissions, read_submissions
from grader.scoring import premise
from grader.scoring.grade import Grades, grade


def graded(corpus: data.Corpus, encoder: data.MemoryEncoder, negation: bool) -> tuple[Grades, list[tuple[str, str]]]:
    """Grade a corpus as bench/corpora.py does, with or without the polarity mask."""
    rubric = references_to_rubric(corpus.references, corpus.name, corpus.name, max_points=MAX_POINTS)
    buffer, keys, seen = io.StringIO(), [], {}
    writer = csv.writer(buffer)
    writer.writerow(["student_id", "question_id", "answer"])
    for a in corpus.answers:
        seen[a.question_id] = seen.get(a.question_id, 0) + 1
        keys.append((f"s{seen[a.question_id]}", a.question_id))
        writer.writerow([keys[-1][0], a.question_id, a.text])
    submissions = parse_submissions(buffer.getvalue(), corpus.name, rubric.question_ids)
    return grade(rubric, submissions, encoder, negation=negation), keys


def semeval_counts(corpus: data.Corpus, encoder: data.MemoryEncoder, negation: bool) -> Counter:
    grades, keys = graded(corpus, encoder, negation)
    item = {(g.student_id, g.question_id): g for g in grades.items}
    counts: Counter = Counter()
    for key, answer in zip(keys, corpus.answers):
        g = item[key]
        counts[answer.label] += 1
        counts[(answer.label, "flagged")] += any(f.code == "contradiction" for f in g.flags)
        counts[(answer.label, "marked correct")] += g.raw_mark >= 0.5
    return counts


SETTINGS = [("before", False), ("rules, no premise", True), ("after", True)]
"""No rules; the rules without the question's premise (`grader.scoring.premise`); the rules now."""


@contextmanager
def premises_read(on: bool) -> Iterator[None]:
    """Grading with or without the question's premise read (`grader.scoring.premise`)."""
    saved = premise.READ_PREMISE
    premise.READ_PREMISE = on
    try:
        yield
    finally:
        premise.READ_PREMISE = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--semeval-sample", type=int, default=0, help="answers per SemEval corpus before filtering (0: all)"
    )
    args = parser.parse_args()
    start = time.perf_counter()
    encoder = data.MemoryEncoder(Encoder.load(device="cpu"))

    print(
        "| corpus | answers (contradictory / correct) | | contradictory caught | correct wrongly caught "
        "| contradictory marked correct | correct marked correct |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in ("beetle", "sciEntsBank"):
        corpus = data.semeval(name, args.semeval_sample)
        corpus = replace(corpus, answers=[a for a in corpus.answers if a.label in ("correct", "contradictory")])
        for label, negation in SETTINGS:
            with premises_read(label != "rules, no premise"):
                c = semeval_counts(corpus, encoder, negation)
            n_con, n_cor = c["contradictory"], c["correct"]
            print(
                f"| {corpus.name} | {n_con} / {n_cor} | {label} "
                f"| {c[('contradictory', 'flagged')]} ({c[('contradictory', 'flagged')] / n_con:.1%}) "
                f"| {c[('correct', 'flagged')]} ({c[('correct', 'flagged')] / n_cor:.1%}) "
                f"| {c[('contradictory', 'marked correct')]} | {c[('correct', 'marked correct')]} |",
                flush=True,
            )

    rubric = load_rubric(RUBRIC)
    submissions = read_submissions(SAMPLE, rubric.question_ids)
    human = read_human_marks(MARKS, set(rubric.question_ids))
    print("\n| development set | answers flagged contradiction | short answers MAE | QWK |")
    print("|---|---|---|---|")
    for label, negation in SETTINGS:
        with premises_read(label != "rules, no premise"):
            grades = grade(rubric, submissions, encoder, negation=negation)
        shorts = [g for g in grades.items if isinstance(rubric.question(g.question_id), ShortQuestion)]
        found = agreement([g.mark for g in shorts], [human[(g.student_id, g.question_id)] for g in shorts], step=0.25)
        flagged = sum(any(f.code == "contradiction" for f in g.flags) for g in grades.items)
        print(f"| {label} | {flagged} | {found.mae:.3f} | {found.qwk:.3f} |")
    print(f"\n({time.perf_counter() - start:.0f} s, {len(encoder._rows)} distinct texts encoded)", file=sys.stderr)


if __name__ == "__main__":
    main()
