"""Does the polarity check catch answers that say the opposite, and what does it wrongly catch?

    HF_HUB_OFFLINE=1 .venv/bin/python bench/contradictions.py [--semeval-sample N]

SemEval-2013 train (Beetle and SciEntsBank, /work/shared/datasets) labels each answer correct,
contradictory or incorrect. The answers labelled correct or contradictory are graded twice against
the rubric built from the reference answers (`bench/corpora.py`'s loader and rubric builder), with
the same vectors: before (`grade(..., negation=False)`: only rubric contradiction regexes, and these
rubrics have none) and after (the polarity mask of `grader.scoring.negation`). For each: how many
contradictory answers are flagged `contradiction` (caught) and how many correct answers are
(wrongly caught); and how many of each get a mark of at least half (called correct).

Three settings: no rules; the rules without reading the prompt (its premise, `grader.scoring.premise`,
and the comparison it asks for, `grader.scoring.comparison`); the rules now.

Then the development set (submissions/dl-midsem-sample.csv and our marks): answers flagged
contradiction, and the agreement of short-answer marks with ours, in the same three settings.

Last, where the prompt readings apply at all, on every answer of the four corpora and the sample:
the questions whose prompt takes something for granted or compares two things, their answers, and
those read as denying or turning it around, by their human mark (`--readings-only`: just this table).
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
from grader.scoring import comparison, premise
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


SETTINGS = [("before", False), ("rules, prompt not read", True), ("after", True)]
"""No rules; the rules without reading the prompt's premise (`grader.scoring.premise`) or comparison
(`grader.scoring.comparison`); the rules now."""


@contextmanager
def prompts_read(on: bool) -> Iterator[None]:
    """Grading with or without the prompt's premise and comparison read."""
    saved = premise.READ_PREMISE, comparison.READ_COMPARISONS
    premise.READ_PREMISE = comparison.READ_COMPARISONS = on
    try:
        yield
    finally:
        premise.READ_PREMISE, comparison.READ_COMPARISONS = saved


def prompt_readings() -> None:
    """Where the prompt readings apply, on every answer of every corpus (pure rules: seconds)."""
    rubric = load_rubric(RUBRIC)
    human = read_human_marks(MARKS, set(rubric.question_ids))
    submissions = read_submissions(SAMPLE, rubric.question_ids)
    sample = data.Corpus(
        "bundled sample",
        [],
        [
            data.Answer(q, submissions.answer(s, q), m / rubric.question(q).marks)
            for (s, q), m in human.items()
            if isinstance(rubric.question(q), ShortQuestion)
        ],
        0.25,
    )
    print("\n| corpus | reading | questions | their answers | read as denying or reversing it: human mark (answers) |")
    print("|---|---|---|---|---|")
    for corpus in (data.semeval("beetle", 0), data.semeval("sciEntsBank", 0), data.mohler(), data.saf(0), sample):
        questions = (
            [q for q in rubric.questions if isinstance(q, ShortQuestion)]
            if corpus is sample
            else references_to_rubric(corpus.references, corpus.name, corpus.name, max_points=MAX_POINTS).questions
        )
        answers: dict[str, list[data.Answer]] = {}
        for a in corpus.answers:
            answers.setdefault(a.question_id, []).append(a)
        for reading in ("premise", "comparison"):
            read, found = [], Counter()
            for q in questions:
                said = [a for a in answers.get(q.id, []) if a.text.strip()]
                if reading == "premise" and (granted := premise.premise(q.prompt)) is not None:
                    hits = [premise.denial(granted, a.text) is not None for a in said]
                elif reading == "comparison" and (things := comparison.compared(q.prompt)) is not None:
                    hits = [r is not None for r in comparison.reversals(things, q, [a.text for a in said])]
                else:
                    continue
                read.append(len(said))
                found.update(a.label or f"{a.human:g}" for a, hit in zip(said, hits) if hit)
            marks = ", ".join(f"{k} ({n})" for k, n in sorted(found.items())) or "none"
            print(f"| {corpus.name} | {reading} | {len(read)} | {sum(read)} | {marks} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--semeval-sample", type=int, default=0, help="answers per SemEval corpus before filtering (0: all)"
    )
    parser.add_argument("--readings-only", action="store_true", help="only where the prompt readings apply")
    args = parser.parse_args()
    if args.readings_only:
        prompt_readings()
        return
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
            with prompts_read(label != "rules, prompt not read"):
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
        with prompts_read(label != "rules, prompt not read"):
            grades = grade(rubric, submissions, encoder, negation=negation)
        shorts = [g for g in grades.items if isinstance(rubric.question(g.question_id), ShortQuestion)]
        found = agreement([g.mark for g in shorts], [human[(g.student_id, g.question_id)] for g in shorts], step=0.25)
        flagged = sum(any(f.code == "contradiction" for f in g.flags) for g in grades.items)
        print(f"| {label} | {flagged} | {found.mae:.3f} | {found.qwk:.3f} |")
    prompt_readings()
    print(f"\n({time.perf_counter() - start:.0f} s, {len(encoder._rows)} distinct texts encoded)", file=sys.stderr)


if __name__ == "__main__":
    main()
