"""The question's premise: what a "why is it required" question takes for granted, and answers that deny it.

"Why is ReLU necessary?" takes for granted that ReLU is necessary; "Why does the activation have to be
non-polynomial?" takes for granted that a polynomial one will not do. An answer that denies that ("ReLU is
not needed here", "a polynomial activation works fine") turns the whole model answer around, whatever words
it shares with the points, so it earns nothing. Neither the embeddings nor the points see it: each point is
a reason, and none states the premise. The prompt does.

Only questions that ask why something is required are read, in the forms

- "why is/are X necessary | needed | required | essential", "why do we need X" (X is required), and
- "why does/do X have to | need to be Q", "why must/should X be Q" (X must be Q), "why can't X be Q"
  (X must be the opposite of Q), "why does A need X" (X is required),

and an answer clause denies the premise when it names X's head noun and

- says it is not required ("X is not needed", "no need for X", "X does not have to be Q": X before
  the words that deny the need, or after "no need for"), or, for "X must be Q",
- says the opposite of Q will do ("a polynomial activation works fine": Q is "non-polynomial").

A clause with a condition or a restriction ("if", "unless", "only", ...) states nothing this strong and
is not read. In the answer's first clause, "it" or "they" stands for the question's subject ("It is
not needed."), unless it is the "it" of "it is not needed to ...". The words are read with the
polarity rules (`grader.scoring.negation`), so "non-polynomial" and "polynomial" are one concept with
two signs. Rules over the prompt's form, not over any rubric: a question that asks something else has
no premise here, and nothing changes for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from grader.embedding.segment import clauses, sentences
from grader.scoring.negation import normalise, signed_concepts, stem

_NEEDED = r"necessary|needed|required|essential|indispensable"
_FORMS = [
    # (pattern, kind): the subject is what is required; `required` what it must be.
    (re.compile(rf"\bwhy\s+(?:is|are)\s+(?P<subject>[^?.;]{{1,80}}?)\s+(?:so\s+)?(?:{_NEEDED})\b", re.I), "needed"),
    (re.compile(rf"\bwhy\s+(?P<subject>[^?.;]{{1,80}}?)\s+(?:is|are)\s+(?:so\s+)?(?:{_NEEDED})\b", re.I), "needed"),
    (
        re.compile(r"\bwhy\s+(?:do|does|would|should)\s+(?:we|you|one|they)\s+need\s+(?P<subject>[^?.;,]{1,80})", re.I),
        "needed",
    ),
    (
        re.compile(
            r"\bwhy\s+(?:does|do|did)\s+(?P<subject>[^?.;]{1,80}?)\s+(?:have|has|need|needs)\s+to\s+be\s+"
            r"(?P<required>[^?.;,]{1,60})",
            re.I,
        ),
        "must",
    ),
    (
        re.compile(r"\bwhy\s+(?:must|should)\s+(?P<subject>[^?.;]{1,80}?)\s+be\s+(?P<required>[^?.;,]{1,60})", re.I),
        "must",
    ),
    (
        re.compile(
            r"\bwhy\s+(?:can\s*not|can't|must\s+not|mustn't|should\s+not|shouldn't)\s+(?P<subject>[^?.;]{1,80}?)"
            r"\s+be\s+(?P<required>[^?.;,]{1,60})",
            re.I,
        ),
        "must not",
    ),
    (
        re.compile(
            r"\bwhy\s+(?:does|do|did)\s+[^?.;]{1,80}?\s+(?:need|require)\s+(?!to\b)(?P<subject>[^?.;,]{1,80})", re.I
        ),
        "needed",
    ),
]
_HEAD_END = re.compile(r"\s(?:for|of|in|on|at|with|from|to|by|when|that|which|used|applied)\s")
"""Where a subject's head ends: "the activation function | for a single hidden layer MLP"."""
_NOT_NEEDED = re.compile(
    rf"\b(?:is|are)\s+(?:not\s+(?:really\s+|at\s+all\s+)?(?:{_NEEDED}|important|crucial|mandatory|a\s+must)"
    r"|un(?:necessary|needed|important)|optional)\b(?!\s+(?:to|for|that|in\s+order)\b)"
)
"""After the subject: "X is not needed", "X is unnecessary", "X is optional" (but not "it is not needed to ...",
which says something else is not needed)."""
_PRONOUNS = {"it", "they", "this", "that"}
"""A subject that stands for the question's own, in the answer's first clause: "It is not needed."."""
_NO_NEED_FOR = re.compile(r"\b(?:no\s+need\s+(?:for|of)|(?:do|does|did|will|would)\s+not\s+need(?!\s+to))\b")
"""Before the subject: "there is no need for X", "we do not need X"."""
_NEED_NOT_BE = re.compile(
    r"\b(?:(?:do|does|did|will|would)\s+not\s+(?:have|has|need)\s+to\s+be|need\s+not\s+be|can\s+not\s+have\s+to\s+be)\b"
)
"""Between the subject and what it must be: "X does not have to be Q", "X need not be Q"."""
_WILL_DO = {
    stem(word)
    for word in "fine ok okay acceptable alright work works suffices sufficient adequate valid usable".split()
}
"""The words that say a choice will do: "works fine", "is ok", "is enough" (read as 'sufficient')."""
_HEDGES = re.compile(r"\b(?:if|unless|when|whenever|only|suppose|supposing|assuming|whether|otherwise)\b")


READ_PREMISE = True
"""Whether questions' premises are read (off only for the benchmarks' before-and-after)."""


@dataclass(frozen=True)
class Premise:
    """What a question takes for granted: `subject` is required (kind "needed") or must be `required`."""

    text: str
    """In words, for a flag: "ReLU is necessary", "the activation function ... has to be non-polynomial"."""
    head: frozenset[str]
    """Concepts of the subject's head noun phrase: a denying clause must name one of them."""
    required: tuple[tuple[str, int], ...] = ()
    """Signed concepts of what the subject must be (kind "must"); empty for "needed"."""


def premise(prompt: str | None) -> Premise | None:
    """The premise of a question that asks why something is required; None for any other question."""
    if not prompt or not READ_PREMISE:
        return None
    for sentence in reversed(sentences(prompt)):
        said = " ".join(sentence.split())
        for pattern, kind in _FORMS:
            found = pattern.search(said)
            if found is None:
                continue
            subject = found.group("subject").strip()
            head = frozenset(c for c, s in signed_concepts(_HEAD_END.split(f" {subject} ")[0]).items() if s > 0)
            if not head:
                continue
            if kind == "needed":
                return Premise(f"{subject} is necessary", head)
            what = _HEAD_END.split(f" {found.group('required')} ")[0].strip()
            flip = -1 if kind == "must not" else 1  # "cannot be linear": it must be non-linear
            required = tuple(sorted((c, flip * sign) for c, sign in signed_concepts(what).items()))
            if required:
                verb = "has to be" if kind == "must" else "cannot be"
                return Premise(f"{subject} {verb} {what}", head, required)
    return None


def denial(found: Premise | None, answer: str) -> str | None:
    """The first clause of `answer` that denies the premise, or None (always None without a premise)."""
    if found is None:
        return None
    first = True
    for sentence in sentences(answer):
        for clause in clauses(sentence):
            if _denies(found, clause, first):
                return clause
            first = False
    return None


def _denies(found: Premise, clause: str, first: bool) -> bool:
    said = normalise(clause)
    if _HEDGES.search(said):
        return False

    def names_subject(text: str) -> bool:
        if first and " ".join(text.split()) in _PRONOUNS:
            return True
        concepts = signed_concepts(text)
        return any(concepts.get(c, 0) > 0 for c in found.head)

    if not found.required:
        after = _NOT_NEEDED.search(said)
        before = _NO_NEED_FOR.search(said)
        return bool(after and names_subject(said[: after.start()]) or before and names_subject(said[before.end() :]))
    cue = _NEED_NOT_BE.search(said)
    if cue and names_subject(said[: cue.start()]):
        what = signed_concepts(said[cue.end() :])
        return all(what.get(concept, 0) == sign for concept, sign in found.required)
    if not names_subject(said):
        return False
    concepts = signed_concepts(said)
    opposite = all(concepts.get(concept, 0) == -sign for concept, sign in found.required)
    return opposite and any(concepts.get(word, 0) > 0 for word in _WILL_DO)


def explain(found: Premise | None, text: str) -> str:
    """Why `text` says the opposite of its question (for a flag's reason); '' when it does not deny it."""
    clause = denial(found, text)
    if found is None or clause is None:
        return ""
    return f"it denies what the question takes for granted, that {found.text}"
