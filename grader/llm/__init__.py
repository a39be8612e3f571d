"""An optional second opinion from an LLM on flagged short answers. It never changes a mark.

Any OpenAI-compatible chat-completions server will do (llama.cpp's `llama-server`, vLLM, Ollama, an
institution's gateway). For one answer the model is asked, point by point, whether the answer
makes each rubric point, with a verbatim quote as evidence. What the caller can rely on:

- **Privacy.** A request holds the question prompt, the rubric points (id, text, marks) and the
  answer text, nothing else: no student id or name, no model answer. The answer goes between
  `<answer>` tags (any such tag inside it is escaped) and the model is told it is data.
- **Checked.** A verdict whose quote is not in the answer (after folding case, whitespace and
  typographic quotes), that names a point the question does not have, or that does not fit the
  schema is discarded and counted; a reply that is not JSON is discarded whole. The implied mark
  exists only when every point has a checked verdict.
- **Bounded.** At most `max_calls` HTTP requests (retries included); a per-call timeout; retries
  with exponential backoff on timeouts, dropped connections, 429 (Retry-After honoured, capped)
  and 5xx, never on other 4xx; after `MAX_FAILED_IN_A_ROW` failed answers in a row no more calls.
- **Cached.** Replies are kept in a SQLite file keyed by a hash of the model name and the messages
  (not the URL), so a re-run asks nothing it has asked before. A corrupt file is set aside.
- **Accounted.** `LlmClient.spent` says what was spent: calls, cache hits, retries, failures,
  invalid replies, discarded verdicts, tokens (when the server reports `usage`), seconds.

The result is an `Opinion`, stored beside the automatic mark for the TA; `opinion_flag` turns a
disagreement of at least one step into a flag. Nothing here writes a mark.

One module per part, lowest first (none imports one above it): `verdicts` (the opinion records),
`config` (LlmConfig, Spend), `prompt` (what is sent), `reply_cache`, `client` (HTTP, retries,
budget), `replies` (reading and checking a reply), `opinion` (the public operations). Import from
`grader.llm`: the names below are the package's API.
"""

from grader.llm.client import MAX_FAILED_IN_A_ROW, CallFailed, CallsStopped, LlmClient
from grader.llm.config import LlmConfig, Spend
from grader.llm.opinion import opinion_flag, run_second_opinions, second_opinion
from grader.llm.prompt import SYSTEM_PROMPT, build_messages, cache_key, delimit_answer, verdict_schema
from grader.llm.replies import check_reply, id_text, normalise, parse_reply, quote_in_answer
from grader.llm.reply_cache import LlmCacheWarning, ReplyCache
from grader.llm.verdicts import CREDIT, OPINION_VERSION, Opinion, PointVerdict, Status, Verdict, first_error
from grader.watcher import Progress

__all__ = [
    "CREDIT",
    "MAX_FAILED_IN_A_ROW",
    "OPINION_VERSION",
    "SYSTEM_PROMPT",
    "CallFailed",
    "CallsStopped",
    "LlmCacheWarning",
    "LlmClient",
    "LlmConfig",
    "Opinion",
    "PointVerdict",
    "Progress",
    "ReplyCache",
    "Spend",
    "Status",
    "Verdict",
    "build_messages",
    "cache_key",
    "check_reply",
    "delimit_answer",
    "first_error",
    "id_text",
    "normalise",
    "opinion_flag",
    "parse_reply",
    "quote_in_answer",
    "run_second_opinions",
    "second_opinion",
    "verdict_schema",
]
