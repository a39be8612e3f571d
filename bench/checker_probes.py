"""Probes for the learned contradiction check (issue 12): cheaper models and other ways to read the checker.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/checker_probes.py frozen [--with-cv cv5.npz]   # ~5 CPU-minutes
    HF_HUB_OFFLINE=1 .venv/bin/python bench/checker_probes.py features      # ~5 CPU-minutes
    HF_HUB_OFFLINE=1 .venv/bin/python bench/checker_probes.py lexical       # ~8 CPU-minutes
    HF_HUB_OFFLINE=1 .venv/bin/python bench/checker_probes.py references    # ~2 CPU-minutes
    HF_HUB_OFFLINE=1 .venv/bin/python bench/checker_probes.py reading [--references all|complete] [--seed N]  # 10 min
        [--cross models/cross-encoder/out-of-fold.npz --recipe opposing-full-2e-5x3] [--rubric-like]
    HF_HUB_OFFLINE=1 .venv/bin/python bench/checker_probes.py full --layers 6 --epochs 2 --lr 5e-5   # ~11 minutes
    HF_HUB_OFFLINE=1 .venv/bin/python bench/checker_probes.py exam --identity --replay 1000 --epochs 2 --lr 2e-5
    HF_HUB_OFFLINE=1 .venv/bin/python bench/checker_probes.py rubric --identity --replay 1000 --out /tmp/checker
    HF_HUB_OFFLINE=1 .venv/bin/python bench/checker_probes.py seeds [--checker models/checker]
    HF_HUB_OFFLINE=1 .venv/bin/python bench/checker_probes.py per-point   # ~3 CPU-minutes
    HF_HUB_OFFLINE=1 .venv/bin/python bench/checker_probes.py premise     # ~1 CPU-minute

frozen: no fine-tuning. The packaged all-MiniLM-L6-v2 embeds the reference u and the answer v; a
logistic regression reads (u, v, |u - v|, u * v, cos) and says contradictory or not. Question-grouped
5-fold cross-validation over SemEval-2013 train, the folds of `bench/checker.py cv --folds 5` (answers
scored against their question's first reference, learned against the reference they matched); the
threshold is chosen inside each fold (2 % of the training folds' correct answers), and the best
operating point at <= 3 % false alarms on the scores themselves is shown beside it. The rules
(`grader.scoring.negation.opposed`) and the plain cosine on the same pairs, for comparison.
`--with-cv FILE` (`cv --folds 5 --save FILE`'s scores) adds the checker and the rules combined with it.

features: the same folds; a scaled logistic regression on the frozen embeddings plus the counts the
rules look at (`polarity_features`), and gradient boosting on the cosine plus those counts.

lexical: what the rules miss, learned from the words. Each (reference, answer) pair becomes sparse
features from the rules' signed concepts (`grader.scoring.concept_check.features`): every pair of a
concept only the reference has with one only the answer has ("connect+ | gap+"), each of them alone,
the concepts shared with the opposite sign, and how many of each kind; a logistic regression on those
(hashed), alone and summed with `frozen`'s regression, flagged together with the rules. Nested: the
threshold for each outer fold is chosen on inner question-grouped folds of its training questions (the
rules or the score flagging 2 or 2.5 % of their correct answers), so "chosen inside" is honest.
`--not-correct`: the regressions learn correct against the rest (contradictory and incorrect).

reading: the concept check read against every reference of the question, not the first alone: the
check refitted per question-grouped fold scores each answer against all of them; a second logistic
regression on the summed-up scores (`concept_check.READING`: lowest, mean, highest, first; the rules' verdicts on all,
any, the first; how many references) says P(not correct); thresholds nested (inner question-grouped
folds, 2.5 % of their correct answers). `--references complete`: Beetle's BEST and GOOD ones only.
The last row is the opposition (`concept_check.train`'s): both stages learned from the correct and
contradictory answers alone, flagged with the rules (its threshold chosen with their flags); what
grading asks of each answer. `--seed N` deals the questions into other folds (0: the shipped check's).
`--cross FILE --recipe NAME`: bench/cross_encoder_gpu.py's out-of-fold cross-encoder probabilities
(models/cross-encoder/out-of-fold.npz) read the same way, alone and stacked beside the opposition's
features, and that stack read only for the `--cascade` share of answers the opposition ranks highest.
`--rubric-like`: the opposition also read against the complete references alone (what a rubric made
from them holds), with its threshold from every reference, and learned and cut on both readings.

references: the shipped checker (`models/checker`) on the SemEval questions its training held out
(`grader.scoring.checker_train.split_questions`, seed 0), each answer read against every BEST/GOOD
reference of its question and the probabilities combined: the first reference (what `bench/checker.py`
does), the least contradicting, the one the checker finds most entailing, the mean.

full: `train` with more of the network (all 6 layers), on the same split as `references`;
`--between N` adds N pairs of two students' answers to the same training question (a correct one
against a contradictory one: contradicts; two correct ones: entails, half each), so the checker sees
contradictions worded by students on both sides, not only against a reference; `--question` puts
the question before the reference in every SemEval pair, learned and scored (a rubric has its prompt).

exam: an exam-specific stage. The shipped checker trained further (top `--layers`, head at `--head-rate`
times the rate) on the held-out questions' own reference pairs (`reference_pairs`: negations, other
phrasings, other points; what a rubric gives at grading time, no student answer of those questions),
`--identity` adding each reference against itself and its lower-cased copy as entailing, `--replay N`
adding N SemEval pairs of the training questions; then those questions' answers scored, before and after.

rubric: the same stage on a rubric's pairs (the bundled one), saved to `--out`; then `seeds`.
seeds: the reversals of tests/scoring/test_checker.py (`REVERSALS`) graded with a checker: mark, flags and
P(contradicts) against each phrasing of the question.

per-point: the shipped opposition read against each point's own phrasings, beside the whole-answer
reading grading does. Counts: the bundled rubric's own negated phrasings flagged, our sample's
full-mark and zero-mark answers flagged, and full-mark alarms on Mohler, SAF and the sample (opposition
alone, no rules).

premise: two readings that might turn up a reversal without a reader of deep-learning claims, on our
sample's answers by the marks we gave: the shipped cross-encoder against what a "why" question takes for
granted (`PREMISES`), and I4's answers with its two compared things swapped (`ROLES`), embedded.
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("GRADER_DATASETS", ROOT.parent / "shared" / "datasets"))

from checker import folds_of, recall_at_false_alarms, rules_flag  # noqa: E402  (bench/checker.py, beside this script)

from grader.embedding.encoder import Encoder, default_model_path  # noqa: E402
from grader.exam.files import read_human_marks  # noqa: E402
from grader.exam.rubric import ShortQuestion, load_rubric  # noqa: E402
from grader.scoring.checker import LABELS, Checker, Pair, load, rubric_pairs, tokenizer_for  # noqa: E402
from grader.scoring.checker_train import (  # noqa: E402
    HOLDOUT,
    read_semeval,
    reference_pairs,
    split_questions,
    threshold_for,
    train,
)

SEMEVAL = DATA / "semeval2013_train.csv"
FOLDS = 5
"""`frozen`'s folds: bench/checker.py's `folds_of` with 5, the same questions as `cv --folds 5`."""


def at_false_alarms(scores: np.ndarray, labels: np.ndarray, rate: float) -> tuple[float, float]:
    """`bench/checker.py`'s recall and false alarms at <= `rate`, for scores with SemEval labels (the
    threshold chosen on these scores: an upper bound)."""
    return recall_at_false_alarms(scores[labels == "contradicts"], scores[labels == "entails"], rate)


HEADER = (
    "| model | threshold chosen inside: recall / false alarms | best at <= 3 %: recall / false alarms |\n|---|---|---|"
)


def semeval_vectors():
    """SemEval train's answers, each fold's index (`folds_of`, FOLDS) and a function from pairs to their
    two texts' packaged-model vectors (each distinct text encoded once)."""
    answers, _refs = read_semeval(SEMEVAL)
    texts = list(dict.fromkeys(t for a in answers for t in (a.scored.point, a.scored.segment, a.learned.point)))
    vectors = Encoder.load(device="cpu").encode(texts)
    row = {t: i for i, t in enumerate(texts)}
    fold_of = folds_of([a.question for a in answers], FOLDS)

    def pair_vectors(pairs: list[Pair]) -> tuple[np.ndarray, np.ndarray]:
        return vectors[[row[p.point] for p in pairs]], vectors[[row[p.segment] for p in pairs]]

    return answers, np.array([fold_of[a.question] for a in answers]), pair_vectors


def cross_validated(make, learned: np.ndarray, scored: np.ndarray, labels: np.ndarray, fold: np.ndarray):
    """Out-of-fold P(contradictory) of a fresh `make()` per fold (fit on learned pairs, scored on first
    references), and whether each passes the threshold flagging 2 % of its training folds' correct
    answers."""
    scores, flagged = np.zeros(len(labels)), np.zeros(len(labels), dtype=bool)
    for k in range(FOLDS):
        train_rows, test_rows = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        model = make().fit(learned[train_rows], labels[train_rows] == "contradicts")
        inside = model.predict_proba(scored[train_rows])[:, 1]
        threshold = threshold_for(inside[labels[train_rows] == "entails"], 0.02)
        scores[test_rows] = model.predict_proba(scored[test_rows])[:, 1]
        flagged[test_rows] = scores[test_rows] >= threshold
    return scores, flagged


def table_row(name: str, scores: np.ndarray | None, flagged: np.ndarray | None, labels: np.ndarray) -> None:
    """One row of HEADER: recall / false alarms of `flagged`, and of `scores` at their best under 3 %."""
    inside = best = ""
    if flagged is not None:
        inside = f"{flagged[labels == 'contradicts'].mean():.1%} / {flagged[labels == 'entails'].mean():.1%}"
    if scores is not None:
        best = "{:.1%} / {:.1%}".format(*at_false_alarms(scores, labels, 0.03))
    print(f"| {name} | {inside} | {best} |")


def frozen(args: argparse.Namespace) -> None:
    from sklearn.linear_model import LogisticRegression

    answers, fold, pair_vectors = semeval_vectors()

    def features(pairs):
        u, v = pair_vectors(pairs)
        return np.hstack([u, v, np.abs(u - v), u * v, (u * v).sum(1, keepdims=True)])

    scored, learned = features([a.scored for a in answers]), features([a.learned for a in answers])
    labels = np.array([a.scored.label for a in answers])
    print(HEADER)
    for c in (0.1, 1.0):
        make = lambda c=c: LogisticRegression(C=c, max_iter=2000)  # noqa: E731
        scores, flagged = cross_validated(make, learned, scored, labels, fold)
        table_row(f"logistic regression, C={c:g}", scores, flagged, labels)
    rules = rules_flag([(a.scored.point, a.scored.segment) for a in answers])
    table_row("rules", None, rules, labels)
    table_row("low cosine alone", -scored[:, -1], None, labels)
    if args.with_cv:  # bench/checker.py cv --folds 5 --save's scores: its rows are each fold's, in order
        kept = np.isin(labels, ("entails", "contradicts"))
        order = [i for k in range(FOLDS) for i in np.flatnonzero((fold == k) & kept)]
        saved = np.load(args.with_cv)
        assert (saved["y"] == labels[order]).all(), "not the same folds"
        checker, y, frozen_scores = saved["p"], saved["y"], scores[order]
        for name, combined in (
            ("checker alone", checker),
            ("mean of checker and logistic regression (C=1)", (checker + frozen_scores) / 2),
            ("rules, then checker", checker + saved["r"]),
            ("rules, then mean of both", (checker + frozen_scores) / 2 + saved["r"]),
        ):
            table_row(name, combined, None, y)


def polarity_features(reference: str, answer: str) -> list[float]:
    """Counts the rules look at, as numbers a model can weigh: concepts shared with the same and with
    the opposite sign, how much of the reference the answer covers, verdicts, changed numbers."""
    from grader.scoring.negation import numbers, signed_concepts, verdict

    ref, ans = signed_concepts(reference), signed_concepts(answer)
    shared = ref.keys() & ans.keys()
    agree = sum(ref[c] == ans[c] for c in shared)
    disagree = len(shared) - agree
    denied = sum(v < 0 for v in ans.values())
    changed = bool(numbers(answer)) and bool(numbers(reference)) and not numbers(answer) & numbers(reference)
    return [
        agree,
        disagree,
        disagree / max(1, len(shared)),
        len(shared) / max(1, len(ref)),
        denied,
        denied - sum(v < 0 for v in ref.values()),
        verdict(answer) * verdict(reference),
        float(changed),
        np.log1p(len(answer.split())),
    ]


def features(_: argparse.Namespace) -> None:
    """Frozen embeddings and the rules' counts (`polarity_features`) together, `frozen`'s folds."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    answers, fold, pair_vectors = semeval_vectors()

    def table(pairs: list[Pair]) -> tuple[np.ndarray, np.ndarray]:
        """(embedding features, cosine + counts + rules) for these pairs, each computed once."""
        u, v = pair_vectors(pairs)
        counts = np.array([polarity_features(p.point, p.segment) for p in pairs])
        rules = rules_flag([(p.point, p.segment) for p in pairs])[:, None].astype(float)
        return np.hstack([u, v, np.abs(u - v), u * v]), np.hstack([(u * v).sum(1, keepdims=True), counts, rules])

    labels = np.array([a.scored.label for a in answers])
    scored, learned = table([a.scored for a in answers]), table([a.learned for a in answers])
    models = {
        "logistic regression, embeddings + counts": (
            True,
            lambda: make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=3000)),
        ),
        "gradient boosting, cosine + counts": (False, lambda: HistGradientBoostingClassifier(random_state=0)),
    }
    print(HEADER)
    for name, (embeddings, make) in models.items():
        learned_x, scored_x = (np.hstack(t) if embeddings else t[1] for t in (learned, scored))
        table_row(name, *cross_validated(make, learned_x, scored_x, labels, fold), labels)


RATES = (0.02, 0.025)
"""`lexical`'s targets for false alarms on the inner folds' correct answers."""


def lexical(args: argparse.Namespace) -> None:
    from sklearn.linear_model import LogisticRegression

    from grader.scoring.concept_check import choose_threshold
    from grader.scoring.concept_check import features as concept_features

    answers, fold, pair_vectors = semeval_vectors()

    def words(pairs: list[Pair]):
        return concept_features([(p.point, p.segment) for p in pairs])

    def embedded(pairs: list[Pair]) -> np.ndarray:
        u, v = pair_vectors(pairs)
        return np.hstack([u, v, np.abs(u - v), u * v, (u * v).sum(1, keepdims=True)])

    labels = np.array([a.scored.label for a in answers])
    correct = labels == "entails"
    target = ~correct if args.not_correct else labels == "contradicts"
    questions = np.array([a.question for a in answers])
    rules = rules_flag([(a.scored.point, a.scored.segment) for a in answers])
    learned = {"words": words([a.learned for a in answers]), "embeddings": embedded([a.learned for a in answers])}
    scored = {"words": words([a.scored for a in answers]), "embeddings": embedded([a.scored for a in answers])}
    strength = {"words": 0.3, "embeddings": 1.0}

    def score(parts: tuple[str, ...], fit: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Sum of each part's P(contradictory), fit on `fit` rows (learned pairs), on `rows` (scored)."""
        total = np.zeros(len(rows))
        for part in parts:
            model = LogisticRegression(C=strength[part], max_iter=3000).fit(learned[part][fit], target[fit])
            total += model.predict_proba(scored[part][rows])[:, 1]
        return total

    print(HEADER.replace("chosen inside", "chosen inside (nested), with the rules").replace("model", "check"))
    for parts in (("words",), ("words", "embeddings")):
        scores, cuts = np.zeros(len(labels)), {rate: np.zeros(len(labels)) for rate in RATES}
        for k in range(FOLDS):
            outer, held = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
            inner = folds_of(list(questions[outer]), 4, seed=k)
            inner_fold = np.array([inner[q] for q in questions[outer]])
            inside = np.zeros(len(outer))
            for j in range(4):
                inside[inner_fold == j] = score(parts, outer[inner_fold != j], outer[inner_fold == j])
            ok = correct[outer]
            for rate in RATES:
                cuts[rate][held] = choose_threshold(inside[ok], rules[outer][ok], rate)
            scores[held] = score(parts, outer, held)
        for rate in RATES:
            name = f"rules or logistic regression on {' + '.join(parts)} (inner target {rate:.1%})"
            table_row(name, scores + rules, rules | (scores >= cuts[rate]), labels)


def _reading_rows(scores: np.ndarray, rules: np.ndarray, groups: list[np.ndarray]) -> np.ndarray:
    """(answers, len(READING)): `concept_check.reading_features` of each answer's candidate rows (`groups`,
    its scored reference first)."""
    from grader.scoring.concept_check import reading_features

    return np.vstack([reading_features(scores[None, rows_of], rules[None, rows_of]) for rows_of in groups])


def reading(args: argparse.Namespace) -> None:
    """The concept check read against every reference of the question, not the first alone."""
    from sklearn.linear_model import LogisticRegression

    from grader.scoring.concept_check import STRENGTH, choose_threshold
    from grader.scoring.concept_check import features as concept_features
    from grader.scoring.cross_reading import cross_features

    answers, refs = read_semeval(SEMEVAL)
    kept = {
        q: [t for point in (points[:1] if args.references == "complete" else points) for t in point]
        for q, points in refs.items()
    }
    labels = np.array([a.scored.label for a in answers])
    correct, contradicts = labels == "entails", labels == "contradicts"
    questions = np.array([a.question for a in answers])
    fold_of = folds_of(list(questions), FOLDS, seed=args.seed)
    fold = np.array([fold_of[q] for q in questions])
    candidates, groups, first, rubric_like = [], [], [], []
    for a in answers:
        texts = list(dict.fromkeys([a.scored.point, *kept[a.question]]))
        groups.append(np.arange(len(candidates), len(candidates) + len(texts)))
        complete = set(refs[a.question][0])  # BEST and GOOD: what a rubric made from the references holds
        rubric_like.append(np.array([groups[-1][j] for j, t in enumerate(texts) if j == 0 or t in complete]))
        first.append(len(candidates))
        candidates += [(t, a.scored.segment) for t in texts]
    owner = np.concatenate([np.full(len(g), i) for i, g in enumerate(groups)])
    rules = rules_flag(candidates)
    learned = concept_features([(a.learned.point, a.learned.segment) for a in answers])
    asked = concept_features(candidates)

    def check_scores(fit_rows: np.ndarray, answer_rows: np.ndarray, opposing: bool) -> np.ndarray:
        """The check fitted on `fit_rows`' learned pairs (their correct and contradictory ones alone when
        `opposing`), scoring every candidate of `answer_rows` (NaN elsewhere)."""
        fit_rows = fit_rows[(correct | contradicts)[fit_rows]] if opposing else fit_rows
        model = LogisticRegression(C=STRENGTH, max_iter=3000).fit(learned[fit_rows], ~correct[fit_rows])
        scores, wanted = np.full(len(candidates), np.nan), np.isin(owner, answer_rows)
        scores[wanted] = model.predict_proba(asked[wanted])[:, 1]
        return scores

    first = np.array(first)
    every = np.arange(len(answers))
    names = ["first reference", "every reference", "opposition, with the rules"]
    cross = None
    if args.cross:  # bench/cross_encoder_gpu.py's out-of-fold probabilities, in this function's candidate order
        with np.load(args.cross) as saved:
            cross = cross_features(saved[f"{args.recipe}/seed{args.seed}"].astype(np.float64), groups)
        names += [
            "cross-encoder, every reference",
            "opposition + cross-encoder, with the rules",
            f"the same, the cross-encoder read for the opposition's top {args.cascade:.0%} alone",
        ]
    passed = np.zeros(len(answers), dtype=bool)
    if args.rubric_like:  # each answer also read against the complete references alone, as grading reads it
        names += [
            "opposition, read against the complete references (learned and cut on every reference)",
            "opposition learned on both readings, cut for both: every reference",
            "opposition learned on both readings, cut for both: the complete references",
        ]
    flagged = {name: np.zeros(len(answers), bool) for name in names}
    ranked = {name: np.zeros(len(answers)) for name in names}
    for k in range(FOLDS):
        outer, held = every[fold != k], every[fold == k]
        inner_of = folds_of(list(questions[outer]), 4, seed=k)
        inner = np.array([inner_of[q] for q in questions[outer]])
        ok = correct[outer]
        rules_in = rules[first[outer]]

        def fit_stack(readings, learn, also_in):
            """A second regression on the summed-up scores of one or more readings of the outer training
            answers (their rows stacked), fitted on the answers `learn` selects; its threshold chosen on
            inner folds with `also`'s flags, for each reading, the strictest kept."""
            table, target, chosen = (
                np.vstack(readings),
                np.tile(~correct[outer], len(readings)),
                np.tile(learn, len(readings)),
            )
            scored_in = [np.zeros(len(outer)) for _ in readings]
            for j in range(4):
                fit_on = chosen & np.tile(inner != j, len(readings))
                stack = LogisticRegression(max_iter=5000).fit(table[fit_on], target[fit_on])
                for rows, scores in zip(readings, scored_in):
                    scores[inner == j] = stack.predict_proba(rows[inner == j])[:, 1]
            cut = max(choose_threshold(scores[ok], also_in[ok], 0.025) for scores in scored_in)
            return LogisticRegression(max_iter=5000).fit(table[chosen], target[chosen]), cut

        def score_held(name, stack, cut, rows_out, also_out) -> None:
            ranked[name][held] = stack.predict_proba(rows_out)[:, 1] + also_out
            flagged[name][held] = also_out | (ranked[name][held] >= cut)

        def both_readings(chosen, inside, outside, learn, also_in, also_out) -> None:
            """The opposition read against the complete references: with its stack and cut from every
            reference (what grading does now), and learned and cut on both readings."""
            every_in, every_out = (
                _reading_rows(np.nan_to_num(got), rules, [groups[i] for i in rows])
                for got, rows in ((inside, outer), (outside, held))
            )
            comp_in, comp_out = (
                _reading_rows(np.nan_to_num(got), rules, [rubric_like[i] for i in rows])
                for got, rows in ((inside, outer), (outside, held))
            )
            score_held(chosen[0], *fit_stack([every_in], learn, also_in), comp_out, also_out)
            stack, cut = fit_stack([every_in, comp_in], learn, also_in)
            score_held(chosen[1], stack, cut, every_out, also_out)
            score_held(chosen[2], stack, cut, comp_out, also_out)

        def stacked(name, rows_in, rows_out, learn, also_in, also_out):
            """`fit_stack` on one reading, the held fold scored."""
            stack, cut = fit_stack([rows_in], learn, also_in)
            score_held(name, stack, cut, rows_out, also_out)
            if k == 0:
                print(f"fold 0, {name}:", np.round(stack.coef_[0], 2))
            return stack

        for opposing in (False, True):
            outside = check_scores(outer, held, opposing)
            inside = np.full(len(candidates), np.nan)
            for j in range(4):
                got = check_scores(outer[inner != j], outer[inner == j], opposing)
                inside[~np.isnan(got)] = got[~np.isnan(got)]
            if not opposing:  # the shipped segment check: the first reference, flagged with the rules
                cut = choose_threshold(inside[first[outer]][ok], rules_in[ok], 0.025)
                ranked["first reference"][held] = outside[first[held]] + rules[first[held]]
                flagged["first reference"][held] = rules[first[held]] | (outside[first[held]] >= cut)
            # every reference (the opposition's threshold chosen with the rules' flags, and learned from
            # correct and contradictory answers alone)
            name = names[2] if opposing else names[1]
            also_in = rules_in if opposing else np.zeros(len(outer), bool)
            also_out = rules[first[held]] if opposing else np.zeros(len(held), bool)
            learn = (correct | contradicts)[outer] if opposing else np.ones(len(outer), bool)
            rows_in = _reading_rows(np.nan_to_num(inside), rules, [groups[i] for i in outer])
            rows_out = _reading_rows(np.nan_to_num(outside), rules, [groups[i] for i in held])
            alone = stacked(name, rows_in, rows_out, learn, also_in, also_out)
            if opposing and args.rubric_like:
                both_readings(names[-3:], inside, outside, learn, also_in, also_out)
            if cross is None:
                continue
            if opposing:  # the cross-encoder's scores beside the check's (its out-of-fold ones, inner rows too)
                both_in, both_out = np.hstack([rows_in, cross[outer]]), np.hstack([rows_out, cross[held]])
                stacked(names[4], both_in, both_out, learn, also_in, also_out)
                # the cascade grading could afford: the cross-encoder read only for the answers the
                # opposition alone ranks in its top `--cascade` share (chosen on the outer training answers)
                pre = np.quantile(alone.predict_proba(rows_in)[:, 1], 1 - args.cascade)
                passed[held] = alone.predict_proba(rows_out)[:, 1] >= pre
                flagged[names[5]][held] = also_out | (passed[held] & flagged[names[4]][held])
                ranked[names[5]][held] = np.where(passed[held], ranked[names[4]][held], also_out)
            else:
                stacked(names[3], cross[outer], cross[held], learn, also_in, also_out)
    beetle = np.array([q.startswith("beetle") for q in questions])
    if cross is not None:
        print(f"cascade: {passed.mean():.1%} of the answers read by the cross-encoder")
    print(
        f"references: {args.references}; 5 question-grouped folds (seed {args.seed}), "
        "thresholds nested (2.5 % of inner correct answers)"
    )
    print("| answer read against | all: nested | all: best at <= 3 % | Beetle: nested | SciEntsBank: nested |")
    print("|---|---|---|---|---|")
    for name in ranked:
        cells = []
        for sel in (np.ones(len(answers), bool), beetle, ~beetle):
            f = flagged[name]
            cells.append(f"{f[sel & contradicts].mean():.1%} / {f[sel & correct].mean():.1%}")
        best = "{:.1%} / {:.1%}".format(*at_false_alarms(ranked[name], labels, 0.03))
        print(f"| {name} | {cells[0]} | {best} | {cells[1]} | {cells[2]} |")


def _held_out():
    answers, references = read_semeval(SEMEVAL)
    learn, held = split_questions([a.question for a in answers], HOLDOUT, 0)
    return answers, references, learn, held


def references(args: argparse.Namespace) -> None:
    answers, refs, _learn, held = _held_out()
    checker = load(Path(args.checker), default_model_path())
    test = [a for a in answers if a.question in held and a.scored.label in ("entails", "contradicts")]
    pairs = [(r, a.scored.segment) for a in test for r in refs[a.question][0]]
    probabilities = checker.probabilities(pairs)
    contradicts, entails = LABELS.index("contradicts"), LABELS.index("entails")
    labels = np.array([a.scored.label for a in test])
    ways: dict[str, list[float]] = {"first reference": [], "least contradicting": [], "most entailing": [], "mean": []}
    at = 0
    for a in test:
        p = probabilities[at : at + len(refs[a.question][0])]
        at += len(p)
        ways["first reference"].append(p[0, contradicts])
        ways["least contradicting"].append(p[:, contradicts].min())
        ways["most entailing"].append(p[np.argmax(p[:, entails]), contradicts])
        ways["mean"].append(p[:, contradicts].mean())
    counts = f"{sum(labels == 'contradicts')} contradictory / {sum(labels == 'entails')} correct"
    print(f"{len(held)} held-out questions: {counts}")
    print("| references read as | recall at <= 2 % | recall at <= 3 % |\n|---|---|---|")
    for name, scores in ways.items():
        scores = np.array(scores)
        two, three = at_false_alarms(scores, labels, 0.02)[0], at_false_alarms(scores, labels, 0.03)[0]
        print(f"| {name} | {two:.1%} | {three:.1%} |")


def full(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    answers, refs, learn, held = _held_out()
    rubric = load_rubric(ROOT / "rubrics" / "dl-midsem.yaml")
    asked = _questions() if args.question else {}

    def framed(pair: Pair, question: str) -> Pair:
        return Pair(f"{asked[question]} {pair.point}", pair.segment, pair.label) if asked else pair

    pairs = [framed(a.learned, a.question) for a in answers if a.question in learn]
    pairs += reference_pairs({q: r for q, r in refs.items() if q in learn})
    pairs += [p for q in rubric.questions if isinstance(q, ShortQuestion) for p in rubric_pairs(q)]
    pairs += between_answers([a for a in answers if a.question in learn], args.between)
    base = default_model_path()
    started = time.perf_counter()
    model = train(pairs, base, epochs=args.epochs, learning_rate=args.lr, seed=0, trained_layers=args.layers)
    seconds = time.perf_counter() - started
    checker = Checker(model, tokenizer_for(base), 1.0, "probe")
    scored = [framed(a.scored, a.question) for a in answers if a.question in held]
    scores = checker.contradiction([(s.point, s.segment) for s in scored])
    labels = np.array([s.label for s in scored])
    two, three = at_false_alarms(scores, labels, 0.02), at_false_alarms(scores, labels, 0.03)
    print(
        f"{args.layers} layers, {args.epochs} epochs, learning rate {args.lr:g}, {args.between} answer pairs, "
        f"question {'before the reference' if args.question else 'not read'}: "
        f"{len(pairs)} pairs, {seconds:.0f} s; "
        f"recall {two[0]:.1%} at <= 2 %, {three[0]:.1%} at <= 3 % false alarms ({len(held)} held-out questions)"
    )


def stage(checker: Checker, pairs: list[Pair], replay: list[Pair], args: argparse.Namespace) -> None:
    """Train `checker` further on `pairs` (its top `--layers` and head): `--identity` adds each point
    against itself and its lower-cased copy as entailing, `--replay` that many of `replay`."""
    import torch

    torch.set_num_threads(args.threads)
    if args.identity:
        points = {p.point for p in pairs}
        pairs = pairs + [Pair(t, t, "entails") for t in points]
        pairs += [Pair(t, t.lower().rstrip("."), "entails") for t in points]
    if args.replay:
        pairs = pairs + random.Random(0).sample(replay, args.replay)
    layers = len(checker.model.encoder.encoder.layer)
    top = tuple(f"layer.{i}." for i in range(layers - args.layers, layers))
    for name, p in checker.model.named_parameters():
        p.requires_grad = name.startswith("head.") or any(t in name for t in top)
    started = time.perf_counter()
    base, rate = default_model_path(), args.head_rate
    train(pairs, base, epochs=args.epochs, learning_rate=args.lr, head_rate=rate, start=checker.model)
    counts = dict(collections.Counter(p.label for p in pairs))
    print(f"stage: {len(pairs)} pairs {counts}, {time.perf_counter() - started:.0f} s")


def exam(args: argparse.Namespace) -> None:
    """The shipped checker, then trained further on the held-out questions' own reference pairs (what a
    rubric gives at grading time: no student answer of those questions), scored on their answers."""
    answers, refs, _learn, held = _held_out()
    checker = load(Path(args.checker), default_model_path())
    scored = [(a.scored.point, a.scored.segment) for a in answers if a.question in held]
    labels = np.array([a.scored.label for a in answers if a.question in held])
    before = checker.contradiction(scored)
    own = reference_pairs({q: r for q, r in refs.items() if q in held})
    stage(checker, own, [a.learned for a in answers if a.question not in held], args)
    after = checker.contradiction(scored)
    print(f"{len(held)} held-out questions")
    for name, scores in (("shipped", before), (f"+ exam stage, {args.epochs} epochs, lr {args.lr:g}", after)):
        two, three = at_false_alarms(scores, labels, 0.02), at_false_alarms(scores, labels, 0.03)
        print(f"| {name} | {two[0]:.1%} at <= 2 % | {three[0]:.1%} at <= 3 % |")


def rubric_stage(args: argparse.Namespace) -> None:
    """The shipped checker trained further on one rubric's pairs, saved to `--out`; then `seed_cases`."""
    from grader.scoring.checker import META, save

    checker = load(Path(args.checker), default_model_path())
    rubric = load_rubric(Path(args.rubric))
    own = [p for q in rubric.questions if isinstance(q, ShortQuestion) for p in rubric_pairs(q)]
    stage(checker, own, [a.learned for a in read_semeval(SEMEVAL)[0]], args)
    save(checker.model, Path(args.out), json.loads((Path(args.checker) / META).read_text()))
    seed_cases(checker)


def seed_cases(checker: Checker) -> None:
    from grader.exam.submissions import parse_submissions
    from grader.scoring.grade import grade
    from tests.scoring.test_checker import REVERSALS

    rubric = load_rubric(ROOT / "rubrics" / "dl-midsem.yaml")
    encoder = Encoder.load(device="cpu")
    for question, answer in REVERSALS:
        q = rubric.question(question)
        p = checker.contradiction([(t, answer) for point in q.points for t in point.phrasings])
        submissions = parse_submissions(f'student_id,{question}\nx1,"{answer}"\n', "one.csv", rubric.question_ids)
        g = next(g for g in grade(rubric, submissions, encoder, checker=checker).items if g.question_id == question)
        print(f"{question}: mark {g.mark}, flags {[f.code for f in g.flags]}, P(contradicts) {np.round(p, 2).tolist()}")


def _questions() -> dict[str, str]:
    """Each SemEval question's own text, by the question key `read_semeval` uses."""
    with SEMEVAL.open(encoding="utf-8", newline="") as handle:
        return {f"{r['corpus']}/{r['question_id']}": r["question"] for r in csv.DictReader(handle)}


def between_answers(answers, count: int, seed: int = 0) -> list[Pair]:
    """`count` seeded pairs of two answers to one question: correct vs contradictory, correct vs correct."""
    rng = random.Random(seed)
    by_question: dict[str, dict[str, list[str]]] = {}
    for a in answers:
        by_question.setdefault(a.question, {}).setdefault(a.scored.label, []).append(a.scored.segment)
    usable = sorted(q for q, got in by_question.items() if len(got.get("entails", [])) >= 2)
    found: list[Pair] = []
    while usable and len(found) < count:
        got = by_question[rng.choice(usable)]
        first, second = rng.sample(got["entails"], 2)
        if len(found) % 2 == 0 and got.get("contradicts"):
            found.append(Pair(first, rng.choice(got["contradicts"]), "contradicts"))
        elif len(found) % 2 == 1:
            found.append(Pair(first, second, "entails"))
    return found


def per_point(_: argparse.Namespace) -> None:
    """The shipped opposition read per point (each point against its own phrasings, its text first) beside
    the whole-answer reading grading does: the rubric's own negations, our sample's marks, full-mark alarms."""
    from checker import MARKS, SAMPLE, full_mark_classes

    from grader.exam.submissions import read_submissions
    from grader.scoring import concept_check
    from grader.scoring.concept_check import pair_table, question_phrasings, reading_features, reading_probability

    opposition = concept_check.load(concept_check.DEFAULT_DIR).opposition
    cut = opposition.threshold

    def readings(question, texts: list[str], model_answer: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(answers,) P read whole, and (answers, points) P read against each point's phrasings."""
        phrasings = question_phrasings(question)
        table = pair_table(phrasings, texts)
        scores = opposition.scores(table.table).reshape(table.answers, table.phrasings)
        whole = reading_probability(opposition, reading_features(scores, table.opposite))
        column = {t: i for i, t in enumerate(phrasings)}
        per = []
        for point in question.points:
            own = list(dict.fromkeys([question.model_answer] * model_answer + list(point.phrasings)))
            at = [column[t] for t in own]
            per.append(reading_probability(opposition, reading_features(scores[:, at], table.opposite[:, at])))
        return whole, np.column_stack(per)

    rubric = load_rubric(ROOT / "rubrics" / "dl-midsem.yaml")
    shorts = [q for q in rubric.questions if isinstance(q, ShortQuestion)]
    for model_answer in (False, True):
        negations, whole_hits, point_hits, caught = 0, 0, 0, []
        for q in shorts:
            pairs = rubric_pairs(q)
            for k, point in enumerate(q.points):
                texts = list(
                    dict.fromkeys(x.segment for x in pairs if x.label == "contradicts" and x.point in point.phrasings)
                )
                if texts:
                    whole, per = readings(q, texts, model_answer)
                    negations += len(texts)
                    whole_hits += int((whole >= cut).sum())
                    point_hits += int((per[:, k] >= cut).sum())
                    caught += [f"{q.id} {w:.2f}" for w, p in zip(whole, per[:, k]) if p >= cut]
        first = "the model answer, then the point's phrasings" if model_answer else "the point's phrasings"
        print(
            f"rubric negations ({first}): {negations}; flagged read whole {whole_hits}, on their own point "
            f"{point_hits} (whole-answer P of those: {', '.join(caught)})"
        )
    submissions = read_submissions(SAMPLE, rubric.question_ids)
    marks = read_human_marks(MARKS)
    counts = collections.Counter()
    for q in shorts:
        students = [s for s in submissions.students if submissions.answer(s, q.id).strip() and (s, q.id) in marks]
        whole, per = readings(q, [submissions.answer(s, q.id) for s in students])
        for s, w, p in zip(students, whole, per.max(1)):
            kind = "full" if marks[(s, q.id)] >= q.marks else "zero" if marks[(s, q.id)] == 0 else "between"
            counts[kind] += 1
            counts[kind, "whole"] += int(w >= cut)
            counts[kind, "point"] += int(p >= cut)
    for kind in ("full", "zero"):
        print(
            f"sample answers we marked {kind}: {counts[kind]}; flagged read whole {counts[kind, 'whole']}, "
            f"per point {counts[kind, 'point']}"
        )
    print(
        "| full-mark answers | n | points a question | read whole | per point "
        "| whole-answer P of the per-point alarms (10/50/90 %) |"
    )
    print("|---|---|---|---|---|---|")
    for name, r, subs, keys in full_mark_classes():
        n, whole_hits, point_hits, wholes, points = 0, 0, 0, [], []
        for q in [q for q in r.questions if isinstance(q, ShortQuestion)]:
            students = [
                s for s in subs.students if subs.answer(s, q.id).strip() and (keys is None or (s, q.id) in keys)
            ]
            if not students:
                continue
            whole, per = readings(q, [subs.answer(s, q.id) for s in students])
            flagged = per.max(1) >= cut
            n, whole_hits, point_hits = (
                n + len(students),
                whole_hits + int((whole >= cut).sum()),
                point_hits + int(flagged.sum()),
            )
            wholes += list(whole[flagged])
            points.append(len(q.points))
        spread = ", ".join(f"{x:.2f}" for x in np.quantile(wholes, [0.1, 0.5, 0.9])) if wholes else "-"
        print(
            f"| {name} | {n} | {np.mean(points):.1f} | {whole_hits} ({whole_hits / n:.1%}) "
            f"| {point_hits} ({point_hits / n:.1%}) | {spread} |",
            flush=True,
        )


PREMISES = {
    "A1a": ("ReLU is necessary.", "ReLU is needed."),
    "I5": (
        "The activation function of a single hidden layer MLP has to be non-polynomial.",
        "The activation must not be a polynomial.",
    ),
}
"""What the two "why" questions of the bundled rubric take for granted, written by hand: an upper bound
for any rule that would derive them from the prompt."""
ROLES = (r"neural net\w*|\bD?NNs?\b", r"fourier(?: series)?")
"""I4's two compared things, as the rubric's phrasings and the sample's answers name them."""


def premise(_: argparse.Namespace) -> None:
    """Two readings that might catch a reversal without a reader of deep-learning claims, on our sample's
    answers by the mark we gave, beside the reversals' wordings:

    - the question's premise: the shipped cross-encoder reads each answer against what a "why" question
      takes for granted (A1a, I5); highest P(contradicts) over the premise's two wordings;
    - the roles swapped: I4's answer with its two compared things exchanged, embedded with the packaged
      all-MiniLM-L6-v2; how much closer the swapped answer comes to the nearest phrasing of the point
      (a reversal should come closer)."""
    import re

    from checker import MARKS, SAMPLE
    from exam_tuning import REVERSALS

    from grader.exam.submissions import read_submissions
    from grader.scoring.cross_reading import DEFAULT_DIR, load_reading

    rubric = load_rubric(ROOT / "rubrics" / "dl-midsem.yaml")
    submissions = read_submissions(SAMPLE, rubric.question_ids)
    marks = read_human_marks(MARKS)

    def answers(question: str) -> tuple[list[str], list[str]]:
        """(kinds, texts): our reversals, then the sample's answers by the share of the marks we gave."""
        students = [s for s in submissions.students if (s, question) in marks and submissions.answer(s, question)]
        full = rubric.question(question).marks
        kinds = ["reversal"] * len(REVERSALS[question]) + [
            "full" if marks[(s, question)] >= full else "zero" if marks[(s, question)] == 0 else "part"
            for s in students
        ]
        return kinds, REVERSALS[question] + [submissions.answer(s, question) for s in students]

    def report(question: str, what: str, kinds: list[str], scores: np.ndarray) -> None:
        full = scores[np.array(kinds) == "full"]
        print(
            f"{question} ({what}): full-mark answers ({len(full)}) "
            f"median {np.median(full):.3f}, highest {full.max():.3f}"
        )
        for kind in ("reversal", "zero"):
            got = [x for k, x in zip(kinds, scores) if k == kind]
            above = sum(x > full.max() for x in got)
            print(
                f"  {kind}: {len(got)}, above every full-mark answer {above}; {', '.join(f'{x:.3f}' for x in got[:4])}"
            )

    network = load_reading(DEFAULT_DIR, default_model_path()).checker
    for question, wordings in PREMISES.items():
        kinds, texts = answers(question)
        p = network.probabilities([(w, t) for t in texts for w in wordings])[:, LABELS.index("contradicts")]
        report(question, "P(contradicts) against its premise", kinds, p.reshape(len(texts), len(wordings)).max(1))

    encoder = Encoder.load(device="cpu")
    first, second = (re.compile(r, re.IGNORECASE) for r in ROLES)

    def swapped(text: str) -> str:
        marked = second.sub("\x01", first.sub("\x00", text))
        return marked.replace("\x00", "Fourier series").replace("\x01", "neural networks")

    kinds, texts = answers("I4")
    phrasings = list(rubric.question("I4").points[0].phrasings)
    vectors = encoder.encode(phrasings + texts + [swapped(t) for t in texts])
    point, plain, turned = vectors[: len(phrasings)], vectors[len(phrasings) : -len(texts)], vectors[-len(texts) :]
    gain = (turned @ point.T).max(1) - (plain @ point.T).max(1)
    report("I4", "cosine gained with the roles swapped", kinds, gain)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    cold = sub.add_parser("frozen")
    cold.add_argument("--with-cv", default="", help="bench/checker.py cv --folds 5 --save's .npz, to combine")
    cold.set_defaults(run=frozen)
    sub.add_parser("features").set_defaults(run=features)
    read = sub.add_parser("reading")
    read.add_argument(
        "--references",
        choices=("all", "complete"),
        default="all",
        help="Beetle's BEST, GOOD and MINIMAL references, or the complete ones (BEST, GOOD) alone",
    )
    read.add_argument("--cross", help="bench/cross_encoder_gpu.py train's cross.npz: add the cross-encoder's rows")
    read.add_argument("--recipe", default="top3-1.5e-4x1", help="which of --cross's recipes")
    read.add_argument("--cascade", type=float, default=0.25, help="share of answers --cross's cascade reads")
    read.add_argument(
        "--rubric-like", action="store_true", help="also read each answer against its complete references alone"
    )
    read.add_argument(
        "--seed", type=int, default=0, help="how the questions are dealt into folds (0: the shipped check's)"
    )
    read.set_defaults(run=reading)
    words = sub.add_parser("lexical")
    words.add_argument("--not-correct", action="store_true", help="learn correct against the rest, not contradictory")
    words.set_defaults(run=lexical)
    refs = sub.add_parser("references")
    refs.add_argument("--checker", default=str(ROOT / "models" / "checker"))
    refs.set_defaults(run=references)
    trained = sub.add_parser("full")
    trained.add_argument("--layers", type=int, default=6)
    trained.add_argument("--epochs", type=int, default=2)
    trained.add_argument("--lr", type=float, default=5e-5)
    trained.add_argument("--threads", type=int, default=2)
    trained.add_argument("--between", type=int, default=0, help="pairs of two students' answers to add")
    trained.add_argument("--question", action="store_true", help="the question before the reference")
    trained.set_defaults(run=full)
    adapted = sub.add_parser("exam")
    adapted.set_defaults(run=exam)
    staged = sub.add_parser("rubric")
    staged.add_argument("--rubric", default=str(ROOT / "rubrics" / "dl-midsem.yaml"))
    staged.add_argument("--out", required=True)
    staged.set_defaults(run=rubric_stage)
    for stage_parser in (adapted, staged):
        stage_parser.add_argument("--checker", default=str(ROOT / "models" / "checker"))
        stage_parser.add_argument("--layers", type=int, default=3)
        stage_parser.add_argument("--epochs", type=int, default=3)
        stage_parser.add_argument("--lr", type=float, default=5e-5)
        stage_parser.add_argument("--head-rate", type=float, default=1.0)
        stage_parser.add_argument("--threads", type=int, default=2)
        stage_parser.add_argument("--identity", action="store_true")
        stage_parser.add_argument("--replay", type=int, default=0)
    sub.add_parser("per-point").set_defaults(run=per_point)
    sub.add_parser("premise").set_defaults(run=premise)
    seeds = sub.add_parser("seeds")
    seeds.add_argument("--checker", default=str(ROOT / "models" / "checker"))
    seeds.set_defaults(run=lambda a: seed_cases(load(Path(a.checker), default_model_path())))
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
