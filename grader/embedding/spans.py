"""Segment embeddings pooled from one pass of the model over the whole answer.

all-MiniLM-L6-v2 embeds a text as the mean of its token embeddings. Encoding each segment as a
text of its own (sentences, clause windows, sentence pairs, the whole answer) runs the model over
the same words three to five times. Here each answer is encoded once (as overlapping windows of the
model's limit when longer), and each segment's vector is the mean of the token embeddings over its
character ranges (`grader.embedding.segment.Segment`), normalised. The tokens see the rest of the answer, so a
segment's vector carries its context: `bench/` measures what that does to the marks
(`SegmentMode.SEPARATE` keeps the old way for comparison).

What the caller can rely on: vectors are unit float32 rows, one per segment, in the order given; the
same answer in the same batch always gives the same rows; token embeddings are held only while one
batch's segments are pooled (a batch is at most `batch_size` windows plus one long answer's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np

from grader.embedding.segment import Segment, segment_spans


class SegmentMode(str, Enum):
    """How a segment becomes a vector: pooled from one pass over its answer, or encoded on its own."""

    POOLED = "pooled"
    SEPARATE = "separate"


DEFAULT_SEGMENT_MODE = SegmentMode.SEPARATE
"""Pooled is faster, but its marks agree less with ours on the bundled sample (bench/README.md,
`bench/segment_modes.py`): the credit curve and topic weight were chosen on separate encodings."""
PADDING_SLACK = 1.25
"""A batch is closed before padding would make it this many times its real tokens: a question's
answers vary in length far more than sentences do, and batches of a question's answers padded to the
longest cost about twice the model time of the same answers in even batches (measured, 1k answers)."""
SMALL_BATCH_TOKENS = 512
"""Below this many padded tokens a batch is not closed for padding: tiny batches waste more in calls."""
POOLING = "mean-of-span-tokens/v1"
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
    (a span's vector depends on every word around it). The leading NUL keeps it apart from any
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
    the answer, or one pass per window of an answer longer than the model reads.

    Answers are length-sorted into batches of at most `batch_size` windows, closed early where padding
    would pass PADDING_SLACK (an answer's windows stay in one batch, whatever its size); each batch's
    token embeddings are pooled and dropped before the next."""
    import torch

    tokenizer, transformer = model.tokenizer, model[0]
    limit = int(model.max_seq_length) - 2  # [CLS] and [SEP] take two places
    encoded = tokenizer(
        list(answers),
        add_special_tokens=False,
        return_offsets_mapping=True,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )
    ids = encoded["input_ids"]
    offsets = [np.asarray(o, dtype=np.int64).reshape(-1, 2) for o in encoded["offset_mapping"]]
    windows = [token_windows(len(x), limit) for x in ids]
    out: dict[int, np.ndarray] = {}
    fallback: list[tuple[int, int]] = []
    order = sorted(range(len(answers)), key=lambda a: (len(ids[a]), a))
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
            out[a], empty = pool(tokens, offsets[a], segments[a])
            fallback.extend((a, i) for i in empty)

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
    if fallback:  # a segment of characters the tokenizer drops (rare): encoded on its own
        texts = [segments[a][i].text for a, i in fallback]
        vectors = model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        for (a, i), vector in zip(fallback, vectors):
            out[a][i] = vector
    return [out[a] for a in range(len(answers))]
