"""Benchmark on real human marks: Mohler (Texas), SAF and SemEval-2013 (/work/shared/datasets/).

    .venv/bin/python bench/corpora.py [--dataset mohler|saf|semeval|all] [--limit N]

For each corpus the rubric is built from its reference answers (`grader.authoring.reference`), the answers go
through the real CSV reader (long shape) and are graded once on the CPU with the default model.
Then two protocols, each with honest cross-validation (no answer both fits and scores):

- unseen answers: each question's answers are split into 5 folds (fewer for small questions); fold
  k of every question is held out together, `grader.calibration.calibrate.Calibrator` is fitted on the rest of
  every question, and the held-out answers are predicted; predictions are pooled over folds.
- unseen questions: GroupKFold (5) over question ids: calibrate on some questions, predict others
  (the Calibrator falls back to its pooled maps for questions it has not seen).

Beside it, measured in the same run, the baseline every paper starts from: cosine of the whole
answer to the reference answer (the best reference when there are several), mapped to marks by an
isotonic regression per question fitted on the same training folds (unseen answers) or pooled over
the training questions (unseen questions).

Pearson, RMSE and MAE compare the continuous predicted mark with the human mark (as the Mohler
papers do); QWK rounds predictions to the corpus' mark step. SemEval's labels become marks (correct
1, else 0); a predicted mark of 0.5 or more means "correct", for accuracy and macro-F1. Everything
stays in memory; nothing is cached on disk. The script reports and always exits 0.

Options: `--max-points 6,1` and `--topic-weight 0.5,0` grade variants in the same run (vectors are
shared); `--criterion mae,rmse` calibrates with each choosing error; `--saf-per-question N` /
`--semeval-sample N` subsample.
Results, runtime and findings: bench/README.md.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.isotonic import IsotonicRegression  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score  # noqa: E402
from sklearn.model_selection import GroupKFold, KFold  # noqa: E402

from grader.authoring.reference import MAX_POINTS, Reference, references_to_rubric  # noqa: E402
from grader.calibration.agreement import agreement  # noqa: E402
from grader.calibration.calibrate import METHODS, Calibrator  # noqa: E402
from grader.calibration.exemplars import AnswerVectors, answer_vectors  # noqa: E402
from grader.calibration.finetune import fine_tune, training_pairs  # noqa: E402
from grader.calibration.sampling import pick_answers  # noqa: E402
from grader.embedding.encoder import Encoder, default_model_path  # noqa: E402
from grader.exam.rubric import Rubric  # noqa: E402
from grader.exam.submissions import parse_submissions  # noqa: E402
from grader.scoring.grade import Grades, QuestionGrade, grade  # noqa: E402
from grader.scoring.match import TOPIC_WEIGHT  # noqa: E402

DATA = Path("/work/shared/datasets")
FOLDS = 5
"""Folds over questions (unseen questions)."""
ANSWER_FOLDS = 2
"""Folds within each question (unseen answers): 2 = calibrate on half of each question's answers, grade the rest."""
SEED = 0
MOHLER_PUBLISHED = [  # on the whole Texas set (2,273 answers), each paper its own protocol: context only
    ("Mohler et al. 2011 (SVMRank, published)", 0.518, None),
    ("Sultan et al. 2016 (published)", 0.592, 0.887),
    ("ELMo cosine + isotonic (published)", 0.485, 0.978),
    ("two human graders (published)", 0.586, 0.659),
]


@dataclass(frozen=True)
class Answer:
    question_id: str
    text: str
    human: float
    label: str = ""
    """SemEval's 3-way label; empty elsewhere."""


@dataclass(frozen=True)
class Corpus:
    name: str
    references: list[Reference]
    answers: list[Answer]
    step: float
    """The step of the human marks (QWK categories)."""
    note: str = ""
    normalise: bool = False
    """Compare marks as shares of each question's max mark (when questions are worth different marks)."""


# ---- the corpora -----------------------------------------------------------------------------


def _read(name: str) -> pd.DataFrame:
    # Everything as text: Mohler's ids 11.1 and 11.10 are different questions.
    return pd.read_csv(DATA / name, dtype=str, keep_default_na=False)


def mohler() -> Corpus:
    frame = _read("mohler_dev.csv")
    firsts = frame.drop_duplicates("id")
    refs = [Reference(r.id, r.question, r.desired_answer, 5.0) for r in firsts.itertuples()]
    answers = [Answer(r.id, r.student_answer, float(r.score_avg)) for r in frame.itertuples()]
    return Corpus("Mohler dev", refs, answers, 0.5, "gold = score_avg (mean of two graders), 0-5")


def saf(per_question: int) -> Corpus:
    frame = _read("saf_en_train.csv")
    note = "all answers"
    if per_question > 0:
        # Long answers make many segments (~17 per answer): all 2,127 take 6-9 minutes to encode here.
        frame = frame.sample(frac=1, random_state=SEED).groupby("question_id").head(per_question).sort_index()
        note = f"subsample: at most {per_question} answers per question (seed {SEED})"
    firsts = frame.drop_duplicates("question_id")
    refs = [
        Reference(r.question_id, r.question, r.reference_answer, float(r.max_score_observed_in_question))
        for r in firsts.itertuples()
    ]
    answers = [Answer(r.question_id, r.student_answer, float(r.score)) for r in frame.itertuples()]
    note += (
        "; max mark = the question's highest score (0.5 to 3.5); marks compared as shares of it, "
        "since pooled over questions worth 1 and 3.5 points r mostly measures which question it is"
    )
    return Corpus("SAF (English) train", refs, answers, 0.25, note, normalise=True)


def semeval(corpus: str, sample: int) -> Corpus:
    frame = _read("semeval2013_train.csv")
    frame = frame[frame.corpus == corpus]
    note = "all answers"
    if 0 < sample < len(frame):
        # Stratified by question and label, so every question keeps answers of each kind it has.
        shuffled = frame.sample(frac=1, random_state=SEED)
        groups = shuffled.groupby(["question_id", "label_3way"])
        wanted = (groups["answer_id"].transform("size") * (sample / len(frame))).round().clip(lower=1)
        frame = shuffled[groups.cumcount() < wanted].sort_index()
        note = f"subsample of {len(frame)} answers, stratified by question and label (seed {SEED})"
    refs = []
    for r in frame.drop_duplicates("question_id").itertuples():
        given = json.loads(r.reference_answers_json)
        # Beetle tags references BEST/GOOD/MINIMAL/KEYWORD: the complete ones (BEST first) are references.
        kept = [a for a in given if a["category"] == "BEST"] + [a for a in given if a["category"] == "GOOD"]
        for a in kept or given:
            refs.append(Reference(r.question_id, r.question, a["text"], 1.0))
    answers = [
        Answer(r.question_id, r.student_answer, 1.0 if r.label_2way == "correct" else 0.0, r.label_3way)
        for r in frame.itertuples()
    ]
    name = {"beetle": "SemEval-2013 Beetle train", "sciEntsBank": "SemEval-2013 SciEntsBank train"}[corpus]
    return Corpus(name, refs, answers, 1.0, note)


# ---- grading once ------------------------------------------------------------------------------


class MemoryEncoder:
    """The real encoder behind an in-memory table, so variants and the baseline re-use vectors."""

    def __init__(self, encoder: Encoder) -> None:
        self.name, self._encoder, self._rows = encoder.name, encoder, {}
        self.seconds = 0.0

    def encode(self, texts: Sequence[str], progress=None) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self._rows]
        if todo:
            start = time.perf_counter()
            for text, row in zip(todo, self._encoder.encode(todo, progress)):
                self._rows[text] = row
            self.seconds += time.perf_counter() - start
        return np.stack([self._rows[t] for t in texts])


@dataclass
class Graded:
    rubric: Rubric
    grades: Grades
    keys: list[tuple[str, str]]
    """(student id, question id) of each answer, in corpus order."""


def corpus_keys(corpus: Corpus) -> list[tuple[str, str]]:
    """(student id, question id) of each answer, in corpus order: students numbered within each
    question, so the class stays narrow."""
    keys, seen = [], {}
    for a in corpus.answers:
        seen[a.question_id] = seen.get(a.question_id, 0) + 1
        keys.append((f"s{seen[a.question_id]}", a.question_id))
    return keys


def grade_corpus(corpus: Corpus, encoder: MemoryEncoder, max_points: int, topic_weight: float, checker=None) -> Graded:
    rubric = references_to_rubric(corpus.references, corpus.name, corpus.name, max_points=max_points)
    buffer, keys = io.StringIO(), corpus_keys(corpus)
    writer = csv.writer(buffer)
    writer.writerow(["student_id", "question_id", "answer"])
    for key, a in zip(keys, corpus.answers):
        writer.writerow([key[0], a.question_id, a.text])
    submissions = parse_submissions(buffer.getvalue(), corpus.name, rubric.question_ids)
    return Graded(rubric, grade(rubric, submissions, encoder, topic_weight=topic_weight, checker=checker), keys)


# ---- the two protocols -------------------------------------------------------------------------


def unseen_answer_folds(corpus: Corpus, folds: int = ANSWER_FOLDS) -> np.ndarray:
    """Fold of each answer: each question's answers split into `folds` (fewer when it has fewer)."""
    fold = np.zeros(len(corpus.answers), dtype=int)
    questions = np.array([a.question_id for a in corpus.answers])
    for qid in dict.fromkeys(questions):
        index = np.flatnonzero(questions == qid)
        splitter = KFold(min(folds, len(index)), shuffle=True, random_state=SEED)
        for k, (_, test) in enumerate(splitter.split(index)):
            fold[index[test]] = k
    return fold


def unseen_question_folds(corpus: Corpus) -> np.ndarray:
    fold = np.zeros(len(corpus.answers), dtype=int)
    questions = [a.question_id for a in corpus.answers]
    for k, (_, test) in enumerate(GroupKFold(FOLDS).split(questions, groups=questions)):
        fold[test] = k
    return fold


def calibrated(
    corpus: Corpus,
    graded: Graded,
    fold: np.ndarray,
    vectors: AnswerVectors | None = None,
    method: str = "auto",
    criterion: str = "rmse",
) -> tuple[np.ndarray, list[str]]:
    """Held-out continuous marks from a Calibrator fitted per fold, and the method each fold chose."""
    predicted, methods = np.zeros(len(corpus.answers)), []
    for k in np.unique(fold):
        human = {key: a.human for key, a, f in zip(graded.keys, corpus.answers, fold) if f != k}
        calibrator = Calibrator(method=method, criterion=criterion).fit(graded.grades, graded.rubric, human, vectors)
        methods.append(calibrator.method_)
        held = np.flatnonzero(fold == k)
        predicted[held] = _held_out_marks(calibrator, graded, held, vectors)
    return predicted, methods


def _held_out_marks(
    calibrator: Calibrator, graded: Graded, held: np.ndarray, vectors: AnswerVectors | None = None
) -> np.ndarray:
    after = {(g.student_id, g.question_id): g for g in calibrator.predict(graded.grades, graded.rubric, vectors).items}
    return np.array([after[graded.keys[i]].raw_mark for i in held])


def corpus_vectors(corpus: Corpus, graded: Graded, encoder) -> AnswerVectors:
    """Each answer's whole-answer vector and lexical features, as `grade --calibration` computes them."""
    return answer_vectors(graded.rubric, {key: a.text for key, a in zip(graded.keys, corpus.answers)}, encoder)


def learning_curve(corpus: Corpus, graded: Graded, vectors: AnswerVectors, sizes: Sequence[int], draws: int) -> str:
    """Calibrate on n answers per question picked by `grader sample` or at random; score all the others.

    Random picks are averaged over `draws` seeds; the picked answers are deterministic. Blank answers
    are never picked either way (both are marked 0 without a TA)."""
    index = {key: i for i, key in enumerate(graded.keys)}
    answered = [key for key in graded.keys if key in vectors.vectors]
    lines = [
        f"| answers marked per question | picked by `grader sample`: r | RMSE | random (mean of {draws}): r | RMSE |",
        "|---|---|---|---|---|",
    ]
    for n in sizes:
        picked = {(p.student_id, p.question_id) for p in pick_answers(graded.grades, graded.rubric, vectors, n)}
        row = [_fit_on(corpus, graded, vectors, picked, index)]
        randoms = []
        for draw in range(draws):
            rng = np.random.default_rng(draw)
            chosen = set()
            for qid in dict.fromkeys(k[1] for k in answered):
                keys = [k for k in answered if k[1] == qid]
                chosen |= {keys[i] for i in rng.permutation(len(keys))[:n]}
            randoms.append(_fit_on(corpus, graded, vectors, chosen, index))
        row.append({m: float(np.mean([r[m] for r in randoms])) for m in ("r", "RMSE")})
        lines.append(f"| {n} | {row[0]['r']:.3f} | {row[0]['RMSE']:.3f} | {row[1]['r']:.3f} | {row[1]['RMSE']:.3f} |")
    return "\n".join(lines)


def _fit_on(corpus: Corpus, graded: Graded, vectors: AnswerVectors, marked: set, index: dict) -> dict[str, float]:
    human = {key: corpus.answers[index[key]].human for key in marked}
    calibrator = Calibrator().fit(graded.grades, graded.rubric, human, vectors)
    rest = np.array([i for i, key in enumerate(graded.keys) if key not in marked])
    predicted = np.zeros(len(corpus.answers))
    predicted[rest] = _held_out_marks(calibrator, graded, rest, vectors)
    kept = replace(corpus, answers=[corpus.answers[i] for i in rest])
    return metrics(kept, predicted[rest])


def fine_tuned(
    corpus: Corpus, fold: np.ndarray, max_points: int, topic_weight: float, work: Path
) -> tuple[np.ndarray, float]:
    """Unseen answers with the encoder fine-tuned on each fold's marked answers (`calibrate --fine-tune`):
    tune on the training folds, grade everything with the tuned encoder, calibrate (exemplar) on the
    training folds, predict the held-out fold. Returns the marks and the seconds spent tuning."""
    predicted, tuning = np.zeros(len(corpus.answers)), 0.0
    for k in np.unique(fold):
        rubric = references_to_rubric(corpus.references, corpus.name, corpus.name, max_points=max_points)
        keys = corpus_keys(corpus)
        texts = {key: a.text for key, a in zip(keys, corpus.answers)}
        human = {key: a.human for key, a, f in zip(keys, corpus.answers, fold) if f != k}
        pairs = training_pairs(rubric, texts, human)
        target = work / f"fold{k}.encoder"
        record = fine_tune(default_model_path(), pairs, target, rubric.fingerprint, "all-MiniLM-L6-v2", progress=False)
        tuning += record.seconds
        encoder = MemoryEncoder(Encoder.load(target, device="cpu"))
        graded = grade_corpus(corpus, encoder, max_points, topic_weight)
        vectors = corpus_vectors(corpus, graded, encoder)
        calibrator = Calibrator().fit(graded.grades, graded.rubric, human, vectors)
        held = np.flatnonzero(fold == k)
        predicted[held] = _held_out_marks(calibrator, graded, held, vectors)
    return predicted, tuning


def whole_answer_cosines(corpus: Corpus, encoder: MemoryEncoder) -> np.ndarray:
    """The naive baseline's feature: cosine of the whole answer to the closest whole reference."""
    refs: dict[str, list[str]] = {}
    for r in corpus.references:
        refs.setdefault(r.question_id, []).append(" ".join(r.reference_answer.split()))
    answers = [" ".join(a.text.split()) for a in corpus.answers]
    vectors = encoder.encode(answers + [t for ts in refs.values() for t in ts])
    row = {t: v for t, v in zip(answers + [t for ts in refs.values() for t in ts], vectors)}
    return np.array(
        [
            max(float(row[answer] @ row[t]) for t in refs[a.question_id]) if answer else 0.0
            for answer, a in zip(answers, corpus.answers)
        ]
    )


def baseline(corpus: Corpus, cosines: np.ndarray, fold: np.ndarray, per_question: bool) -> np.ndarray:
    """Held-out marks from isotonic regression of share of marks on cosine (per question, or pooled)."""
    maxima = {r.question_id: r.max_mark for r in corpus.references}
    questions = np.array([a.question_id for a in corpus.answers])
    top = np.array([maxima[q] for q in questions])
    share = np.array([a.human for a in corpus.answers]) / top
    predicted = np.zeros(len(corpus.answers))
    groups = [questions == q for q in dict.fromkeys(questions)] if per_question else [np.ones_like(fold, bool)]
    for k in np.unique(fold):
        for group in groups:
            train, test = group & (fold != k), group & (fold == k)
            if test.any():
                iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(cosines[train], share[train])
                predicted[test] = iso.predict(cosines[test]) * top[test]
    return predicted


# ---- reporting -----------------------------------------------------------------------------------


def metrics(corpus: Corpus, predicted: np.ndarray) -> dict[str, float]:
    human = np.array([a.human for a in corpus.answers])
    if corpus.normalise:
        maxima = {r.question_id: r.max_mark for r in corpus.references}
        top = np.array([maxima[a.question_id] for a in corpus.answers])
        human, predicted = human / top, predicted / top
    found = agreement(predicted.tolist(), human.tolist(), corpus.step)
    row = {"r": found.pearson, "RMSE": found.rmse, "MAE": found.mae, "QWK": found.qwk}
    if corpus.answers[0].label:
        said = predicted >= 0.5
        truth = human >= 0.5
        row["acc 2-way"] = accuracy_score(truth, said)
        row["F1 2-way"] = f1_score(truth, said, average="macro")
        labels = np.array([a.label for a in corpus.answers])
        # A mark cannot tell "contradictory" from "incorrect": both are 0, so 3-way never says contradictory.
        row["F1 3-way"] = f1_score(labels, np.where(said, "correct", "incorrect"), average="macro")
    return row


def table(rows: list[tuple[str, dict[str, float]]]) -> str:
    columns = list(dict.fromkeys(c for _, row in rows for c in row))
    lines = ["| system | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for name, row in rows:
        cells = [f"{row[c]:.3f}" if c in row and row[c] is not None else "" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


@dataclass(frozen=True)
class Options:
    """What `evaluate` measures beyond the core rows (see `main`'s flags)."""

    criteria: Sequence[str] = ("rmse",)
    methods: bool = True
    curve: Sequence[int] = (5, 10, 20)
    draws: int = 5
    fine_tune: bool = False
    work: Path | None = None


def evaluate(
    corpus: Corpus, encoder: MemoryEncoder, variants: list[tuple[int, float]], options: Options = Options()
) -> str:
    start = time.perf_counter()
    by_answer, by_question = unseen_answer_folds(corpus), unseen_question_folds(corpus)
    cosines = whole_answer_cosines(corpus, encoder)
    rows_a: list[tuple[str, dict]] = []
    rows_q: list[tuple[str, dict]] = []
    notes, extra = [], []
    for max_points, topic_weight in variants:
        graded = grade_corpus(corpus, encoder, max_points, topic_weight)
        vectors = corpus_vectors(corpus, graded, encoder)
        label = f"grader (points <= {max_points}, topic weight {topic_weight:g})"
        item = {(g.student_id, g.question_id): g for g in graded.grades.items}
        default = np.array([item[key].raw_mark for key in graded.keys])
        rows_a.append((f"{label}, no calibration", metrics(corpus, default)))
        for criterion in options.criteria:
            chosen = f"chose by {criterion}: " if len(options.criteria) > 1 else ""
            predicted, methods = calibrated(corpus, graded, by_answer, vectors, criterion=criterion)
            rows_a.append(
                (f"**{label} + Calibrator** ({chosen}{', '.join(sorted(set(methods)))})", metrics(corpus, predicted))
            )
            predicted, methods = calibrated(corpus, graded, by_question, vectors, criterion=criterion)
            rows_q.append(
                (f"{label} + Calibrator ({chosen}{', '.join(sorted(set(methods)))})", metrics(corpus, predicted))
            )
        for method in METHODS[1:] if options.methods else ():
            predicted, _ = calibrated(corpus, graded, by_answer, vectors, method=method)
            rows_a.append((f"{label}, method {method} alone", metrics(corpus, predicted)))
        before = calibrated(corpus, graded, by_answer, None, criterion="mae")[0]
        rows_a.append(
            (
                f"{label} + the Calibrator without marked answers' vectors, by MAE (the five earlier methods)",
                metrics(corpus, before),
            )
        )
        # Diagnostic: the grader's own evidence before the credit curve clips it, mapped like the
        # baseline maps its cosine.
        for field in ("similarity", "score"):
            feature = np.array([weighted_evidence(item[key], field) for key in graded.keys])
            name = f"diagnostic: {label}, weighted point {field}, isotonic per question"
            rows_a.append((name, metrics(corpus, baseline(corpus, feature, by_answer, True))))
        if options.fine_tune and options.work is not None:
            predicted, seconds = fine_tuned(corpus, by_answer, max_points, topic_weight, options.work)
            rows_a.append(
                (
                    f"{label}, encoder fine-tuned on each training half ({seconds:.0f} s of tuning) + Calibrator",
                    metrics(corpus, predicted),
                )
            )
        if options.curve:
            extra.append(
                f"Learning curve ({label}; calibrated on n answers per question, scored on all the others):\n\n"
                + learning_curve(corpus, graded, vectors, options.curve, options.draws)
            )
        points = [len(q.points) for q in graded.rubric.questions]
        notes.append(f"points per question (at most {max_points}): mean {np.mean(points):.2f}, max {max(points)}")
    rows_a.append(
        (
            "baseline: whole-answer cosine + isotonic per question",
            metrics(corpus, baseline(corpus, cosines, by_answer, True)),
        )
    )
    rows_q.append(
        (
            "baseline: whole-answer cosine + pooled isotonic",
            metrics(corpus, baseline(corpus, cosines, by_question, False)),
        )
    )
    if corpus.name.startswith("Mohler"):
        rows_a += [(name, {"r": r, "RMSE": rmse}) for name, r, rmse in MOHLER_PUBLISHED]
    questions = len({a.question_id for a in corpus.answers})
    notes = list(dict.fromkeys(notes))
    head = (
        f"### {corpus.name}: {len(corpus.answers)} answers, {questions} questions\n\n"
        f"{corpus.note}; QWK on steps of {corpus.step:g}; " + "; ".join(notes)
    )
    seconds = time.perf_counter() - start
    return (
        f"{head}\n\nUnseen answers ({ANSWER_FOLDS}-fold within each question: calibrated on "
        f"{'half' if ANSWER_FOLDS == 2 else f'{ANSWER_FOLDS - 1}/{ANSWER_FOLDS}'} of each question's answers):\n\n"
        f"{table(rows_a)}\n\n"
        f"Unseen questions (GroupKFold, {FOLDS} folds over questions; uncalibrated rows as above):\n\n"
        f"{table(rows_q)}\n\n" + "".join(f"{e}\n\n" for e in extra) + f"({seconds:.0f} s for this corpus)\n"
    )


def weighted_evidence(graded: QuestionGrade, field: str) -> float:
    """Marks-weighted `similarity` or `score` of each point's best segment, as a share (0 when blank)."""
    if not graded.points:
        return 0.0
    return sum(p.marks * getattr(p, field) for p in graded.points) / graded.max_mark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("mohler", "saf", "semeval", "all"), default="all")
    parser.add_argument("--limit", type=int, default=0, help="keep a random N answers per corpus (quick runs)")
    parser.add_argument("--saf-per-question", type=int, default=0, help="at most N SAF answers per question (0: all)")
    parser.add_argument("--semeval-sample", type=int, default=0, help="answers per SemEval corpus (0: all)")
    parser.add_argument("--max-points", default=str(MAX_POINTS), help="comma-separated variants, e.g. 6,1")
    parser.add_argument("--topic-weight", default=f"{TOPIC_WEIGHT:g}", help="comma-separated variants, e.g. 0.5,0")
    parser.add_argument(
        "--criterion", default="rmse", help="the Calibrator's choosing error, comma-separated variants: rmse,mae"
    )
    parser.add_argument("--curve", default="5,10,20", help="learning curve: answers marked per question (empty: none)")
    parser.add_argument("--draws", type=int, default=5, help="random draws averaged per learning-curve point")
    parser.add_argument("--no-methods", action="store_true", help="skip the rows of each method alone")
    parser.add_argument(
        "--fine-tune", action="store_true", help="also fine-tune the encoder per fold (minutes per fold on CPU)"
    )
    args = parser.parse_args()

    variants = [(int(p), float(w)) for p in args.max_points.split(",") for w in args.topic_weight.split(",")]
    builders = {
        "mohler": [mohler],
        "saf": [lambda: saf(args.saf_per_question)],
        "semeval": [
            lambda: semeval("beetle", args.semeval_sample),
            lambda: semeval("sciEntsBank", args.semeval_sample),
        ],
    }
    wanted = builders if args.dataset == "all" else {args.dataset: builders[args.dataset]}
    start = time.perf_counter()
    encoder = MemoryEncoder(Encoder.load(device="cpu"))
    for build in (b for bs in wanted.values() for b in bs):
        corpus = build()
        if 0 < args.limit < len(corpus.answers):
            keep = sorted(np.random.default_rng(SEED).choice(len(corpus.answers), args.limit, replace=False))
            kept = [corpus.answers[i] for i in keep]
            count = {q: sum(a.question_id == q for a in kept) for q in {a.question_id for a in kept}}
            kept = [a for a in kept if count[a.question_id] >= 2]  # one answer cannot be held out honestly
            corpus = replace(corpus, answers=kept, note=f"{corpus.note}; --limit {args.limit}")
        with tempfile.TemporaryDirectory() as work:
            options = Options(
                criteria=args.criterion.split(","),
                methods=not args.no_methods,
                curve=[int(n) for n in args.curve.split(",") if n],
                draws=args.draws,
                fine_tune=args.fine_tune,
                work=Path(work),
            )
            print(evaluate(corpus, encoder, variants, options), flush=True)
    print(
        f"total {time.perf_counter() - start:.0f} s, of which encoding {encoder.seconds:.0f} s "
        f"({len(encoder._rows)} distinct texts)"
    )


if __name__ == "__main__":
    main()
