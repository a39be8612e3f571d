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
from dataclasses import dataclass

import numpy as np

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
_SENTENCE_TRIM = " \t-*•"
_WORD = re.compile(r"\S+")

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


@dataclass(frozen=True)
class Segment:
    """A segment's text (what is compared and shown as evidence) and where its words lie in the
    answer: `parts` are (start, end) character ranges of the answer (two for a sentence pair, whose
    separator, a bullet or a number, is not part of it). The text may differ from the answer's
    characters in white space only (a window is rejoined by single spaces), so the ranges hold the
    same word pieces: what `grader.embedding.spans` pools."""

    text: str
    parts: tuple[tuple[int, int], ...]


def sentences(answer: str) -> list[str]:
    """Sentences of an answer, trimmed; empty pieces dropped."""
    return [answer[a:b] for a, b in sentence_spans(answer)]


def sentence_spans(answer: str) -> list[tuple[int, int]]:
    """Where the sentences of `answer` lie: (start, end) ranges, trimmed of spaces and bullets."""
    protected = _ABBREVIATIONS.sub(lambda m: m.group(0).replace(". ", "." + _PROTECT), answer)
    found, begin = [], 0
    for stop in _SENTENCE_END.finditer(protected):
        found.append(_trim(answer, begin, stop.start(), _SENTENCE_TRIM))
        begin = stop.end()
    found.append(_trim(answer, begin, len(answer), _SENTENCE_TRIM))
    return [(a, b) for a, b in found if b - a >= MIN_SEGMENT_CHARS]


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


def _trim(text: str, start: int, stop: int, chars: str | None = None) -> tuple[int, int]:
    """(start, stop) moved inwards past white space (past `chars`, when given), as str.strip would."""
    strip = str.isspace if chars is None else chars.__contains__
    while start < stop and strip(text[start]):
        start += 1
    while stop > start and strip(text[stop - 1]):
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
    return [segment.text for segment in segment_spans(answer)]


def segment_spans(answer: str) -> list[Segment]:
    """The segments of `answer` (as `segments`) with where each lies in it (see `Segment`)."""
    lead = len(answer) - len(answer.lstrip())
    answer = answer.strip()
    if not answer:
        return []
    found: dict[str, Segment] = {}

    def add(start: int, stop: int, text: str | None = None) -> None:
        """The text answer[start:stop] (or `text`, the same words), as windows when too long."""
        start, stop = _trim(answer, start, stop)
        words = [(m.start(), m.end()) for m in _WORD.finditer(answer, start, stop)]
        if len(words) <= WINDOW_WORDS:
            pieces = [(text if text is not None else answer[start:stop], start, stop)]
        else:
            pieces = [
                (
                    " ".join(answer[a:b] for a, b in words[k : k + WINDOW_WORDS]),
                    words[k][0],
                    words[min(k + WINDOW_WORDS, len(words)) - 1][1],
                )
                for k in range(0, len(words) - WINDOW_STRIDE, WINDOW_STRIDE)
            ]
        for piece, a, b in pieces:
            if len(piece) >= MIN_SEGMENT_CHARS and piece not in found:
                found[piece] = Segment(piece, ((lead + a, lead + b),))

    sents = sentence_spans(answer)
    if len(answer.split()) <= WHOLE_ANSWER_WORDS:
        add(0, len(answer), " ".join(answer.split()))
    for i, (start, stop) in enumerate(sents):
        sentence = answer[start:stop]
        add(start, stop)
        if i + 1 < len(sents):
            after = answer[sents[i + 1][0] : sents[i + 1][1]]
            text = f"{sentence} {after}".strip()
            if len(sentence.split()) + len(after.split()) <= WINDOW_WORDS and text not in found:
                parts = (_trim(answer, start, stop), _trim(answer, *sents[i + 1]))
                found[text] = Segment(text, tuple((lead + a, lead + b) for a, b in parts))
        spans = clause_spans(sentence)
        if len(spans) > 1:
            for first in range(len(spans)):
                for last in range(first, min(first + CLAUSE_WINDOW, len(spans))):
                    if last - first + 1 < len(spans):
                        a, b = _trim(sentence, spans[first][0], spans[last][1], " ,;:")
                        add(start + a, start + b)
    return list(found.values())


def sentence_overlap(answer: str) -> np.ndarray:
    """(segments, sentences) booleans, in `segments`' and `sentences`' order: which sentences of the
    answer each segment shares words with (a clause lies in one; a sentence pair spans two)."""
    spans = segment_spans(answer)
    starts, stops = np.array(sentence_spans(answer), dtype=np.int64).reshape(-1, 2).T
    overlap = np.zeros((len(spans), len(starts)), dtype=bool)
    for row, segment in enumerate(spans):
        for a, b in segment.parts:
            overlap[row] |= (starts < b) & (stops > a)
    return overlap
