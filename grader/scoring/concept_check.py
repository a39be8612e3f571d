"""A learned contradiction check on the rules' concepts: what a point and a segment do not share.

The polarity rules (`grader.scoring.negation.opposed`) catch a segment that denies a concept the point
asserts. Many wrong answers instead turn the point around with a word of the domain ("in a closed path"
against "separated by a gap"). A logistic regression reads those: each (point, segment) pair becomes
the concepts only one side has (`signed_concepts`, crossed and alone), the concepts the two sides sign
oppositely, and how many of each kind, hashed (`FeatureHasher`, 2^20) and binary. Learned from
SemEval-2013's marked answers (correct against the rest) and from a rubric's own negations
(`grader.scoring.checker.rubric_pairs`); with the rules it caught about twice their share of
contradictory answers on SemEval questions it never saw (bench/README.md, "the concept check").

No network and no torch at grading: a sparse product per batch of pairs. Grading asks it, like the
cross-encoder (`grader.scoring.checker.refute`), only about the segments that would earn a point.
The weights are the features seen in training (`models/concept-check/`, npz), with the threshold and
how they were made (json).

Read whole, an answer is also weighed against every phrasing its question has (`read_answers`): a small
second regression (`READING`) on the check's scores against all of them (lowest, mean, highest, against
the model answer) and the rules' verdicts. A correct answer states *some* phrasing well, a wrong one
none; SemEval's minimal references ("terminal 1 is connected to the negative battery terminal") are
what makes this pay (bench/README.md, "the check read against every reference").

The same two stages learned contradictory against correct only (incorrect answers left out) make the
`opposition`: P(the answer says the opposite of its question), with a threshold chosen together with
the rules. Grading takes every point an answer at or above it would earn (`grade`), in place of asking
the check about single segments: on unseen SemEval questions the rules and the opposition together
flag 38-40 % of contradictory answers for 2.1-2.5 % of correct ones, where the rules and the check
on segments flag 23-26 % (bench/README.md, "the opposition"). The answers it doubts most are read again
by a cross-encoder (`cross`, `grader.scoring.cross_reading`), which then decides for them.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from grader.atomic import write_atomically
from grader.errors import GraderError
from grader.exam.rubric import ShortQuestion
from grader.scoring.checker import Pair
from grader.scoring.checker_train import Marked
from grader.scoring.negation import opposed, polarity, signed_concepts

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

    from grader.scoring.cross_reading import CrossReading

FEATURES = 2**20
STRENGTH = 0.3
"""The regression's C (inverse L2 strength): chosen in question-grouped CV on SemEval (bench/checker_probes.py)."""
FALSE_ALARMS = 0.025
"""Share of out-of-fold correct SemEval answers the rules and the check together may flag."""
FOLDS = 5
WEIGHTS = "concept-check.npz"
META = "concept-check.json"
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "models" / "concept-check"
READING = (
    "lowest",
    "mean",
    "highest",
    "first",
    "rules_all",
    "rules_any",
    "rules_first",
    "log_phrasings",
    "lowest_by_log_phrasings",
)
"""What `reading_features` gives of one answer's scores against its question's phrasings (logits; the
first phrasing is the model answer, or SemEval's first reference), and the rules' verdicts on them."""
OPPOSING = ("entails", "contradicts")
"""The labels the opposition learns from: correct against contradictory, incorrect answers left out."""


def pair_features(point: dict[str, int], segment: dict[str, int]) -> list[str]:
    """The features of one pair from both sides' signed concepts (`signed_concepts`): concepts only one
    side has, crossed and alone; those signed oppositely (alone, and crossed with the point's own);
    and capped counts of each kind."""
    only_point = [f"{c}{'+-'[s < 0]}" for c, s in point.items() if c not in segment]
    only_segment = [f"{c}{'+-'[s < 0]}" for c, s in segment.items() if c not in point]
    opposite = [c for c in point if c in segment and point[c] != segment[c]]
    same = len(point.keys() & segment.keys()) - len(opposite)
    return [
        *(f"X:{r}|{a}" for r in only_point for a in only_segment),
        *(f"A:{a}" for a in only_segment),
        *(f"R:{r}" for r in only_point),
        *(f"D:{c}" for c in opposite),
        *(f"RD:{r}|{c}" for r in only_point for c in opposite),
        f"opposite={min(len(opposite), 3)}",
        f"same={min(same, 4)}",
        f"only_ref={min(len(only_point), 5)}",
        f"only_ans={min(len(only_segment), 5)}",
    ]


def features(pairs: Sequence[tuple[str, str]]):
    """(pairs, FEATURES) binary CSR matrix; each distinct text's concepts found once."""
    from sklearn.feature_extraction import FeatureHasher

    concepts: dict[str, dict[str, int]] = {}
    for text in {t for pair in pairs for t in pair}:
        concepts[text] = signed_concepts(text)
    hasher = FeatureHasher(FEATURES, input_type="string", alternate_sign=False)
    table = hasher.transform([pair_features(concepts[p], concepts[s]) for p, s in pairs]).tocsr()
    table.data[:] = 1
    return table


@dataclass
class ConceptCheck:
    """A loaded check. `contradiction` gives P(not a correct statement of the point) per (point, segment)."""

    weights: np.ndarray
    """(FEATURES,) float32: the regression's coefficient of each hashed feature (0 where never seen)."""
    intercept: float
    threshold: float
    """The score at or above which a segment is read as saying something else than the point."""
    name: str = "concept-check"
    reading: np.ndarray | None = None
    """(len(READING) + 1,): the coefficients of `reading_features`, then the intercept; None in a check
    trained without references (an answer is then read against the first phrasing alone)."""
    opposition: ConceptCheck | None = None
    """The check learned contradictory against correct, with a reading of its own; its `threshold` is on
    that reading (`read_answers`): an answer at or above it says the opposite of its question. None in a
    check trained without references (grading then asks this check about single segments)."""
    cross: CrossReading | None = None
    """The cross-encoder that reads again the answers the opposition doubts most, and decides for them
    (`grader.scoring.cross_reading`); None: the opposition decides alone."""

    def contradiction(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        if not len(pairs):
            return np.zeros(0, dtype=np.float32)
        return self.scores(features(pairs))

    def scores(self, table: csr_matrix) -> np.ndarray:
        """`contradiction` of pairs already hashed (`features`), so checks that read the same pairs share one table."""
        logits = table @ self.weights + self.intercept
        return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


@dataclass(frozen=True)
class PairTable:
    """Answers each paired with every phrasing, hashed and compared by the rules once (`pair_table`):
    only the weights differ between a check and its opposition, so one pass over the pairs serves both."""

    table: csr_matrix
    """(answers * phrasings, FEATURES) `features` of the (phrasing, answer) pairs, answer-major."""
    phrasings: int
    opposite: np.ndarray
    """(answers, phrasings) bool: the rules read the answer as opposing the phrasing."""

    @property
    def answers(self) -> int:
        return self.opposite.shape[0]


def pair_table(phrasings: Sequence[str], answers: Sequence[str]) -> PairTable:
    """Every answer against every phrasing: one `features` call over the pairs and one rules comparison."""
    n = len(phrasings)
    if not len(answers):
        from scipy.sparse import csr_matrix

        return PairTable(csr_matrix((0, FEATURES)), n, np.zeros((0, n), dtype=bool))
    table = features([(p, a) for a in answers for p in phrasings])
    both = polarity([*phrasings, *answers])  # one vocabulary for both sides
    opposite = opposed(both.rows(list(range(n, n + len(answers)))), both.rows(list(range(n))))
    return PairTable(table, n, opposite)


def reading_features(scores: np.ndarray, opposite: np.ndarray) -> np.ndarray:
    """(answers, len(READING)) from the check's (answers, phrasings) scores and the rules' verdicts;
    column 0 is the first phrasing. Any number of phrasings, one or fourteen, gives the same columns."""
    clipped = np.clip(scores.astype(np.float64), 1e-6, 1 - 1e-6)
    logits = np.log(clipped) - np.log1p(-clipped)
    lowest, log_n = logits.min(axis=1), np.full(len(scores), np.log(scores.shape[1]))
    return np.column_stack(
        [
            lowest,
            logits.mean(axis=1),
            logits.max(axis=1),
            logits[:, 0],
            opposite.all(axis=1),
            opposite.any(axis=1),
            opposite[:, 0],
            log_n,
            lowest * log_n,
        ]
    )


def phrasing_features(check: ConceptCheck, pairs: PairTable) -> np.ndarray:
    """`reading_features` of each answer read whole against every phrasing: one sparse product over all
    the pairs, on the rules' verdicts already found."""
    scores = check.scores(pairs.table).reshape(pairs.answers, pairs.phrasings)
    return reading_features(scores, pairs.opposite)


def read_table(check: ConceptCheck, pairs: PairTable) -> np.ndarray:
    """`read_answers` on pairs already built: a check and its opposition read the same `pair_table`."""
    if not pairs.answers:
        return np.zeros(0)
    if check.reading is None:  # the first phrasing alone: its rows of the table
        return check.scores(pairs.table[:: pairs.phrasings]).astype(np.float64)
    return reading_probability(check, phrasing_features(check, pairs))


def reading_probability(check: ConceptCheck, rows: np.ndarray) -> np.ndarray:
    """P(not a correct answer) through `check.reading` from `phrasing_features` already found."""
    logits = rows @ check.reading[:-1] + check.reading[-1]
    return 1.0 / (1.0 + np.exp(-logits))


def read_answers(check: ConceptCheck, phrasings: Sequence[str], answers: Sequence[str]) -> np.ndarray:
    """P(not a correct answer) of each answer read whole against the phrasings (the first one the model
    answer) through `check.reading`; a check without one reads the first phrasing alone (only those
    pairs built). Grading builds the pairs once for both checks (`pair_table`, `read_table`)."""
    if not len(answers):
        return np.zeros(0)
    if check.reading is None:
        return check.contradiction([(phrasings[0], a) for a in answers]).astype(np.float64)
    return read_table(check, pair_table(phrasings, answers))


def question_phrasings(question: ShortQuestion) -> list[str]:
    """The model answer, then every phrasing of every point, each once."""
    return list(dict.fromkeys([question.model_answer, *(t for p in question.points for t in p.phrasings)]))


def answer_doubts(check: ConceptCheck, question: ShortQuestion, answers: Sequence[str]) -> list[float]:
    """Each answer read whole against the question's phrasings (`read_answers`), as the check learned
    SemEval's answers against their references: P(not a correct answer). Not a contradiction flag (the
    threshold plays no part) but evidence a calibration weighs from a TA's marks; on unseen Beetle
    questions it lifted calibrated QWK most where the phrasings include the minimal statements
    (bench/README.md, "the concept check as calibration evidence", "the check read against every reference")."""
    return [float(p) for p in read_answers(check, question_phrasings(question), answers)]


def fit(pairs: Sequence[Pair], strength: float = STRENGTH) -> tuple[np.ndarray, float]:
    """The regression's weights and intercept, learning correct ("entails") against the rest."""
    from sklearn.linear_model import LogisticRegression

    target = np.array([p.label != "entails" for p in pairs])
    if target.all() or not target.any():
        raise GraderError("the concept check needs both correct and other pairs to learn from")
    table = features([(p.point, p.segment) for p in pairs]).tocsc()
    seen = np.flatnonzero(np.diff(table.indptr))  # a feature never seen keeps weight 0 under L2: leave it out
    model = LogisticRegression(C=strength, max_iter=3000).fit(table[:, seen].tocsr(), target)
    weights = np.zeros(FEATURES, dtype=np.float32)
    weights[seen] = model.coef_[0]
    return weights, float(model.intercept_[0])


def rules_flag(pairs: Sequence[tuple[str, str]]) -> np.ndarray:
    """The polarity rules on (point, segment) pairs: True where the segment opposes the point."""
    both = polarity([p for p, _ in pairs] + [s for _, s in pairs])  # one vocabulary for both sides
    n = len(pairs)
    return np.array([bool(opposed(both.rows([n + i]), both.rows([i]))[0, 0]) for i in range(n)], dtype=bool)


def choose_threshold(scores: np.ndarray, flagged: np.ndarray, rate: float) -> float:
    """The least score whose flags, with the rules' (`flagged`), stay within `rate` of these (correct)
    answers: each distinct score a candidate, from the highest down (tied scores stand or fall together)."""
    candidates = np.unique(scores)[::-1]
    if not len(candidates):
        return 0.5
    allowed = float(np.nextafter(candidates[0], np.inf))  # above every score: the check flags none
    for t in candidates:
        if np.mean(flagged | (scores >= t)) > rate:
            break
        allowed = float(t)
    return allowed


def question_folds(questions: Sequence[str], folds: int = FOLDS, seed: int = 0) -> dict[str, int]:
    """Each question's fold: the distinct questions shuffled (seeded), dealt round. Every answer of a
    question lands in one fold, so a fold's answers are scored by a regression that never saw them."""
    ordered = sorted(set(questions))
    random.Random(seed).shuffle(ordered)
    return {q: i % folds for i, q in enumerate(ordered)}


def train(
    examples: Sequence[Marked],
    rubric_pairs: Sequence[Pair] = (),
    *,
    references: Mapping[str, Sequence[str]] | None = None,
    rate: float = FALSE_ALARMS,
    seed: int = 0,
) -> tuple[ConceptCheck, dict]:
    """Fit on every example's learned pair and the rubric pairs; choose the threshold on out-of-fold
    scores (FOLDS question-grouped folds, seeded), so it is chosen on questions the regression did not
    see, as grading meets them. With `references` (each question's phrasings), also learn how an answer
    read against all of them adds up (`READING`), from those out-of-fold scores, and the `opposition`
    from the correct and contradictory examples alone. Returns the check and what it flags there."""
    check, meta, _ = _train(examples, rubric_pairs, references, rate, seed)
    if references is None:
        return check, meta
    opposing = [e for e in examples if e.scored.label in OPPOSING]
    pairs = [p for p in rubric_pairs if p.label in OPPOSING]
    opposition, meta["opposition"], cut = _train(opposing, pairs, references, rate, seed, with_rules=True)
    meta["opposition"]["threshold"] = cut  # on the reading, not on single pairs
    return replace(check, opposition=replace(opposition, threshold=cut, name="opposition")), meta


def _train(
    examples: Sequence[Marked],
    rubric_pairs: Sequence[Pair],
    references: Mapping[str, Sequence[str]] | None,
    rate: float,
    seed: int,
    with_rules: bool = False,
) -> tuple[ConceptCheck, dict, float]:
    """`train` for one target (correct against the rest of `examples`); also the reading's threshold, chosen
    with the rules' flags on the first reference when `with_rules` (NaN without references)."""
    fold = question_folds([e.question for e in examples], FOLDS, seed)
    folds = np.array([fold[e.question] for e in examples])
    scored = [(e.scored.point, e.scored.segment) for e in examples]
    out_of_fold = np.zeros(len(examples), dtype=np.float32)
    read = np.zeros((len(examples), len(READING)))
    for k in range(FOLDS):
        learn = [e.learned for e, f in zip(examples, folds) if f != k] + list(rubric_pairs)
        weights, intercept = fit(learn)
        held = np.flatnonzero(folds == k)
        fold_check = ConceptCheck(weights, intercept, 0.0)
        out_of_fold[held] = fold_check.contradiction([scored[i] for i in held])
        if references is not None:
            read[held] = reading_of(fold_check, [examples[i] for i in held], references)
    labels = np.array([e.scored.label for e in examples])
    rules = rules_flag(scored)
    correct, contradicts = labels == "entails", labels == "contradicts"
    threshold = choose_threshold(out_of_fold[correct], rules[correct], rate)
    flagged = rules | (out_of_fold >= threshold)
    weights, intercept = fit([e.learned for e in examples] + list(rubric_pairs))
    meta = {
        "threshold": threshold,
        "strength": STRENGTH,
        "seed": seed,
        "pairs": {"answers": len(examples), "rubric": len(rubric_pairs)},
        "out_of_fold": {
            "questions": len(fold),
            "folds": FOLDS,
            "contradictory": int(contradicts.sum()),
            "correct": int(correct.sum()),
            "recall_with_rules": round(float(flagged[contradicts].mean()), 4),
            "false_alarms_with_rules": round(float(flagged[correct].mean()), 4),
            "recall_rules_alone": round(float(rules[contradicts].mean()), 4),
            "false_alarms_rules_alone": round(float(rules[correct].mean()), 4),
        },
    }
    reading, cut = None, float("nan")
    if references is not None:
        also = rules if with_rules else np.zeros(len(examples), dtype=bool)
        reading, meta["reading"], cut = _fit_reading(read, ~correct, folds, contradicts, correct, also, rate)
        meta["reading"]["with_rules"] = with_rules
    return ConceptCheck(weights, intercept, threshold, reading=reading), meta, cut


def reading_of(check: ConceptCheck, examples: Sequence[Marked], references: Mapping[str, Sequence[str]]):
    """`phrasing_features` of each example against its question's references, its scored reference first."""
    rows = np.zeros((len(examples), len(READING)))
    by_question: dict[tuple[str, str], list[int]] = {}
    for i, e in enumerate(examples):
        by_question.setdefault((e.question, e.scored.point), []).append(i)
    for (question, first), at in by_question.items():
        phrasings = list(dict.fromkeys([first, *references.get(question, ())]))
        rows[at] = phrasing_features(check, pair_table(phrasings, [examples[i].scored.segment for i in at]))
    return rows


def _fit_reading(
    read: np.ndarray,
    target: np.ndarray,
    folds: np.ndarray,
    contradicts: np.ndarray,
    correct: np.ndarray,
    also: np.ndarray,
    rate: float,
) -> tuple[np.ndarray, dict, float]:
    """The reading's coefficients (then intercept) fitted on all out-of-fold rows; what it flags, with
    `also`'s flags, at `rate` of correct answers when each fold's rows are scored by a reading fitted on
    the others; and that threshold (chosen on those scores)."""
    from sklearn.linear_model import LogisticRegression

    held_out = np.zeros(len(read))
    for k in np.unique(folds):
        model = LogisticRegression(max_iter=5000).fit(read[folds != k], target[folds != k])
        held_out[folds == k] = model.predict_proba(read[folds == k])[:, 1]
    cut = choose_threshold(held_out[correct], also[correct], rate)
    model = LogisticRegression(max_iter=5000).fit(read, target)
    flagged = also | (held_out >= cut)
    report = {
        "recall": round(float(flagged[contradicts].mean()), 4),
        "false_alarms": round(float(flagged[correct].mean()), 4),
        "features": list(READING),
    }
    return np.append(model.coef_[0], model.intercept_[0]), report, cut


def save(check: ConceptCheck, directory: Path, meta: dict) -> None:
    """The weights of the features seen (indices and float32 values), the opposition's beside them
    ("opposition_..."), and the metadata, each written whole."""
    arrays = _arrays(check, "")
    meta = {**meta, "name": check.name, "threshold": check.threshold, "features": FEATURES}
    if check.opposition is not None:
        arrays |= _arrays(check.opposition, "opposition_")
        meta["opposition"] = {**meta.get("opposition", {}), "threshold": check.opposition.threshold}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    text = json.dumps(meta, indent=1, sort_keys=True) + "\n"
    write_atomically({directory / WEIGHTS: buffer.getvalue(), directory / META: text})


def _arrays(check: ConceptCheck, prefix: str) -> dict[str, np.ndarray]:
    seen = np.flatnonzero(check.weights).astype(np.int32)
    arrays = {"index": seen, "weight": check.weights[seen], "intercept": np.float64(check.intercept)}
    if check.reading is not None:
        arrays["reading"] = check.reading.astype(np.float64)
    return {prefix + k: np.asarray(v) for k, v in arrays.items()}


def load(directory: Path) -> ConceptCheck:
    """The check saved in `directory`; a missing or foreign file is refused in one line."""
    weights_path, meta_path = directory / WEIGHTS, directory / META
    if not weights_path.is_file() or not meta_path.is_file():
        missing = f"no concept check ({WEIGHTS} and {META})"
        raise GraderError(f"{directory}: {missing}; run `grader model train-concept-check`")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if int(meta["features"]) != FEATURES:
            raise ValueError(f"hashed into {meta['features']} features, not {FEATURES}")
        name = str(meta.get("name", directory.name))
        with np.load(weights_path) as saved:
            check = _check_from(saved, "", float(meta["threshold"]), name)
            if "opposition_index" in saved.files:
                opposition = _check_from(saved, "opposition_", float(meta["opposition"]["threshold"]), "opposition")
                if opposition.reading is None:
                    raise ValueError("an opposition without its reading")
                check = replace(check, opposition=opposition)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise GraderError(f"{directory}: not a concept check this grader reads ({err})") from None
    return check


def _check_from(saved, prefix: str, threshold: float, name: str) -> ConceptCheck:
    index, weight = saved[prefix + "index"], saved[prefix + "weight"]
    if len(index) and int(index.max()) >= FEATURES:
        raise ValueError(f"a feature index {int(index.max())} past {FEATURES}")
    reading = np.array(saved[prefix + "reading"], dtype=np.float64) if prefix + "reading" in saved.files else None
    if reading is not None and reading.shape != (len(READING) + 1,):
        raise ValueError(f"a reading of {reading.shape[0]} weights, not {len(READING) + 1}")
    weights = np.zeros(FEATURES, dtype=np.float32)
    weights[index] = weight
    return ConceptCheck(weights, float(saved[prefix + "intercept"]), threshold, name, reading)
