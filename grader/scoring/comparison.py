"""Comparisons: a question that compares two things, and answers that turn the comparison around.

"What makes neural networks different from Fourier series?" A point says something of each ("neural
networks can approximate any function, where a Fourier series fails to converge"). An answer that uses
the same words with the roles turned around ("neural networks cannot approximate discontinuous functions,
while Fourier series handle them") earns the point from the embeddings, which barely see who does what;
and the polarity rules, reading the sentence whole, see both halves at once.

So, for a question whose prompt compares two things, each clause of a point's phrasings and of an
answer is read as being about one of them: the one it names (by the words only that one's name has); a
clause naming neither continues its sentence's last one; a clause naming both is not read. Its signed
concepts (`grader.scoring.negation.signed_concepts`) are kept under that thing, and an answer clause
reverses a point when the polarity rules oppose it to one of the point's clauses about the same thing
(`negation.opposed`: about the same concepts, an odd number of them signed the other way). Grading takes
the point from such an answer, and every point from the sentence that says it (`grader.scoring.grade`).

Rules over the prompt's form ("difference between X and Y", "X different from Y", "X compared to Y",
"X versus Y", "compare X and Y"), not over any rubric; a question that compares nothing is not read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from grader.embedding.segment import clauses, sentence_overlap, sentences
from grader.exam.rubric import ShortQuestion
from grader.scoring.negation import FUNCTION_WORDS, opposed, polarity_of, signed_concepts

_THING = r"[^?.;:]{1,80}?"
_FORMS = [
    re.compile(rf"\bdifferences?\s+between\s+(?P<first>{_THING})\s+and\s+(?P<second>[^?.;:,]{{1,80}})", re.I),
    re.compile(
        rf"(?P<first>{_THING})\s+(?:is\s+|are\s+)?(?:different|differs?)\s+(?:than|from|to)\s+(?P<second>[^?.;:]{{1,80}})",
        re.I,
    ),
    re.compile(
        rf"(?P<first>{_THING})\s+(?:compared|in\s+comparison)\s+(?:to|with)\s+(?P<second>[^?.;:]{{1,80}})", re.I
    ),
    re.compile(rf"(?P<first>{_THING})\s+(?:versus|vs\.?)\s+(?P<second>[^?.;:]{{1,80}})", re.I),
    re.compile(rf"\bcompare\s+(?P<first>{_THING})\s+(?:and|with|to)\s+(?P<second>[^?.;:,]{{1,80}})", re.I),
]
_WORD = re.compile(r"[a-z0-9][a-z0-9+#'-]*|[^\sa-z0-9]")
_NOT_A_NAME = FUNCTION_WORDS | {
    "make",
    "makes",
    "explain",
    "describe",
    "discuss",
    "state",
    "name",
    "something",
    "say",
    "inside",
    "outside",
    "using",
    "declared",
    "used",
    "normal",
}
"""Words that end (or, before the second, pad) the name of a compared thing."""
LONGEST_NAME = 4
"""Words at most in the name of a compared thing: "neural networks", "a function prototype"."""


READ_COMPARISONS = True
"""Whether comparisons are read (off only for the benchmarks' before-and-after)."""


@dataclass(frozen=True)
class Compared:
    """The two things a question compares: their names, and the concepts only each one's name has."""

    names: tuple[str, str]
    concepts: tuple[frozenset[str], frozenset[str]]


def compared(prompt: str | None) -> Compared | None:
    """The two things `prompt` compares, or None when it compares nothing (or names them too vaguely)."""
    if not READ_COMPARISONS:
        return None
    for sentence in sentences(prompt or ""):
        said = " ".join(sentence.split())
        for form in _FORMS:
            found = form.search(said)
            if found is None:
                continue
            first, second = _name(found.group("first"), last=True), _name(found.group("second"), last=False)
            one, other = (frozenset(c for c, s in signed_concepts(n).items() if s > 0) for n in (first, second))
            if one - other and other - one:
                return Compared((first, second), (one - other, other - one))
    return None


def _name(text: str, last: bool) -> str:
    """The name of a thing: the last run of naming words of `text` (`last`), else its first, after padding."""
    tokens = _WORD.findall(text.lower())
    if last:
        tokens.reverse()
    else:  # "something like, say, Fourier series", "the sound of a long string"
        while tokens and (tokens[0] in _NOT_A_NAME or not tokens[0][0].isalnum()):
            tokens.pop(0)
    name = []
    for token in tokens:
        if token in _NOT_A_NAME or not token[0].isalnum() or len(name) == LONGEST_NAME:
            break
        name.append(token)
    return " ".join(reversed(name) if last else name)


@dataclass(frozen=True)
class Reading:
    """A text's clauses, each about one compared thing: the clause, its sentence, its concepts so tagged."""

    clauses: tuple[str, ...]
    sentence: tuple[int, ...]
    """Index, among the text's sentences, of each clause's sentence."""
    concepts: tuple[dict[str, int], ...]
    """Each clause's signed concepts, keyed 'concept@0' or 'concept@1' by the thing it is about."""


def read(things: Compared, text: str) -> Reading:
    """The clauses of `text` that are about one of `things`, with their concepts under its name."""
    found: list[tuple[str, int, dict[str, int]]] = []
    for s, sentence in enumerate(sentences(text)):
        about = None
        for clause in clauses(sentence):
            signed = signed_concepts(clause)
            names = [k for k in (0, 1) if any(signed.get(c, 0) > 0 for c in things.concepts[k])]
            if len(names) == 2:
                about = None  # both named: whose is what cannot be told from the words
                continue
            about = names[0] if names else about
            own = (
                {f"{c}@{about}": sign for c, sign in signed.items() if c not in things.concepts[about]}
                if about is not None
                else {}
            )
            if own:
                found.append((clause, s, own))
    return Reading(tuple(c for c, _, _ in found), tuple(s for _, s, _ in found), tuple(d for _, _, d in found))


@dataclass(frozen=True)
class Reversal:
    """An answer that turns a point around: the clause, which points it reverses, which sentence says it."""

    clause: str
    points: frozenset[str]
    sentences: frozenset[int]
    """Indices of the answer's sentences (`grader.embedding.segment.sentences`) holding a reversing clause."""


def reversals(things: Compared | None, question: ShortQuestion, answers: Sequence[str]) -> list[Reversal | None]:
    """For each answer, how it turns the comparison of `question`'s points around (None: it does not).

    All clauses of all answers against all clauses of all phrasings in one sparse product."""
    if things is None or not answers:
        return [None] * len(answers)
    point_of: list[str] = []
    phrasing_concepts: list[dict[str, int]] = []
    for point in question.points:
        for phrasing in point.phrasings:
            reading = read(things, phrasing)
            point_of += [point.id] * len(reading.concepts)
            phrasing_concepts += reading.concepts
    readings = [read(things, a) for a in answers]
    answer_concepts = [d for r in readings for d in r.concepts]
    if not point_of or not answer_concepts:
        return [None] * len(answers)
    table = polarity_of(answer_concepts + phrasing_concepts)
    against = opposed(
        table.rows(np.arange(len(answer_concepts))),
        table.rows(np.arange(len(answer_concepts), len(answer_concepts) + len(point_of))),
    )
    found: list[Reversal | None] = []
    row = 0
    for reading in readings:
        rows = against[row : row + len(reading.concepts)]
        row += len(reading.concepts)
        hit = np.flatnonzero(rows.any(axis=1))
        if not len(hit):
            found.append(None)
            continue
        points = frozenset(point_of[j] for i in hit for j in np.flatnonzero(rows[i]))
        said = frozenset(reading.sentence[i] for i in hit)
        found.append(Reversal(reading.clauses[hit[0]], points, said))
    return found


def explain(things: Compared | None, question: ShortQuestion, text: str) -> str:
    """Why `text` turns the comparison around (for a flag's reason); '' when it does not."""
    found = reversals(things, question, [text])[0]
    if things is None or found is None:
        return ""
    return (
        f"read as about {' and '.join(things.names)}, it says the opposite of point {', '.join(sorted(found.points))}"
    )


def withheld(found: Reversal, question: ShortQuestion, answer: str) -> np.ndarray:
    """(the answer's segments, the question's phrasings) booleans: the pairs a reversal takes out. Every
    phrasing of each point it reverses, for every segment (an answer that says the opposite of a point has
    not made it elsewhere); every phrasing, for each segment sharing words with a sentence that says it
    (that sentence is no evidence for any point). The answer's other sentences keep the other points."""
    reversed_point = np.array([p.id in found.points for p in question.points for _ in p.phrasings])
    struck = sentence_overlap(answer)[:, sorted(found.sentences)].any(axis=1)
    return reversed_point[None, :] | struck[:, None]
