"""A model answer as points, one claim each, and the marks shared out over them."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from grader.authoring.draft.formulas import _formula_core, _looks_like_formula, formula_pattern
from grader.authoring.draft.markup import _clean, _flat, _plain_math, _tidy
from grader.authoring.draft.record import TODO_ANSWER, TODO_POINT
from grader.authoring.reference import MAX_POINTS, choose_step
from grader.embedding.segment import sentences


@dataclass
class _Piece:
    text: str
    formula: bool = False
    verdict: bool = False
    patterns: tuple[str, ...] = ()
    contradictions: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)


_CITATION = re.compile(
    r"\b(lecture|slides?|chapter|ch\.|page|pp?\.|textbook|book|notes|ref(erence)?|source|see)\b", re.I
)
_BACK_REFERENCE = re.compile(
    r"^(these|this|those|such|however|but|example|for example|for instance|e\.g\.|i\.e\.|in other words|that is|"
    r"a (well[- ]known )?counter-?example|(an|one|another) example)\b",
    re.I,
)
_CONSEQUENCE = re.compile(
    r",\s+(?P<word>making|leading to|resulting in|causing|which makes|which means|and thus|and hence|and so|so that|"
    r"so|hence|thus|therefore|because|since|and (?=(?:it|they|this|these|there|we)\b))\s+",
    re.I,
)
_CONSEQUENCE_LEAD = {
    "making": "This makes",
    "leading to": "This leads to",
    "resulting in": "This results in",
    "causing": "This causes",
    "which makes": "This makes",
    "which means": "This means",
    "and thus": "Thus",
    "and hence": "Hence",
    "and so": "So",
    "so that": "So",
    "so": "So",
    "hence": "Hence",
    "thus": "Thus",
    "therefore": "Therefore",
    "because": "Because",
    "since": "Because",
    "and": "",
}
_YES_NO_QUESTION = re.compile(
    r"^(will|would|is|are|can|could|does|do|did|should|shall|has|have|was|were|may|might|must)\b", re.I
)
_VERDICT = re.compile(r"^(yes|no)\b[\s.,!:;—–-]*", re.I)
_SAY_YES = r"^\W*(yes|yeah|yep|of course|definitely)\b"
_SAY_NO = r"^\W*(no|nope|not really|not necessarily)\b"


def _answer_pieces(paragraphs: Sequence[str], prompt: str, marks: float) -> tuple[str, list[_Piece], list[str]]:
    """The model answer (one line) and its candidate points, in order, with notes on the question."""
    notes: list[str] = []
    texts: list[str] = []
    citations: list[str] = []
    pieces: list[_Piece] = []
    for para in paragraphs:
        display = re.fullmatch(r"\s*\$\$(.+?)\$\$\s*|\s*\\\[(.+?)\\\]\s*", para, re.S)
        if display:
            formula = _plain_math(display[1] or display[2])
            texts.append(formula)
            pieces.append(_formula_piece(formula))
            continue
        text = _clean(para)
        flat = _tidy(para)
        if not flat:
            continue
        if _CITATION.search(flat) and len(flat.split()) <= 10 and not re.search(r"[.!?]\s+\S", flat):
            citations.append(flat.strip(" .()"))
            continue
        texts.append(flat)
        if _looks_like_formula(flat):
            pieces.append(_formula_piece(flat))
            continue
        pieces.extend(_Piece(claim) for claim in _claims(text))
    model_answer = " ".join(texts)
    if citations:
        model_answer = f"{model_answer} ({'; '.join(citations)})".strip()
    if not pieces:
        notes.append("no model answer found in the paper: write it and its points (as drafted, nobody earns marks)")
        return TODO_ANSWER, [_Piece(TODO_POINT)], notes
    pieces = _verdict(pieces, prompt, notes)
    if len(pieces) == 1 and not pieces[0].formula and marks >= 1 - 1e-9:
        pieces = _split_consequence(pieces[0])
    if all(p.formula for p in pieces) and re.search(r"\b(explain|why|justify|interpret|describe)\b", prompt, re.I):
        notes.append("the question asks for an explanation, but the paper answers with a formula only: add a point")
    return model_answer, pieces, notes


def _verdict(pieces: list[_Piece], prompt: str, notes: list[str]) -> list[_Piece]:
    if not (_YES_NO_QUESTION.match(prompt) and prompt.rstrip().endswith("?")):
        return pieces
    first = pieces[0]
    m = _VERDICT.match(first.text) if not first.formula else None
    if not m:
        notes.append(
            "a yes/no question, but the model answer states no verdict: add it as a point, with patterns and"
            " contradictions for the two answers"
        )
        return pieces
    said = m[1].capitalize()
    verdict = _Piece(
        f"{said}.",
        verdict=True,
        patterns=(_SAY_YES if said == "Yes" else _SAY_NO,),
        contradictions=(_SAY_NO if said == "Yes" else _SAY_YES,),
        notes=[f"the verdict of a yes/no question, read from the words: reword it as a statement ('{said}, ...')"],
    )
    rest = first.text[m.end() :].strip()
    remaining = ([_Piece(rest[:1].upper() + rest[1:])] if re.search(r"\w", rest) else []) + pieces[1:]
    return [verdict, *remaining]


def _claims(text: str) -> list[str]:
    """Sentences and bullet items of a paragraph, with qualifying sentences and lead-ins joined."""
    text = re.sub(r"\?\s*(?:→|->|=>)\s*", ": ", text)
    text = re.sub(r"(?m)^\s*(?:[-*•+]|\d{1,2}[.)])\s+", "", text)  # list markers: each item is a claim
    pieces: list[str] = []
    for sentence in _sentences(text):
        sentence = _flat(sentence)
        if pieces and (pieces[-1].endswith(":") or _BACK_REFERENCE.match(sentence)):
            pieces[-1] = f"{pieces[-1]} {sentence}"
        else:
            pieces.append(sentence)
    return [_tidy(p).rstrip(" ;,") for p in pieces if re.search(r"\w", p)]


def _sentences(text: str) -> list[str]:
    """`grader.embedding.segment.sentences`, but a stop inside brackets ("(Cybenko, 1989; Hornik, 1991)") is no
    break."""
    masked, depth = [], 0
    for k, char in enumerate(text):
        depth += char in "([{"
        if depth > 0 and char in ".;!?" and k + 1 < len(text) and text[k + 1] in " \n":
            masked.append({".": "\u0001", ";": "\u0002", "!": "\u0003", "?": "\u0004"}[char])
        else:
            masked.append(char)
        depth = max(0, depth - (char in ")]}"))
    restore = str.maketrans({"\u0001": ".", "\u0002": ";", "\u0003": "!", "\u0004": "?"})
    return [s.translate(restore) for s in sentences("".join(masked))] or [text.strip()]


def _split_consequence(piece: _Piece) -> list[_Piece]:
    """One sentence making two claims ("X, making Y") as two points; the caller's notes say it was split."""
    masked, depth = [], 0
    for char in piece.text:
        depth += char in "([{"
        masked.append("\u0000" if depth > 0 else char)
        depth = max(0, depth - (char in ")]}"))
    m = _CONSEQUENCE.search("".join(masked))
    if not m:
        return [piece]
    first = piece.text[: m.start()].rstrip(" ,")
    lead = _CONSEQUENCE_LEAD[m["word"].casefold()]
    rest = piece.text[m.end() :].strip()
    second = f"{lead} {rest}" if lead else rest[:1].upper() + rest[1:]
    if not first.endswith((".", "!", "?")):
        first += "."
    note = f"one sentence split at '{m['word']}' into two points: check that each is a claim of its own"
    return [_Piece(first, notes=[note]), _Piece(second)]


def _formula_piece(formula: str) -> _Piece:
    pattern = formula_pattern(formula)
    notes = ["the point's text is the formula itself: say it in words too (embeddings read formulas badly)"]
    if pattern:
        notes.append(f"the pattern matches '{_formula_core(formula)}' in common spellings: try it on real answers")
    else:
        notes.append("no pattern could be made for this formula: add one")
    return _Piece(formula, formula=True, patterns=(pattern,) if pattern else (), notes=notes)


def _fit(pieces: list[_Piece], marks: float) -> tuple[float, list[float], int]:
    """(step, point marks, claims merged from) for `marks` over the pieces, merged in place when too many."""
    before = len(pieces)
    steps = None
    for step in (0.5, 0.25):
        count = marks / step
        if math.isclose(count, round(count), abs_tol=1e-6) and len(pieces) <= min(round(count), MAX_POINTS):
            steps = step
            break
    if steps is None:
        steps = 0.25 if math.isclose(marks / 0.25, round(marks / 0.25), abs_tol=1e-6) else choose_step(marks)
        limit = max(1, min(round(marks / steps), MAX_POINTS))
        verdict = pieces[:1] if len(pieces) > 1 and limit > 1 and pieces[0].verdict else []
        pieces[:] = pieces[len(verdict) :]  # a verdict stays a point of its own, with its patterns
        while len(pieces) > limit - len(verdict):
            size = [len(p.text.split()) for p in pieces]
            i = min(range(len(pieces)), key=lambda j: size[j])
            left = i - 1 if i == len(pieces) - 1 or (i > 0 and size[i - 1] <= size[i + 1]) else i
            a, b = pieces[left], pieces[left + 1]
            joined = f"{a.text} {b.text}" if a.text.endswith((".", "!", "?", ":")) else f"{a.text}; {b.text}"
            merged = _Piece(joined, formula=a.formula and b.formula, verdict=False, patterns=a.patterns + b.patterns)
            merged.contradictions, merged.notes = a.contradictions + b.contradictions, a.notes + b.notes
            pieces[left : left + 2] = [merged]
        pieces[:0] = verdict
    units = round(marks / steps)
    base, extra = divmod(units, len(pieces))
    shares = [round((base + (1 if k < extra else 0)) * steps, 4) for k in range(len(pieces))]
    if 0 in shares:  # a step that does not divide: equal shares, the last taking the remainder
        share = round(marks / len(pieces), 4)
        shares = [share] * (len(pieces) - 1) + [round(marks - share * (len(pieces) - 1), 4)]
    return steps, shares, (before if len(pieces) < before else 0)
