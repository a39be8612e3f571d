"""The HTTP client: one chat-completions endpoint, with retries, a call budget and the reply cache.

Everything that can go wrong on the wire is classified here (retry, give up on this answer, or
the user's error), so the callers only see a reply, `CallFailed` or `CallsStopped`.
"""

from __future__ import annotations

import email.utils
import http.client
import ipaddress
import json
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from grader.errors import GraderError
from grader.llm.config import LlmConfig, Spend
from grader.llm.prompt import cache_key
from grader.llm.reply_cache import ReplyCache, _reason
from grader.text import shorten

MAX_FAILED_IN_A_ROW = 3
"""After this many answers in a row got no usable reply, the server is taken to be down: no more calls."""


class CallsStopped(GraderError):
    """No call can be made: the call budget is spent, or the server failed too many answers in a row."""


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _Rejected(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class CallFailed(Exception):
    """This answer got no usable reply; the reason is one line."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect would carry the API key to another address: refuse it and say where it pointed."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ANN201
        return None


class LlmClient:
    """Talks to one chat-completions endpoint within a budget, caching replies. Use as a context manager."""

    def __init__(self, config: LlmConfig, *, sleep: Callable[[float], None] = time.sleep) -> None:
        if os.environ.get(config.api_key_env) is None and config.api_key_env != LlmConfig.api_key_env:
            raise GraderError(f"the environment variable {config.api_key_env} (for the API key) is not set")
        self.config = config
        self._sleep = sleep
        self._spend = Spend()
        self._cache = ReplyCache(config.cache_path)
        self._working = False
        """Set after the first good reply: before it, an unreachable server or a refusal is the user's error."""
        self._schema_refused = False
        """The server refused response_format and took the request without it: leave it out from now on."""
        self._failed_in_a_row = 0
        handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
        if _is_loopback(urllib.parse.urlsplit(config.url).hostname or ""):
            handlers.append(urllib.request.ProxyHandler({}))  # a local server is never reached through a proxy
        self._opener = urllib.request.build_opener(*handlers)

    def __repr__(self) -> str:
        return f"LlmClient({self.config.endpoint}, model={self.config.model!r})"

    def __enter__(self) -> LlmClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._cache.close()

    @property
    def spent(self) -> Spend:
        """A snapshot of what was spent so far."""
        return replace(self._spend)

    def tally(self, **counts: int) -> None:
        """Add what the caller made of the replies (failures, invalid_replies, discarded, skipped) to the spend."""
        for name, value in counts.items():
            setattr(self._spend, name, getattr(self._spend, name) + value)

    def ask(self, messages: list[dict[str, str]], schema: dict[str, Any] | None = None) -> str:
        """The model's reply text to `messages`, from the cache when it was asked before.

        Raises CallsStopped when a call is needed but none may be made, and GraderError when the
        server cannot be used at all (unreachable, wrong URL, refused key) before any call worked.
        """
        start = time.perf_counter()
        try:
            return self._ask(messages, schema)
        finally:
            self._spend.seconds += time.perf_counter() - start

    def _ask(self, messages: list[dict[str, str]], schema: dict[str, Any] | None) -> str:
        key = cache_key(self.config.model, messages)
        cached = self._cache.get(key)
        if cached is not None:
            self._spend.cache_hits += 1
            return cached
        if self._spend.stopped is None and self._failed_in_a_row >= MAX_FAILED_IN_A_ROW:
            self._spend.stopped = f"{MAX_FAILED_IN_A_ROW} answers in a row failed"
        if self._spend.stopped is None and self._spend.calls >= self.config.max_calls:
            self._spend.stopped = f"the budget of {self.config.max_calls} calls is spent"
        if self._spend.stopped is not None:
            raise CallsStopped(f"no more LLM calls: {self._spend.stopped}")
        try:
            reply = self._call_with_retries(messages, schema)
        except CallFailed:
            self._failed_in_a_row += 1
            raise
        self._failed_in_a_row = 0
        self._cache.put(key, reply, self.config.model)
        return reply

    def _call_with_retries(self, messages: list[dict[str, str]], schema: dict[str, Any] | None) -> str:
        use_schema = schema is not None and not self._schema_refused
        attempt = 0
        while True:
            if self._spend.calls >= self.config.max_calls:
                raise CallFailed(f"the budget of {self.config.max_calls} calls ran out during retries")
            try:
                reply = self._call(messages, schema if use_schema else None)
            except (_Retryable, _Rejected) as exc:
                if use_schema and _about_schema(exc):
                    # Some servers refuse response_format json_schema (400, or 500 from older llama.cpp
                    # builds): ask again without it, the prompt asks for JSON too. Not a retry.
                    use_schema = False
                    continue
                if isinstance(exc, _Rejected):
                    raise CallFailed(exc.reason) from None
                if attempt >= self.config.retries:
                    tries = "1 try" if attempt == 0 else f"{attempt + 1} tries"
                    raise CallFailed(f"{exc.reason} ({tries})") from None
                wait = exc.retry_after if exc.retry_after is not None else self.config.backoff * 2**attempt
                self._sleep(max(0.0, min(wait, self.config.max_wait)))
                attempt += 1
                self._spend.retries += 1
                continue
            if schema is not None and not use_schema:
                self._schema_refused = True
            return reply

    def _call(self, messages: list[dict[str, str]], schema: dict[str, Any] | None) -> str:
        """One HTTP request. Classifies what went wrong as retryable, rejected, or the user's error."""
        body: dict[str, Any] = {"model": self.config.model, "messages": messages, "temperature": 0}
        if schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "point_verdicts", "strict": True, "schema": schema},
            }
        headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "grader-llm/1"}
        key = (os.environ.get(self.config.api_key_env) or "").strip()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(
            self.config.endpoint, data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        endpoint = self.config.endpoint
        self._spend.calls += 1
        try:
            with self._opener.open(request, timeout=self.config.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            status = exc.code
            detail = _server_message(_read_quietly(exc))
            retry_after = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            exc.close()
            if status == 429 or status >= 500:
                raise _Retryable(f"HTTP {status} from the server{detail}", retry_after) from None
            if not self._working and (status < 400 or status in (401, 403, 404, 405)):
                # Wrong URL, model or key: every call would be refused the same way.
                raise GraderError(_refusal_message(status, endpoint, self.config, detail, exc.headers)) from None
            raise _Rejected(status, f"HTTP {status} from the server{detail}") from None
        except (TimeoutError, socket.timeout):
            raise _Retryable(f"no reply within {self.config.timeout:g} s") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (TimeoutError, socket.timeout)):
                raise _Retryable(f"no reply within {self.config.timeout:g} s") from None
            if not self._working:
                raise GraderError(
                    f"cannot reach the LLM server at {endpoint}: {_reason(exc.reason)} (is it running?)"
                ) from None
            raise _Retryable(f"cannot reach the server: {_reason(exc.reason)}") from None
        except (http.client.HTTPException, ConnectionError, OSError) as exc:
            raise _Retryable(f"the connection failed: {_reason(exc)}") from None
        content, usage = _chat_content(raw)
        if content is None:
            raise _Rejected(200, "the server's reply is not a chat completion (no choices[0].message.content)")
        self._working = True
        self._count_usage(usage)
        return content

    def _count_usage(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        for name in ("prompt_tokens", "completion_tokens"):
            value = usage.get(name)
            if isinstance(value, int) and not isinstance(value, bool):
                setattr(self._spend, name, (getattr(self._spend, name) or 0) + value)


def _about_schema(exc: _Retryable | _Rejected) -> bool:
    """The server may have refused the request for its response_format."""
    if isinstance(exc, _Rejected) and exc.status == 400:
        return True
    return re.search(r"response_format|json_schema", exc.reason, re.IGNORECASE) is not None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read_quietly(exc: urllib.error.HTTPError) -> bytes:
    try:
        return exc.read() or b""
    except Exception:  # noqa: BLE001 - a body we cannot read is just no detail
        return b""


def _server_message(body: bytes, limit: int = 200) -> str:
    """': <the server's own error message>' in one short line, or ''."""
    text = body.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error", data.get("detail", data.get("message")))
        if isinstance(error, dict):
            error = error.get("message", error)
        text = error if isinstance(error, str) else json.dumps(error)
    text = shorten(text, limit)
    return ": " + text if text else ""


def _refusal_message(status: int, endpoint: str, config: LlmConfig, detail: str, headers: Any) -> str:
    if status in (401, 403):
        where = (
            f"${config.api_key_env} is not set"
            if not os.environ.get(config.api_key_env)
            else f"check the key in ${config.api_key_env}"
        )
        return f"the LLM server at {endpoint} refused the request (HTTP {status}{detail}): {where}"
    if 300 <= status < 400:
        location = headers.get("Location") if headers else None
        return (
            f"the LLM server at {endpoint} redirects (HTTP {status}) to {location or 'elsewhere'}: "
            "give that URL instead"
        )
    if status == 404:
        return (
            f"the LLM server at {endpoint} answered HTTP 404{detail} "
            f"(does the URL end in /v1, and does the server know model '{config.model}'?)"
        )
    return f"the LLM server at {endpoint} refused the request (HTTP {status}{detail})"


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (a number or an HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _chat_content(raw: bytes) -> tuple[str | None, Any]:
    """(choices[0].message.content, usage) of a chat-completions response, content None if absent."""
    try:
        data = json.loads(raw.decode("utf-8", "replace"))
        content = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None, None
    if isinstance(content, list):  # content parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str):
        return None, None
    return content, data.get("usage")
