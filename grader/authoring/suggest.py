"""LLM suggestions for a drafted rubric: other phrasings of its points, and points it may be missing.

`grader rubric draft --llm-url ...` asks the model once per short-answer question of a `Draft` for
(a) other ways a student who knows the answer would state each point and (b) claims the model answer
makes or implies that no point covers. `draft_yaml` writes them commented out under the point or
question they belong to. What the caller can rely on:

- **Paper text only.** A request holds the question's prompt, its model answer and its points (id,
  text, marks, accepted alternatives): what the exam paper says, never anything of a student's.
  Questions without a model answer are not asked: there is nothing to rephrase.
- **Checked.** A suggestion off the schema, for a point the question does not have, empty, longer
  than `MAX_CHARS`, repeating a point, an alternative or another suggestion, or past the number asked
  for is discarded and counted; a reply that is not JSON is discarded whole (`llm.Spend` counts both).
- **Never costs the draft.** A failing server, a spent `max_calls` or a server that cannot be used
  at all only leaves questions without suggestions; `Suggestions.summary` says which and why.
- **Inert.** Nothing here changes the rubric or a mark: a person accepts a suggestion by
  uncommenting it in the YAML.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from grader.authoring.draft.record import TODO_ANSWER, TODO_POINT, Draft
from grader.errors import GraderError
from grader.exam.rubric import ShortQuestion
from grader.llm import CallFailed, CallsStopped, LlmClient, first_error, id_text, normalise, parse_reply
from grader.watcher import Progress

MAX_PHRASINGS = 3
"""Other phrasings asked for (and kept) per point."""
MAX_EXTRA_POINTS = 3
"""Missing points asked for (and kept) per question."""
MAX_CHARS = 300
"""Longest suggestion kept: a point is one claim, not a paragraph."""

Status = Literal["ok", "invalid", "failed", "skipped"]


@dataclass(frozen=True)
class QuestionSuggestions:
    """What the model proposed for one question, after checking: to show a person, never to apply."""

    question_id: str
    status: Status
    """ok: the reply was read (single suggestions may still be discarded); invalid: it could not be
    read; failed: no usable reply (see `error`); skipped: no call could be made."""
    phrasings: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Point id -> other phrasings of it, for points that got any."""
    extra_points: tuple[str, ...] = ()
    """Texts of claims the model answer implies and no point covers."""
    discarded: tuple[str, ...] = ()
    """One reason per discarded suggestion, or one for a reply that could not be read."""
    error: str | None = None

    @property
    def made(self) -> int:
        return sum(map(len, self.phrasings.values())) + len(self.extra_points)


@dataclass(frozen=True)
class Suggestions:
    """The checked suggestions for a draft, by question, and what kept any from being made."""

    model: str
    questions: tuple[QuestionSuggestions, ...]
    stopped: str | None = None
    """Why asking stopped before the last question, if it did."""

    def for_question(self, question_id: str) -> QuestionSuggestions | None:
        return next((q for q in self.questions if q.question_id == question_id), None)

    def phrasings(self, question_id: str, point_id: str) -> tuple[str, ...]:
        found = self.for_question(question_id)
        return found.phrasings.get(point_id, ()) if found else ()

    def extra_points(self, question_id: str) -> tuple[str, ...]:
        found = self.for_question(question_id)
        return found.extra_points if found else ()

    @property
    def made(self) -> int:
        """Suggestions kept, phrasings and extra points together."""
        return sum(q.made for q in self.questions)

    def count(self, status: Status) -> int:
        return sum(1 for q in self.questions if q.status == status)

    @property
    def discarded(self) -> int:
        """Single suggestions discarded from replies that could be read."""
        return sum(len(q.discarded) for q in self.questions if q.status == "ok")

    def summary(self) -> str:
        """One line: what was suggested, what was discarded, what was not asked (what the CLI prints)."""
        phrasings = sum(len(p) for q in self.questions for p in q.phrasings.values())
        extra = sum(len(q.extra_points) for q in self.questions)
        line = (
            f"LLM suggestions ({self.model}) for {_count(len(self.questions), 'short question')}: "
            f"{_count(phrasings, 'other phrasing')} and {_count(extra, 'extra point')}, "
            f"{self.discarded} discarded"
        )
        invalid = self.count("invalid")
        if invalid:
            line += f", {_count(invalid, 'reply', 'replies')} not readable"
        lost = [f"{self.count(s)} {s}" for s in ("failed", "skipped") if self.count(s)]
        if lost:
            line += f"; {' and '.join(lost)}" + (f" ({self.stopped})" if self.stopped else "")
        return line


def _count(number: int, thing: str, things: str | None = None) -> str:
    return f"{number} {thing if number == 1 else things or thing + 's'}"


# ---------------------------------------------------------------------------------------------
# The request: paper text only


SYSTEM_PROMPT = f"""\
You help an instructor review a marking rubric drafted from an exam paper. \
For one short-answer question you get its prompt, its model answer and its rubric points.

1. "phrasings": for each rubric point, up to {MAX_PHRASINGS} other ways a student who understood \
would correctly state the same claim in an exam answer: the same meaning in other words, \
not a broader, weaker or different claim, and not the point's text or its "alternatives" \
(phrasings the rubric already accepts). Leave out a point you have nothing for.
2. "missing_points": up to {MAX_EXTRA_POINTS} claims the model answer makes or clearly implies, \
that a full answer needs, and that no rubric point covers. Give none when the points already cover the model answer.

Each text is one sentence of at most {MAX_CHARS} characters, in the language of the paper.

Reply with JSON only, no other text, in exactly this form:
{{"phrasings": [{{"point_id": "<id>", "text": "<another phrasing>"}}], \
"missing_points": [{{"text": "<a claim no point covers>"}}]}}"""


def askable(question: ShortQuestion) -> bool:
    """The paper gave a model answer and points to work from (not the draft's TODO placeholders)."""
    return question.model_answer != TODO_ANSWER and all(p.text != TODO_POINT for p in question.points)


def build_messages(question: ShortQuestion) -> list[dict[str, str]]:
    """The chat messages for one question: its prompt, model answer and points. Nothing of a student's."""
    fields = {"id", "text", "marks", "alternatives"}
    points = [p.model_dump(include=fields, exclude_defaults=True) for p in question.points]
    sections = {
        "Question": question.prompt or "(no prompt given)",
        "Model answer": question.model_answer,
        "Draft rubric points (JSON, one object per point)": json.dumps(points, ensure_ascii=False),
    }
    user = "\n\n".join(f"{title}:\n{text}" for title, text in sections.items())
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def suggestion_schema(question: ShortQuestion) -> dict[str, Any]:
    """JSON schema of the reply; point ids are an enum, so a server with constrained decoding cannot invent one."""
    text = {"type": "string"}
    phrasing = {
        "type": "object",
        "properties": {"point_id": {"type": "string", "enum": [p.id for p in question.points]}, "text": text},
        "required": ["point_id", "text"],
        "additionalProperties": False,
    }
    missing = {"type": "object", "properties": {"text": text}, "required": ["text"], "additionalProperties": False}
    return {
        "type": "object",
        "properties": {
            "phrasings": {"type": "array", "items": phrasing},
            "missing_points": {"type": "array", "items": missing},
        },
        "required": ["phrasings", "missing_points"],
        "additionalProperties": False,
    }


# ---------------------------------------------------------------------------------------------
# Reading and checking a reply


class _Suggested(BaseModel):
    model_config = ConfigDict(extra="ignore")

    point_id: str | None = None
    text: str

    _id_text = field_validator("point_id", mode="before")(staticmethod(id_text))

    @field_validator("text")
    @classmethod
    def _one_line(cls, value: str) -> str:
        return " ".join(value.split())


def check_suggestions(question: ShortQuestion, reply: str) -> QuestionSuggestions:
    """Keep the suggestions of a reply that fit the question and say something new; discard the rest."""
    try:
        data = parse_reply(reply)
    except ValueError:
        return _unreadable(question, "the reply is not JSON")
    if not isinstance(data, dict) or not any(isinstance(data.get(k), list) for k in ("phrasings", "missing_points")):
        return _unreadable(question, "the reply has no 'phrasings' or 'missing_points' list")
    points = {p.id for p in question.points}
    seen = {normalise(text) for p in question.points for text in p.phrasings}
    phrasings: dict[str, list[str]] = {p.id: [] for p in question.points}
    extra: list[str] = []
    discarded: list[str] = []
    for number, item in enumerate(_items(data, "phrasings"), start=1):
        parsed, problem = _read(item, seen)
        if parsed is not None and problem is None:
            if parsed.point_id is None:
                problem = "names no point"
            elif parsed.point_id not in points:
                problem = f"names point {parsed.point_id!r}, which the question does not have"
            elif len(phrasings[parsed.point_id]) >= MAX_PHRASINGS:
                problem = f"is more than the {MAX_PHRASINGS} asked for point {parsed.point_id!r}"
        if problem:
            discarded.append(f"phrasing {number} {problem}")
        else:
            phrasings[parsed.point_id].append(parsed.text)
            seen.add(normalise(parsed.text))
    for number, item in enumerate(_items(data, "missing_points"), start=1):
        parsed, problem = _read(item, seen)
        if parsed is not None and problem is None and len(extra) >= MAX_EXTRA_POINTS:
            problem = f"is more than the {MAX_EXTRA_POINTS} asked for"
        if problem:
            discarded.append(f"missing point {number} {problem}")
        else:
            extra.append(parsed.text)
            seen.add(normalise(parsed.text))
    return QuestionSuggestions(
        question.id,
        "ok",
        phrasings={pid: tuple(texts) for pid, texts in phrasings.items() if texts},
        extra_points=tuple(extra),
        discarded=tuple(discarded),
    )


def _items(data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    return value if isinstance(value, list) else []


def _read(item: Any, seen: set[str]) -> tuple[_Suggested | None, str | None]:
    """The suggestion in a reply item (a bare string is a text), and why it is no use (None: it is)."""
    try:
        parsed = _Suggested.model_validate({"text": item} if isinstance(item, str) else item)
    except ValidationError as exc:
        return None, f"does not fit the schema: {first_error(exc)}"
    text = parsed.text
    if not any(ch.isalnum() for ch in text):
        return parsed, "is empty"
    if len(text) > MAX_CHARS:
        return parsed, f"is longer than {MAX_CHARS} characters"
    if normalise(text) in seen:
        return parsed, "repeats a point, an alternative or another suggestion"
    return parsed, None


def _unreadable(question: ShortQuestion, reason: str) -> QuestionSuggestions:
    return QuestionSuggestions(question.id, "invalid", discarded=(reason,), error=reason)


# ---------------------------------------------------------------------------------------------
# The public operations


def suggest_for(client: LlmClient, question: ShortQuestion) -> QuestionSuggestions:
    """Ask the model about one question and check what it says. Raises CallsStopped when no call may be made."""
    try:
        reply = client.ask(build_messages(question), suggestion_schema(question))
    except CallFailed as exc:
        client.tally(failures=1)
        return QuestionSuggestions(question.id, "failed", error=str(exc))
    checked = check_suggestions(question, reply)
    if checked.status == "invalid":
        client.tally(invalid_replies=1)
    else:
        client.tally(discarded=len(checked.discarded))
    return checked


def suggest(client: LlmClient, draft: Draft, progress: Progress | None = None) -> Suggestions:
    """Suggestions for each short question of the draft that has a model answer; MCQs are left out.

    Never raises for the server's sake: when it cannot be used at all (unreachable, wrong URL or key)
    the questions left are skipped and `Suggestions.stopped` says why. Questions whose reply is cached
    are still answered after the budget is spent.
    """
    questions = [q for q in draft.rubric.questions if isinstance(q, ShortQuestion) and askable(q)]
    results: list[QuestionSuggestions] = []
    unusable: str | None = None
    for done, question in enumerate(questions, start=1):
        result: QuestionSuggestions | None = None
        if unusable is None:
            try:
                result = suggest_for(client, question)
            except CallsStopped as exc:
                result = QuestionSuggestions(question.id, "skipped", error=str(exc))
            except GraderError as exc:  # every call would fail the same way: ask no more
                unusable = str(exc)
        if result is None:
            result = QuestionSuggestions(question.id, "skipped", error=unusable)
        if result.status == "skipped":
            client.tally(skipped=1)
        results.append(result)
        if progress is not None:
            progress(done, len(questions))
    return Suggestions(client.config.model, tuple(results), unusable or client.spent.stopped)
