"""The exam-specific stage of issue 12, tried: the cross-encoder fine-tuned on this exam's own pairs.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/exam_tuning.py [--rate 5e-5] [--epochs 3] [--zero-marks]  # ~1 min an epoch
    HF_HUB_OFFLINE=1 .venv/bin/python bench/exam_tuning.py --corpus saf|mohler [--seed N]   # ~5 / ~3 min, 3 epochs

The shipped network (`models/cross-encoder/`, `grader.scoring.cross_reading`) is fine-tuned here, on the
CPU, every layer, from its weights, on:
- the dl-midsem rubric's entails and contradicts pairs (`checker.rubric_pairs`);
- the full-mark answers of a random half of the bundled sample's students, against every phrasing of
  their question, as entailments;
- with `--zero-marks`, the zero-mark answers of the same half, as contradictions (what the TA's marks
  say: a wrong answer, a reversal among them);
- 1,500 of SemEval train's correct and contradictory pairs, replayed.

It is then read on the other half's full-mark and zero-mark answers, and on two reversal wordings of our
own per question (not the issue's). Each answer's score is its P(contradicts) averaged over every phrasing of the
question (then the highest). Before and after fine-tuning. Results: bench/README.md ("The second
reading shipped").

`--corpus saf|mohler` teaches the same network a public corpus's own marks instead, on half of each
question's answers, and reads the other half (`corpus`): what a TA's marks would teach it at calibration.
"""

from __future__ import annotations

import argparse
import collections
import copy
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from checker import DATA, MARKS, RUBRIC, SAMPLE  # noqa: E402

from grader.embedding.encoder import default_model_path  # noqa: E402
from grader.exam.files import read_human_marks  # noqa: E402
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


def fine_tuned(checker, pairs: list[tuple[str, str, int]], epochs: int, rate: float):
    """A copy of `checker` whose network is fine-tuned, every layer, on (point, answer, contradicts?) pairs."""
    import torch

    model = copy.deepcopy(checker.model)
    for parameter in model.parameters():
        parameter.requires_grad = True
    optimizer = torch.optim.AdamW(model.parameters(), lr=rate, weight_decay=0.01)
    rng, started = random.Random(0), time.perf_counter()
    model.train()
    for epoch in range(epochs):
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
    return tuned


def replayed(count: int = 1500) -> list[tuple[str, str, int]]:
    """`count` of SemEval train's correct and contradictory pairs, seeded: what keeps the network's reading."""
    answers, _ = read_semeval(DATA / "semeval2013_train.csv")
    replay = [
        (a.learned.point, a.learned.segment, int(a.learned.label == "contradicts"))
        for a in answers
        if a.learned.label in ("entails", "contradicts")
    ]
    random.Random(0).shuffle(replay)
    return replay[:count]


def corpus(args: argparse.Namespace, checker) -> None:
    """`--corpus saf|mohler`: the stage taught a marked corpus's own marks, read on answers it did not see.

    Each question's answers are dealt in halves (`--seed`). The network learns the first half against the
    question's reference: top-mark answers entail, low-mark ones (SAF: 0; Mohler: 2 of 5 or less)
    contradict, with the SemEval replay. The second half's top- and low-mark answers are then read: the
    recall of the low-mark ones at no more than 2 % of the top-mark ones flagged (a threshold chosen on
    those very answers: a measure of separation, not an operating point), beside the shipped network and
    the plain cosine of the packaged embeddings."""
    from checker import recall_at_false_alarms
    from corpora import mohler, saf

    from grader.embedding.encoder import Encoder

    marked = mohler() if args.corpus == "mohler" else saf(0)
    of_question = {r.question_id: (r.reference_answer, r.max_mark) for r in marked.references}
    low_at = 2.0 if args.corpus == "mohler" else 0.0
    by_question = collections.defaultdict(list)
    for a in marked.answers:
        reference, top = of_question[a.question_id]
        if a.human == top or a.human <= low_at:
            by_question[a.question_id].append((reference, a.text, "top" if a.human == top else "low"))
    rng, learn, held = random.Random(args.seed), [], []
    for question in sorted(by_question):
        items = by_question[question]
        rng.shuffle(items)
        learn += items[: len(items) // 2]
        held += items[len(items) // 2 :]
    low = np.array([kind == "low" for _, _, kind in held])
    print(
        f"{args.corpus}, seed {args.seed}: learned from {len(learn)} answers "
        f"({sum(k == 'low' for *_, k in learn)} low), read {len(held)} ({int(low.sum())} low)",
        flush=True,
    )

    def row(name: str, scores: np.ndarray) -> None:
        recall, alarms = recall_at_false_alarms(scores[low], scores[~low], 0.02)
        print(f"| {name} | {recall:.1%} | {alarms:.1%} |", flush=True)

    encoder = Encoder.load(device="cpu")
    references, answers = (encoder.encode([h[i] for h in held]) for i in (0, 1))
    row("cosine (lower: flagged)", -np.sum(references * answers, axis=1))
    pairs = [(reference, answer) for reference, answer, _ in held]
    row("shipped network, P(contradicts)", checker.probabilities(pairs)[:, 1])
    taught = [(reference, answer, int(kind == "low")) for reference, answer, kind in learn] + replayed()
    tuned = fine_tuned(checker, taught, args.epochs, args.rate)
    row(f"taught the marks ({args.epochs} epochs, {args.rate:g})", tuned.probabilities(pairs)[:, 1])


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=5e-5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--zero-marks", action="store_true", help="also the learned half's zero-mark answers, as contradicting"
    )
    parser.add_argument("--corpus", choices=("saf", "mohler"), help="taught a marked corpus's marks instead")
    parser.add_argument("--seed", type=int, default=0, help="how --corpus's answers are dealt in halves")
    args = parser.parse_args()
    torch.manual_seed(0)
    checker = load_reading(DEFAULT_DIR, default_model_path()).checker
    if args.corpus:
        return corpus(args, checker)
    rubric = load_rubric(RUBRIC)
    submissions = read_submissions(SAMPLE, rubric.question_ids)
    marks = read_human_marks(MARKS)
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
        if args.zero_marks:
            zero = [
                a for s in sorted(learn) if (a := submissions.answer(s, q.id)).strip() and marks.get((s, q.id)) == 0
            ]
            pairs += [(t, a, 1) for a in zero for t in question_phrasings(q)]
    pairs += replayed()
    tuned = fine_tuned(checker, pairs, args.epochs, args.rate)
    also = ", zero marks too" if args.zero_marks else ""
    report(tuned, f"fine-tuned ({args.epochs} epochs, {args.rate:g}{also})", shorts, held, submissions, marks)


if __name__ == "__main__":
    main()
