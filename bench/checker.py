"""The learned contradiction checker (`grader.scoring.checker`) measured: recall, false alarms, grading time.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/checker.py cv [--folds 5] [--sample 0] [--jobs 1]
    HF_HUB_OFFLINE=1 .venv/bin/python bench/checker.py alarms [--checker models/checker] [--cross off]
    HF_HUB_OFFLINE=1 .venv/bin/python bench/checker.py timing [--students 526] [--cross off]
    HF_HUB_OFFLINE=1 .venv/bin/python bench/checker.py marks [--split questions|answers]   # ~10 CPU-minutes
    HF_HUB_OFFLINE=1 .venv/bin/python bench/checker.py reread-marks   # Mohler, SAF: with and without the 2nd reading
    HF_HUB_OFFLINE=1 .venv/bin/python bench/checker.py calibrated [--corpora beetle] [--readings first,rubric]

`--no-nearest` (alarms, marks): grade as before `grader.scoring.match.nearest_opposed`, a segment that
opposes its nearest phrasing of a point losing only that phrasing, for the comparison in bench/README.md.

cv: question-grouped cross-validation on SemEval-2013 train. Each fold's questions are never trained
on: the checker is trained by `grader.scoring.checker_train.train_checker` (the same function as `grader
model train-checker`) on the other folds' answers, their references' pairs and the bundled rubric's
pairs, with the threshold it chooses on its own held-out questions; then the fold's contradictory and
correct answers are scored against their question's first reference. Beside it, the rules
(`grader.scoring.negation.opposed`) on the same (reference, answer) pairs.

alarms: full-mark answers wrongly flagged `contradiction` when graded (rules alone, rules + checker):
Mohler dev (score_avg 5), SAF train (the question's top score), and the bundled sample (our full marks).

marks: what the concept check does to the marks themselves, uncalibrated, on questions it never
learned: SemEval train's two corpora graded with the rules alone, then each of 5 question-grouped
folds graded with a concept check trained (`grader.scoring.concept_check.train`, the shipped recipe,
every reference) on the other folds' answers, asked about single segments (as before the opposition)
and reading each answer whole (its `opposition`, as grading does now); Mohler dev with the shipped
check (it never saw Mohler). Agreement with the
human marks as `bench/corpora.py` reports it (correct = 1 on SemEval). `--split answers`: unseen
answers instead, 5 folds over answers (by a hash of question and text, so a repeated answer stays in
one fold), each graded by a check trained on the other folds' answers of every question. Also the
share of SemEval answers of each label that grading flags `contradiction` (a point taken away as
contradicting it), as issue 12 counted the rules on the SemEval test answers.

calibrated: calibrated marks (bench/corpora.py's unseen-answer and unseen-question protocols) without
the concept check's doubt and with it, the doubt read against the model answer alone (`first`), the
rubric's phrasings (`rubric`, as grading does) or SemEval's every reference, minimal ones too
(`references`; bench/corpora.py's rubric keeps the complete ones only). ~40 minutes for all corpora.

timing: the bundled sample and a synthetic class (bench/bench_grading.py's) graded without and with
the checker in one run (see `timing` for how the encoding is shared). Results: bench/README.md.
Both with the cross-encoder's second reading (`grader.scoring.cross_reading`, models/cross-encoder) as
grading loads it; `--cross off`: the concept check alone.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import os
import random
import sys
import time
import zlib
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("GRADER_DATASETS", ROOT.parent / "shared" / "datasets"))

from grader.authoring.reference import MAX_POINTS, Reference, references_to_rubric
from grader.embedding.encoder import Encoder, default_model_path
from grader.exam.files import read_human_marks
from grader.exam.rubric import ShortQuestion, load_rubric
from grader.exam.submissions import parse_submissions, read_submissions
from grader.scoring import comparison, premise
from grader.scoring.checker import Checker, contradiction_score, rubric_pairs, tokenizer_for
from grader.scoring.checker_train import Marked, read_semeval, recall_at, train_checker
from grader.scoring.concept_check import ConceptCheck, question_folds, rules_flag
from grader.scoring.cross_reading import DEFAULT_DIR as CROSS_DIR
from grader.scoring.cross_reading import load_reading
from grader.scoring.engine import load_check
from grader.scoring.grade import grade
from grader.scoring.match import TOPIC_WEIGHT

RUBRIC = ROOT / "rubrics" / "dl-midsem.yaml"
SAMPLE = ROOT / "submissions" / "dl-midsem-sample.csv"
MARKS = ROOT / "submissions" / "dl-midsem-sample-marks.csv"
FALSE_ALARMS = 0.03


def folds_of(questions: list[str], k: int, seed: int = 0) -> dict[str, int]:
    """The concept check's question folds (`grader.scoring.concept_check.question_folds`)."""
    return question_folds(questions, k, seed)


def recall_at_false_alarms(contradictory: np.ndarray, correct: np.ndarray, rate: float) -> tuple[float, float]:
    """Recall of contradictory answers at the lowest threshold flagging at most `rate` of correct ones."""
    ranked = np.sort(correct)[::-1]
    allowed = int(np.floor(rate * len(ranked)))
    threshold = np.nextafter(ranked[allowed], 1.0) if allowed < len(ranked) else 0.0
    return recall_at(contradictory, threshold), float(np.mean(correct >= threshold))


def cv_fold(k: int, folds: int, sample: int) -> tuple[str, dict[str, np.ndarray]]:
    """One fold of `cv`: its table row, and its held-out answers' scores, labels, threshold, rules."""
    import torch

    torch.set_num_threads(1)
    started = time.perf_counter()
    answers, references = read_semeval(DATA / "semeval2013_train.csv")
    if sample:
        answers = random.Random(0).sample(answers, sample)
    fold = folds_of([a.question for a in answers], folds)
    rubric = load_rubric(RUBRIC)
    own = [p for q in rubric.questions if isinstance(q, ShortQuestion) for p in rubric_pairs(q)]
    base = default_model_path()
    train_part: list[Marked] = [a for a in answers if fold[a.question] != k]
    refs = {q: r for q, r in references.items() if fold.get(q, -1) != k}
    model, meta = train_checker(train_part, refs, own, base)
    checker = Checker(model, tokenizer_for(base), meta["threshold"], "cv")
    held = [a.scored for a in answers if fold[a.question] == k and a.scored.label in ("entails", "contradicts")]
    pairs = [(s.point, s.segment) for s in held]
    probabilities = checker.probabilities(pairs)
    p, y, t = contradiction_score(probabilities), np.array([s.label for s in held]), meta["threshold"]
    row = (
        f"| {k} | {sum(1 for q in fold.values() if q == k)} "
        f"| {(y == 'contradicts').sum()} / {(y == 'entails').sum()} | {t:.3f} "
        f"| {recall_at(p[y == 'contradicts'], t):.1%} | {np.mean(p[y == 'entails'] >= t):.1%} "
        f"| {time.perf_counter() - started:.0f} |"
    )
    scored = {"p": p, "y": y, "t": np.full(len(p), t), "r": rules_flag(pairs), "probabilities": probabilities}
    return row, scored


def cv(args: argparse.Namespace) -> None:
    from concurrent.futures import ProcessPoolExecutor

    print(
        "| fold | questions held out | contradictory / correct | threshold (chosen inside) "
        "| recall | false alarms | train s |"
    )
    print("|---|---|---|---|---|---|---|")
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:  # each fold on one thread
        runs = [pool.submit(cv_fold, k, args.folds, args.sample) for k in range(args.folds)]
        results = []
        for run in runs:
            row, scored = run.result()
            print(row, flush=True)
            results.append(scored)
    scores, labels, thresholds, rules, every = (
        [r[key] for r in results] for key in ("p", "y", "t", "r", "probabilities")
    )
    p, y, t, r = map(np.concatenate, (scores, labels, thresholds, rules))
    con, cor = y == "contradicts", y == "entails"
    at3, fa3 = recall_at_false_alarms(p[con], p[cor], FALSE_ALARMS)
    print(f"\npooled over {args.folds} folds: {con.sum()} contradictory, {cor.sum()} correct answers")
    print(
        f"checker, each fold's own threshold: recall {np.mean(p[con] >= t[con]):.1%}, "
        f"false alarms {np.mean(p[cor] >= t[cor]):.1%}"
    )
    print(f"checker, operating point at <= {FALSE_ALARMS:.0%} false alarms: recall {at3:.1%} (false alarms {fa3:.1%})")
    print(
        f"rules (grader.scoring.negation) on the same pairs: recall {r[con].mean():.1%}, "
        f"false alarms {r[cor].mean():.1%}"
    )
    print(
        f"checker or rules, own thresholds: recall {np.mean(((p >= t) | r)[con]):.1%}, "
        f"false alarms {np.mean(((p >= t) | r)[cor]):.1%}"
    )
    if args.save:
        np.savez(args.save, p=p, y=y, t=t, r=r, probabilities=np.concatenate(every))


def _class(references: list[Reference], answers: list[tuple[str, str]], name: str):
    """A rubric from references and the answers as a long CSV, as bench/corpora.py builds them."""
    rubric = references_to_rubric(references, name, name, max_points=MAX_POINTS)
    buffer, seen = io.StringIO(), {}
    writer = csv.writer(buffer)
    writer.writerow(["student_id", "question_id", "answer"])
    for question, text in answers:
        seen[question] = seen.get(question, 0) + 1
        writer.writerow([f"s{seen[question]}", question, text])
    return rubric, parse_submissions(buffer.getvalue(), name, rubric.question_ids)


def full_mark_classes(limit: int = 0):
    """(name, rubric, submissions, keys of full-mark answers) for Mohler dev, SAF train and the sample
    (`limit`: only the first so many of each corpus, for a quick try)."""
    import pandas as pd

    mohler = pd.read_csv(DATA / "mohler_dev.csv", dtype=str, keep_default_na=False)
    full = mohler[mohler.score_avg.astype(float) == 5].head(limit or None)
    refs = [Reference(r.id, r.question, r.desired_answer, 5.0) for r in mohler.drop_duplicates("id").itertuples()]
    yield (
        "Mohler dev (score_avg 5)",
        *_class(refs, [(r.id, r.student_answer) for r in full.itertuples()], "mohler"),
        None,
    )
    saf = pd.read_csv(DATA / "saf_en_train.csv", dtype=str, keep_default_na=False)
    full = saf[saf.score.astype(float) == saf.max_score_observed_in_question.astype(float)].head(limit or None)
    refs = [
        Reference(r.question_id, r.question, r.reference_answer, float(r.max_score_observed_in_question))
        for r in saf.drop_duplicates("question_id").itertuples()
    ]
    yield (
        "SAF train (top score)",
        *_class(refs, [(r.question_id, r.student_answer) for r in full.itertuples()], "saf"),
        None,
    )
    rubric = load_rubric(RUBRIC)
    marks = read_human_marks(MARKS)
    full = {
        (s, q)
        for (s, q), m in marks.items()
        if isinstance(rubric.question(q), ShortQuestion) and m >= rubric.question(q).marks
    }
    yield ("bundled sample (our full marks)", rubric, read_submissions(SAMPLE, rubric.question_ids), full)


def alarms(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, str(ROOT / "bench"))
    from corpora import MemoryEncoder

    encoder = MemoryEncoder(Encoder.load(device="cpu"))
    checker = with_cross(load_check(Path(args.checker), default_model_path()), args.cross)
    print(
        "| answers | full-mark answers | flagged contradiction: rules alone | rules + checker "
        "| checker's share | keyword-stuffing |"
    )
    print("|---|---|---|---|---|---|")
    for name, rubric, submissions, keys in full_mark_classes(args.limit):
        if args.only and not name.lower().startswith(args.only.lower()):
            continue
        counts = []
        for used in (None, checker):
            grades = grade(rubric, submissions, encoder, checker=used)
            items = [
                g
                for g in grades.items
                if isinstance(rubric.question(g.question_id), ShortQuestion)
                and submissions.answer(g.student_id, g.question_id).strip()
            ]
            if keys is not None:
                items = [g for g in items if (g.student_id, g.question_id) in keys]
            if used is not None:  # what a higher threshold would leave flagged
                found = sorted(max(p.opposite_probability or 0 for p in g.points) for g in items)
                print(
                    f"{name}: checker probabilities of the answers it took points from: "
                    f"{[round(x, 3) for x in found if x]}",
                    file=sys.stderr,
                )
            counts.append(
                (
                    len(items),
                    sum(any(f.code == "contradiction" for f in g.flags) for g in items),
                    sum(any(p.opposite_probability is not None for p in g.points) for g in items),
                    sum(any(f.code == "keyword-stuffing" for f in g.flags) for g in items),
                )
            )
        (n, rules, _, stuffed), (_, both, learned, _) = counts
        print(
            f"| {name} | {n} | {rules} ({rules / n:.1%}) | {both} ({both / n:.1%}) "
            f"| {learned} | {stuffed} ({stuffed / n:.1%}) |",
            flush=True,
        )


class Counting:
    """A cross-encoder checker that counts the pairs it is asked about."""

    def __init__(self, checker) -> None:
        self.checker, self.threshold, self.name, self.asked = checker, checker.threshold, checker.name, 0

    def contradiction(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        self.asked += len(pairs)
        return self.checker.contradiction(pairs)


@dataclasses.dataclass
class CountingCheck(ConceptCheck):
    """A concept check that counts the pairs it (and its opposition) is asked about. Still a ConceptCheck,
    so grading reads each answer whole with it and records the doubt, as with the shipped one."""

    tally: list[int] = dataclasses.field(default_factory=lambda: [0])

    @property
    def asked(self) -> int:
        return self.tally[0]

    def scores(self, table) -> np.ndarray:  # every pair the check scores goes through here, hashed
        self.tally[0] += table.shape[0]
        return super().scores(table)


def counting(checker):
    """`checker` with the pairs it is asked about counted (`.asked`)."""
    if not isinstance(checker, ConceptCheck):
        return Counting(checker)
    tally = [0]
    fields = {f.name: getattr(checker, f.name) for f in dataclasses.fields(ConceptCheck)}
    if checker.opposition is not None:
        fields["opposition"] = counting(checker.opposition)
        tally = fields["opposition"].tally
    return CountingCheck(**fields, tally=tally)


def with_cross(check, directory: str):
    """`check` with the cross-encoder's second reading from `directory` (`grader.scoring.cross_reading`),
    as grading loads it; 'off': without."""
    if directory == "off" or not isinstance(check, ConceptCheck) or check.opposition is None:
        return check
    return dataclasses.replace(check, cross=load_reading(Path(directory), default_model_path()))


def timing(args: argparse.Namespace) -> None:
    """Grading time without the checker, with it, and with the cross-encoder's second reading, in one run.

    Encoding three times would encode every text thrice: instead each class is graded (1) cold without
    the checker, through a memory of its vectors, then (2) warm without, (3) warm with the check alone
    and (4) warm with its second reading (the vectors read back from memory). Cold with the check is
    (1) + (3) - (2), with both (1) + (4) - (2): the checks' cost is all in (3) and (4) - (2). The rules'
    reading of the prompts (`grader.scoring.premise`, `grader.scoring.comparison`) is in every grading; its
    cost is (2) less (2) graded again without it."""
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_grading import synthetic_class
    from corpora import MemoryEncoder

    base = Encoder.load(device="cpu")
    checker = load_check(Path(args.checker), default_model_path())
    both = with_cross(checker, args.cross)
    rubric = load_rubric(RUBRIC)
    classes = [("bundled sample", rubric, read_submissions(SAMPLE, rubric.question_ids))]
    classes.append((f"synthetic, {args.students} students", *synthetic_class(args.students, 0)))
    print(
        "| class | answers | without checker (cold) | checker's extra | ratio | pairs asked "
        "| with the cross-encoder: extra | ratio | answers it read | the prompts read (in every column) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r, submissions in classes:
        encoder = MemoryEncoder(base)
        started = time.perf_counter()
        grade(r, submissions, encoder)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        grade(r, submissions, encoder)
        warm = time.perf_counter() - started
        premise.READ_PREMISE = comparison.READ_COMPARISONS = False  # what reading the prompts costs, warm
        started = time.perf_counter()
        grade(r, submissions, encoder)
        unread = time.perf_counter() - started
        premise.READ_PREMISE = comparison.READ_COMPARISONS = True
        counted = counting(checker)
        started = time.perf_counter()
        grade(r, submissions, encoder, checker=counted)
        extra = time.perf_counter() - started - warm
        cross = getattr(both, "cross", None)
        read = AnswerCount(cross.checker) if cross is not None else None
        measured = both if read is None else dataclasses.replace(both, cross=dataclasses.replace(cross, checker=read))
        started = time.perf_counter()
        grade(r, submissions, encoder, checker=measured)
        again = time.perf_counter() - started - warm
        answers = len(submissions.students) * len(r.questions)
        print(
            f"| {name} | {answers} | {cold:.1f} s | {extra:.1f} s | {(cold + extra) / cold:.2f} | {counted.asked} "
            f"| {again:.1f} s | {(cold + again) / cold:.2f} | {read.answers if read else 0} "
            f"| {warm - unread:+.2f} s |",
            flush=True,
        )
    print(f"(load average {os.getloadavg()[0]:.1f} at the end; torch threads {__import__('torch').get_num_threads()})")


class AnswerCount:
    """The second reading's network, counting the distinct answers it is given (the gate's share of a class)."""

    def __init__(self, checker) -> None:
        self.checker, self.answers = checker, 0

    def probabilities(self, pairs):
        self.answers += len({answer for _, answer in pairs})
        return self.checker.probabilities(pairs)


def marks(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from dataclasses import replace

    from corpora import MemoryEncoder, grade_corpus, metrics, mohler, semeval, table

    from grader.scoring import concept_check

    encoder = MemoryEncoder(Encoder.load(device="cpu"))
    answers, references = read_semeval(DATA / "semeval2013_train.csv")
    every_reference = {q: [t for point in points for t in point] for q, points in references.items()}
    by_question = folds_of([a.question for a in answers], 5)

    def fold_of(question: str, text: str) -> int:
        if args.split == "answers":
            return zlib.crc32(f"{question}|{text}".encode()) % 5
        return by_question[question]

    checks = {}
    for k in range(5):
        learn = [a for a in answers if fold_of(a.question, a.scored.segment) != k]
        checks[k], _ = concept_check.train(learn, references=every_reference)
    kinds = {"segments": lambda c: replace(c, opposition=None), "opposition": lambda c: c}
    rows, flag_rows = [], []
    for name, corpus in (("beetle", semeval("beetle", 0)), ("sciEntsBank", semeval("sciEntsBank", 0)), ("", mohler())):
        graded = grade_corpus(corpus, encoder, MAX_POINTS, TOPIC_WEIGHT)
        plain = {(g.student_id, g.question_id): g for g in graded.grades.items}
        text = {key: a.text for key, a in zip(graded.keys, corpus.answers)}
        variants = [("rules alone", plain)]
        for kind, used in kinds.items():
            checked = dict(plain)
            for k, check in checks.items() if name else [(None, concept_check.load(concept_check.DEFAULT_DIR))]:
                graded_k = grade_corpus(corpus, encoder, MAX_POINTS, TOPIC_WEIGHT, checker=used(check))
                for g in graded_k.grades.items:
                    key = (g.student_id, g.question_id)
                    if key not in text:  # the class is wide: no such answer
                        continue
                    if k is None or fold_of(f"{name}/{g.question_id}", text[key]) == k:
                        checked[key] = g
            variants.append((f"rules + concept check on {kind}", checked))
            changed = sum(plain[key].mark != checked[key].mark for key in graded.keys)
            print(f"{corpus.name}: {changed} of {len(graded.keys)} marks changed by the check on {kind}", flush=True)
        labels = np.array([a.label for a in corpus.answers])
        for label, grades in variants:
            predicted = np.array([grades[key].mark for key in graded.keys])
            rows.append((f"{corpus.name}: {label}", metrics(corpus, predicted)))
            flagged = np.array([any(f.code == "contradiction" for f in grades[key].flags) for key in graded.keys])
            if name:
                shares = {kind: flagged[labels == kind] for kind in ("contradictory", "correct", "incorrect")}
                cells = " | ".join(f"{v.mean():.1%} ({v.sum()} of {len(v)})" for v in shares.values())
                flag_rows.append(f"| {corpus.name}: {label} | {cells} |")
    print("| answers flagged `contradiction` when graded | contradictory | correct | incorrect |\n|---|---|---|---|")
    print("\n".join(flag_rows))
    print(table(rows))


def reread_marks(args: argparse.Namespace) -> None:
    """Mohler dev and SAF train, which neither check learned from (unseen questions and answers), graded with
    the shipped concept check alone and with its second reading: agreement with the human marks, and how
    many marks and `contradiction` flags the second reading changes."""
    sys.path.insert(0, str(ROOT / "bench"))
    from corpora import MemoryEncoder, grade_corpus, metrics, mohler, saf, table

    encoder = MemoryEncoder(Encoder.load(device="cpu"))
    check = load_check(Path(args.checker), default_model_path())
    checks = (("the concept check", check), ("with its second reading", with_cross(check, args.cross)))
    rows = []
    for corpus in (mohler(), saf(0)):
        graded = {label: grade_corpus(corpus, encoder, MAX_POINTS, TOPIC_WEIGHT, checker=c) for label, c in checks}
        marks, flags = {}, {}
        for label, found in graded.items():
            by_key = {(g.student_id, g.question_id): g for g in found.grades.items}
            grades = [by_key[key] for key in found.keys]
            marks[label] = np.array([g.mark for g in grades])
            flags[label] = np.array([any(f.code == "contradiction" for f in g.flags) for g in grades])
            rows.append((f"{corpus.name}: {label}", metrics(corpus, marks[label])))
        before, after = marks.values()
        flagged_before, flagged_after = flags.values()
        print(
            f"{corpus.name}: {int((before != after).sum())} of {len(before)} marks changed; answers flagged "
            f"contradiction {int(flagged_before.sum())} -> {int(flagged_after.sum())}",
            flush=True,
        )
    print(table(rows))


def _with_doubts(graded, doubt: np.ndarray):
    """`graded` (bench/corpora.py's Graded) with each short answer's `concept_doubt` from `doubt` (in
    corpus order; NaN: none)."""
    from dataclasses import replace

    of = {key: None if np.isnan(d) else float(d) for key, d in zip(graded.keys, doubt)}
    items = tuple(
        replace(g, concept_doubt=of.get((g.student_id, g.question_id))) if g.points else g for g in graded.grades.items
    )
    return replace(graded, grades=replace(graded.grades, items=items))


def calibrated(args: argparse.Namespace) -> None:
    """Calibrated marks with and without the concept check's doubt as evidence (`concept_doubt`)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from dataclasses import replace

    from corpora import (
        MemoryEncoder,
        corpus_vectors,
        grade_corpus,
        metrics,
        mohler,
        saf,
        semeval,
        table,
        unseen_answer_folds,
        unseen_question_folds,
    )
    from corpora import calibrated as calibrated_marks

    from grader.scoring import concept_check
    from grader.scoring.concept_check import question_phrasings, read_answers

    encoder = MemoryEncoder(Encoder.load(device="cpu"))
    semeval_answers, semeval_references = read_semeval(DATA / "semeval2013_train.csv")
    every_reference = {q: [t for point in points for t in point] for q, points in semeval_references.items()}
    shipped = concept_check.load(concept_check.DEFAULT_DIR)
    corpora = {
        "beetle": lambda: semeval("beetle", 0),
        "sciEntsBank": lambda: semeval("sciEntsBank", 0),
        "mohler": mohler,
        "saf": lambda: saf(0),
    }
    readings = args.readings.split(",")

    def phrasings(name: str, question, reading: str) -> list[str]:
        """What an answer is read against: the model answer alone ("first", as before the reading), the
        rubric's phrasings ("rubric", as grading does), or SemEval's every reference ("references": the
        minimal ones too, which bench/corpora.py's rubric leaves out)."""
        if reading == "first":
            return [question.model_answer]
        if reading == "references" and name in ("beetle", "sciEntsBank"):
            return list(dict.fromkeys([question.model_answer, *every_reference[f"{name}/{question.id}"]]))
        return question_phrasings(question)

    rows = []
    for name in args.corpora.split(","):
        corpus = corpora[name]()
        graded = grade_corpus(corpus, encoder, MAX_POINTS, TOPIC_WEIGHT)  # the rules alone: the same marks
        vectors = corpus_vectors(corpus, graded, encoder)
        for split, fold in (
            ("unseen answers", unseen_answer_folds(corpus)),
            ("unseen questions", unseen_question_folds(corpus)),
        ):
            # SemEval: each fold's doubts from a check that never learned that fold's answers (or questions);
            # the other corpora: the shipped check, which never saw them.
            doubts = {reading: np.full(len(corpus.answers), np.nan) for reading in readings}
            for k in np.unique(fold) if name in ("beetle", "sciEntsBank") else [None]:
                held = np.flatnonzero(fold == k) if k is not None else np.arange(len(corpus.answers))
                if k is None:
                    check = shipped
                else:
                    out = {(f"{name}/{corpus.answers[i].question_id}", corpus.answers[i].text) for i in held}
                    if split == "unseen questions":
                        out_q = {q for q, _ in out}
                        learn = [a for a in semeval_answers if a.question not in out_q]
                    else:
                        learn = [a for a in semeval_answers if (a.question, a.scored.segment) not in out]
                    check, _ = concept_check.train(learn, references=every_reference)
                by_question: dict[str, list[int]] = {}
                for i in held:
                    if corpus.answers[i].text.strip():
                        by_question.setdefault(corpus.answers[i].question_id, []).append(i)
                for qid, rows_of in by_question.items():  # one batch per question
                    texts = [corpus.answers[i].text for i in rows_of]
                    question = graded.rubric.question(qid)
                    for reading in readings:
                        plain = replace(check, reading=None) if reading == "first" else check
                        doubts[reading][rows_of] = read_answers(plain, phrasings(name, question, reading), texts)
            variants = [("without the doubt", graded)]
            variants += [(f"with the doubt read against {r}", _with_doubts(graded, doubts[r])) for r in readings]
            for label, which in variants:
                for method in args.methods.split(","):
                    predicted, chosen = calibrated_marks(corpus, which, fold, vectors, method)
                    row = f"{corpus.name}, {split}, {method} ({'/'.join(sorted(set(chosen)))}): {label}"
                    rows.append((row, metrics(corpus, predicted)))
                    print(table(rows[-1:]).splitlines()[-1], flush=True)
    print(table(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    c = sub.add_parser("cv")
    c.add_argument("--folds", type=int, default=5)
    c.add_argument("--sample", type=int, default=0, help="answers to use (0: all)")
    c.add_argument("--save", default="", help="an .npz file for the pooled scores")
    c.add_argument("--jobs", type=int, default=1, help="folds trained at once, one CPU thread each")
    a = sub.add_parser("alarms")
    a.add_argument("--checker", default=str(ROOT / "models" / "concept-check"), help="either kind of check's folder")
    a.add_argument("--limit", type=int, default=0, help="full-mark answers per corpus (0: all)")
    a.add_argument("--only", default="", help="only the corpus whose name starts so (mohler, saf, bundled)")
    t = sub.add_parser("timing")
    t.add_argument("--checker", default=str(ROOT / "models" / "concept-check"), help="either kind of check's folder")
    t.add_argument("--students", type=int, default=526, help="526 students x 19 questions: about 10k answers")
    for measured in (a, t):
        measured.add_argument("--cross", default=str(CROSS_DIR), help="the second reading's folder ('off': none)")
    again = sub.add_parser("reread-marks")
    again.add_argument("--checker", default=str(ROOT / "models" / "concept-check"))
    again.add_argument("--cross", default=str(CROSS_DIR), help="the second reading's folder")
    m = sub.add_parser("marks")
    m.add_argument("--split", choices=("questions", "answers"), default="questions", help="what the check has not seen")
    k = sub.add_parser("calibrated")
    k.add_argument("--corpora", default="beetle,sciEntsBank,mohler,saf")
    k.add_argument("--methods", default="auto,pooled,exemplar", help="calibration methods to compare")
    k.add_argument(
        "--readings",
        default="first,rubric,references",
        help="what each answer is read against for the doubt: first (the model answer), rubric, references",
    )
    for measured in (a, m):
        measured.add_argument("--no-nearest", action="store_true", help="the rules' mask not spread to the point")
    args = parser.parse_args()
    if getattr(args, "no_nearest", False):
        import grader.scoring.match

        grader.scoring.match.SPREAD_NEAREST = False
    run = {"cv": cv, "alarms": alarms, "timing": timing, "marks": marks, "calibrated": calibrated}
    run["reread-marks"] = reread_marks
    run[args.what](args)


if __name__ == "__main__":
    main()
