"""`calibrate --fine-tune`: a real fine-tuning of the packaged encoder on a small real class, then `grade`."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from grader.calibration.finetune import RECORD, check_tuned, read_record, training_pairs
from grader.errors import GraderError
from grader.exam.rubric import parse_rubric
from tests.cli.test_app import grader
from tests.conftest import RUBRIC, SAMPLE, SAMPLE_MARKS

STUDENTS = 8


def test_one_pair_per_marked_non_blank_short_answer(rubric):
    answers = {("s1", "I3"): "sqrt(6/(n_in+n_out))", ("s2", "I3"): "  ", ("s1", "B1"): "b", ("s3", "I4"): "basis"}
    human = {("s1", "I3"): 1.0, ("s2", "I3"): 0.0, ("s1", "B1"): 1.0, ("s3", "I4"): 5.0}
    pairs = training_pairs(rubric, answers, human)
    assert [(p.answer, p.share) for p in pairs] == [("sqrt(6/(n_in+n_out))", 1.0), ("basis", 1.0)]
    assert pairs[0].reference == " ".join(rubric.question("I3").model_answer.split())


@pytest.fixture(scope="module")
def small_class(tmp_path_factory):
    """The first STUDENTS students of the sample and our marks of their answers."""
    folder = tmp_path_factory.mktemp("small")
    with SAMPLE.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    answers = folder / "answers.csv"
    with answers.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows[: STUDENTS + 1])
    keep = {r[0] for r in rows[1 : STUDENTS + 1]}
    with SAMPLE_MARKS.open(encoding="utf-8", newline="") as handle:
        marks_rows = [r for r in csv.reader(handle) if r[0] == "student_id" or r[0] in keep]
    marks = folder / "marks.csv"
    with marks.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(marks_rows)
    return folder, answers, marks


def test_fine_tuning_changes_the_encoder_and_grade_reloads_it(small_class, encoder):
    from sentence_transformers import SentenceTransformer

    folder, answers, marks = small_class
    calibration = folder / "models" / "exam.calibration"
    result = grader("calibrate", RUBRIC, answers, marks, "--out", calibration, "--fine-tune", "--method", "exemplar")
    assert result.returncode == 0, result.stderr
    tuned = folder / "models" / "exam.encoder"
    record = read_record(tuned)
    assert record is not None and record.pairs == STUDENTS * 7 and record.base_model == "all-MiniLM-L6-v2"
    saved = json.loads(calibration.read_text())
    assert saved["encoder"]["path"] == "exam.encoder" and saved["model"] == "exam.encoder"

    text = ["Xavier initialisation keeps the variance of activations constant across layers."]
    before = encoder.encode(text)
    after = SentenceTransformer(str(tuned), device="cpu").encode(text, normalize_embeddings=True)
    assert not np.allclose(before, after, atol=1e-3)

    result = grader("grade", RUBRIC, answers, "--calibration", calibration, "--out", folder / "out")
    assert result.returncode == 0, result.stderr
    run = json.loads((folder / "out" / "run.json").read_text())
    assert run["model"] == "exam.encoder" and run["calibration"]["encoder"]["path"] == "exam.encoder"
    assert "exam.encoder" in result.stdout

    # The tuned encoder belongs to its rubric: with another one, it is refused (the calibration is too).
    edited = parse_rubric({**_yaml(RUBRIC), "version": 2}, "edited")
    with pytest.raises(GraderError, match="fine-tuned for another version of the rubric"):
        check_tuned(tuned, edited)
    (tuned / RECORD).write_text("{}")
    result = grader("grade", RUBRIC, answers, "--calibration", calibration, "--out", folder / "refused")
    assert result.returncode == 2 and "not a grader tuned-encoder record" in result.stderr
    assert not (folder / "refused").exists()


def _yaml(path):
    import yaml

    return yaml.safe_load(path.read_text())
