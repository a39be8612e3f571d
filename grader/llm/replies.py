"""Reading a model's reply and checking it against the answer and the rubric.

Models wrap JSON in fences, think aloud, paraphrase and invent points: the tolerance and the checks
live together here so what counts as a verdict is decided in one place (`grader.authoring.suggest` reuses
the reading and the normalising).
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from grader.exam.rubric import ShortQuestion
from grader.llm.prompt import _escape_tags
from grader.llm.verdicts import CREDIT, Opinion, PointVerdict, Verdict, first_error
from grader.text import shorten

QUOTE_IN_ERROR = 80
"""A quote the answer does not contain is named in the error cut to this many characters."""


def id_text(value: Any) -> Any:
    """A point id as text: models often write `1` for "1"; anything else is left for the schema to refuse."""
    return str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else value


class _ReplyVerdict(BaseModel):
    model_config = ConfigDict(extra="ignore")

    point_id: str
    verdict: Verdict
    quote: str = ""

    _id_text = field_validator("point_id", mode="before")(staticmethod(id_text))

    @field_validator("verdict", mode="before")
    @classmethod
    def _verdict_spelling(cls, value: Any) -> Any:
        return re.sub(r"[\s-]+", "_", value.strip().lower()) if isinstance(value, str) else value

    @field_validator("quote", mode="before")
    @classmethod
    def _no_quote(cls, value: Any) -> Any:
        return "" if value is None else value


_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_TYPOGRAPHY = str.maketrans(
    {"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "‚": "'", "–": "-", "—": "-", "−": "-", "\u00a0": " "}
)
_QUOTE_MARKS = "\"'“”‘’«»`"


def parse_reply(text: str) -> Any:
    """The JSON in a reply, tolerating ```json fences, a <think> block and prose around one object. ValueError if
    none."""
    text = _THINK.sub("", text).strip()
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    start, end = text.find("{"), text.rfind("}")
    if start == -1 or end <= start:
        raise ValueError("the reply is not JSON")
    return json.loads(text[start : end + 1])


def normalise(text: str) -> str:
    """Text as quotes are compared: NFKC, typographic quotes and dashes plain, whitespace collapsed, case folded."""
    return " ".join(unicodedata.normalize("NFKC", text).translate(_TYPOGRAPHY).split()).casefold()


def quote_in_answer(quote: str, answer: str) -> bool:
    """The quote is a real piece of the answer (after normalising both), with at least one letter or digit.

    The answer as sent (answer tags inside it escaped) counts too: that is the text the model saw.
    """
    haystacks = {normalise(answer), normalise(_escape_tags(answer))}
    for candidate in (quote, quote.strip().strip(_QUOTE_MARKS)):
        needle = normalise(candidate)
        if needle and any(ch.isalnum() for ch in needle) and any(needle in haystack for haystack in haystacks):
            return True
    return False


def check_reply(question: ShortQuestion, answer: str, reply: str, model: str) -> Opinion:
    """Keep the verdicts of a reply that can be checked against the answer and the rubric; discard the rest."""
    return _check_reply(question, answer, reply, model)[0]


def _check_reply(question: ShortQuestion, answer: str, reply: str, model: str) -> tuple[Opinion, bool]:
    """The opinion, and whether the reply was discarded whole (unreadable) rather than verdict by verdict."""
    base = {"question_id": question.id, "model": model, "max_mark": question.marks}
    try:
        data = parse_reply(reply)
    except ValueError as exc:
        reason = f"the reply is not JSON: {exc}" if "not JSON" not in str(exc) else "the reply is not JSON"
        return Opinion(status="invalid", discarded=(reason,), error=reason, **base), True
    items = data.get("points") if isinstance(data, dict) else data
    if not isinstance(items, list):
        reason = "the reply has no 'points' list"
        return Opinion(status="invalid", discarded=(reason,), error=reason, **base), True
    points = {p.id: p for p in question.points}
    kept: dict[str, PointVerdict] = {}
    discarded: list[str] = []
    for number, item in enumerate(items, start=1):
        try:
            parsed = _ReplyVerdict.model_validate(item)
        except ValidationError as exc:
            discarded.append(f"verdict {number} does not fit the schema: {first_error(exc)}")
            continue
        if parsed.point_id not in points:
            discarded.append(f"verdict {number} names point '{parsed.point_id}', which the question does not have")
        elif parsed.point_id in kept:
            discarded.append(f"verdict {number} repeats point '{parsed.point_id}'")
        elif parsed.verdict == "not_met":
            kept[parsed.point_id] = PointVerdict(parsed.point_id, "not_met", "")
        elif not quote_in_answer(parsed.quote, answer):
            what = (
                "gives no quote"
                if not parsed.quote.strip()
                else f"quotes words not in the answer: {shorten(parsed.quote, QUOTE_IN_ERROR)!r}"
            )
            discarded.append(f"point '{parsed.point_id}' ({parsed.verdict}) {what}")
        else:
            kept[parsed.point_id] = PointVerdict(parsed.point_id, parsed.verdict, parsed.quote.strip())
    missing = [p.id for p in question.points if p.id not in kept]
    verdicts = tuple(kept[p.id] for p in question.points if p.id in kept)
    complete = not missing and not discarded
    implied = round(sum(points[v.point_id].marks * CREDIT[v.verdict] for v in verdicts), 6) if complete else None
    opinion = Opinion(
        status="ok" if complete else "invalid",
        verdicts=verdicts,
        discarded=tuple(discarded),
        implied_mark=implied,
        error=None if complete or not missing else f"no checked verdict for {', '.join(missing)}",
        **base,
    )
    return opinion, False
