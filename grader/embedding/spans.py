"""Segment embeddings pooled from one pass of the model over each sentence of the answer.

all-MiniLM-L6-v2 embeds a text as the mean of its token embeddings. Encoding each segment as a
text of its own (sentences, clause windows, sentence pairs, the whole answer) runs the model over
the same words three to five times. Here each distinct sentence is encoded once (as overlapping
windows of the model's limit when longer), and each segment's vector is the mean of the token
embeddings over its character ranges (`grader.embedding.segment.Segment`), normalised: a clause is
pooled inside its sentence's pass, a sentence pair or a whole answer over its sentences' passes.

Why sentences and not the whole answer in one pass (the first version): a clause pooled inside its
whole answer carries the rest of the answer with it, and matched points less sharply; the marks
moved far from ours on long answers (SAF MAE 0.534 against 0.379 separate; per sentence 0.418).
`bench/segment_modes.py` measures both ways against `SegmentMode.SEPARATE`, kept for comparison.

What the caller can rely on: vectors are unit float32 rows, one per segment, in the order given; the
same answers always give the same rows; token embeddings are held for one call's answers at most
(POOLED_ANSWERS per call from `grader.embedding.encoder`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np

from grader.embedding.segment import Segment, segment_spans, sentence_spans


class SegmentMode(str, Enum):
    """How a segment becomes a vector: pooled from one pass over each of its sentences, or encoded on its own."""

    POOLED = "pooled"
    SEPARATE = "separate"


DEFAULT_SEGMENT_MODE = SegmentMode.SEPARATE
"""Pooled is faster, but its uncalibrated marks agree less with the human marks on SAF and Mohler
(bench/README.md, `bench/segment_modes.py`): the credit curve and topic weight were chosen on
segments encoded alone. Calibrated, the two ways are level."""
PADDING_SLACK = 1.25
"""A batch is closed before padding would make it this many times its real tokens: a question's
texts vary in length, and batches padded to the longest cost up to twice the model time of the same
texts in even batches (measured on whole answers, 1k answers)."""
SMALL_BATCH_TOKENS = 512
"""Below this many padded tokens a batch is not closed for padding: tiny batches waste more in calls."""
POOLED_ANSWERS = 1024
"""Answers pooled per call: their sentences' token embeddings are held until the call ends
(about 40 KiB a sentence of 25 word pieces)."""
POOLING = "mean-of-sentence-span-tokens/v2"
"""Names the pooling in cache keys: a change to it (or to the windows) must never meet old vectors."""


@dataclass(frozen=True)
class PooledSegments:
    """The segments of a block's distinct answers and their vectors: answer a's segments are the
    rows `range(*rows[a])` of `vectors` (and of `texts`)."""

    texts: tuple[str, ...]
    vectors: np.ndarray
    rows: dict[str, tuple[int, int]]

    def index(self, answers: Sequence[str], offset: int = 0) -> list[int]:
        """Rows of every segment of `answers`, in order, each moved by `offset`."""
        return [offset + r for a in answers for r in range(*self.rows[a])]


def embedding_dimension(model) -> int:
    """A sentence-transformers model's vector size under whichever name the installed version has: newer
    ones call it `get_embedding_dimension` and warn that `get_sentence_embedding_dimension` is deprecated."""
    get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(get())


def segment_mode(encoder: object) -> SegmentMode:
    """What `encoder` does with segments: pooled only when its setting says so and it can give token
    embeddings (a stand-in model in tests cannot), else separate."""
    pooling = hasattr(encoder, "encode_segments") and getattr(encoder, "segments", None) == SegmentMode.POOLED
    return SegmentMode.POOLED if pooling else SegmentMode.SEPARATE


def pooled_segments(encoder: object, answers: Sequence[str]) -> PooledSegments | None:
    """The segments of `answers` pooled by `encoder` (each distinct answer once), or None when the
    encoder embeds segments separately (`segment_mode`); the caller then encodes the segment texts."""
    if segment_mode(encoder) is not SegmentMode.POOLED:
        return None
    encode = encoder.encode_segments  # type: ignore[attr-defined]
    distinct = list(dict.fromkeys(answers))
    spans = [segment_spans(a) for a in distinct]
    found_rows = encode(distinct, spans)
    rows_of, at = {}, 0
    for answer, found in zip(distinct, spans):
        rows_of[answer] = (at, at + len(found))
        at += len(found)
    texts = tuple(s.text for found in spans for s in found)
    vectors = np.concatenate(found_rows) if found_rows else np.zeros((0, 0), np.float32)
    return PooledSegments(texts, vectors.astype(np.float32, copy=False), rows_of)


def cache_key(answer: str, segment: Segment) -> str:
    """What a pooled vector is stored under: the pooling, the segment's ranges and its whole answer
    (a span's vector depends on the sentences it lies in; the answer holds them all, so the key never
    meets a vector pooled from other words). The leading NUL keeps it apart from any
    segment text, which never holds one (the answers reader refuses NUL bytes)."""
    parts = ",".join(f"{a}:{b}" for a, b in segment.parts)
    return f"\x00{POOLING}\x00{parts}\x00{answer}"


def token_windows(length: int, limit: int) -> list[tuple[int, int]]:
    """Token ranges the model reads for a text of `length` tokens: the whole text when it fits in
    `limit`, else windows of `limit` tokens half a window apart, the last ending at the text's end."""
    if length <= limit:
        return [(0, length)]
    stride = max(1, limit // 2)
    starts = list(range(0, length - limit, stride)) + [length - limit]
    return [(s, s + limit) for s in starts]


def window_owners(windows: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The tokens each window supplies: where two windows overlap, each keeps the half nearer its own
    middle, so every token is read with as much context on both sides as the windows give."""
    owned, begin = [], windows[0][0]
    for k, (start, stop) in enumerate(windows):
        cut = stop if k + 1 == len(windows) else (windows[k + 1][0] + stop) // 2
        owned.append((begin, cut))
        begin = cut
    return owned


def token_ranges(offsets: np.ndarray, parts: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Token index ranges covering character ranges `parts`: every token that overlaps one.
    `offsets` is (tokens, 2) start/end characters, in text order."""
    ranges = []
    for start, stop in parts:
        first = int(np.searchsorted(offsets[:, 1], start, side="right"))
        last = int(np.searchsorted(offsets[:, 0], stop, side="left"))
        if last > first:
            ranges.append((first, last))
    return ranges


def pool(tokens: np.ndarray, offsets: np.ndarray, segments: Sequence[Segment]) -> tuple[np.ndarray, list[int]]:
    """Unit mean vectors of each segment's tokens (rows of `tokens`), and the segments that cover no
    token (rows of zeros; the caller encodes those texts on their own)."""
    total = np.zeros((len(tokens) + 1, tokens.shape[1]), dtype=np.float64)
    np.cumsum(tokens, axis=0, dtype=np.float64, out=total[1:])
    vectors = np.zeros((len(segments), tokens.shape[1]), dtype=np.float64)
    empty = []
    for i, segment in enumerate(segments):
        ranges = token_ranges(offsets, segment.parts)
        if not ranges:
            empty.append(i)
            continue
        vectors[i] = sum(total[b] - total[a] for a, b in ranges)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32), empty


def encode_answers(
    model: object, answers: Sequence[str], segments: Sequence[Sequence[Segment]], batch_size: int
) -> list[np.ndarray]:
    """Per answer, the unit vectors of its `segments` (rows in order), pooled from one pass of the
    sentence-transformers `model` (its first module a Transformer: tokenizer, token embeddings) over
    each distinct sentence of the answers (`grader.embedding.segment.sentence_spans`; one pass per
    window of a sentence longer than the model reads). A segment inside a sentence sees that
    sentence; one across sentences (a pair, the whole answer) is the mean over each sentence's own
    tokens (see the module's docstring for why)."""
    units = [sentence_units(a) for a in answers]
    sentences = dict.fromkeys(answers[a][s:e] for a, found in enumerate(units) for s, e in found)
    where = {text: k for k, text in enumerate(sentences)}
    read: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def keep(k: int, tokens: np.ndarray, offsets: np.ndarray) -> None:
        read[k] = (tokens, offsets)

    token_passes(model, list(where), batch_size, keep)
    dimension = embedding_dimension(model)
    out: list[np.ndarray] = []
    fallback: list[tuple[int, int]] = []
    for a, found in enumerate(units):
        parts = [read[where[answers[a][s:e]]] for s, e in found]
        if not parts:  # no sentence (too short to be one): every segment is encoded alone below
            out.append(np.zeros((len(segments[a]), dimension), np.float32))
            fallback.extend((a, i) for i in range(len(segments[a])))
            continue
        tokens = np.concatenate([t for t, _ in parts])
        offsets = np.concatenate([o + s for (_, o), (s, _) in zip(parts, found)])
        vectors, empty = pool(tokens, offsets, segments[a])
        out.append(vectors)
        fallback.extend((a, i) for i in empty)
    if fallback:  # a segment of characters the tokenizer drops (rare): encoded on its own
        texts = [segments[a][i].text for a, i in fallback]
        alone = model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        for (a, i), vector in zip(fallback, alone):
            out[a][i] = vector
    return out


def sentence_units(answer: str) -> list[tuple[int, int]]:
    """The character ranges of `answer` the model reads, one pass each: its sentences, as
    `segment_spans` finds them (it finds them in the stripped answer, so they are moved back)."""
    lead = len(answer) - len(answer.lstrip())
    return [(lead + s, lead + e) for s, e in sentence_spans(answer.strip())]


def token_passes(
    model: object, texts: Sequence[str], batch_size: int, consume: Callable[[int, np.ndarray, np.ndarray], None]
) -> None:
    """Run the model once over each text (once per window when longer than it reads) and hand each
    text's token embeddings, (tokens, dimension), and their character offsets, (tokens, 2), to
    `consume(index, tokens, offsets)` as its batch finishes.

    Texts are length-sorted into batches of at most `batch_size` windows, closed early where padding
    would pass PADDING_SLACK (a text's windows stay in one batch, whatever its size)."""
    import torch

    tokenizer, transformer = model.tokenizer, model[0]
    limit = int(model.max_seq_length) - 2  # [CLS] and [SEP] take two places
    encoded = tokenizer(
        list(texts),
        add_special_tokens=False,
        return_offsets_mapping=True,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )
    ids = encoded["input_ids"]
    offsets = [np.asarray(o, dtype=np.int64).reshape(-1, 2) for o in encoded["offset_mapping"]]
    windows = [token_windows(len(x), limit) for x in ids]
    order = sorted(range(len(texts)), key=lambda a: (len(ids[a]), a))
    device = next(transformer.parameters()).device
    names = set(tokenizer.model_input_names)
    batch: list[int] = []

    def run(batch: list[int]) -> None:
        rows = [[tokenizer.cls_token_id, *ids[a][s:e], tokenizer.sep_token_id] for a in batch for s, e in windows[a]]
        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            input_ids[r, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[r, : len(row)] = 1
        features = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in names:
            features["token_type_ids"] = torch.zeros_like(input_ids)
        with torch.inference_mode():
            hidden = transformer({k: v.to(device) for k, v in features.items()})["token_embeddings"]
        hidden = hidden.float().cpu().numpy()
        r = 0
        for a in batch:
            tokens = np.zeros((len(ids[a]), hidden.shape[2]), dtype=np.float32)
            for (start, _), (first, stop) in zip(windows[a], window_owners(windows[a])):
                tokens[first:stop] = hidden[r, 1 + first - start : 1 + stop - start]
                r += 1
            consume(a, tokens, offsets[a])

    held = real = 0
    for a in order:  # shortest first: a batch's rows are padded to its last answer's length
        rows, tokens = len(windows[a]), sum(e - s + 2 for s, e in windows[a])
        padded = (held + rows) * (2 + max(e - s for s, e in windows[a]))
        if batch and (held + rows > batch_size or padded > max(PADDING_SLACK * (real + tokens), SMALL_BATCH_TOKENS)):
            run(batch)
            batch, held, real = [], 0, 0
        batch.append(a)
        held, real = held + rows, real + tokens
    if batch:
        run(batch)
