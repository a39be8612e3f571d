"""Learn how match scores map to marks for one exam, from answers a TA has marked.

`Calibrator` follows the scikit-learn contract: parameters in the constructor, `fit` learns,
`predict` answers, fitted state ends in `_`. It compares several ways of turning the per-point
evidence of an answer into its mark and keeps the one with the lowest cross-validated error:

- ``default``: the uncalibrated mark (the shipped credit curve), as the bar to beat;
- ``isotonic``: per question, a monotone map from the unclipped default mark to the TA's mark (questions with
  fewer than `min_per_question` marked answers use one map pooled over all questions);
- ``pooled``: one ridge model over all questions on question-agnostic features (default mark,
  weighted match score, best/worst point score, pattern hits, contradictions, answer length),
  followed by a monotone map, so a question with few marks borrows strength from the others;
- ``thresholds``: per question, the credit curve (low, high) that best fits the TA's marks (pooled
  when a question has too few), i.e. per-point thresholds under the question's own marks;
- ``similarity``: as ``isotonic``, on each point's plain cosine similarity, without the discount
  for echoing the question: where students must restate the question to answer it (SAF's networks
  questions), the discount hides what separates answers.

Blank answers stay 0 and MCQs are never touched. The fitted state is plain numbers, saved as a
versioned JSON file that records the model and rubric it was fitted with, and is refused with any
other (`save` / `load` below; the format is documented in README.md).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from dataclasses import dataclass, replace

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold

from grader import flags as flagging
from grader.atomic import write_atomically
from grader.errors import GraderError, InputError
from grader.grade import SCORE_SHIFT, Grades, QuestionGrade, apply_curve
from grader.match import DEFAULT_CURVE, TOPIC_WEIGHT, CreditCurve, PointMatch, round_to_step
from grader.rubric import Rubric, ShortQuestion

METHODS = ("default", "isotonic", "pooled", "thresholds", "similarity")
CRITERIA = ("mae", "rmse")
FORMAT = "grader-calibration"
FORMAT_VERSION = 1
FEATURES = (
    "default_share",
    "weighted_score",
    "best_score",
    "worst_score",
    "credit_share",
    "pattern_share",
    "contradicted",
    "log_words",
)
_CURVES = [
    CreditCurve(round(low, 3), round(low + width, 3))
    for low in np.arange(0.0, 0.65, 0.025)
    for width in (0.05, 0.1, 0.15, 0.2, 0.3, 0.4)
    if low + width <= 1.0
]


@dataclass(frozen=True)
class Example:
    """A marked short answer: the machine's grade and the TA's mark."""

    question: ShortQuestion
    grade: QuestionGrade
    human: float


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
        ]
    )


def examples(grades: Grades, rubric: Rubric, human: Mapping[tuple[str, str], float]) -> list[Example]:
    """The non-blank short answers that a TA marked, paired with those marks."""
    found = []
    for g in grades.items:
        question = rubric.question(g.question_id)
        key = (g.student_id, g.question_id)
        if isinstance(question, ShortQuestion) and g.points and key in human:
            found.append(Example(question, g, float(human[key])))
    return found


class Calibrator:
    """Fit a score-to-mark map per exam; choose the method by cross-validation (lower error wins).

    `criterion` is the held-out error of rounded marks that chooses: "mae" (mean absolute error) or
    "rmse" (root mean squared error, which weighs a mark off by two steps four times one off by one,
    as quadratic weighted kappa does)."""

    def __init__(
        self, method: str = "auto", cv: int = 5, min_per_question: int = 10, random_state: int = 0, criterion: str = "mae"
    ):
        self.method = method
        self.cv = cv
        self.min_per_question = min_per_question
        self.random_state = random_state
        self.criterion = criterion

    # ---- fitting -------------------------------------------------------------------------
    def fit(self, grades: Grades, rubric: Rubric, human: Mapping[tuple[str, str], float]) -> Calibrator:
        if self.method != "auto" and self.method not in METHODS:
            raise GraderError(f"unknown calibration method {self.method!r}: use auto or one of {', '.join(METHODS)}")
        if self.criterion not in CRITERIA:
            raise GraderError(f"unknown calibration criterion {self.criterion!r}: use one of {', '.join(CRITERIA)}")
        found = examples(grades, rubric, human)
        if len(found) < 2:
            raise GraderError(
                f"calibration needs marked, non-blank short answers; found {len(found)} "
                "(do the marks file's student ids and question ids match the answers?)"
            )
        self.rubric_fingerprint_ = grades.rubric_fingerprint
        self.model_ = grades.model
        self.counts_ = {q: sum(e.question.id == q for e in found) for q in dict.fromkeys(e.question.id for e in found)}
        self.cv_mae_, self.cv_rmse_ = self._cross_validate(found)
        error = self.cv_mae_ if self.criterion == "mae" else self.cv_rmse_
        candidates = METHODS if self.method == "auto" else (self.method,)
        self.method_ = min(candidates, key=lambda m: (round(error[m], 9), METHODS.index(m)))
        self.params_ = _fit(self.method_, found, self.min_per_question)
        return self

    def _cross_validate(self, found: list[Example]) -> tuple[dict[str, float], dict[str, float]]:
        """Mean absolute and root mean squared error of rounded marks on held-out answers, per method."""
        folds = min(self.cv, len(found))
        if folds < 2:
            return {m: math.nan for m in METHODS}, {m: math.nan for m in METHODS}
        splitter = KFold(folds, shuffle=True, random_state=self.random_state)
        errors: dict[str, list[float]] = {m: [] for m in METHODS}
        for train, test in splitter.split(found):
            fit_on = [found[i] for i in train]
            held = [found[i] for i in test]
            for m in METHODS:
                params = _fit(m, fit_on, self.min_per_question)
                predicted = _predict(m, params, held)
                errors[m] += [abs(p - e.human) for p, e in zip(predicted, held)]
        return (
            {m: float(np.mean(v)) for m, v in errors.items()},
            {m: float(np.sqrt(np.mean(np.square(v)))) for m, v in errors.items()},
        )

    # ---- predicting ----------------------------------------------------------------------
    def predict(self, grades: Grades, rubric: Rubric) -> Grades:
        """The same grades with calibrated marks on every non-blank short answer."""
        self._check_fitted()
        items = list(grades.items)
        todo = [
            (i, rubric.question(g.question_id))
            for i, g in enumerate(items)
            if g.points and isinstance(rubric.question(g.question_id), ShortQuestion)
        ]
        if self.method_ == "thresholds":
            for i, question in todo:
                curve = CreditCurve(*self.params_["curves"].get(question.id, self.params_["pooled"]))
                items[i] = _regrade_one(items[i], rubric, curve)
            return replace(grades, items=tuple(items))
        found = [Example(q, items[i], math.nan) for i, q in todo]
        marks = _predict(self.method_, self.params_, found, rounded=False)
        # The calibrator's own uncertainty, as grading measures the credit curve's: the marks it gives
        # when every point's score moves by SCORE_SHIFT, down and up.
        moved = [
            _predict(self.method_, self.params_, [replace(e, grade=_shifted(e.grade, grades.curve, d)) for e in found], rounded=False)
            for d in (-SCORE_SHIFT, SCORE_SHIFT)
        ]
        for n, ((i, question), raw) in enumerate(zip(todo, marks)):
            items[i] = _with_mark(items[i], question, raw, [m[n] for m in moved])
        return replace(grades, items=tuple(items))

    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise GraderError("this calibrator is not fitted: call fit() or load a calibration file")

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
            raise GraderError(f"{source}: fitted with model {self.model_!r}, but grading uses {model!r}: re-run `grader calibrate`")

    def to_dict(self) -> dict:
        """The fitted state as plain JSON data (see README: calibration file format)."""
        self._check_fitted()
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "rubric_fingerprint": self.rubric_fingerprint_,
            "model": self.model_,
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

    @classmethod
    def from_dict(cls, data: Mapping, source: str = "calibration") -> Calibrator:
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise InputError(source, f"not a grader calibration file (no \"format\": \"{FORMAT}\")")
        if data.get("version") != FORMAT_VERSION:
            raise InputError(source, f"calibration format version {data.get('version')!r}; this grader reads version {FORMAT_VERSION}")
        if data.get("topic_weight") != TOPIC_WEIGHT:
            raise InputError(source, "fitted with another scoring (topic weight): re-run `grader calibrate`")
        try:
            calibrator = cls(method=data["method"], **data["settings"])
            calibrator.rubric_fingerprint_ = data["rubric_fingerprint"]
            calibrator.model_ = data["model"]
            calibrator.method_ = data["method"]
            calibrator.cv_mae_ = dict(data["cv_mae"])
            calibrator.cv_rmse_ = dict(data.get("cv_rmse", {}))  # absent from files written before it
            calibrator.counts_ = dict(data["answers_per_question"])
            calibrator.params_ = dict(data["params"])
        except (KeyError, TypeError) as exc:
            raise InputError(source, f"calibration file is incomplete: missing {exc}") from None
        if calibrator.method_ not in METHODS:
            raise InputError(source, f"unknown calibration method {calibrator.method_!r}")
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


# ---- the methods, as pure functions of examples -> params -> marks --------------------------


def _fit(method: str, found: Sequence[Example], min_per_question: int) -> dict:
    if method == "default":
        return {}
    if method in ("isotonic", "similarity"):
        evidence = _EVIDENCE[method]
        pooled = _isotonic([evidence(e) for e in found], [e.human / e.question.marks for e in found])
        per = {}
        for qid, group in _by_question(found).items():
            if len(group) >= min_per_question:
                per[qid] = _isotonic([evidence(e) for e in group], [e.human / e.question.marks for e in group])
        return {"pooled": pooled, "questions": per}
    if method == "pooled":
        x = np.stack([answer_features(e.question, e.grade) for e in found])
        y = np.array([e.human / e.question.marks for e in found])
        mean, scale = x.mean(axis=0), x.std(axis=0)
        scale[scale == 0] = 1.0
        ridge = Ridge(alpha=1.0).fit((x - mean) / scale, y)
        linear = ridge.predict((x - mean) / scale)
        return {
            "mean": mean.tolist(),
            "scale": scale.tolist(),
            "coef": ridge.coef_.tolist(),
            "intercept": float(ridge.intercept_),
            "monotone": _isotonic(linear.tolist(), y.tolist()),
        }
    if method == "thresholds":
        pooled = _best_curve(found)
        curves = {
            qid: _best_curve(group)
            for qid, group in _by_question(found).items()
            if len(group) >= min_per_question
        }
        return {"pooled": pooled, "curves": curves}
    raise ValueError(method)


def _predict(method: str, params: dict, found: Sequence[Example], rounded: bool = True) -> list[float]:
    """Marks (rounded to each question's step unless `rounded` is False) for examples."""
    if method == "thresholds":
        marks = []
        for e in found:
            curve = CreditCurve(*params["curves"].get(e.question.id, params["pooled"]))
            raw = _raw_under(e, curve)
            marks.append(round_to_step(raw, e.question.step, e.question.marks) if rounded else raw)
        return marks
    if method == "default":
        shares = np.array([_share(e) for e in found])
    elif method in ("isotonic", "similarity"):
        evidence = _EVIDENCE[method]
        shares = np.array(
            [_interp(params["questions"].get(e.question.id, params["pooled"]), evidence(e)) for e in found]
        )
    elif method == "pooled":
        x = np.stack([answer_features(e.question, e.grade) for e in found])
        linear = ((x - np.array(params["mean"])) / np.array(params["scale"])) @ np.array(params["coef"])
        shares = np.array([_interp(params["monotone"], v) for v in linear + params["intercept"]])
    else:
        raise ValueError(method)
    raw = [float(np.clip(s, 0, 1)) * e.question.marks for s, e in zip(shares, found)]
    return [round_to_step(r, e.question.step, e.question.marks) for r, e in zip(raw, found)] if rounded else raw


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
    return sum(
        p.marks * (1.0 if p.pattern is not None else 0.0 if p.contradiction is not None else matched(p))
        for p in e.grade.points
    )


_EVIDENCE = {"isotonic": _evidence, "similarity": _similarity}


def _by_question(found: Sequence[Example]) -> dict[str, list[Example]]:
    groups: dict[str, list[Example]] = {}
    for e in found:
        groups.setdefault(e.question.id, []).append(e)
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
    return _weighted_credit(e, lambda p: float(curve.credit(p.score)))


def _best_curve(found: Sequence[Example]) -> tuple[float, float]:
    """The grid curve with the lowest MAE of rounded marks (ties: nearest the default), as array work."""
    width = max(len(e.grade.points) for e in found)
    marks, scores = np.zeros((len(found), width)), np.zeros((len(found), width))
    fixed = np.full((len(found), width), np.nan)  # 1 for a pattern hit, 0 for a contradiction
    for i, e in enumerate(found):
        for k, p in enumerate(e.grade.points):
            marks[i, k], scores[i, k] = p.marks, p.score
            fixed[i, k] = 1.0 if p.pattern is not None else 0.0 if p.contradiction is not None else np.nan
    step = np.array([e.question.step for e in found])
    top = np.array([e.question.marks for e in found])
    human = np.array([e.human for e in found])

    def error(curve: CreditCurve) -> float:
        credit = np.clip((scores - curve.low) / (curve.high - curve.low), 0.0, 1.0)
        raw = (marks * np.where(np.isnan(fixed), credit, fixed)).sum(axis=1)
        rounded = np.minimum(np.maximum(np.floor(raw / step + 0.5 + 1e-9) * step, 0.0), top)
        return float(np.mean(np.abs(rounded - human)))

    best = min(_CURVES, key=lambda c: (round(error(c), 9), abs(c.low - DEFAULT_CURVE.low) + abs(c.high - DEFAULT_CURVE.high)))
    return (best.low, best.high)


def _regrade_one(grade: QuestionGrade, rubric: Rubric, curve: CreditCurve) -> QuestionGrade:
    single = Grades("", "", "", curve, (grade.student_id,), (grade,))
    return apply_curve(single, rubric, curve).items[0]


def _shifted(grade: QuestionGrade, curve: CreditCurve, shift: float) -> QuestionGrade:
    """The grade as if every point's match score were `shift` higher (pattern and contradiction credits stay)."""
    points = tuple(
        p if p.pattern is not None or p.contradiction is not None
        else replace(p, score=p.score + shift, credit=float(curve.credit(p.score + shift)))
        for p in grade.points
    )
    return replace(grade, points=points, raw_mark=sum(p.marks * p.credit for p in points))


def _with_mark(grade: QuestionGrade, question: ShortQuestion, raw: float, moved: Sequence[float] = ()) -> QuestionGrade:
    """Re-mark an answer: flags that follow from the mark are recomputed, the others carried over."""
    mark = round_to_step(raw, question.step, question.marks)
    found = [f for f in grade.flags if f.code not in flagging.MARK_DEPENDENT]
    near = flagging.borderline(raw, question.step)
    found += [near] if near else []
    other = next((m for m in (round_to_step(r, question.step, question.marks) for r in moved) if abs(m - mark) > 1e-9), None)
    if other is not None:
        found.append(flagging.low_confidence(mark, other, SCORE_SHIFT, "under this calibration"))
    return replace(grade, mark=mark, raw_mark=raw, flags=tuple(found))
