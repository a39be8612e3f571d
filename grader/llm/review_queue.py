"""Second opinions on a gradebook's review queue, stored beside the automatic marks (`grader
second-opinion`). Above `opinion` in the package: the only part that opens a gradebook.

An opinion whose call failed is not stored, so a re-run asks again; no mark is ever changed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from grader.llm.client import LlmClient
from grader.llm.config import LlmConfig, Spend
from grader.llm.opinion import opinion_flag, run_second_opinions
from grader.llm.reply_cache import LlmCacheWarning
from grader.review.gradebook import Gradebook
from grader.watcher import QUIET, Watcher


@dataclass(frozen=True)
class StoredOpinions:
    stored: int
    disagree: int
    """Stored opinions a step or more from the automatic mark (each flagged llm-disagrees)."""
    spent: Spend


def store_second_opinions(db: Path, config: LlmConfig, watcher: Watcher = QUIET) -> StoredOpinions:
    """Ask the LLM about every short answer waiting for review in `db` and store each opinion, with its
    flag when it disagrees; the reply cache's warnings go to `watcher` once the asking is done."""
    with Gradebook.open(db, create=False) as book, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LlmCacheWarning)
        rubric, queue = book.rubric(), book.queue()
        with LlmClient(config) as client, watcher.counting("Asking the LLM") as progress:
            if progress is not None:
                progress(0, len(queue))
            results = run_second_opinions(client, rubric, queue, progress=progress)
        for warning in caught:
            watcher.warn(str(warning.message))
        stored = disagree = 0
        for entry, opinion in results:
            if opinion is None or opinion.status == "failed":
                continue  # not stored: a re-run asks again
            flag = opinion_flag(opinion, entry.auto_mark, rubric.question(entry.question_id).step)
            book.record_opinion(entry.student_id, entry.question_id, opinion.to_dict(), flag)
            stored += 1
            disagree += flag is not None
    return StoredOpinions(stored, disagree, client.spent)
