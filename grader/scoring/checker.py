"""A learned contradiction check: does an answer segment entail a rubric point, contradict it, or neither?

Embeddings barely see negation, and the rules of `grader.scoring.negation` only catch the wordings they were
written for. The checker is a small cross-encoder: all-MiniLM-L6-v2 (the packaged weights) reading a
point and a segment together, its top layers and a 3-way head trained on SemEval-2013's
correct / contradictory / incorrect answers and on pairs made from rubrics (`rubric_pairs`: each
phrasing against its negation, antonym swap, changed number or reversed verdict; against its other
phrasings; against other points). Only the trained layers and the head are stored (float16,
`models/checker/`), on top of the base weights of `grader.embedding.encoder.default_model_path()`.

Grading asks it only about the few segments that would earn a point (`refute`), batched, each
distinct (point, segment) pair once; a segment it reads as contradicting the point is masked out
like one the rules oppose, and the answer is flagged with the probability.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from grader.embedding.segment import sentences
from grader.errors import GraderError
from grader.exam.rubric import ShortQuestion
from grader.scoring.match import CreditCurve, QuestionVectors, best_matches
from grader.scoring.negation import antonym, stem, verdict

LABELS = ("entails", "contradicts", "neither")
CONTRADICTS = LABELS.index("contradicts")
MAX_TOKENS = 96
"""Point and segment together are cut to this many word pieces: a point is ~25, a segment rarely 70."""
BATCH = 64
THRESHOLD_FLOOR = 0.5
"""The least P(contradicts) that takes a point away, whatever threshold the training chose. Chosen on
Mohler dev's full-mark answers (a development set): at the shipped weights' own threshold (0.413,
2 % of held-out SemEval correct answers) the checker took points from 18 of 482, all between 0.416
and 0.496; data-structure answers read unlike the school science it learned from."""
ROUNDS = 3
"""Times the best segment of a point is re-checked after the checker masked the one before."""
WEIGHTS = "checker.safetensors"
META = "checker.json"
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "models" / "checker"


@dataclass(frozen=True)
class Pair:
    """A rubric phrasing, a text set against it, and how the text relates to it (one of LABELS)."""

    point: str
    segment: str
    label: str


# ----------------------------------------------------------------------------------------------
# Pairs made from a rubric: what this exam's points look like negated, paraphrased, or beside others.

_AUX = re.compile(
    r"\b(is|are|was|were|can|could|will|would|should|does|do|did|has|have|had|must|may|might)\b(\s+not\b|n't\b)?",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?![\w.]*[a-z_])", re.IGNORECASE)
_FIRST_VERB = re.compile(r"\b(\w{3,}?)(s|es)\b")


def negations(text: str) -> list[str]:
    """Texts that say the opposite of `text`: 'not' added after (or taken from) its first auxiliary,
    an antonym swapped in, a number changed, the yes/no verdict reversed. May be empty."""
    found: list[str] = []
    aux = _AUX.search(text)
    if aux:
        word, negated = aux.group(1), aux.group(2)
        if negated:
            found.append(text[: aux.start()] + word + text[aux.end() :])
        else:
            joined = "cannot" if word.lower() == "can" else f"{word} not"
            found.append(text[: aux.start()] + joined + text[aux.end() :])
    tokens = re.split(r"(\W+)", text)
    for i, token in enumerate(tokens):
        other = antonym(token.lower()) if token[:1].isalpha() else None
        if other:
            found.append("".join(tokens[:i] + [other] + tokens[i + 1 :]))
            break
    number = _NUMBER.search(text)
    if number:  # every mention of the first number stated, changed alike
        value = float(number.group(1))
        changed = f"{value * 2 + 1:g}"
        found.append(_NUMBER.sub(lambda m: changed if float(m.group(1)) == value else m.group(0), text))
    v = verdict(text)
    if v:
        body = re.sub(r"^\W*(yes|yeah|yep|yup|no|nope)\b\W*", "", text.strip(), flags=re.IGNORECASE)
        found.append(("No, " if v > 0 else "Yes, ") + body)
    return [t for t in dict.fromkeys(found) if t != text]


def _words(text: str) -> set[str]:
    return {stem(w) for w in re.findall(r"[a-z]{3,}", text.lower())}


def phrasing_pairs(points: Sequence[Sequence[str]], extra: Sequence[str] = (), prompt: str | None = None) -> list[Pair]:
    """Pairs from one question's points (each a list of phrasings): negations contradict; the point's
    other phrasings, and the `extra` sentences (a model answer's) sharing most words with it, entail;
    other points' phrasings and the prompt are neither."""
    pairs: list[Pair] = []
    for k, phrasings in enumerate(points):
        others = [t for j, p in enumerate(points) if j != k for t in p]
        for text in phrasings:
            pairs += [Pair(text, n, "contradicts") for n in negations(text)]
            pairs += [Pair(text, t, "entails") for t in phrasings if t != text]
            pairs += [Pair(text, t, "neither") for t in others]
            if prompt:
                pairs.append(Pair(text, prompt, "neither"))
    for sentence in extra:
        overlap = [len(_words(sentence) & _words(" ".join(p))) for p in points]
        if points and max(overlap) >= 2:
            pairs.append(Pair(points[int(np.argmax(overlap))][0], sentence, "entails"))
    return pairs


def rubric_pairs(question: ShortQuestion) -> list[Pair]:
    """This question's training pairs (see `phrasing_pairs`)."""
    extra = sentences(question.model_answer) if question.model_answer else []
    return phrasing_pairs([p.phrasings for p in question.points], extra, question.prompt)


# ----------------------------------------------------------------------------------------------
# The model: the base encoder's layers, the top ones retrained, and a 3-way head on the mean.


def build_model(base: Path, trained_layers: int):
    """The base model with a fresh head; only the top `trained_layers` layers and the head train."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()

    class PairClassifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(str(base), local_files_only=True)
            self.head = torch.nn.Linear(self.encoder.config.hidden_size, len(LABELS))
            for p in self.encoder.parameters():
                p.requires_grad = False
            for layer in self.encoder.encoder.layer[len(self.encoder.encoder.layer) - trained_layers :]:
                for p in layer.parameters():
                    p.requires_grad = True

        def forward(self, batch: dict) -> torch.Tensor:
            hidden = self.encoder(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            return self.head((hidden * mask).sum(1) / mask.sum(1).clamp(min=1))

    return PairClassifier()


def trained_state(model) -> dict:
    """The parameters training changed (top layers and head): all that is stored."""
    return {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}


def tokenizer_for(base: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(base), local_files_only=True)


def length_batches(lengths: Sequence[int], size: int) -> list[np.ndarray]:
    """Indices in batches of similar length (little padding), in length order."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    return [order[i : i + size] for i in range(0, len(order), size)]


class Contradicting(Protocol):
    """What grading asks of a learned check (`Checker` here, `grader.scoring.concept_check.ConceptCheck`):
    a score per (point, segment) pair, and the score at or above which the segment is taken out."""

    threshold: float
    name: str

    def contradiction(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray: ...


@dataclass
class Checker:
    """A loaded checker. `contradiction` gives P(contradicts) for (point, segment) pairs."""

    model: object
    tokenizer: object
    threshold: float
    """P(contradicts) at or above which a segment is read as saying the opposite (chosen at training)."""
    name: str
    max_tokens: int = MAX_TOKENS
    bfloat16: bool = False
    """Run in bfloat16 (where the CPU computes it natively, `native_bfloat16`): 1.8x faster on such a
    CPU, P(contradicts) within 0.003 of float32 on held-out SemEval pairs, recall there unchanged.
    The network is copied to bfloat16 once (`_half`), which reads pairs 1.6x faster again than casting
    each float32 weight in every batch (autocast), P within 0.007 of it (bench/README.md)."""
    _half: object = field(default=None, init=False, repr=False, compare=False)

    def network(self):
        """The network the pairs run through: the float32 one, or its bfloat16 copy made on first use."""
        if not self.bfloat16:
            return self.model
        if self._half is None:
            import copy

            import torch

            self._half = copy.deepcopy(self.model).to(torch.bfloat16)
        return self._half

    def probabilities(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """(pairs, LABELS) probabilities, each distinct pair run once, in length-sorted batches."""
        import torch

        unique = list(dict.fromkeys(pairs))
        out = np.zeros((len(unique), len(LABELS)), dtype=np.float32)
        if unique:
            lengths = [len(a) + len(b) for a, b in unique]
            network = self.network()
            with torch.inference_mode():
                for index in length_batches(lengths, BATCH):
                    batch = self.tokenizer(
                        [unique[i][0] for i in index],
                        [unique[i][1] for i in index],
                        truncation=True,
                        max_length=self.max_tokens,
                        padding=True,
                        return_tensors="pt",
                    )
                    out[index] = torch.softmax(network(dict(batch)).float(), dim=-1).numpy()
        if len(unique) == len(pairs):
            return out
        position = {p: i for i, p in enumerate(unique)}
        return out[[position[p] for p in pairs]]

    def contradiction(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """The score compared with `threshold` (`contradiction_score`), one per pair."""
        return contradiction_score(self.probabilities(pairs)) if pairs else np.zeros(0, dtype=np.float32)


def describe(checker: Contradicting) -> str:
    """What run.json records of the checker that graded: the marks depend on its weights, threshold, precision."""
    name = getattr(checker, "name", type(checker).__name__)
    opposition = getattr(checker, "opposition", None)
    if opposition is not None:
        cross = getattr(checker, "cross", None)  # `grader.scoring.cross_reading.CrossReading`
        again = "" if cross is None else f"; the most doubted read again by the {cross.summary}"
        return f"{name} (answers read whole: opposition threshold {opposition.threshold:.3f}{again})"
    if not isinstance(checker, Checker):
        return f"{name} (threshold {checker.threshold:.3f})"
    return f"{name} (threshold {checker.threshold:.3f}, {'bfloat16' if checker.bfloat16 else 'float32'})"


def native_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX); elsewhere it is slower."""
    import torch

    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def contradiction_score(probabilities: np.ndarray) -> np.ndarray:
    """P(contradicts) from (pairs, LABELS) probabilities: what a threshold is chosen on and compared with."""
    return probabilities[:, CONTRADICTS]


def save(model, directory: Path, meta: dict) -> None:
    """The trained parameters as float16 safetensors, and what they were trained from and for."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.to("cpu").half().contiguous() for k, v in trained_state(model).items()}
    save_file(state, str(directory / WEIGHTS))
    (directory / META).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def load(directory: Path, base: Path, names: tuple[str, str] = (WEIGHTS, META), how: str = "") -> Checker:
    """Load a checker from `directory` onto the base weights at `base`; refuses a mismatch in one line.
    `names` (weights, metadata) and `how` (the remedy a missing file is told) serve other networks
    of the same shape (`grader.scoring.cross_reading`)."""
    import torch
    from safetensors.torch import load_file

    weights, meta_path = directory / names[0], directory / names[1]
    if not meta_path.is_file() or not weights.is_file():
        how = how or "run `grader model train-checker`"
        raise GraderError(f"{directory}: no checker weights ({names[0]} and {names[1]}); {how}")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        layers = int(meta["trained_layers"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise GraderError(f"{meta_path}: not a checker's metadata ({type(err).__name__}: {err})") from None
    model = build_model(base, layers)
    try:
        state = load_file(str(weights))
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error type on a damaged file
        raise GraderError(f"{weights}: not weights this grader reads ({err})") from None
    missing = set(trained_state(model)) - set(state)
    if missing:
        raise GraderError(f"{weights}: not a checker for this base model (missing {min(missing)})")
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    model.eval()
    torch.manual_seed(0)
    threshold = max(float(meta.get("threshold", THRESHOLD_FLOOR)), THRESHOLD_FLOOR)
    name, max_tokens = meta.get("name", directory.name), int(meta.get("max_tokens", MAX_TOKENS))
    return Checker(model, tokenizer_for(base), threshold, name, max_tokens, native_bfloat16())


# ----------------------------------------------------------------------------------------------
# Grading: which segments would earn a point while the checker says they contradict it.


@dataclass(frozen=True)
class Refutation:
    """Segments the checker read as contradicting a point: a mask like `grader.scoring.negation.opposed`'s,
    and, per (answer row, point), the segment and its probability."""

    opposite: np.ndarray
    """(segments, phrasings) True where the segment is taken out for that point's phrasings."""
    found: dict[tuple[int, int], tuple[str, float]]


def context(segments: Sequence[str], winner: int) -> tuple[str, list[int]]:
    """The text the checker reads for a winning segment: the longest segment of the answer that
    contains it (the whole answer when it is short, else a pair of sentences or its sentence), and
    the indices of every segment inside that text (masked together: the part of a sentence that
    turns a point around must not leave its other fragments earning the point)."""
    text = max((t for t in segments if segments[winner] in t), key=len)
    return text, [i for i, t in enumerate(segments) if t in text]


def refute(
    contradiction: Callable[[list[tuple[str, str]]], np.ndarray],
    threshold: float,
    segments: Sequence[Sequence[str]],
    phrasings: Sequence[str],
    offsets: np.ndarray,
    rematch: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]],
    opposite: np.ndarray,
) -> Refutation:
    """Check the text around each answer's winning segment per point; mask what contradicts, look again.

    `phrasings` are the question's phrasing texts by column, point k's at offsets[k]:offsets[k+1].
    `rematch(mask)` gives, per (answer, point) under a (segments, phrasings) mask: the winning
    segment's index within its answer, the column of the phrasing it matched best, and whether it
    earns any credit. Only winners that earn credit are asked about (in their `context`), at most
    ROUNDS times per point; each (answer, point, text) once.
    """
    starts = np.concatenate([[0], np.cumsum([len(s) for s in segments])[:-1]]).astype(np.intp)
    ends = np.append(np.asarray(offsets)[1:], len(phrasings))
    mask = opposite.copy()
    found: dict[tuple[int, int], tuple[str, float]] = {}
    asked: set[tuple[int, int, str]] = set()
    todo: set[tuple[int, int]] | None = None
    for _ in range(ROUNDS):
        winner, column, earns = rematch(mask)
        cells = []
        for a, k in zip(*np.nonzero(earns)):
            a, k = int(a), int(k)
            text, inside = context(segments[a], int(winner[a, k]))
            if (todo is None or (a, k) in todo) and (a, k, text) not in asked:
                asked.add((a, k, text))
                cells.append((a, k, int(winner[a, k]), int(column[a, k]), text, inside))
        if not cells:
            break
        p = contradiction([(phrasings[c], text) for _, _, _, c, text, _ in cells])
        todo = set()
        for (a, k, s, _, _, inside), prob in zip(cells, p):
            if prob >= threshold:
                mask[starts[a] + np.array(inside), offsets[k] : ends[k]] = True
                found.setdefault((a, k), (segments[a][s], float(prob)))
                todo.add((a, k))
        if not todo:
            break
    return Refutation(mask, found)


def checked_opposite(
    checker: Contradicting,
    question: QuestionVectors,
    phrasings: Sequence[str],
    segment_rows: np.ndarray,
    segments: Sequence[Sequence[str]],
    opposite: np.ndarray | None,
    excluded: np.ndarray | None,
    topic_weight: float,
    curve: CreditCurve,
) -> Refutation:
    """`refute` over one block of answers, matching as `grader.scoring.match.best_matches` does."""
    counts = [len(s) for s in segments]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.intp)
    ends = np.append(question.offsets[1:], len(phrasings))
    cosines = segment_rows @ question.rows.T

    def rematch(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        best = best_matches(segment_rows, counts, question, topic_weight, mask, excluded)
        rows = starts[:, None] + best.segment
        column = np.empty_like(best.segment)
        for k, (lo, hi) in enumerate(zip(question.offsets, ends)):
            block = np.where(mask[rows[:, k], lo:hi], -np.inf, cosines[rows[:, k], lo:hi])
            column[:, k] = lo + block.argmax(axis=1)
        return best.segment, column, curve.credit(best.score) > 0

    start = opposite if opposite is not None else np.zeros(cosines.shape, dtype=bool)
    return refute(checker.contradiction, checker.threshold, segments, phrasings, question.offsets, rematch, start)


def probability_of(refutation: Refutation | None, row: int, point: int, segment: str | None) -> float | None:
    """The checker's P(contradicts) for the segment flagged as opposite, when the checker masked it."""
    if refutation is None or segment is None:
        return None
    found = refutation.found.get((row, point))
    return found[1] if found is not None and found[0] == segment else None
