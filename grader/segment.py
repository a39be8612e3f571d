"""Split an answer into the pieces a rubric point is compared with.

A point is often made in half a sentence ("..., so ReLU keeps only positive evidence") or across
two short sentences, and a whole long answer embeds as a blur of everything it says. So the
segments are: each sentence, every window of up to three consecutive clauses inside a sentence,
each pair of adjacent sentences, and the whole answer when it is short. Duplicates are dropped,
order is kept (first occurrence), so the result is deterministic.

The model reads at most 256 word pieces and silently drops the rest, so nothing longer than
WINDOW_WORDS words is ever a segment: a longer sentence (or clause run) becomes overlapping windows
of WINDOW_WORDS words, half a window apart, and sentence pairs that would be too long are not formed.
A point made at the end of a 400-word run-on sentence is still read; `overlong` tells the caller to
flag the answer.
"""

from __future__ import annotations

import re

# Sentence ends: . ! ? ; followed by space, or line breaks and bullets. Abbreviations and decimals
# ("e.g. the", "0.5") are protected because the split needs whitespace after the stop.
_ABBREVIATIONS = re.compile(r"\b(e\.g|i\.e|etc|vs|cf|approx|resp|fig|eq|et al)\.\s", re.IGNORECASE)
# A match may start only where a run of spaces starts ((?<!\s)): a regex engine retries every
# position, and spaces scanned again from each one of them cost time quadratic in the run's length
# (120,000 spaces from a student took minutes). A match never ends inside a run, so nothing changes.
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|(?<!\s)\s*\n\s*(?:[-*•]\s+|\d+[.)]\s+)?")
# Clause boundaries: punctuation inside a sentence, and the connectives students use to join claims
# (starting only where a run of spaces starts, as above).
_CLAUSE_BREAK = re.compile(
    r"(?<!\s)(?:\s*[,:\u2014\u2013]\s*|\s+-\s+|\s+(?=(?:because|since|so|but|whereas|while|which|therefore|"
    r"hence|thus|however|although|whereas|meaning|making|leading|as a result)\b))",
    re.IGNORECASE,
)
_PROTECT = "\u0000"

CLAUSE_WINDOW = 3
"""Longest run of consecutive clauses kept as one segment."""
WHOLE_ANSWER_WORDS = 80
"""Answers up to this many words are also compared whole (longer ones blur, and hit the model's limit)."""
MIN_SEGMENT_CHARS = 2
WINDOW_WORDS = 100
"""Longest segment, in words. 256 word pieces is about 150-190 English words; formulas and jargon
split into more pieces per word, so stay well below."""
WINDOW_STRIDE = 50
"""Windows overlap by half, so a point that straddles one window's edge is whole in the next."""


def sentences(answer: str) -> list[str]:
    """Sentences of an answer, trimmed; empty pieces dropped."""
    protected = _ABBREVIATIONS.sub(lambda m: m.group(0).replace(". ", "." + _PROTECT), answer)
    parts = (p.replace(_PROTECT, " ").strip(" \t-*•") for p in _SENTENCE_END.split(protected))
    return [p for p in parts if len(p) >= MIN_SEGMENT_CHARS]


def clauses(sentence: str) -> list[str]:
    """Clauses of one sentence (see `clause_spans`)."""
    return [sentence[a:b] for a, b in clause_spans(sentence)]


def clause_spans(sentence: str) -> list[tuple[int, int]]:
    """Clauses of one sentence: split at commas, colons, dashes and connectives outside brackets.

    Brackets hold formulas and asides (`U(-sqrt(6/(a+b)), sqrt(...))`) that must stay whole, so
    breaks inside them are masked first; the mask keeps every offset, so we cut the original text.
    """
    masked, depth = [], 0
    for char in sentence:
        depth += char in "([{"
        masked.append(_PROTECT if depth > 0 else char)
        depth = max(0, depth - (char in ")]}"))
    spans, begin = [], 0
    for brk in _CLAUSE_BREAK.finditer("".join(masked)):
        spans.append((begin, brk.start()))
        begin = brk.end()
    spans.append((begin, len(sentence)))
    return [_trim(sentence, a, b) for a, b in spans if re.search(r"\w", sentence[a:b])]


def _trim(text: str, start: int, stop: int) -> tuple[int, int]:
    while start < stop and text[start].isspace():
        start += 1
    while stop > start and text[stop - 1].isspace():
        stop -= 1
    return start, stop


def windows(text: str) -> list[str]:
    """`text` as overlapping windows of at most WINDOW_WORDS words (itself when short enough)."""
    words = text.split()
    if len(words) <= WINDOW_WORDS:
        return [text]
    starts = range(0, len(words) - WINDOW_STRIDE, WINDOW_STRIDE)
    return [" ".join(words[start : start + WINDOW_WORDS]) for start in starts]


def overlong(answer: str) -> int:
    """Words in the answer's longest sentence when it is over WINDOW_WORDS (so it was split), else 0."""
    longest = max((len(s.split()) for s in sentences(answer)), default=0)
    return longest if longest > WINDOW_WORDS else 0


def segments(answer: str) -> list[str]:
    """Every segment of `answer` worth comparing with a rubric point; [] for a blank answer."""
    answer = answer.strip()
    if not answer:
        return []
    found: dict[str, None] = {}

    def add(text: str) -> None:
        for piece in windows(text.strip()):
            if len(piece) >= MIN_SEGMENT_CHARS:
                found.setdefault(piece, None)

    sents = sentences(answer)
    if len(answer.split()) <= WHOLE_ANSWER_WORDS:
        add(" ".join(answer.split()))
    for i, sentence in enumerate(sents):
        add(sentence)
        if i + 1 < len(sents) and len(sentence.split()) + len(sents[i + 1].split()) <= WINDOW_WORDS:
            add(f"{sentence} {sents[i + 1]}")
        spans = clause_spans(sentence)
        if len(spans) > 1:
            for first in range(len(spans)):
                for last in range(first, min(first + CLAUSE_WINDOW, len(spans))):
                    if last - first + 1 < len(spans):
                        add(sentence[spans[first][0] : spans[last][1]].strip(" ,;:"))
    return list(found)
