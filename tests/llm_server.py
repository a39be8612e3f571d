"""A real chat-completions server on 127.0.0.1 for the LLM tests, whose "model" is a script.

`ScriptedLlm` speaks the OpenAI chat-completions protocol over a real socket (a
`ThreadingHTTPServer` on port 0). Each request is recorded (path, headers, raw body). How it
answers is chosen per test, by name:

    good          reads the rubric points and the answer between the <answer> tags from the
                  prompt, and gives each point a verdict by looking for the point's keywords
                  (met: two or more, partial: one), quoting the answer's sentence verbatim
    fenced        good, wrapped in prose and a ```json fence
    broken        JSON cut off half way
    off-schema    good, except the first point's verdict is "yes"
    invent        met for every point, quoting the point's own text (not in the answer)
    unknown       good, plus a verdict on a point the question does not have
    obey          a model that obeys an injection: if the answer says "ignore the rubric", every
                  point is met, quoting the injection; otherwise good
    obey-invent   the same, but quoting the rubric's point texts (not in the answer)
    obey-greedy   the same as obey, and then every point again and two invented points
    slow          sleeps `delay` seconds, then good
    429           HTTP 429 with Retry-After: `retry_after`
    500           HTTP 500
    drop          closes the connection without a response
    400-schema    HTTP 400 when the request has response_format, else good
    500-schema    HTTP 500 naming response_format when the request has one (older llama.cpp), else good
    400           HTTP 400
    401           HTTP 401 unless the Authorization header is `Bearer {expected_key}`
    404           HTTP 404 with an OpenAI-style error body
    no-usage      good, without a `usage` object

A request for rubric suggestions (`grader.authoring.suggest`: a model answer and "Draft rubric points")
gets, for the behaviours that answer with content:

    good          one other phrasing per point ("In other words, " and the point's first words)
                  and one missing point naming the model answer's longest word
    fenced        good, wrapped in prose and a ```json fence
    broken        JSON cut off half way
    unknown       good, plus a phrasing of a point the question does not have
    messy         good, plus for the first point phrasings that are empty, its own text, a repeat,
                  400 characters long, not text, and three more (one past the three asked for);
                  and missing points that are blank, a repeat, and three more (one too many)
    (any other)   good

`script` is a list of behaviours used one per request, in order; when it is empty, `behaviour`
answers every request.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_POINTS = re.compile(r"Rubric points \(JSON, one object per point\):\n(.*)\n")
_DRAFT_POINTS = re.compile(
    r"Model answer:\n(.*)\n\nDraft rubric points \(JSON, one object per point\):\n(.*)\Z", re.DOTALL
)
_ANSWER = re.compile(r"<answer>\n(.*?)\n</answer>", re.DOTALL)  # the first closing tag, as a naive model reads it
_STOPWORDS = {"because", "which", "their", "there", "these", "those", "about", "would", "should", "other"}
INJECTION = "ignore the rubric"


@dataclass(frozen=True)
class Recorded:
    path: str
    headers: dict[str, str]
    raw: bytes
    at: float

    @property
    def body(self) -> dict[str, Any]:
        return json.loads(self.raw)

    @property
    def user_message(self) -> str:
        return next(m["content"] for m in self.body["messages"] if m["role"] == "user")


class ScriptedLlm:
    """Start with `with ScriptedLlm() as llm:`; `llm.url` is the base URL (ends in /v1)."""

    def __init__(self, behaviour: str = "good") -> None:
        self.behaviour = behaviour
        self.script: list[str] = []
        self.requests: list[Recorded] = []
        self.delay = 0.5
        self.retry_after: str | None = "1"
        self.expected_key = "sk-test-secret"
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._server.handle_error = lambda request, address: None  # a client that gave up is not an error here
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> ScriptedLlm:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def next_behaviour(self, recorded: Recorded) -> str:
        with self._lock:
            self.requests.append(recorded)
            return self.script.pop(0) if self.script else self.behaviour


def _handler_for(llm: ScriptedLlm) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
            pass

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            recorded = Recorded(self.path, {k: v for k, v in self.headers.items()}, raw, time.monotonic())
            behaviour = llm.next_behaviour(recorded)
            if self.path != "/v1/chat/completions" or behaviour == "404":
                self._send(
                    404, {"error": {"message": "The model `x` does not exist.", "type": "invalid_request_error"}}
                )
                return
            body = recorded.body
            if behaviour == "slow":
                time.sleep(llm.delay)
                behaviour = "good"
            if behaviour == "429":
                headers = {"Retry-After": llm.retry_after} if llm.retry_after is not None else {}
                self._send(429, {"error": {"message": "rate limited"}}, headers)
            elif behaviour == "500":
                self._send(500, {"error": {"message": "the model crashed"}})
            elif behaviour == "500-schema" and "response_format" in body:
                self._send(
                    500,
                    {
                        "error": {
                            "message": (
                                'response_format type must be one of "text" or "json_object", but got: json_schema'
                            )
                        }
                    },
                )
            elif behaviour == "400" or (behaviour == "400-schema" and "response_format" in body):
                self._send(400, {"error": {"message": "response_format is not supported"}})
            elif behaviour == "401" and self.headers.get("Authorization") != f"Bearer {llm.expected_key}":
                self._send(401, {"error": {"message": "invalid api key"}})
            elif behaviour == "drop":
                self.close_connection = True  # no response at all: the client sees the connection close
            else:
                content = _reply(behaviour, recorded.user_message)
                usage = (
                    None
                    if behaviour == "no-usage"
                    else {
                        "prompt_tokens": len(raw) // 4,
                        "completion_tokens": len(content) // 4,
                        "total_tokens": (len(raw) + len(content)) // 4,
                    }
                )
                completion = {
                    "id": f"chatcmpl-{len(llm.requests)}",
                    "object": "chat.completion",
                    "model": body.get("model"),
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                    ],
                }
                if usage is not None:
                    completion["usage"] = usage
                self._send(200, completion)

        def _send(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _reply(behaviour: str, prompt: str) -> str:
    draft = _DRAFT_POINTS.search(prompt)
    if draft:
        return _suggestions(behaviour, draft.group(1), json.loads(draft.group(2)))
    points = json.loads(_POINTS.search(prompt).group(1))
    answer = _ANSWER.search(prompt).group(1)
    verdicts = [_judge(point, answer) for point in points]
    if behaviour == "fenced":
        return (
            "Here is my assessment.\n```json\n" + json.dumps({"points": verdicts}, indent=2) + "\n```\nHope this helps."
        )
    if behaviour == "broken":
        return json.dumps({"points": verdicts})[:40]
    if behaviour == "off-schema":
        verdicts[0]["verdict"] = "yes"
    if behaviour == "invent":
        verdicts = [{"point_id": p["id"], "verdict": "met", "quote": p["text"]} for p in points]
    if behaviour == "unknown":
        verdicts.append({"point_id": "bonus", "verdict": "met", "quote": answer[:20]})
    if behaviour.startswith("obey") and INJECTION in answer.lower():
        injection = next(s for s in _sentences(answer) if INJECTION in s.lower())
        if behaviour == "obey-invent":
            verdicts = [{"point_id": p["id"], "verdict": "met", "quote": p["text"]} for p in points]
        else:
            verdicts = [{"point_id": p["id"], "verdict": "met", "quote": injection} for p in points]
        if behaviour == "obey-greedy":
            verdicts += verdicts + [{"point_id": f"extra{i}", "verdict": "met", "quote": injection} for i in (1, 2)]
    return json.dumps({"points": verdicts})


def _judge(point: dict, answer: str) -> dict:
    """Met when two or more of the point's keywords are in the answer, partial for one; quote that sentence."""
    keywords = [w for w in re.findall(r"[a-z]{6,}", point["text"].lower()) if w not in _STOPWORDS]
    hits = [k for k in keywords if k in answer.lower()]
    if not hits:
        return {"point_id": point["id"], "verdict": "not_met", "quote": ""}
    quote = next(s for s in _sentences(answer) if hits[0] in s.lower())
    return {"point_id": point["id"], "verdict": "met" if len(hits) >= 2 else "partial", "quote": quote}


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]


def _suggestions(behaviour: str, model_answer: str, points: list[dict]) -> str:
    """Rubric suggestions as `grader.authoring.suggest` asks for them, good or spoilt as `behaviour` says."""
    phrasings = [{"point_id": p["id"], "text": "In other words, " + " ".join(p["text"].split()[:8])} for p in points]
    longest = max(re.findall(r"[A-Za-z]+", model_answer), key=len)
    missing = [{"text": f"A full answer also uses the term '{longest}'."}]
    if behaviour == "unknown":
        phrasings.append({"point_id": "bonus", "text": "A point nobody wrote."})
    if behaviour == "messy":
        first = points[0]["id"]
        spoilt = [
            "",
            points[0]["text"],
            phrasings[0]["text"],
            "very " * 80,
            5,
            "Put another way, one.",
            "Put another way, two.",
            "Put another way, three.",
        ]
        phrasings += [{"point_id": first, "text": text} for text in spoilt]
        missing += [
            {"text": "   "},
            missing[0],
            {"text": "Extra one."},
            {"text": "Extra two."},
            {"text": "Extra three."},
        ]
    reply = json.dumps({"phrasings": phrasings, "missing_points": missing})
    if behaviour == "fenced":
        return "Here are my suggestions.\n```json\n" + reply + "\n```"
    if behaviour == "broken":
        return reply[:40]
    return reply
