"""What a checked second opinion is: the verdict words and their credit, a point's verdict, the opinion.

The lowest module of the package, so the prompt's schema, the reply check and whoever stores or
reads an opinion share one definition of each, without pulling in the HTTP client. `first_error`
is here because reading a stored opinion needs it as much as checking a reply does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

Verdict = Literal["met", "partial", "not_met"]
Status = Literal["ok", "invalid", "failed"]
CREDIT: dict[str, float] = {"met": 1.0, "partial": 0.5, "not_met": 0.0}
"""Share of a point's marks each verdict implies."""
OPINION_VERSION = 1
_STEP_TOLERANCE = 1e-9


@dataclass(frozen=True)
class PointVerdict:
    """The model's verdict on one rubric point, with the words of the answer it rests on."""

    point_id: str
    verdict: Verdict
    quote: str = ""
    """Verbatim from the answer (checked); empty for not_met."""


@dataclass(frozen=True)
class Opinion:
    """An LLM's checked, point-by-point view of one answer: for the TA to read, never a mark."""

    question_id: str
    model: str
    status: Status
    """ok: every point has a checked verdict; invalid: the reply or some verdicts were discarded;
    failed: no usable reply (see `error`)."""
    verdicts: tuple[PointVerdict, ...] = ()
    """Kept verdicts, in rubric order."""
    discarded: tuple[str, ...] = ()
    """One reason per discarded verdict, or one for a whole reply that could not be read."""
    implied_mark: float | None = None
    """Sum of point marks x {met 1, partial 0.5, not_met 0}; None unless status is ok."""
    max_mark: float = 0.0
    error: str | None = None

    @property
    def discarded_count(self) -> int:
        return len(self.discarded)

    def disagrees(self, auto_mark: float, step: float) -> bool:
        """The implied mark is at least one step away from the automatic mark (never when there is none)."""
        if self.implied_mark is None:
            return False
        return abs(self.implied_mark - auto_mark) >= step - _STEP_TOLERANCE

    def describe(self, quote_chars: int = 60) -> str:
        """The verdicts in a line: 'formula met ("W ~ U(-a, a)"); purpose not met'."""
        if self.status == "failed":
            return f"no opinion: {self.error}"
        parts = []
        for v in self.verdicts:
            text = f"{v.point_id} {v.verdict.replace('_', ' ')}"
            if v.quote:
                quote = " ".join(v.quote.split())
                quote = quote if len(quote) <= quote_chars else quote[: quote_chars - 1].rstrip() + "…"
                text += f' ("{quote}")'
            parts.append(text)
        if self.discarded:
            parts.append(f"{len(self.discarded)} discarded")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data for the gradebook."""
        data = asdict(self)
        data["verdicts"] = [asdict(v) for v in self.verdicts]
        data["discarded"] = list(self.discarded)
        return {"version": OPINION_VERSION, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Opinion:
        """Read back what `to_dict` wrote; ValueError when it is not an opinion of this version."""
        data = dict(data)
        version = data.pop("version", None)
        if version != OPINION_VERSION:
            raise ValueError(f"not a version {OPINION_VERSION} LLM opinion (version {version!r})")
        try:
            return _OPINION.validate_python(data, strict=False)
        except ValidationError as exc:
            raise ValueError(f"not an LLM opinion: {first_error(exc)}") from None


_OPINION = TypeAdapter(Opinion)


def first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]
