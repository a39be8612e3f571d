"""How closely machine marks agree with a human's: the numbers a grading paper reports.

Metrics come from scikit-learn and SciPy. Quadratic weighted kappa is computed on mark steps
(0, 0.5, 1 -> categories 0, 1, 2), so it means the same for a 1-mark and a 2-mark question.
`bootstrap` puts a percentile confidence interval on each metric by resampling answer pairs.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import pearsonr, rankdata, spearmanr
from sklearn.metrics import cohen_kappa_score, mean_absolute_error, mean_squared_error

METRICS = ("mae", "rmse", "qwk", "pearson", "spearman", "exact", "within_step")
"""The metrics `agreement` reports and `bootstrap` puts intervals on, in display order."""


@dataclass(frozen=True)
class Agreement:
    n: int
    mae: float
    rmse: float
    qwk: float
    pearson: float
    exact: float
    """Share of answers where machine and human gave the same mark."""
    within_step: float
    """Share where they differ by at most one step."""
    spearman: float = math.nan
    """Rank correlation: does the machine order answers as the human does (NaN for constant marks)."""


def agreement(machine: Sequence[float], human: Sequence[float], step: float) -> Agreement:
    """Compare paired marks on a scale of `step`; kappa and r are NaN where undefined (e.g. constant marks)."""
    m, h = _pairs(machine, human)
    mc, hc = _categories(m, step), _categories(h, step)
    labels = np.arange(min(mc.min(), hc.min()), max(mc.max(), hc.max()) + 1)
    qwk = float(cohen_kappa_score(hc, mc, weights="quadratic", labels=labels)) if len(labels) > 1 else math.nan
    varied = m.std() > 0 and h.std() > 0
    return Agreement(
        n=int(m.size),
        mae=float(mean_absolute_error(h, m)),
        rmse=float(math.sqrt(mean_squared_error(h, m))),
        qwk=qwk,
        pearson=float(pearsonr(m, h).statistic) if varied else math.nan,
        exact=float(np.mean(mc == hc)),
        within_step=float(np.mean(np.abs(mc - hc) <= 1)),
        spearman=float(spearmanr(m, h).statistic) if varied else math.nan,
    )


def bootstrap(
    machine: Sequence[float],
    human: Sequence[float],
    step: float,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals for every metric of `agreement`, from `n_boot` resamples of the answer pairs.

    Replicates where a metric is undefined (constant marks: kappa, r) are skipped for that metric;
    a metric undefined in every replicate gets (NaN, NaN). The same seed gives the same intervals.
    """
    m, h = _pairs(machine, human)
    if n_boot < 1 or not 0 < level < 1:
        raise ValueError("bootstrap needs n_boot >= 1 and 0 < level < 1")
    rows = np.random.default_rng(seed).integers(0, m.size, size=(n_boot, m.size))
    bm, bh = m[rows], h[rows]  # (n_boot, n): one resample per row
    mc, hc = _categories(bm, step), _categories(bh, step)
    undefined = np.full(n_boot, np.nan)  # a correlation of one pair
    with warnings.catch_warnings():  # constant resamples: NaN, skipped below
        warnings.simplefilter("ignore")
        replicates = {
            "mae": mean_absolute_error(bh.T, bm.T, multioutput="raw_values"),
            "rmse": np.sqrt(mean_squared_error(bh.T, bm.T, multioutput="raw_values")),
            "qwk": _quadratic_kappa(hc, mc),
            "pearson": pearsonr(bm, bh, axis=1).statistic if m.size > 1 else undefined,
            "spearman": pearsonr(rankdata(bm, axis=1), rankdata(bh, axis=1), axis=1).statistic
            if m.size > 1
            else undefined,
            "exact": np.mean(mc == hc, axis=1),
            "within_step": np.mean(np.abs(mc - hc) <= 1, axis=1),
        }
    tail = (1 - level) / 2 * 100
    intervals = {}
    for name in METRICS:
        values = np.asarray(replicates[name], dtype=float)
        values = values[np.isfinite(values)]
        low, high = np.percentile(values, [tail, 100 - tail]) if values.size else (math.nan, math.nan)
        intervals[name] = (float(low), float(high))
    return intervals


def _pairs(machine: Sequence[float], human: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    m = np.asarray(machine, dtype=float)
    h = np.asarray(human, dtype=float)
    if m.shape != h.shape or m.ndim != 1 or m.size == 0:
        raise ValueError("agreement needs two equally long, non-empty lists of marks")
    return m, h


def _categories(marks: np.ndarray, step: float) -> np.ndarray:
    return np.rint(marks / step).astype(int)


def _quadratic_kappa(human: np.ndarray, machine: np.ndarray) -> np.ndarray:
    """Quadratic weighted kappa of each row pair: scikit-learn's `cohen_kappa_score` formula, batched.

    sklearn takes ~2 ms a call, so 1000 resamples for each of a dozen questions would take most of a
    minute; one bincount builds every replicate's confusion matrix at once. The tests check this
    against `cohen_kappa_score` replicate by replicate. NaN where the expected disagreement is 0.
    """
    low = min(human.min(), machine.min())
    k = int(max(human.max(), machine.max()) - low + 1)
    b = human.shape[0]
    cells = (np.arange(b)[:, None] * k + (human - low)) * k + (machine - low)
    confusion = np.bincount(cells.ravel(), minlength=b * k * k).reshape(b, k, k).astype(float)
    expected = (
        confusion.sum(axis=2)[:, :, None]
        * confusion.sum(axis=1)[:, None, :]
        / confusion.sum(axis=(1, 2))[:, None, None]
    )
    weights = (np.arange(k)[:, None] - np.arange(k)[None, :]) ** 2
    observed_cost = (confusion * weights).sum(axis=(1, 2))
    expected_cost = (expected * weights).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(expected_cost > 0, 1 - observed_cost / expected_cost, np.nan)


def as_dict(result: Agreement) -> dict[str, float]:
    """The agreement's fields by name (n first, then METRICS): for JSON and tables."""
    return {"n": result.n, **{name: getattr(result, name) for name in METRICS}}
