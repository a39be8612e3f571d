"""The public operations: a second opinion on one answer or on a gradebook's short answers, and its flag.

The top of the package: it ties the prompt, the client and the reply check together, and the
accounting of what the replies were worth (failed, invalid, discarded, skipped) happens here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from grader.errors import GraderError
from grader.exam.rubric import Rubric, ShortQuestion
from grader.llm.client import CallFailed, CallsStopped, LlmClient
from grader.llm.prompt import build_messages, verdict_schema
from grader.llm.replies import _check_reply
from grader.llm.verdicts import Opinion, PointVerdict
from grader.scoring.flags import Flag, FlagCode
from grader.watcher import Progress

if TYPE_CHECKING:  # only its fields are read; importing the gradebook would pull in the grading stack
    from grader.review.gradebook import Entry


def opinion_flag(opinion: Opinion, auto_mark: float, step: float) -> Flag | None:
    """An `llm-disagrees` flag when the opinion's implied mark is a step or more from the automatic mark."""
    if not opinion.disagrees(auto_mark, step):
        return None
    return Flag(
        FlagCode.LLM_DISAGREES,
        f"second opinion (LLM) suggests {opinion.implied_mark:g}, automatic mark {auto_mark:g}: {opinion.describe()}",
    )


def second_opinion(client: LlmClient, question: ShortQuestion, answer: str) -> Opinion:
    """Ask the model about one answer and check what it says. Raises CallsStopped when no call may be made.

    A blank answer is not sent: every point is not met.
    """
    if not answer.strip():
        verdicts = tuple(PointVerdict(p.id, "not_met") for p in question.points)
        return Opinion(question.id, client.config.model, "ok", verdicts, implied_mark=0.0, max_mark=question.marks)
    try:
        reply = client.ask(build_messages(question, answer), verdict_schema(question))
    except CallFailed as exc:
        client.tally(failures=1)
        return Opinion(question.id, client.config.model, "failed", max_mark=question.marks, error=str(exc))
    opinion, unreadable = _check_reply(question, answer, reply, client.config.model)
    if unreadable:
        client.tally(invalid_replies=1)
    else:
        client.tally(discarded=opinion.discarded_count)
    return opinion


def run_second_opinions(
    client: LlmClient,
    rubric: Rubric,
    entries: Iterable[Entry],
    progress: Progress | None = None,
) -> list[tuple[Entry, Opinion | None]]:
    """A second opinion on each short-answer entry (MCQs are left out); None where no call could be made.

    Answers whose reply is cached are still answered after the budget is spent. The entries are
    returned as they came: nothing here changes a mark.
    """
    short = []
    for entry in entries:
        try:
            question = rubric.question(entry.question_id)
        except KeyError:
            raise GraderError(
                f"the gradebook has answers to question '{entry.question_id}', which the rubric does not have"
            ) from None
        if isinstance(question, ShortQuestion):
            short.append((entry, question))
    results: list[tuple[Entry, Opinion | None]] = []
    for done, (entry, question) in enumerate(short, start=1):
        try:
            opinion: Opinion | None = second_opinion(client, question, entry.answer)
        except CallsStopped:
            client.tally(skipped=1)
            opinion = None
        results.append((entry, opinion))
        if progress is not None:
            progress(done, len(short))
    return results
