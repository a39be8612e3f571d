"""The exam as data: questions, MCQ keys, and short-answer rubric points, loaded from YAML.

Validation happens here, once, so everything downstream can trust a `Rubric`: ids are unique,
point marks add up to the question's marks, marks sit on the question's step, patterns compile.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from grader.errors import InputError
from grader.exam.patterns import compile_pattern

_TOLERANCE = 1e-9


def _refuse_duplicates(kind: str, ids: list[str]) -> None:
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ValueError(f"{kind} id {', '.join(duplicated)} is used twice")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Point(_Model):
    """One claim of a model answer that earns `marks` when the student makes it."""

    id: str = Field(min_length=1)
    text: str = Field(min_length=1)
    marks: float = Field(gt=0)
    alternatives: tuple[str, ...] = ()
    """Other correct phrasings (He/Kaiming, the normal form of Xavier...): the best one counts."""
    patterns: tuple[str, ...] = ()
    """Regular expressions (case-insensitive) for formulas and terms embeddings read badly: a match earns the point."""
    contradictions: tuple[str, ...] = ()
    """Regular expressions for saying the opposite ("Yes, it is better" against a "No" verdict), which
    embeddings cannot tell apart: unless a pattern matched, a match earns nothing and flags the answer."""

    @field_validator("patterns", "contradictions")
    @classmethod
    def _patterns_compile(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in patterns:
            compile_pattern(pattern)  # ValueError names the pattern
        return patterns

    @property
    def phrasings(self) -> tuple[str, ...]:
        """The point text first, then its alternatives: every text a student's segment is compared to."""
        return (self.text, *self.alternatives)


class McqQuestion(_Model):
    """A multiple-choice question scored exactly against one or more accepted keys."""

    id: str = Field(min_length=1)
    type: Literal["mcq"]
    marks: float = Field(gt=0)
    prompt: str = ""
    options: dict[str, str] = Field(min_length=2)
    key: str | tuple[str, ...] | None = None
    void: bool = False
    """A faulty question: everyone gets the marks, whatever they chose."""

    @field_validator("options")
    @classmethod
    def _option_letters(cls, options: dict[str, str]) -> dict[str, str]:
        normalised = {letter.strip().lower(): text for letter, text in options.items()}
        bad = [letter for letter in normalised if not re.fullmatch(r"[a-z]", letter)]
        if bad:
            raise ValueError(f"option labels must be single letters, got {', '.join(map(repr, bad))}")
        return normalised

    @model_validator(mode="after")
    def _key_is_an_option(self) -> McqQuestion:
        if self.void:
            return self
        if not self.keys:
            raise ValueError("an MCQ needs a 'key' (or 'void: true' for a faulty question)")
        unknown = [k for k in self.keys if k not in self.options]
        if unknown:
            raise ValueError(f"key {', '.join(unknown)} is not one of the options ({', '.join(self.options)})")
        return self

    @property
    def keys(self) -> tuple[str, ...]:
        """Accepted letters, lower-case."""
        if self.key is None:
            return ()
        keys = (self.key,) if isinstance(self.key, str) else self.key
        return tuple(k.strip().lower() for k in keys)


class ShortQuestion(_Model):
    """A short-answer question marked point by point, the total rounded to `step`."""

    id: str = Field(min_length=1)
    type: Literal["short"]
    marks: float = Field(gt=0)
    prompt: str = ""
    model_answer: str = Field(min_length=1)
    step: float = Field(default=0.5, gt=0)
    points: tuple[Point, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _marks_add_up(self) -> ShortQuestion:
        _refuse_duplicates("point", [p.id for p in self.points])
        total = sum(p.marks for p in self.points)
        if not math.isclose(total, self.marks, abs_tol=1e-6):
            raise ValueError(f"point marks add up to {total:g}, but the question is worth {self.marks:g}")
        steps = self.marks / self.step
        if not math.isclose(steps, round(steps), abs_tol=1e-6):
            raise ValueError(f"marks {self.marks:g} is not a whole number of steps of {self.step:g}")
        return self


Question = Annotated[McqQuestion | ShortQuestion, Field(discriminator="type")]


class Rubric(_Model):
    """A whole exam. Question order is the order of columns and reports."""

    exam: str = Field(min_length=1)
    title: str = ""
    version: int | str = 1
    questions: tuple[Question, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Rubric:
        _refuse_duplicates("question", [q.id for q in self.questions])
        return self

    @property
    def question_ids(self) -> tuple[str, ...]:
        return tuple(q.id for q in self.questions)

    @property
    def max_total(self) -> float:
        return sum(q.marks for q in self.questions)

    def question(self, question_id: str) -> McqQuestion | ShortQuestion:
        for q in self.questions:
            if q.id == question_id:
                return q
        raise KeyError(question_id)

    @property
    def fingerprint(self) -> str:
        """A short hash of the rubric's content: runs and calibrations record which rubric they used."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def parse_rubric(data: Any, source: str) -> Rubric:
    """Validate already-parsed YAML; errors name the question (by id) and the field."""
    try:
        return Rubric.model_validate(data)
    except ValidationError as exc:
        messages = [_describe(error, data) for error in exc.errors()]
        more = f" (and {len(messages) - 1} more problem(s))" if len(messages) > 1 else ""
        raise InputError(source, messages[0] + more) from None


def load_rubric(path: str | Path) -> Rubric:
    """Read and validate a rubric file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(path, "no such rubric file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read the rubric: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(path, f"{line}not valid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise InputError(path, "a rubric must be a YAML mapping with 'exam' and 'questions'")
    return parse_rubric(data, str(path))


def _describe(error: dict[str, Any], data: Any) -> str:
    """Turn a pydantic error location into 'question I3, field points[0].marks: ...'."""
    loc = list(error["loc"])
    where = []
    if len(loc) >= 2 and loc[0] == "questions" and isinstance(loc[1], int):
        index = loc[1]
        raw = data.get("questions") if isinstance(data, dict) else None
        qid = (
            raw[index].get("id")
            if isinstance(raw, list) and index < len(raw) and isinstance(raw[index], dict)
            else None
        )
        where.append(f"question {qid}" if qid else f"question #{index + 1}")
        loc = loc[2:]
        if loc and loc[0] in ("mcq", "short"):  # pydantic's discriminator tag, not a real field
            loc = loc[1:]
    field = ""
    for part in loc:
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    if field:
        where.append(f"field '{field}'")
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "union_tag_invalid" or error["type"] == "union_tag_not_found":
        message = "'type' must be 'mcq' or 'short'"
    if error["type"] == "extra_forbidden":
        message = "unknown field (check its spelling)"
    return ", ".join(where) + ": " + message if where else message
