"""Training the contradiction checker (`grader.scoring.checker`): from SemEval-2013 and rubric pairs to weights.

Reproducible: seeded, one CPU thread by default (the same bytes on the same torch), length-sorted
batches in a seeded order, one pass. The threshold is chosen on SemEval questions held out of the
training (grouped by question, so no question is both learned and used to choose it): the lowest
P(contradicts) that flags at most `false_alarms` of the held-out correct answers.
"""

from __future__ import annotations

import csv
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader.errors import GraderError
from grader.scoring.checker import (
    LABELS,
    MAX_TOKENS,
    Checker,
    Pair,
    build_model,
    length_batches,
    phrasing_pairs,
    tokenizer_for,
)

SEMEVAL_LABELS = {"correct": "entails", "contradictory": "contradicts", "incorrect": "neither"}
SEMEVAL_COLUMNS = (
    "corpus",
    "question_id",
    "reference_answers_json",
    "reference_answer_first",
    "answer_match",
    "student_answer",
    "label_3way",
)
TRAINED_LAYERS = 3
"""Top encoder layers retrained (of 6): the lower ones stay the packaged weights, so only ~5.3M
parameters (10.6 MB in float16) are stored, and a training step backs through half the network."""
HOLDOUT = 0.2
"""Share of SemEval questions kept out of training to choose the threshold."""
FALSE_ALARMS = 0.02
"""Share of held-out correct answers the threshold may flag."""


@dataclass(frozen=True)
class Marked:
    """A SemEval answer set against a reference: its question, the pair to learn, and the pair to score.

    `scored` uses the question's first reference whatever the answer matched (which only a marker
    knows); `learned` uses the reference the answer was matched to, when the data says."""

    question: str
    learned: Pair
    scored: Pair


def _is_reference(item: object) -> bool:
    """A SemEval reference as the CSV's JSON gives it: an object with its text."""
    return isinstance(item, dict) and isinstance(item.get("text"), str)


def read_semeval(path: Path) -> tuple[list[Marked], dict[str, list[list[str]]]]:
    """The answers of SemEval-2013 train, and per question its references as rubric points (Beetle's
    BEST and GOOD references as phrasings of one point, MINIMAL ones as another)."""
    if not path.is_file():
        raise GraderError(f"{path}: no such file (SemEval-2013 train as CSV, see the README)")
    answers, references = [], {}
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in SEMEVAL_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            needs = ", ".join(SEMEVAL_COLUMNS)
            raise GraderError(f"{path}: no {missing[0]!r} column (SemEval-2013 train as CSV needs {needs})")
        for line, row in enumerate(reader, start=2):
            if row["label_3way"] not in SEMEVAL_LABELS:
                labels = ", ".join(SEMEVAL_LABELS)
                raise GraderError(
                    f"{path}, row {line}, column label_3way: {row['label_3way']!r} is not one of {labels}"
                )
            question = f"{row['corpus']}/{row['question_id']}"
            try:
                refs = json.loads(row["reference_answers_json"] or "[]")
            except json.JSONDecodeError:
                refs = None
            if not isinstance(refs, list) or not all(_is_reference(r) for r in refs):
                where = f"{path}, row {line}, column reference_answers_json"
                raise GraderError(f"{where}: not a JSON list of references with a text each")
            best = [r["text"] for r in refs if r.get("category") in (None, "BEST", "GOOD")] or [
                row["reference_answer_first"]
            ]
            minimal = [r["text"] for r in refs if r.get("category") == "MINIMAL"]
            references.setdefault(question, [best] + ([minimal] if minimal else []))
            matched = next((r["text"] for r in refs if r.get("id") == row["answer_match"]), best[0])
            label = SEMEVAL_LABELS[row["label_3way"]]
            answer = row["student_answer"]
            answers.append(Marked(question, Pair(matched, answer, label), Pair(best[0], answer, label)))
    return answers, references


def split_questions(questions: Sequence[str], share: float, seed: int) -> tuple[set[str], set[str]]:
    """Questions for training and held out (`share` of them), by a seeded shuffle."""
    ordered = sorted(set(questions))
    random.Random(seed).shuffle(ordered)
    held = set(ordered[: round(len(ordered) * share)])
    return set(ordered) - held, held


def reference_pairs(references: dict[str, list[list[str]]]) -> list[Pair]:
    """Rubric pairs (negations, paraphrases, other points) made from every question's references."""
    return [p for points in references.values() for p in phrasing_pairs(points)]


def train(
    pairs: Sequence[Pair],
    base: Path,
    *,
    epochs: int = 1,
    batch_size: int = 32,
    learning_rate: float = 5e-5,
    seed: int = 0,
    trained_layers: int = TRAINED_LAYERS,
    max_tokens: int = MAX_TOKENS,
    head_rate: float = 40.0,
    start=None,
    progress: Callable[[int, int], None] | None = None,
):
    """Fine-tune the top layers and the head on `pairs` (a fresh head on the base weights, or further
    from a trained model `start`); the head learns `head_rate` times faster. Returns the model in eval mode."""
    import torch

    torch.manual_seed(seed)
    model = start if start is not None else build_model(base, trained_layers)
    tokenizer = tokenizer_for(base)
    head = list(model.head.parameters())
    layers = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("head.")]
    optimiser = torch.optim.AdamW(
        [{"params": layers, "lr": learning_rate}, {"params": head, "lr": head_rate * learning_rate}]
    )
    target = torch.tensor([LABELS.index(p.label) for p in pairs])
    batches = length_batches([len(p.point) + len(p.segment) for p in pairs], batch_size)
    steps = epochs * len(batches)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
    )
    rng = random.Random(seed)
    model.train()
    done = 0
    for _ in range(epochs):
        order = list(range(len(batches)))
        rng.shuffle(order)
        for b in order:
            index = batches[b]
            batch = tokenizer(
                [pairs[i].point for i in index],
                [pairs[i].segment for i in index],
                truncation=True,
                max_length=max_tokens,
                padding=True,
                return_tensors="pt",
            )
            loss = torch.nn.functional.cross_entropy(model(dict(batch)), target[index])
            loss.backward()
            optimiser.step()
            schedule.step()
            optimiser.zero_grad()
            done += 1
            if progress is not None:
                progress(done, steps)
    model.eval()
    return model


def threshold_for(correct: np.ndarray, false_alarms: float = FALSE_ALARMS) -> float:
    """The lowest P(contradicts) that flags at most `false_alarms` of these correct answers."""
    ranked = np.sort(np.asarray(correct, dtype=np.float64))[::-1]
    allowed = int(np.floor(false_alarms * len(ranked)))
    return float(np.nextafter(ranked[allowed], 1.0)) if allowed < len(ranked) else 0.0


def recall_at(contradictory: np.ndarray, threshold: float) -> float:
    return float(np.mean(np.asarray(contradictory) >= threshold)) if len(contradictory) else 0.0


def train_checker(
    answers: Sequence[Marked],
    references: dict[str, list[list[str]]],
    rubric_pairs: Sequence[Pair],
    base: Path,
    *,
    epochs: int = 1,
    learning_rate: float = 1.5e-4,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[object, dict]:
    """Train on SemEval `answers` (less held-out questions), their `references`' pairs and `rubric_pairs`;
    choose the threshold on the held-out questions. Returns the model and its metadata."""
    started = time.perf_counter()
    learn, held = split_questions([a.question for a in answers], HOLDOUT, seed)
    pairs = [a.learned for a in answers if a.question in learn]
    pairs += reference_pairs({q: r for q, r in references.items() if q in learn}) + list(rubric_pairs)
    model = train(pairs, base, epochs=epochs, learning_rate=learning_rate, seed=seed, progress=progress)
    checker = Checker(model, tokenizer_for(base), 1.0, "checker")
    scored = [a.scored for a in answers if a.question in held]
    p = checker.contradiction([(s.point, s.segment) for s in scored])
    labels = np.array([s.label for s in scored])
    threshold = threshold_for(p[labels == "entails"])
    meta = {
        "name": "checker",
        "labels": list(LABELS),
        "trained_layers": TRAINED_LAYERS,
        "max_tokens": MAX_TOKENS,
        "threshold": round(threshold, 6),
        "seed": seed,
        "epochs": epochs,
        "learning_rate": learning_rate,
        "pairs": {
            "semeval": sum(a.question in learn for a in answers),
            "semeval_references": len(pairs) - sum(a.question in learn for a in answers) - len(rubric_pairs),
            "rubric": len(rubric_pairs),
        },
        "held_out": {
            "questions": len(held),
            "correct": int((labels == "entails").sum()),
            "contradictory": int((labels == "contradicts").sum()),
            "false_alarms": round(float(np.mean(p[labels == "entails"] >= threshold)), 4),
            "recall": round(recall_at(p[labels == "contradicts"], threshold), 4),
        },
        "train_seconds": round(time.perf_counter() - started),
        "data": "SemEval-2013 Task 7 train (Beetle, SciEntsBank), CC BY-SA 3.0; rubric pairs",
    }
    return model, meta
