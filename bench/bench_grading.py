"""How fast a whole class is graded, compared with the bare model encoding the same texts.

    .venv/bin/python bench/bench_grading.py [--students 2000] [--device auto] [--batch-size 64]

A synthetic class is built from the 42 real students of the bundled sample: each synthetic answer
is a real one, lightly perturbed (a sentence dropped or swapped, a clause borrowed from a classmate,
the first letter's case changed) so that, as in a real class, most long answers are distinct and
about one in ten is a verbatim copy.

The figure that matters is the ratio grading time / raw encode time, not the seconds: seconds
depend on the machine (CPU cores, GPU), while encoding is the unavoidable cost on any machine, so
the ratio says how much grading adds on top of it (segmenting, matching, bookkeeping). Target:
ratio under 1.3. The script reports and always exits 0.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import resource
import sys
import time
from pathlib import Path

from grader.embedding.encoder import DEFAULT_BATCH_SIZE, Encoder
from grader.embedding.segment import clauses, segments, sentences
from grader.exam.rubric import ShortQuestion, load_rubric
from grader.exam.submissions import parse_submissions, read_submissions
from grader.scoring.grade import grade
from grader.scoring.match import texts_to_encode

ROOT = Path(__file__).resolve().parent.parent
RUBRIC = ROOT / "rubrics" / "dl-midsem.yaml"
SAMPLE = ROOT / "submissions" / "dl-midsem-sample.csv"
TARGET_RATIO = 1.3
VERBATIM_SHARE = 0.10


def perturb(answer: str, classmates: list[str], rng: random.Random) -> str:
    """A realistic variant of a real answer: what another student might have written much like it."""
    if not answer or rng.random() < VERBATIM_SHARE:
        return answer
    sents = sentences(answer) or [answer]
    edit = rng.choice(("drop", "swap", "borrow")) if len(sents) > 1 else "borrow"
    if edit == "drop":
        sents.pop(rng.randrange(len(sents)))
    elif edit == "swap":
        i = rng.randrange(len(sents) - 1)
        sents[i], sents[i + 1] = sents[i + 1], sents[i]
    else:  # a short clause from a classmate's answer to the same question, tacked on
        borrowed = clauses(rng.choice(sentences(rng.choice(classmates)) or [answer])) or ["as discussed in class"]
        sents[-1] = f"{sents[-1].rstrip('.')}, {rng.choice(borrowed).rstrip('.')}."
    if rng.random() < 0.3:
        sents[0] = sents[0][0].swapcase() + sents[0][1:]
    return " ".join(sents)


def synthetic_class(students: int, seed: int = 0):
    """The synthetic class as CSV text (wide shape), parsed with the real reader."""
    rubric = load_rubric(RUBRIC)
    real = read_submissions(SAMPLE, rubric.question_ids)
    shorts = {q.id for q in rubric.questions if isinstance(q, ShortQuestion)}
    pool = {qid: [a for s in real.students if (a := real.answer(s, qid))] for qid in rubric.question_ids}
    rng = random.Random(seed)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["student_id", "name", *rubric.question_ids])
    for i in range(students):
        row = [f"x{i + 1:05d}", f"Student {i + 1}"]
        for qid in rubric.question_ids:
            answer = real.answer(rng.choice(real.students), qid)
            row.append(perturb(answer, pool[qid], rng) if qid in shorts else answer)
        writer.writerow(row)
    return rubric, parse_submissions(buffer.getvalue(), "synthetic.csv", rubric.question_ids)


def texts_graded(rubric, submissions) -> list[str]:
    """The distinct texts `grade()` encodes: the rubric's (point phrasings, prompts), every answer segment."""
    shorts = [q for q in rubric.questions if isinstance(q, ShortQuestion)]
    texts = [t for q in shorts for t in texts_to_encode(q)]
    texts += [t for q in shorts for s in submissions.students for t in segments(submissions.answer(s, q.id))]
    return list(dict.fromkeys(texts))


class RecordingEncoder:
    """Passes texts through to the real encoder and remembers how many distinct ones it was given."""

    def __init__(self, encoder: Encoder) -> None:
        self.name, self._encoder, self.encoded = encoder.name, encoder, 0

    def encode(self, texts, progress=None):
        self.encoded += len(set(texts))
        return self._encoder.encode(texts, progress)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=2000)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rubric, submissions = synthetic_class(args.students, args.seed)
    shorts = [q for q in rubric.questions if isinstance(q, ShortQuestion)]
    short_answers = [submissions.answer(s, q.id) for s in submissions.students for q in shorts]
    distinct_answers = len({a for a in short_answers if a})
    texts = texts_graded(rubric, submissions)

    encoder = Encoder.load(device=args.device, batch_size=args.batch_size)
    warm_up = texts[:: max(1, len(texts) // 200)][:200]  # a spread of lengths, both paths
    encoder._model.encode(warm_up, batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True)
    encoder.encode(warm_up)

    start, cpu = time.perf_counter(), time.process_time()
    encoder._model.encode(
        texts, batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    raw_s, raw_cpu = time.perf_counter() - start, time.process_time() - cpu

    recording = RecordingEncoder(encoder)
    start, cpu = time.perf_counter(), time.process_time()
    grades = grade(rubric, submissions, recording)
    grade_s, grade_cpu = time.perf_counter() - start, time.process_time() - cpu

    answers = len(submissions.students) * len(rubric.questions)
    assert len(grades.items) == answers
    if recording.encoded != len(texts):  # then the ratio compares different work: say so
        print(f"WARNING: grade() encoded {recording.encoded} distinct texts, the raw encode {len(texts)}")
    ratio = grade_s / raw_s
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
    print(f"model             {encoder.name} on {encoder.device}, batch size {args.batch_size}")
    print(f"students          {len(submissions.students)}")
    print(f"answers           {answers} ({len(submissions.students)} x {len(rubric.questions)} questions)")
    print(f"short answers     {len(short_answers)} ({distinct_answers} distinct non-blank)")
    print(f"texts encoded     {len(texts)} distinct (answer segments + rubric texts)")
    print(f"grading           {grade_s:.2f} s ({answers / grade_s:.0f} answers/s)")
    print(f"raw encode        {raw_s:.2f} s (same texts, model.encode directly)")
    print(f"ratio             {ratio:.2f} (grading / raw encode, wall clock; target under {TARGET_RATIO})")
    # CPU time of this process barely moves when other programs share the machine; wall clock does.
    # If the two ratios disagree by much, something else was running: measure again on a quiet machine.
    print(f"CPU-time ratio    {grade_cpu / raw_cpu:.2f} ({grade_cpu:.0f} s / {raw_cpu:.0f} s of CPU)")
    print(f"load average      {os.getloadavg()[0]:.2f} (1 min, at the end)")
    print(f"peak RSS          {peak_mb:.0f} MiB")
    print("PASS" if ratio < TARGET_RATIO else "ABOVE TARGET")


if __name__ == "__main__":
    main()
