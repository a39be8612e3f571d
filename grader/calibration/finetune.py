"""Fine-tune the sentence encoder on a TA's marked answers (`grader calibrate --fine-tune`; optional).

The packaged all-MiniLM-L6-v2 knows general English, not what this exam's markers reward. Given
marked answers, it learns from (model answer, student answer, share of marks) pairs with
sentence-transformers' trainer and CoSENT loss, so that cosines to the model answer (and between
answers) rank answers as the TA did. The tuned encoder is saved beside the calibration file with a
record of the rubric it was tuned for (`tuned.json`); `grade` loads it and refuses it with another
rubric. Training is seeded; on CPU it takes minutes (bench/README.md gives the measured times).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from grader.calibration.exemplars import normalise
from grader.errors import GraderError, InputError
from grader.exam.rubric import Rubric, ShortQuestion

EPOCHS = 3
BATCH_SIZE = 16
LEARNING_RATE = 2e-5
RECORD = "tuned.json"
"""The file in a tuned encoder's folder that says what it was tuned for."""
FORMAT = "grader-tuned-encoder"


@dataclass(frozen=True)
class TrainingPair:
    """A reference and a student's answer, and the share of the marks the TA gave the answer."""

    reference: str
    answer: str
    share: float


@dataclass(frozen=True)
class TunedRecord:
    """What a tuned encoder was tuned for and how (written as `tuned.json` beside its weights)."""

    rubric_fingerprint: str
    base_model: str
    pairs: int
    epochs: int
    seed: int
    seconds: float
    device: str
    format: str = FORMAT


def training_pairs(
    rubric: Rubric, answers: Mapping[tuple[str, str], str], human: Mapping[tuple[str, str], float]
) -> list[TrainingPair]:
    """One pair per marked, non-blank short answer: (the question's model answer, the answer, mark share)."""
    pairs = []
    for (student, qid), mark in human.items():
        question = rubric.question(qid) if qid in rubric.question_ids else None
        text = normalise(answers.get((student, qid), ""))
        if isinstance(question, ShortQuestion) and text:
            reference = question.model_answer or " ".join(p.text for p in question.points)
            pairs.append(TrainingPair(normalise(reference), text, min(max(float(mark) / question.marks, 0.0), 1.0)))
    return pairs


def fine_tune(
    base: Path,
    pairs: Sequence[TrainingPair],
    out: Path,
    rubric_fingerprint: str,
    base_name: str,
    epochs: int = EPOCHS,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> TunedRecord:
    """Train a copy of the encoder at `base` on `pairs` and save it to `out` (replaced atomically)."""
    if len(pairs) < 2 or len({p.share for p in pairs}) < 2:
        raise GraderError("fine-tuning needs marked answers with at least two different marks")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from datasets import Dataset
        from sentence_transformers import (
            SentenceTransformer,
            SentenceTransformerTrainer,
            SentenceTransformerTrainingArguments,
        )
        from sentence_transformers.sentence_transformer.losses import CoSENTLoss
    except ImportError as exc:  # pragma: no cover - both are dependencies of the package
        raise GraderError(f"fine-tuning needs the packages datasets and accelerate: {exc}") from None
    from transformers import set_seed

    set_seed(seed)
    started = time.perf_counter()
    model = SentenceTransformer(str(base), device=device, local_files_only=True)
    data = Dataset.from_dict(
        {
            "reference": [p.reference for p in pairs],
            "answer": [p.answer for p in pairs],
            "score": [p.share for p in pairs],
        }
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as work:
        args = SentenceTransformerTrainingArguments(
            output_dir=str(Path(work) / "trainer"),
            num_train_epochs=epochs,
            per_device_train_batch_size=BATCH_SIZE,
            learning_rate=LEARNING_RATE,
            warmup_steps=int(0.1 * epochs * math.ceil(len(pairs) / BATCH_SIZE)),  # the first tenth of the steps
            seed=seed,
            data_seed=seed,
            save_strategy="no",
            report_to=[],
            logging_strategy="no",
            disable_tqdm=not progress,
            use_cpu=device == "cpu",
            dataloader_num_workers=0,
        )
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=CoSENTLoss(model))
        trainer.train()
        record = TunedRecord(
            rubric_fingerprint, base_name, len(pairs), epochs, seed, round(time.perf_counter() - started, 1), device
        )
        staged = Path(work) / "encoder"
        model.save(str(staged))
        shutil.rmtree(Path(work) / "trainer", ignore_errors=True)
        (staged / RECORD).write_text(json.dumps(asdict(record), indent=1, sort_keys=True) + "\n", encoding="utf-8")
        old = Path(work) / "old"
        if out.exists():
            out.rename(old)
        staged.rename(out)
    return record


def read_record(directory: Path) -> TunedRecord | None:
    """The tuned-encoder record of a model folder, or None for a model that grader did not tune."""
    path = directory / RECORD
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError(f"format is {data.get('format')!r}")
        return TunedRecord(**data)
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(path, f"not a grader tuned-encoder record: {exc}") from None


def check_tuned(directory: Path, rubric: Rubric) -> None:
    """Refuse a tuned encoder with a rubric other than the one it was tuned for."""
    record = read_record(directory)
    if record is not None and record.rubric_fingerprint != rubric.fingerprint:
        raise GraderError(
            f"{directory}: this encoder was fine-tuned for another version of the rubric (fingerprint "
            f"{record.rubric_fingerprint}, this rubric is {rubric.fingerprint}): re-run `grader calibrate --fine-tune`"
        )
