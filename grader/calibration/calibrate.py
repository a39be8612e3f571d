"""Learn how an exam's evidence maps to marks, from answers a TA has marked.

`Calibrator` follows the scikit-learn contract: parameters in the constructor, `fit` learns,
`predict` answers, fitted state ends in `_`. Like scikit-learn's `calibration.py`, each way of
turning evidence into marks is a small estimator (`fit` / `predict` / `to_params` / `from_params`)
named by a `Method`, and the Calibrator chooses among them by cross-validation:

- ``default``: the uncalibrated mark (the shipped credit curve), the bar to beat;
- ``isotonic``: per question, a monotone map from the unclipped default mark to the TA's mark (questions with
  fewer than `min_per_question` marked answers use one map pooled over all questions);
- ``pooled``: one ridge model over all questions on question-agnostic features (default mark,
  weighted match score, best/worst point score, pattern hits, contradictions, answer length),
  followed by a monotone map, so a question with few marks borrows strength from the others;
- ``thresholds``: per question, the credit curve (low, high) that best fits the TA's marks (pooled
  when a question has too few), i.e. per-point thresholds under the question's own marks;
- ``similarity``: as ``isotonic``, on each point's plain cosine similarity, without the discount
  for echoing the question (where students must restate the question, the discount hides what
  separates answers);
- ``exemplar``: one ridge model pooled over questions on the rubric evidence *and* the marked answers
  themselves (`grader.calibration.exemplars`: the marks of the nearest marked answers, similarity to the best and
  worst ones, overlap with the model answer), with the weights of rubric evidence bounded so more
  evidence never lowers a mark, then corrected by what the model got wrong on the nearest marked
  answers (their residuals). It needs the answers' vectors (`AnswerVectors`).

Choosing by cross-validation is itself noisy: with a few dozen marked answers per question the
method with the lowest held-out error often wins by luck, and that is how calibrating on an
expert's marks once made marks worse than none. So the cross-validation is repeated, and a method
replaces the default only where it beats it by more than one standard error of the paired
difference (the "one standard error" rule); among the others, the lowest error wins.

Blank answers stay 0 and MCQs are never touched. The fitted state is plain numbers (and, for
``exemplar``, the marked answers' vectors, ids and marks), saved as a versioned JSON file that
records the model and rubric it was fitted with, and is refused with any other.
"""

from __future__ import annotations

import base64
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
from scipy.optimize import lsq_linear
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold

from grader.atomic import write_atomically
from grader.calibration import exemplars
from grader.calibration.exemplars import AnswerVectors, MarkedAnswers
from grader.calibration.methods import CRITERIA, METHODS, Method
from grader.errors import GraderError, InputError
from grader.exam.rubric import Rubric, ShortQuestion
from grader.scoring import flags as flagging
from grader.scoring.grade import SCORE_SHIFT, Grades, Neighbour, QuestionGrade, apply_curve
from grader.scoring.match import DEFAULT_CURVE, TOPIC_WEIGHT, CreditCurve, PointMatch, round_to_step

FORMAT = "grader-calibration"
FORMAT_VERSION = 3
READS_VERSIONS = (1, 2, 3)
"""Version 1 files (before ``exemplar``) are read as they were written; version 3 added the feature
``concept_doubt``, so a ``pooled`` or ``exemplar`` model of an earlier file is refused (re-run calibrate)."""
REPEATS = 3
"""Times the cross-validation is repeated with other folds, to steady the choice of method."""
FEATURES = (
    "default_share",
    "weighted_score",
    "best_score",
    "worst_score",
    "credit_share",
    "pattern_share",
    "contradicted",
    "log_words",
    "concept_doubt",
)
RUBRIC_FEATURES = (*FEATURES, "evidence", "similarity_share")
_CURVES = [
    CreditCurve(round(low, 3), round(low + width, 3))
    for low in np.arange(0.0, 0.65, 0.025)
    for width in (0.05, 0.1, 0.15, 0.2, 0.3, 0.4)
    if low + width <= 1.0
]


@dataclass(frozen=True)
class Example:
    """A graded short answer, the TA's mark (NaN when unmarked) and, where known, its vector and lexical features."""

    question: ShortQuestion
    grade: QuestionGrade
    human: float
    vector: np.ndarray | None = None
    lexical: np.ndarray | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.grade.student_id, self.question.id)


def answer_features(question: ShortQuestion, grade: QuestionGrade) -> np.ndarray:
    """Question-agnostic features of one graded, non-blank answer (order: FEATURES)."""
    weights = np.array([p.marks for p in grade.points]) / question.marks
    scores = np.array([p.score for p in grade.points])
    credits = np.array([p.credit for p in grade.points])
    return np.array(
        [
            grade.raw_mark / question.marks,
            float(weights @ scores),
            float(scores.max()),
            float(scores.min()),
            float(weights @ credits),
            float(np.mean([p.pattern is not None for p in grade.points])),
            float(any(p.contradiction is not None for p in grade.points)),
            math.log1p(grade.words),
            _logit(grade.concept_doubt),
        ]
    )


def _logit(probability: float | None) -> float:
    """The concept check's doubt on the scale its regression learned it (NaN without the check: a
    model fills it with its training mean, so it moves no mark)."""
    if probability is None:
        return math.nan
    p = min(max(probability, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def examples(
    grades: Grades, rubric: Rubric, human: Mapping[tuple[str, str], float], answers: AnswerVectors | None = None
) -> list[Example]:
    """The non-blank short answers that a TA marked, paired with those marks."""
    return [e for e in _answered(grades, rubric, answers, human) if not math.isnan(e.human)]


def _answered(
    grades: Grades, rubric: Rubric, answers: AnswerVectors | None, human: Mapping[tuple[str, str], float] | None = None
) -> list[Example]:
    found = []
    for g in grades.items:
        question = rubric.question(g.question_id)
        key = (g.student_id, g.question_id)
        if isinstance(question, ShortQuestion) and g.points:
            mark = float(human[key]) if human is not None and key in human else math.nan
            if human is not None and math.isnan(mark):
                continue
            vector = answers.vectors.get(key) if answers is not None else None
            lexical = answers.lexical.get(key) if answers is not None else None
            found.append(Example(question, g, mark, vector, lexical))
    return found


# ---- the estimators: examples -> raw (unrounded) marks ------------------------------------------


class MarkModel(ABC):
    """One way of turning an answer's evidence into its mark: an estimator the Calibrator chooses among."""

    method: ClassVar[Method]

    def __init__(self, min_per_question: int = 10) -> None:
        self.min_per_question = min_per_question

    @abstractmethod
    def fit(self, found: Sequence[Example]) -> MarkModel: ...

    @abstractmethod
    def raw_marks(self, found: Sequence[Example]) -> np.ndarray:
        """Marks before rounding to each question's step."""

    def predict(self, found: Sequence[Example]) -> np.ndarray:
        """Marks rounded to each question's step."""
        return np.array(
            [round_to_step(r, e.question.step, e.question.marks) for r, e in zip(self.raw_marks(found), found)]
        )

    @abstractmethod
    def to_params(self) -> dict: ...

    @classmethod
    @abstractmethod
    def from_params(cls, params: Mapping) -> MarkModel: ...

    def neighbours(self, found: Sequence[Example]) -> list[tuple[Neighbour, ...]]:
        """The marked answers each mark leaned on (none, but for the exemplar method)."""
        return [() for _ in found]

    @property
    def needs_vectors(self) -> bool:
        return False


def _from_shares(shares: np.ndarray, found: Sequence[Example]) -> np.ndarray:
    return np.array([float(np.clip(s, 0, 1)) * e.question.marks for s, e in zip(shares, found)])


class DefaultMarks(MarkModel):
    """The shipped credit curve's mark, unchanged."""

    method = Method.DEFAULT

    def fit(self, found: Sequence[Example]) -> DefaultMarks:
        return self

    def raw_marks(self, found: Sequence[Example]) -> np.ndarray:
        return _from_shares(np.array([_share(e) for e in found]), found)

    def to_params(self) -> dict:
        return {}

    @classmethod
    def from_params(cls, params: Mapping) -> DefaultMarks:
        return cls()


class IsotonicMarks(MarkModel):
    """Per question (pooled where a question has few marks), a monotone map of one evidence number."""

    method = Method.ISOTONIC

    def evidence(self, e: Example) -> float:
        return _evidence(e)

    def fit(self, found: Sequence[Example]) -> IsotonicMarks:
        self.pooled_ = _isotonic([self.evidence(e) for e in found], [e.human / e.question.marks for e in found])
        self.questions_ = {
            qid: _isotonic([self.evidence(e) for e in group], [e.human / e.question.marks for e in group])
            for qid, group in _by_question(found).items()
            if len(group) >= self.min_per_question
        }
        return self

    def raw_marks(self, found: Sequence[Example]) -> np.ndarray:
        shares = [_interp(self.questions_.get(e.question.id, self.pooled_), self.evidence(e)) for e in found]
        return _from_shares(np.array(shares), found)

    def to_params(self) -> dict:
        return {"pooled": self.pooled_, "questions": self.questions_}

    @classmethod
    def from_params(cls, params: Mapping) -> IsotonicMarks:
        model = cls()
        model.pooled_, model.questions_ = dict(params["pooled"]), dict(params["questions"])
        return model


class SimilarityMarks(IsotonicMarks):
    """As isotonic, on each point's plain cosine (no discount for echoing the question)."""

    method = Method.SIMILARITY

    def evidence(self, e: Example) -> float:
        return _similarity(e)


class PooledRidge(MarkModel):
    """One ridge model over every question's answers, then a monotone map of its output. A feature
    missing for an answer (NaN: `concept_doubt` without the concept check) is filled with its training mean."""

    method = Method.POOLED

    def fit(self, found: Sequence[Example]) -> PooledRidge:
        x = np.stack([answer_features(e.question, e.grade) for e in found])
        y = np.array([e.human / e.question.marks for e in found])
        self.fill_ = _column_means(x)
        x = np.where(np.isnan(x), self.fill_, x)
        self.mean_, self.scale_ = x.mean(axis=0), x.std(axis=0)
        self.scale_[self.scale_ == 0] = 1.0
        ridge = Ridge(alpha=1.0).fit((x - self.mean_) / self.scale_, y)
        self.coef_, self.intercept_ = ridge.coef_, float(ridge.intercept_)
        self.monotone_ = _isotonic(ridge.predict((x - self.mean_) / self.scale_).tolist(), y.tolist())
        return self

    def raw_marks(self, found: Sequence[Example]) -> np.ndarray:
        x = np.stack([answer_features(e.question, e.grade) for e in found])
        x = np.where(np.isnan(x), self.fill_, x)
        linear = ((x - self.mean_) / self.scale_) @ self.coef_ + self.intercept_
        return _from_shares(np.array([_interp(self.monotone_, v) for v in linear]), found)

    def to_params(self) -> dict:
        return {
            "features": list(FEATURES),
            "fill": self.fill_.tolist(),
            "mean": self.mean_.tolist(),
            "scale": self.scale_.tolist(),
            "coef": self.coef_.tolist(),
            "intercept": self.intercept_,
            "monotone": self.monotone_,
        }

    @classmethod
    def from_params(cls, params: Mapping) -> PooledRidge:
        _same_features(params, FEATURES)
        model = cls()
        model.fill_ = np.array(params["fill"], dtype=np.float64)
        model.mean_, model.scale_ = np.array(params["mean"]), np.array(params["scale"])
        model.coef_, model.intercept_ = np.array(params["coef"]), float(params["intercept"])
        model.monotone_ = dict(params["monotone"])
        return model


def _column_means(x: np.ndarray) -> np.ndarray:
    """Each column's mean over its known values (0 where none is known)."""
    known = ~np.isnan(x)
    sums = np.where(known, x, 0.0).sum(axis=0)
    return np.where(known.any(axis=0), sums / np.maximum(known.sum(axis=0), 1), 0.0)


def _same_features(params: Mapping, features: Sequence[str]) -> None:
    """Refuse a model fitted on other features (files before `concept_doubt` have none listed)."""
    if list(params.get("features", [])) != list(features):
        raise ValueError("fitted by an earlier grader on other features: re-run `grader calibrate`")


class CurveThresholds(MarkModel):
    """Per question (pooled where few), the credit curve (low, high) that best fits the TA's marks."""

    method = Method.THRESHOLDS

    def fit(self, found: Sequence[Example]) -> CurveThresholds:
        self.pooled_ = _best_curve(found)
        self.curves_ = {
            qid: _best_curve(group) for qid, group in _by_question(found).items() if len(group) >= self.min_per_question
        }
        return self

    def curve(self, question_id: str) -> CreditCurve:
        return CreditCurve(*self.curves_.get(question_id, self.pooled_))

    def raw_marks(self, found: Sequence[Example]) -> np.ndarray:
        return np.array([_raw_under(e, self.curve(e.question.id)) for e in found])

    def to_params(self) -> dict:
        return {"pooled": list(self.pooled_), "curves": {q: list(c) for q, c in self.curves_.items()}}

    @classmethod
    def from_params(cls, params: Mapping) -> CurveThresholds:
        model = cls()
        model.pooled_ = tuple(params["pooled"])
        model.curves_ = {q: tuple(c) for q, c in params["curves"].items()}
        return model


# Signs the exemplar model's weights must keep (standardised features): +1 never negative, -1 never
# positive, 0 free. Rubric evidence and agreement with the model answer can only raise a mark; a
# contradiction can only lower it; the nearest marked answers' marks can only pull it their way.
_SIGNS = {
    "default_share": 1, "weighted_score": 1, "best_score": 1, "worst_score": 1, "credit_share": 1,
    "pattern_share": 1, "contradicted": -1, "log_words": 0, "concept_doubt": -1, "evidence": 1, "similarity_share": 1,
    "neighbours_share": 1, "top_similarity": 0, "top_share": 1, "full_similarity": 1, "low_similarity": -1,
    "full_minus_low": 1, "neighbours_spread": 0, "marked_mean": 1,
    "reference_similarity": 1, "reference_overlap": 1, "point_overlap": 1, "length_ratio": 0,
}  # fmt: skip
EXEMPLAR_ALPHA = 10.0
"""Ridge penalty on standardised features: strong enough that 20 correlated features fitted on a few
hundred answers do not chase noise (on Mohler and the sample, 1 and 10 were within noise; 10 safer)."""


class ExemplarRidge(MarkModel):
    """A bounded ridge model pooled over questions on rubric evidence, lexical and exemplar features,
    plus a local correction: the nearest marked answers' residuals (`exemplars.local_correction`).

    Questions with marked answers are predicted with every feature; a question nobody marked (or an
    answer with no vector) with the rubric and lexical features alone, by a second model fitted on
    the same answers, rather than with made-up exemplar features. The pooled model says how evidence
    maps to marks on any question; the correction says where this question's TA departs from that
    map for answers like this one (measured: Mohler r 0.712 -> 0.731, the sample's QWK 0.843 -> 0.852)."""

    method = Method.EXEMPLAR
    features: ClassVar[tuple[str, ...]] = (*RUBRIC_FEATURES, *exemplars.FEATURES[8:], *exemplars.FEATURES[:8])

    @property
    def needs_vectors(self) -> bool:
        return True

    def fit(self, found: Sequence[Example]) -> ExemplarRidge:
        if any(e.vector is None or e.lexical is None for e in found):
            raise GraderError("the exemplar method needs the answers' vectors (AnswerVectors)")
        self.pool_ = _pool(found)
        x = self._features(found)
        y = np.array([e.human / e.question.marks for e in found])
        self.full_ = _BoundedRidge.fit(x, y, [_SIGNS[f] for f in self.features])
        short = len(RUBRIC_FEATURES) + 4
        self.rubric_only_ = _BoundedRidge.fit(x[:, :short], y, [_SIGNS[f] for f in self.features[:short]])
        residual = dict(zip((e.key for e in found), y - self.full_.predict(x)))
        self.residuals_ = {
            qid: np.array([residual[(sid, qid)] for sid in m.student_ids]) for qid, m in self.pool_.items()
        }
        return self

    def _features(self, found: Sequence[Example]) -> np.ndarray:
        """Rows of `features`. An answer is never its own neighbour (`exemplars.similarities` masks the
        same student), so the training rows' exemplar columns are leave-one-out; they are NaN where the
        question has no other marked answer."""
        x = np.full((len(found), len(self.features)), np.nan)
        for i, e in enumerate(found):
            x[i, : len(RUBRIC_FEATURES)] = _rubric_features(e)
            if e.lexical is not None:
                x[i, len(RUBRIC_FEATURES) : len(RUBRIC_FEATURES) + 4] = e.lexical
        for usable, sims, marked in self._similarities(found):
            x[usable, len(RUBRIC_FEATURES) + 4 :] = exemplars.exemplar_features(sims, marked)
        return x

    def _similarities(self, found: Sequence[Example]) -> Iterator[tuple[list[int], np.ndarray, MarkedAnswers]]:
        """Per question with marked answers: the rows of `found` that have a vector, their similarities
        to the marked answers (an answer never its own neighbour), and those marked answers."""
        for qid, rows in _rows_by_question(found).items():
            marked = self.pool_.get(qid)
            usable = [i for i in rows if found[i].vector is not None]
            if marked is not None and usable:
                ids = [found[i].grade.student_id for i in usable]
                yield usable, exemplars.similarities(np.stack([found[i].vector for i in usable]), ids, marked), marked

    def raw_marks(self, found: Sequence[Example]) -> np.ndarray:
        if not found:
            return np.zeros(0)
        x = self._features(found)
        short = len(RUBRIC_FEATURES) + 4
        exemplar = ~np.isnan(x[:, short:]).all(axis=1)
        shares = np.where(exemplar, self.full_.predict(x), self.rubric_only_.predict(x[:, :short]))
        for usable, sims, marked in self._similarities(found):
            shares[usable] += exemplars.local_correction(sims, self.residuals_[marked.question_id])
        return _from_shares(shares, found)

    def neighbours(self, found: Sequence[Example]) -> list[tuple[Neighbour, ...]]:
        shown: list[tuple[Neighbour, ...]] = [() for _ in found]
        for usable, sims, marked in self._similarities(found):
            for i, near in zip(usable, exemplars.nearest(sims, marked)):
                shown[i] = near
        return shown

    def to_params(self) -> dict:
        return {
            "features": list(self.features),
            "full": self.full_.to_params(),
            "rubric_only": self.rubric_only_.to_params(),
            "marked": {qid: _marked_to_params(m) for qid, m in self.pool_.items()},
            "residuals": {qid: r.tolist() for qid, r in self.residuals_.items()},
        }

    @classmethod
    def from_params(cls, params: Mapping) -> ExemplarRidge:
        _same_features(params, cls.features)
        model = cls()
        model.full_ = _BoundedRidge.from_params(params["full"])
        model.rubric_only_ = _BoundedRidge.from_params(params["rubric_only"])
        model.pool_ = {qid: _marked_from_params(qid, p) for qid, p in params["marked"].items()}
        # Files written before the local correction existed have no residuals: grade them without it.
        stored = params.get("residuals", {})
        model.residuals_ = {
            qid: np.array(stored.get(qid, np.zeros(len(m))), dtype=np.float64) for qid, m in model.pool_.items()
        }
        return model

    def summary(self) -> dict:
        """The fitted weights without the marked answers' vectors (for run.json and the gradebook)."""
        return {
            "features": list(self.features),
            "full": self.full_.to_params(),
            "rubric_only": self.rubric_only_.to_params(),
            "marked": {qid: len(m) for qid, m in self.pool_.items()},
        }


@dataclass(frozen=True)
class _BoundedRidge:
    """Ridge regression on standardised features with a sign bound on each weight (scipy's lsq_linear
    on the ridge-augmented system); NaN features are filled with the training mean."""

    fill: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, signs: Sequence[int], alpha: float = EXEMPLAR_ALPHA) -> _BoundedRidge:
        fill = _column_means(x)
        x = np.where(np.isnan(x), fill, x)
        mean, scale = x.mean(axis=0), x.std(axis=0)
        scale[scale < 1e-9] = 1.0
        z = (x - mean) / scale
        signs = np.asarray(signs)
        lower = np.where(signs > 0, 0.0, -np.inf)
        upper = np.where(signs < 0, 0.0, np.inf)
        design = np.vstack([z, math.sqrt(alpha) * np.eye(z.shape[1])])
        target = np.concatenate([y - y.mean(), np.zeros(z.shape[1])])
        coef = lsq_linear(design, target, bounds=(lower, upper), method="bvls").x
        return cls(fill, mean, scale, coef, float(y.mean()))

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = np.where(np.isnan(x), self.fill, x)
        return ((x - self.mean) / self.scale) @ self.coef + self.intercept

    def to_params(self) -> dict:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in vars(self).items()}

    @classmethod
    def from_params(cls, params: Mapping) -> _BoundedRidge:
        return cls(
            *(np.array(params[k], dtype=np.float64) for k in ("fill", "mean", "scale", "coef")),
            float(params["intercept"]),
        )


def _rubric_features(e: Example) -> np.ndarray:
    return np.r_[answer_features(e.question, e.grade), _evidence(e), _similarity(e)]


def _pool(found: Sequence[Example]) -> dict[str, MarkedAnswers]:
    return {
        qid: MarkedAnswers(
            qid,
            tuple(found[i].grade.student_id for i in rows),
            np.stack([found[i].vector for i in rows]).astype(np.float32),
            np.array([found[i].human for i in rows]),
            found[rows[0]].question.marks,
        )
        for qid, rows in _rows_by_question(found).items()
    }


def _marked_to_params(marked: MarkedAnswers) -> dict:
    vectors = np.ascontiguousarray(marked.vectors, dtype="<f4")
    return {
        "students": list(marked.student_ids),
        "marks": marked.marks.tolist(),
        "max_mark": marked.max_mark,
        "dimension": int(vectors.shape[1]),
        "vectors_f32_base64": base64.b64encode(vectors.tobytes()).decode("ascii"),
    }


def _marked_from_params(qid: str, params: Mapping) -> MarkedAnswers:
    flat = np.frombuffer(base64.b64decode(params["vectors_f32_base64"]), dtype="<f4")
    vectors = flat.reshape(len(params["students"]), int(params["dimension"]))
    return MarkedAnswers(
        qid, tuple(params["students"]), vectors, np.array(params["marks"], dtype=np.float64), float(params["max_mark"])
    )


MODELS: dict[Method, type[MarkModel]] = {
    m.method: m for m in (DefaultMarks, IsotonicMarks, PooledRidge, CurveThresholds, SimilarityMarks, ExemplarRidge)
}


def new_model(method: str | Method, min_per_question: int = 10) -> MarkModel:
    model = MODELS[Method(method)]()
    model.min_per_question = min_per_question
    return model


# ---- the calibrator ----------------------------------------------------------------------------


class Calibrator:
    """Fit an evidence-to-mark map per exam; choose the method by repeated cross-validation.

    `criterion` is the held-out error of rounded marks that chooses: "mae" (mean absolute error) or
    "rmse" (root mean squared error, which weighs a mark off by two steps four times one off by one,
    as quadratic weighted kappa does). A method replaces the default only where its error is lower
    by more than one standard error of the paired difference (see the module docstring)."""

    def __init__(
        self,
        method: str = "auto",
        cv: int = 5,
        min_per_question: int = 10,
        random_state: int = 0,
        criterion: str = "rmse",
    ):
        self.method = method
        self.cv = cv
        self.min_per_question = min_per_question
        self.random_state = random_state
        self.criterion = criterion

    # ---- fitting -------------------------------------------------------------------------
    def fit(
        self,
        grades: Grades,
        rubric: Rubric,
        human: Mapping[tuple[str, str], float],
        answers: AnswerVectors | None = None,
    ) -> Calibrator:
        """Fit on the TA's marks. With `answers` (each answer's vector), the exemplar method competes too."""
        if self.method != "auto" and self.method not in METHODS:
            raise GraderError(f"unknown calibration method {self.method!r}: use auto or one of {', '.join(METHODS)}")
        if self.criterion not in CRITERIA:
            raise GraderError(f"unknown calibration criterion {self.criterion!r}: use one of {', '.join(CRITERIA)}")
        if self.method == Method.EXEMPLAR.value and answers is None:
            raise GraderError("the exemplar method needs the answers' vectors: pass answers=AnswerVectors")
        found = examples(grades, rubric, human, answers)
        if len(found) < 2:
            raise GraderError(
                f"calibration needs marked, non-blank short answers; found {len(found)} "
                "(do the marks file's student ids and question ids match the answers?)"
            )
        self.rubric_fingerprint_ = grades.rubric_fingerprint
        self.model_ = grades.model
        self.segments_ = grades.segments
        self.checker_ = grades.checker
        self.counts_ = {q: sum(e.question.id == q for e in found) for q in dict.fromkeys(e.question.id for e in found)}
        usable = all(e.vector is not None for e in found)
        self.candidates_ = tuple(
            m for m in (METHODS if self.method == "auto" else (self.method,)) if usable or m != Method.EXEMPLAR.value
        )
        errors = self._cross_validate(found)
        self.cv_mae_ = {m: float(np.mean(e)) if e.size else math.nan for m, e in errors.items()}
        self.cv_rmse_ = {m: float(np.sqrt(np.mean(np.square(e)))) if e.size else math.nan for m, e in errors.items()}
        self.method_ = self._choose(errors)
        self.estimator_ = new_model(self.method_, self.min_per_question).fit(found)
        return self

    def _cross_validate(self, found: list[Example]) -> dict[str, np.ndarray]:
        """Each answer's held-out error of rounded marks per method, averaged over REPEATS repeated K-folds."""
        folds = min(self.cv, len(found))
        if folds < 2:
            return {m: np.zeros(0) for m in self.candidates_}
        errors = {m: np.zeros(len(found)) for m in self.candidates_}
        for repeat in range(REPEATS):
            splitter = KFold(folds, shuffle=True, random_state=self.random_state + repeat)
            for train, test in splitter.split(found):
                fit_on = [found[i] for i in train]
                held = [found[i] for i in test]
                human = np.array([e.human for e in held])
                for m in self.candidates_:
                    predicted = new_model(m, self.min_per_question).fit(fit_on).predict(held)
                    errors[m][test] += np.abs(predicted - human) / REPEATS
        return errors

    def _choose(self, errors: Mapping[str, np.ndarray]) -> str:
        """The lowest error by the criterion; but the default unless the winner beats it beyond noise."""

        def score(e: np.ndarray) -> float:
            return float(np.mean(e)) if self.criterion == "mae" else float(np.sqrt(np.mean(np.square(e))))

        if len(self.candidates_) == 1 or not next(iter(errors.values())).size:
            return self.candidates_[0]
        best = min(self.candidates_, key=lambda m: (round(score(errors[m]), 9), METHODS.index(m)))
        default = Method.DEFAULT.value
        if best == default or default not in errors:
            return best
        # One standard error of the paired difference (per answer, in the criterion's units).
        if self.criterion == "mae":
            diff = errors[default] - errors[best]
        else:
            diff = np.square(errors[default]) - np.square(errors[best])
        noise = float(np.std(diff, ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else 0.0
        gain = float(np.mean(diff))
        return best if gain > noise else default

    # ---- predicting ----------------------------------------------------------------------
    @property
    def needs_vectors(self) -> bool:
        """Whether `predict` needs the answers' vectors (the exemplar method)."""
        self._check_fitted()
        return self.estimator_.needs_vectors

    def predict(self, grades: Grades, rubric: Rubric, answers: AnswerVectors | None = None) -> Grades:
        """The same grades with calibrated marks on every non-blank short answer (and, for the exemplar
        method, the nearest marked answers each mark leaned on)."""
        self._check_fitted()
        if grades.segments != self.segments_:
            raise GraderError(
                f"this calibration was fitted on marks with {self.segments_} segments, these were graded with "
                f"{grades.segments} ones: grade with --segments {self.segments_}, or re-run `grader calibrate`"
            )
        if self.needs_vectors and answers is None:
            raise GraderError("this calibration (exemplar) needs the answers' vectors: pass answers=AnswerVectors")
        items = list(grades.items)
        index = {(g.student_id, g.question_id): i for i, g in enumerate(items)}
        found = _answered(grades, rubric, answers)
        model = self.estimator_
        if isinstance(model, CurveThresholds):
            for e in found:
                items[index[e.key]] = _regrade_one(e.grade, rubric, model.curve(e.question.id))
            return replace(grades, items=tuple(items))
        marks = model.raw_marks(found)
        # The calibrator's own uncertainty, as grading measures the credit curve's: the marks it gives
        # when every point's score moves by SCORE_SHIFT, down and up.
        moved = [
            model.raw_marks([replace(e, grade=_shifted(e.grade, grades.curve, d)) for e in found])
            for d in (-SCORE_SHIFT, SCORE_SHIFT)
        ]
        near = model.neighbours(found)
        mapped = model.method is not Method.DEFAULT
        for n, e in enumerate(found):
            graded = _with_mark(e.grade, e.question, float(marks[n]), [float(m[n]) for m in moved])
            items[index[e.key]] = replace(graded, neighbours=near[n], calibrated=mapped)
        return replace(grades, items=tuple(items))

    def _check_fitted(self) -> None:
        if not hasattr(self, "estimator_"):
            raise GraderError("this calibrator is not fitted: call fit() or load a calibration file")

    @property
    def params_(self) -> dict:
        """The chosen estimator's fitted numbers (as saved)."""
        self._check_fitted()
        return self.estimator_.to_params()

    def check(self, rubric: Rubric, model: str | None = None, source: str = "calibration") -> None:
        """Refuse to apply a calibration to another rubric version or another model: its numbers would lie.

        Without `model`, only the rubric is checked (so a CLI can refuse before loading the model)."""
        self._check_fitted()
        if self.rubric_fingerprint_ != rubric.fingerprint:
            raise GraderError(
                f"{source}: fitted for another version of the rubric (fingerprint {self.rubric_fingerprint_}, "
                f"this rubric is {rubric.fingerprint}): re-run `grader calibrate`"
            )
        if model is not None and self.model_ != model:
            raise GraderError(
                f"{source}: fitted with model {self.model_!r}, but grading uses {model!r}: re-run `grader calibrate`"
            )

    def to_dict(self) -> dict:
        """The fitted state as plain JSON data (see README: calibration file format)."""
        self._check_fitted()
        data = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "rubric_fingerprint": self.rubric_fingerprint_,
            "model": self.model_,
            "segments": self.segments_,
            "checker": self.checker_,
            "topic_weight": TOPIC_WEIGHT,
            "method": self.method_,
            "cv_mae": self.cv_mae_,
            "cv_rmse": self.cv_rmse_,
            "answers_per_question": self.counts_,
            "settings": {
                "cv": self.cv,
                "min_per_question": self.min_per_question,
                "random_state": self.random_state,
                "criterion": self.criterion,
            },
            "params": self.params_,
        }
        if getattr(self, "encoder_", None):
            data["encoder"] = self.encoder_
        if getattr(self, "learning_curve_", None):
            data["learning_curve"] = self.learning_curve_
        return data

    def summary(self) -> dict:
        """As `to_dict`, without the marked answers' vectors: what run.json and the gradebook record."""
        data = self.to_dict()
        if isinstance(self.estimator_, ExemplarRidge):
            data["params"] = self.estimator_.summary()
        return data

    @classmethod
    def from_dict(cls, data: Mapping, source: str = "calibration") -> Calibrator:
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise InputError(source, f'not a grader calibration file (no "format": "{FORMAT}")')
        if data.get("version") not in READS_VERSIONS:
            raise InputError(
                source, f"calibration format version {data.get('version')!r}; this grader reads versions 1 to 3"
            )
        if data.get("topic_weight") != TOPIC_WEIGHT:
            raise InputError(source, "fitted with another scoring (topic weight): re-run `grader calibrate`")
        if data.get("method") not in METHODS:
            raise InputError(source, f"unknown calibration method {data.get('method')!r}")
        try:
            # Files written before the criterion existed chose by mean absolute error.
            calibrator = cls(method=data["method"], **{"criterion": "mae", **data["settings"]})
            calibrator.rubric_fingerprint_ = data["rubric_fingerprint"]
            calibrator.model_ = data["model"]
            calibrator.segments_ = data.get("segments", "separate")  # files before pooled segments
            calibrator.checker_ = data.get("checker")  # files before the concept check's doubt: none
            calibrator.method_ = data["method"]
            calibrator.cv_mae_ = dict(data["cv_mae"])
            calibrator.cv_rmse_ = dict(data.get("cv_rmse", {}))  # absent from files written before it
            calibrator.counts_ = dict(data["answers_per_question"])
            calibrator.encoder_ = data.get("encoder")
            calibrator.learning_curve_ = list(data.get("learning_curve", []))
            calibrator.estimator_ = MODELS[Method(data["method"])].from_params(data["params"])
            calibrator.estimator_.min_per_question = calibrator.min_per_question
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(source, f"calibration file is incomplete or damaged: {exc}") from None
        return calibrator


def save(calibrator: Calibrator, path: str | Path) -> None:
    """Write the calibration atomically as indented JSON."""
    write_atomically({path: json.dumps(calibrator.to_dict(), indent=1, sort_keys=True) + "\n"})


def load(path: str | Path) -> Calibrator:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, "no such calibration file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"cannot read the calibration: {exc}") from None
    return Calibrator.from_dict(data, str(path))


# ---- evidence numbers and helpers ---------------------------------------------------------------


def _share(e: Example) -> float:
    return e.grade.raw_mark / e.question.marks


def _evidence(e: Example) -> float:
    """The default share of marks before the credit ramp clips it: ranks answers the ramp ties at 0 or 1.

    Pattern hits count 1 and contradictions 0, as in grading; on Mohler this ranking gained +0.03 r.
    """
    span = DEFAULT_CURVE.high - DEFAULT_CURVE.low
    return _weighted_credit(e, lambda p: (p.score - DEFAULT_CURVE.low) / span) / e.question.marks


def _similarity(e: Example) -> float:
    """The marks-weighted cosine of each point's best segment (pattern hits 1, contradictions 0)."""
    return _weighted_credit(e, lambda p: p.similarity) / e.question.marks


def _weighted_credit(e: Example, matched: Callable[[PointMatch], float]) -> float:
    """Marks times credit over the answer's points: a pattern hit earns 1, a contradiction 0, and a
    point matched by similarity earns `matched(point)`."""
    return sum(p.marks * p.credit_with(matched(p)) for p in e.grade.points)


def _by_question(found: Sequence[Example]) -> dict[str, list[Example]]:
    return {qid: [found[i] for i in rows] for qid, rows in _rows_by_question(found).items()}


def _rows_by_question(found: Sequence[Example]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i, e in enumerate(found):
        groups.setdefault(e.question.id, []).append(i)
    return groups


def _isotonic(x: Sequence[float], y: Sequence[float]) -> dict[str, list[float]]:
    """A monotone map stored as its breakpoints (np.interp between them, clipped at the ends)."""
    fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(x, y)
    return {"x": fitted.X_thresholds_.tolist(), "y": fitted.y_thresholds_.tolist()}


def _interp(curve: Mapping[str, list[float]], value: float) -> float:
    if len(curve["x"]) == 1:
        return float(curve["y"][0])
    return float(np.interp(value, curve["x"], curve["y"]))


def _raw_under(e: Example, curve: CreditCurve) -> float:
    return sum(p.marks * p.credit_under(curve) for p in e.grade.points)


def _best_curve(found: Sequence[Example]) -> tuple[float, float]:
    """The grid curve with the lowest MAE of rounded marks (ties: nearest the default), as array work."""
    width = max(len(e.grade.points) for e in found)
    marks, scores = np.zeros((len(found), width)), np.zeros((len(found), width))
    fixed = np.full((len(found), width), np.nan)  # 1 for a pattern hit, 0 for a contradiction
    for i, e in enumerate(found):
        for k, p in enumerate(e.grade.points):
            marks[i, k], scores[i, k] = p.marks, p.score
            fixed[i, k] = np.nan if p.fixed_credit is None else p.fixed_credit
    step = np.array([e.question.step for e in found])
    top = np.array([e.question.marks for e in found])
    human = np.array([e.human for e in found])

    def error(curve: CreditCurve) -> float:
        raw = (marks * np.where(np.isnan(fixed), curve.credit(scores), fixed)).sum(axis=1)
        return float(np.mean(np.abs(round_to_step(raw, step, top) - human)))

    best = min(
        _CURVES, key=lambda c: (round(error(c), 9), abs(c.low - DEFAULT_CURVE.low) + abs(c.high - DEFAULT_CURVE.high))
    )
    return (best.low, best.high)


def _regrade_one(grade: QuestionGrade, rubric: Rubric, curve: CreditCurve) -> QuestionGrade:
    single = Grades("", "", "", curve, (grade.student_id,), (grade,))
    return apply_curve(single, rubric, curve).items[0]


def _shifted(grade: QuestionGrade, curve: CreditCurve, shift: float) -> QuestionGrade:
    """The grade as if every point's match score were `shift` higher (pattern and contradiction credits stay)."""
    points = tuple(
        p if p.fixed_credit is not None else replace(p, score=p.score + shift, credit=p.credit_under(curve, shift))
        for p in grade.points
    )
    return replace(grade, points=points, raw_mark=sum(p.marks * p.credit for p in points))


def _with_mark(grade: QuestionGrade, question: ShortQuestion, raw: float, moved: Sequence[float] = ()) -> QuestionGrade:
    """Re-mark an answer: flags that follow from the mark are recomputed, the others carried over."""
    mark = round_to_step(raw, question.step, question.marks)
    found = [f for f in grade.flags if f.code not in flagging.MARK_DEPENDENT]
    near = flagging.borderline(raw, question.step)
    found += [near] if near else []
    other = next(
        (m for m in (round_to_step(r, question.step, question.marks) for r in moved) if abs(m - mark) > 1e-9), None
    )
    if other is not None:
        found.append(flagging.low_confidence(mark, other, SCORE_SHIFT, "under this calibration"))
    return replace(grade, mark=mark, raw_mark=raw, flags=tuple(found))
