"""How closely machine marks agree with a human's: the numbers a grading paper reports.

Metrics come from scikit-learn and SciPy. Quadratic weighted kappa is computed on mark steps
(0, 0.5, 1 -> categories 0, 1, 2), so it means the same for a 1-mark and a 2-mark question.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import pearsonr
from sklearn.metrics import cohen_kappa_score, mean_absolute_error, mean_squared_error

from grader.errors import InputError


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


def agreement(machine: Sequence[float], human: Sequence[float], step: float) -> Agreement:
    """Compare paired marks on a scale of `step`; kappa and r are NaN where undefined (e.g. constant marks)."""
    m = np.asarray(machine, dtype=float)
    h = np.asarray(human, dtype=float)
    if m.shape != h.shape or m.size == 0:
        raise ValueError("agreement needs two equally long, non-empty lists of marks")
    mc = np.rint(m / step).astype(int)
    hc = np.rint(h / step).astype(int)
    labels = np.arange(min(mc.min(), hc.min()), max(mc.max(), hc.max()) + 1)
    qwk = float(cohen_kappa_score(hc, mc, weights="quadratic", labels=labels)) if len(labels) > 1 else math.nan
    r = float(pearsonr(m, h).statistic) if m.std() > 0 and h.std() > 0 else math.nan
    return Agreement(
        n=int(m.size),
        mae=float(mean_absolute_error(h, m)),
        rmse=float(math.sqrt(mean_squared_error(h, m))),
        qwk=qwk,
        pearson=r,
        exact=float(np.mean(mc == hc)),
        within_step=float(np.mean(np.abs(mc - hc) <= 1)),
    )


def read_human_marks(path: str | Path, question_ids: Collection[str] | None = None) -> dict[tuple[str, str], float]:
    """Read `student_id,question_id,mark` (a TA's marks); every bad row is an error naming row and column."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read the marks file: {exc}") from None
    reader = csv.DictReader(text.splitlines())
    missing = {"student_id", "question_id", "mark"} - set(reader.fieldnames or [])
    if missing:
        raise InputError(path, f"missing column(s) {', '.join(sorted(missing))}", row=1)
    marks: dict[tuple[str, str], float] = {}
    for row_number, row in enumerate(reader, start=2):
        key = (row["student_id"].strip(), row["question_id"].strip())
        if question_ids is not None and key[1] not in question_ids:
            raise InputError(path, f"unknown question {key[1]!r}", row=row_number, column="question_id")
        try:
            mark = float(row["mark"])
        except (TypeError, ValueError):
            raise InputError(path, f"mark {row['mark']!r} is not a number", row=row_number, column="mark") from None
        if key in marks:
            raise InputError(path, f"a second mark for {key[0]} on {key[1]}", row=row_number, column="student_id")
        marks[key] = mark
    return marks
