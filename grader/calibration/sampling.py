"""Which answers a TA should mark first (`grader sample`), so that a calibration learns the most.

A calibration learns from the marked answers what this exam's markers reward (`grader.calibration.calibrate`,
`grader.calibration.exemplars`). Marking the first N answers of the class, or N at random, often gives many
answers that say the same thing and none of the rarer kinds. So, per question: most picks cover the
range of answers (k-means clusters of the whole-answer embeddings; from each cluster, the answer
nearest its centre), and the rest are the answers the uncalibrated grader is least sure of
(`grader.scoring.triage.doubt`: scores near the credit ramp, marks near a rounding boundary, hard flags).
Blank answers are never picked: a blank is marked 0 without a TA. The picks are deterministic
(seeded), and the sheet is the CSV `calibrate` reads, with an empty mark column to fill in.
`sample_exam` is the whole `grader sample` run: read, grade, pick, write the sheet.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans

from grader.atomic import check_writable, write_atomically
from grader.calibration.exemplars import AnswerVectors, answer_vectors
from grader.exam.files import read_exam
from grader.exam.rubric import Rubric, ShortQuestion
from grader.scoring.engine import EncoderSpec, grade_here, load_encoder
from grader.scoring.grade import Grades
from grader.scoring.triage import doubt
from grader.spreadsheet import spreadsheet_safe
from grader.watcher import QUIET, Watcher

UNSURE_SHARE = 0.25
"""Share of each question's picks given to the answers the grader is least sure of (the rest cover the range)."""
SHEET_COLUMNS = ("student_id", "question_id", "mark", "max_mark", "answer", "why")


@dataclass(frozen=True)
class Pick:
    """An answer to mark, and why it was picked."""

    student_id: str
    question_id: str
    why: str
    """"covers cluster k of n" or "grader unsure (doubt d)"."""


def sample_exam(
    rubric: Path, answers: Path, out: Path, per_question: int, spec: EncoderSpec, watcher: Watcher = QUIET
) -> list[Pick]:
    """`grader sample`: grade the class uncalibrated, pick up to `per_question` answers per short question
    and write them to `out` as a marking sheet."""
    loaded, submissions = read_exam(rubric, answers, watcher.warn)
    check_writable(out)
    encoder = load_encoder(spec, watcher)
    grades = grade_here(loaded, submissions, encoder, watcher)
    picks = pick_answers(grades, loaded, answer_vectors(loaded, submissions.answers, encoder), per_question)
    write_atomically({out: marking_sheet(picks, loaded, submissions.answers)})
    return picks


def pick_answers(
    grades: Grades, rubric: Rubric, answers: AnswerVectors, per_question: int, random_state: int = 0
) -> list[Pick]:
    """Up to `per_question` non-blank answers per short question (all of them where there are fewer)."""
    if per_question < 1:
        raise ValueError("per_question must be at least 1")
    doubts = {(g.student_id, g.question_id): doubt(g, rubric, grades.curve) for g in grades.items if g.points}
    picks: list[Pick] = []
    for question in rubric.questions:
        if not isinstance(question, ShortQuestion):
            continue
        keys = [(s, question.id) for s in grades.students if (s, question.id) in answers.vectors]
        if len(keys) <= per_question:
            picks += [Pick(s, q, "every answer") for s, q in keys]
            continue
        picks += _pick_question(keys, answers, doubts, per_question, random_state)
    return picks


def _pick_question(
    keys: Sequence[tuple[str, str]],
    answers: AnswerVectors,
    doubts: Mapping[tuple[str, str], float],
    wanted: int,
    random_state: int,
) -> list[Pick]:
    vectors = np.stack([answers.vectors[k] for k in keys]).astype(np.float64)
    unsure = int(round(wanted * UNSURE_SHARE))
    clusters = max(1, wanted - unsure)
    # Distinct answers only: k-means on duplicates would spend clusters on one text said twice.
    distinct = np.unique(vectors, axis=0, return_index=True)[1]
    clusters = min(clusters, len(distinct))
    model = KMeans(n_clusters=clusters, n_init=4, random_state=random_state).fit(vectors[np.sort(distinct)])
    distance = ((vectors[:, None, :] - model.cluster_centers_[None, :, :]) ** 2).sum(axis=2)
    chosen: dict[int, str] = {}
    for c in np.argsort(np.bincount(model.predict(vectors), minlength=clusters))[::-1]:  # biggest clusters first
        for i in np.argsort(distance[:, c], kind="stable"):
            if i not in chosen:
                chosen[int(i)] = f"covers answer cluster {len(chosen) + 1} of {clusters}"
                break
    for i in sorted(range(len(keys)), key=lambda i: (-doubts.get(keys[i], 0.0), i)):
        if len(chosen) >= wanted:
            break
        if i not in chosen:
            chosen[i] = f"grader unsure (doubt {doubts.get(keys[i], 0.0):.2f})"
    return [Pick(keys[i][0], keys[i][1], why) for i, why in sorted(chosen.items())]


def marking_sheet(picks: Sequence[Pick], rubric: Rubric, texts: Mapping[tuple[str, str], str]) -> str:
    """The picks as the CSV `calibrate` reads: student_id, question_id, an empty mark, and what helps
    a TA fill it (the question's marks, the answer, why it was picked). Student text is spreadsheet-safe."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SHEET_COLUMNS)
    for p in picks:
        question = rubric.question(p.question_id)
        writer.writerow(
            [
                spreadsheet_safe(p.student_id),
                p.question_id,
                "",
                f"{question.marks:g}",
                spreadsheet_safe(texts.get((p.student_id, p.question_id), "")),
                p.why,
            ]
        )
    return buffer.getvalue()
