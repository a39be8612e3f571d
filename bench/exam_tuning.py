"""The exam-specific stage of issue 12, tried: the cross-encoder fine-tuned on this exam's own pairs.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/exam_tuning.py [--rate 5e-5] [--epochs 3]   # ~1 min an epoch

The shipped network (`models/cross-encoder/`, `grader.scoring.cross_reading`) is fine-tuned here, on the
CPU, every layer, from its weights, on:
- the dl-midsem rubric's entails and contradicts pairs (`checker.rubric_pairs`);
- the full-mark answers of a random half of the bundled sample's students, against every phrasing of
  their question, as entailments;
- 1,500 of SemEval train's correct and contradictory pairs, replayed.

It is then read on the other half's full-mark and zero-mark answers, and on two reversal wordings of our
own per question (not the issue's). Each answer's score is its P(contradicts) averaged over every phrasing of the
question (then the highest). Before and after fine-tuning. Results: bench/README.md ("The second
reading shipped").
"""

from __future__ import annotations

import argparse
import copy
import csv
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from checker import DATA, MARKS, RUBRIC, SAMPLE  # noqa: E402

from grader.embedding.encoder import default_model_path  # noqa: E402
from grader.exam.rubric import ShortQuestion, load_rubric  # noqa: E402
from grader.exam.submissions import read_submissions  # noqa: E402
from grader.scoring.checker import rubric_pairs  # noqa: E402
from grader.scoring.checker_train import read_semeval  # noqa: E402
from grader.scoring.concept_check import question_phrasings  # noqa: E402
from grader.scoring.cross_reading import DEFAULT_DIR, load_reading  # noqa: E402

REVERSALS = {
    "I4": [
        "Neural networks cannot approximate discontinuous functions, while Fourier series handle "
        "discontinuities without trouble.",
        "Fourier series can represent any function, including discontinuous ones, while neural networks cannot.",
    ],
    "A1a": [
        "ReLU is not needed here, the negative values matter and should stay in the heatmap.",
        "ReLU is unnecessary: the negative regions support the class and must be kept.",
    ],
    "I5": [
        "A polynomial activation works fine as long as its degree is large enough, the network can still "
        "approximate anything.",
        "Polynomial activations are fine; a high-degree polynomial network is a universal approximator.",
    ],
}
"""Our own wordings (tests/scoring/test_checker.py's REVERSALS and one more each); never trained on."""


def contradiction(checker, question, answers: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each answer's P(contradicts) against every phrasing of its question: the mean, and the highest."""
    phrasings = question_phrasings(question)
    pairs = [(p, a) for a in answers for p in phrasings]
    scores = checker.probabilities(pairs)[:, 1].reshape(len(answers), len(phrasings))
    return scores.mean(1), scores.max(1)


def report(checker, label: str, shorts, held, submissions, marks) -> None:
    for how in (0, 1):
        full, zero, reversed_ = [], [], []
        for q in shorts:
            mine = [s for s in held if submissions.answer(s, q.id).strip() and (s, q.id) in marks]
            for wanted, into in ((q.marks, full), (0.0, zero)):
                texts = [submissions.answer(s, q.id) for s in mine if marks[(s, q.id)] == wanted]
                if texts:
                    into += list(contradiction(checker, q, texts)[how])
            if q.id in REVERSALS:
                reversed_ += [f"{q.id} {x:.2f}" for x in contradiction(checker, q, REVERSALS[q.id])[how]]
        full = np.array(full)
        print(
            f"{label}, {'mean' if how == 0 else 'highest'} over phrasings: held-out full-mark answers median "
            f"{np.median(full):.2f}, 98th pct {np.quantile(full, 0.98):.2f}, max {full.max():.2f} ({len(full)}); "
            f"zero-mark median {np.median(zero):.2f} ({len(zero)}); reversals {', '.join(reversed_)}",
            flush=True,
        )


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=5e-5)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    checker = load_reading(DEFAULT_DIR, default_model_path()).checker
    rubric = load_rubric(RUBRIC)
    submissions = read_submissions(SAMPLE, rubric.question_ids)
    marks = {(m["student_id"], m["question_id"]): float(m["mark"]) for m in csv.DictReader(MARKS.open())}
    shorts = [q for q in rubric.questions if isinstance(q, ShortQuestion)]
    students = sorted(submissions.students)
    random.Random(1).shuffle(students)
    learn, held = set(students[: len(students) // 2]), students[len(students) // 2 :]
    report(checker, "shipped", shorts, held, submissions, marks)

    pairs = []
    for q in shorts:
        pairs += [(p.point, p.segment, int(p.label == "contradicts")) for p in rubric_pairs(q) if p.label != "neither"]
        full = [
            a
            for s in sorted(learn)
            if (a := submissions.answer(s, q.id)).strip() and marks.get((s, q.id), -1) >= q.marks
        ]
        pairs += [(t, a, 0) for a in full for t in question_phrasings(q)]
    answers, _ = read_semeval(DATA / "semeval2013_train.csv")
    replay = [
        (a.learned.point, a.learned.segment, int(a.learned.label == "contradicts"))
        for a in answers
        if a.learned.label in ("entails", "contradicts")
    ]
    random.Random(0).shuffle(replay)
    pairs += replay[:1500]
    model = copy.deepcopy(checker.model)
    for parameter in model.parameters():
        parameter.requires_grad = True
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.rate, weight_decay=0.01)
    rng, started = random.Random(0), time.perf_counter()
    model.train()
    for epoch in range(args.epochs):
        order = list(range(len(pairs)))
        rng.shuffle(order)
        for start in range(0, len(order), 16):
            chunk = [pairs[i] for i in order[start : start + 16]]
            batch = checker.tokenizer(
                [c[0] for c in chunk],
                [c[1] for c in chunk],
                truncation=True,
                max_length=128,
                padding=True,
                return_tensors="pt",
            )
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = model(dict(batch))
            loss = torch.nn.functional.cross_entropy(logits.float(), torch.tensor([c[2] for c in chunk]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch + 1}: {time.perf_counter() - started:.0f} s ({len(pairs)} pairs)", flush=True)
    model.eval()
    tuned = copy.copy(checker)
    tuned.model, tuned._half = model, None
    report(tuned, f"fine-tuned ({args.epochs} epochs, {args.rate:g})", shorts, held, submissions, marks)


if __name__ == "__main__":
    main()
