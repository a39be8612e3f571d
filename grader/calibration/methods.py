"""The names a user chooses a calibration by: the methods and the error that chooses among them.

Kept apart from `grader.calibration.calibrate` so the command line can offer them (typer reads them when it
starts) without importing scikit-learn, which takes a second.
"""

from __future__ import annotations

from enum import Enum


class Method(str, Enum):
    """A way of turning an answer's evidence into its mark (`grader.calibration.calibrate` says what each learns)."""

    DEFAULT = "default"
    ISOTONIC = "isotonic"
    POOLED = "pooled"
    THRESHOLDS = "thresholds"
    SIMILARITY = "similarity"
    EXEMPLAR = "exemplar"


METHODS = tuple(m.value for m in Method)
CRITERIA = ("mae", "rmse")
"""Held-out errors of rounded marks the calibrator may choose a method by."""

CalibrationMethod = Enum("CalibrationMethod", {"AUTO": "auto"} | {m.name: m.value for m in Method}, type=str)
"""What `calibrate` may fit: auto (chosen by cross-validation) or one `Method`."""
Criterion = Enum("Criterion", {c.upper(): c for c in CRITERIA}, type=str)
"""What auto minimises on held-out marks (`CRITERIA`)."""
