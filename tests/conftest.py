"""Shared fixtures. The real model is loaded once per test session (it costs seconds)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["GRADER_CACHE"] = "off"  # no test (nor a CLI subprocess it starts) writes a cache in the home directory

ROOT = Path(__file__).resolve().parent.parent
RUBRIC = ROOT / "rubrics" / "dl-midsem.yaml"
SAMPLE = ROOT / "submissions" / "dl-midsem-sample.csv"
SAMPLE_MARKS = ROOT / "submissions" / "dl-midsem-sample-marks.csv"


@pytest.fixture(scope="session")
def encoder():
    from grader.embedding.encoder import Encoder

    return Encoder.load(device="cpu")


@pytest.fixture(scope="session")
def rubric():
    from grader.exam.rubric import load_rubric

    return load_rubric(RUBRIC)


@pytest.fixture(scope="session")
def grading_check():
    """The learned check `grader grade` uses: the shipped concept check, and the cross-encoder's second
    reading of the answers its opposition doubts most (`grader.scoring.cross_reading`)."""
    from grader.embedding.encoder import default_model_path
    from grader.scoring import concept_check
    from grader.scoring.engine import second_reading

    said: list[str] = []
    check = second_reading(concept_check.load(concept_check.DEFAULT_DIR), default_model_path(), said.append)
    assert not said, said
    return check


@pytest.fixture(scope="session")
def sample(encoder, rubric, grading_check):
    """The bundled development set graded once with the defaults (the shipped checks too), with our marks."""
    from types import SimpleNamespace

    from grader.calibration.exemplars import answer_vectors
    from grader.exam.files import read_human_marks
    from grader.exam.submissions import read_submissions
    from grader.scoring.grade import grade

    submissions = read_submissions(SAMPLE, rubric.question_ids)
    grades = grade(rubric, submissions, encoder, checker=grading_check)
    return SimpleNamespace(
        submissions=submissions,
        grades=grades,
        human=read_human_marks(SAMPLE_MARKS, set(rubric.question_ids)),
        vectors=answer_vectors(rubric, submissions.answers, encoder),
    )
