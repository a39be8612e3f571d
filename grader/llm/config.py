"""Where the model is and what may be spent on it (`LlmConfig`), and what was spent (`Spend`).

Plain records checked when built, apart from the client so a caller can build and validate a
config (say, from the command line) before anything talks to a server.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from grader.errors import GraderError


@dataclass(frozen=True)
class LlmConfig:
    """Where the model is and how much it may cost. Checked when built: a bad value is a GraderError."""

    url: str
    """Base URL of an OpenAI-compatible API, e.g. http://127.0.0.1:8080/v1 (requests go to {url}/chat/completions)."""
    model: str
    api_key_env: str = "GRADER_LLM_API_KEY"
    """Name of the environment variable holding the API key (sent as a Bearer token; never stored)."""
    timeout: float = 30.0
    """Seconds to wait for the server on each call."""
    retries: int = 3
    """Extra attempts per answer after a timeout, a dropped connection, 429 or 5xx."""
    max_calls: int = 200
    """HTTP requests this client may send in all, retries included; then only cached replies are used."""
    cache_path: Path | None = None
    """SQLite file of replies; None keeps them in memory for this client only."""
    backoff: float = 1.0
    """First wait before a retry, in seconds; it doubles with each retry."""
    max_wait: float = 30.0
    """Longest wait before a retry, whether from backoff or from the server's Retry-After."""

    def __post_init__(self) -> None:
        url = self.url.strip().rstrip("/")
        url = url.removesuffix("/chat/completions")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise GraderError(
                f"LLM URL {self.url!r} is not an http:// or https:// URL (for a local llama.cpp server: http://127.0.0.1:8080/v1)"
            )
        try:
            parts.port
        except ValueError:
            raise GraderError(f"LLM URL {self.url!r} has a port that is not a number") from None
        if parts.username or parts.password:
            raise GraderError("put the API key in an environment variable (--api-key-env), not in the LLM URL")
        if parts.query or parts.fragment:
            raise GraderError(f"LLM URL {self.url!r} should be the API's base URL, without '?' or '#'")
        if not self.model.strip():
            raise GraderError("an LLM model name is needed (the name the server knows it by)")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.api_key_env):
            raise GraderError(f"{self.api_key_env!r} is not an environment variable name")
        if not self.timeout > 0:
            raise GraderError(f"the LLM timeout must be more than 0 seconds, got {self.timeout:g}")
        if self.retries < 0 or self.max_calls < 0:
            raise GraderError("retries and max calls cannot be negative")
        if self.backoff < 0 or self.max_wait < 0:
            raise GraderError("backoff and max wait cannot be negative")
        object.__setattr__(self, "url", url)
        object.__setattr__(self, "model", self.model.strip())
        if self.cache_path is not None:
            object.__setattr__(self, "cache_path", Path(self.cache_path))

    @property
    def endpoint(self) -> str:
        return f"{self.url}/chat/completions"


@dataclass
class Spend:
    """What talking to the LLM cost so far."""

    calls: int = 0
    """HTTP requests sent, retries included (what max_calls limits)."""
    cache_hits: int = 0
    retries: int = 0
    failures: int = 0
    """Answers that got no usable reply (timeouts, server errors, refusals) after the retries."""
    invalid_replies: int = 0
    """Replies discarded whole: not JSON, or not the expected shape."""
    discarded: int = 0
    """Single verdicts discarded: quote not in the answer, unknown point, off the schema, repeated."""
    skipped: int = 0
    """Answers not asked because no call could be made (budget spent, or the server kept failing)."""
    stopped: str | None = None
    """Why calls stopped before the end, if they did."""
    prompt_tokens: int | None = None
    """Summed from the server's `usage`; None when it never reported any."""
    completion_tokens: int | None = None
    seconds: float = 0.0
    """Wall time spent asking (waits and retries included)."""

    def summary(self, max_calls: int | None = None) -> list[tuple[str, str]]:
        """(what, how much) rows for a table a person reads."""

        def tokens(n: int | None) -> str:
            return "not reported" if n is None else f"{n:,}"

        calls = f"{self.calls}" if max_calls is None else f"{self.calls} of {max_calls}"
        rows = [
            ("HTTP calls", calls),
            ("cache hits", str(self.cache_hits)),
            ("retries", str(self.retries)),
            ("failed answers", str(self.failures)),
            ("skipped answers", str(self.skipped) + (f" ({self.stopped})" if self.stopped else "")),
            ("invalid replies", str(self.invalid_replies)),
            ("discarded verdicts", str(self.discarded)),
            ("prompt tokens", tokens(self.prompt_tokens)),
            ("completion tokens", tokens(self.completion_tokens)),
            ("wall time", f"{self.seconds:.1f} s"),
        ]
        return rows
