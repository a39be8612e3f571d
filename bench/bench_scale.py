"""Grading at class sizes of 1k to 100k answers: speed against the encoding floor, memory, the cache.

    .venv/bin/python bench/bench_scale.py [--sizes 1000,10000,100000] [--device auto] [--batch-size N]

Each size runs in a fresh process (so peak memory is that size's alone) and reports:
- answers graded per second (an answer is one student's answer to one question, MCQs included);
- grading time / raw encode time of the same distinct texts: the floor any grader pays is encoding
  them with the bare model (`model.encode`, length-sorted batches); the ratio is what grading adds
  (segmenting, cache, matching, bookkeeping). Target: under 1.15 at 10k answers. Above
  `--raw-sample` distinct texts the floor is timed on a uniform random sample of them and scaled
  (encode time is linear in the number of texts drawn from one length distribution);
- peak RSS while grading (sampled every 10 ms) and RSS before it (model and class loaded), and how
  both grow with class size. Target: linear, under 2 GiB at 100k answers;
- the persistent cache: the first run fills a fresh cache file, the second run grades the same
  answers again from it; second / first time, and a check that the marks are identical.

The class: the dl-midsem exam (19 questions: 12 MCQs and 7 short answers, drawn from the 42 real
students of the bundled sample) plus 6 short questions from the shared corpora (/work/shared/datasets:
the 2 Mohler and 2 SAF questions with the most answers, the largest Beetle and SciEntsBank question),
their rubrics built from the reference answers by `grader.authoring.reference`. Every synthetic answer is a
real one: copied verbatim with probability 3 % (the exact-duplicate rate of real answers in those
corpora is 0-3 %), else edited as another student might have written it (a sentence dropped or
swapped, a clause borrowed from a classmate, and small word-level edits: a typo, a dropped word, a
filler word), so that, as in the corpora (91-98 % distinct segments within a question of 30-80
answers), most segments are new. The script prints the duplicate rates it produced.
Without the corpora (`--datasets` missing) the class is dl-midsem alone, and says so.

`--stub` replaces the model by a stand-in that returns a fixed pseudo-random unit vector per text at
once: what is left is grading's own time and memory (segmenting, cache, matching, the Grades), and
the cache at full size, at 100k answers in minutes instead of hours on a small CPU. There is no
encoding floor then, so no ratio; the marks are meaningless, the memory is the real one (same
vectors, same sizes). With `--segments pooled` the stand-in has the real tokenizer and returns random
token embeddings, so tokenizing, windows and pooling run for real.

`--segments pooled|separate` chooses how segments become vectors (`grader.embedding.spans`; default: the
library's). `--floor sentences` times the floor on each distinct *sentence* of the answers (windows
of over-long ones) instead of the texts grading encodes: what reading every answer once costs, the
floor that pooling aims at. `--no-cache` grades once with the cache off (no second run); with
`--repeat N` it grades N times, timing the floor after each, and the fastest of each counts (on a
shared machine a small class's single timings move by a third from one try to the next).
Results: bench/README.md. The script reports and always exits 0.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import importlib.util
import io
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.authoring.reference import Reference, references_to_rubric  # noqa: E402
from grader.embedding.encoder import Encoder  # noqa: E402
from grader.embedding.segment import clauses, segments, sentences, windows  # noqa: E402
from grader.embedding.spans import DEFAULT_SEGMENT_MODE, SegmentMode  # noqa: E402
from grader.exam.rubric import Rubric, ShortQuestion, load_rubric  # noqa: E402
from grader.exam.submissions import parse_submissions, read_submissions  # noqa: E402
from grader.scoring.grade import grade  # noqa: E402

RUBRIC = ROOT / "rubrics" / "dl-midsem.yaml"
SAMPLE = ROOT / "submissions" / "dl-midsem-sample.csv"
DATASETS = Path(os.environ.get("GRADER_DATASETS", "/work/shared/datasets"))
VERBATIM_SHARE = 0.03
SENTENCE_EDIT = 0.5
"""Chance that an edited answer also loses, swaps or borrows a sentence."""
WORD_EDITS = 0.8
"""Chance that each sentence of an edited answer gets a word-level edit (and again, for a second one)."""
FILLERS = ("basically", "actually", "also", "really", "just", "I think", "in general", "so", "then", "here")
TARGET_RATIO, TARGET_PEAK_GIB = 1.15, 2.0
TARGET_SENTENCE_RATIO = 1.3
"""Grading against encoding each distinct sentence once (`--floor sentences`), at most."""


# ---- the synthetic class ------------------------------------------------------------------------


def edit_words(sentence: str, rng: random.Random) -> str:
    """One small word-level edit a student might make: a typo, a dropped word, a filler word."""
    words = sentence.split()
    if not words:
        return sentence
    i = rng.randrange(len(words))
    kind = rng.choice(("typo", "typo", "drop", "filler"))
    if kind == "typo" and len(words[i]) >= 4:
        w, j = words[i], rng.randrange(1, len(words[i]) - 2)
        words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    elif kind == "drop" and len(words) > 3:
        words.pop(i)
    else:
        words.insert(i, rng.choice(FILLERS))
    return " ".join(words)


def perturb(answer: str, classmates: list[str], rng: random.Random) -> str:
    """Another student's answer much like this real one (see the module docstring)."""
    if not answer.strip() or rng.random() < VERBATIM_SHARE:
        return answer
    sents = sentences(answer) or [answer]
    if rng.random() < SENTENCE_EDIT:
        edit = rng.choice(("drop", "swap", "borrow")) if len(sents) > 1 else "borrow"
        if edit == "drop":
            sents.pop(rng.randrange(len(sents)))
        elif edit == "swap":
            i = rng.randrange(len(sents) - 1)
            sents[i], sents[i + 1] = sents[i + 1], sents[i]
        else:
            borrowed = clauses(rng.choice(sentences(rng.choice(classmates)) or [answer])) or ["as discussed in class"]
            sents[-1] = f"{sents[-1].rstrip('.')}, {rng.choice(borrowed).rstrip('.')}."
    for k, sentence in enumerate(sents):
        for _ in range(2):
            if rng.random() < WORD_EDITS:
                sentence = edit_words(sentence, rng)
        sents[k] = sentence
    return " ".join(sents)


def corpus_questions(datasets: Path) -> tuple[list[Reference], dict[str, list[str]]]:
    """The 6 corpus questions with the most answers: their references (ids prefixed) and answers."""
    spec = importlib.util.spec_from_file_location("bench_datasets", ROOT / "bench" / "corpora.py")
    loaders = sys.modules["bench_datasets"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaders)
    loaders.DATA = datasets
    chosen = [
        ("mohler", loaders.mohler(), 2),
        ("saf", loaders.saf(0), 2),
        ("beetle", loaders.semeval("beetle", 0), 1),
        ("sci", loaders.semeval("sciEntsBank", 0), 1),
    ]
    refs: list[Reference] = []
    pools: dict[str, list[str]] = {}
    for prefix, corpus, count in chosen:
        sizes = Counter(a.question_id for a in corpus.answers)
        for qid, _ in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))[:count]:
            new_id = f"{prefix}-{qid}"
            refs += [dataclasses.replace(r, question_id=new_id) for r in corpus.references if r.question_id == qid]
            pools[new_id] = [a.text for a in corpus.answers if a.question_id == qid and a.text.strip()]
    return refs, pools


def exam(datasets: Path) -> tuple[Rubric, dict[str, list[str]], str]:
    """The rubric, each question's pool of real answers, and what the class is made of."""
    midsem = load_rubric(RUBRIC)
    real = read_submissions(SAMPLE, midsem.question_ids)
    pools = {qid: [real.answer(s, qid) for s in real.students] for qid in midsem.question_ids}
    if not (datasets / "mohler_dev.csv").is_file():
        return midsem, pools, f"dl-midsem only ({datasets} not found)"
    refs, corpus_pools = corpus_questions(datasets)
    extra = references_to_rubric(refs, "corpora", str(datasets))
    rubric = Rubric(
        exam="scale", title="dl-midsem + corpus questions", version=1, questions=midsem.questions + extra.questions
    )
    return rubric, pools | corpus_pools, f"dl-midsem + {', '.join(corpus_pools)}"


def synthetic_class(rubric: Rubric, pools: dict[str, list[str]], answers: int, seed: int = 0):
    """About `answers` answers (students x questions) as a wide CSV, parsed by the real reader."""
    shorts = {q.id for q in rubric.questions if isinstance(q, ShortQuestion)}
    rng = random.Random(seed)
    students = max(1, round(answers / len(rubric.questions)))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["student_id", "name", *rubric.question_ids])
    nonblank = {qid: [a for a in pool if a.strip()] or [""] for qid, pool in pools.items()}
    for i in range(students):
        row = [f"x{i + 1:06d}", f"Student {i + 1}"]
        for qid in rubric.question_ids:
            answer = rng.choice(pools[qid])
            row.append(perturb(answer, nonblank[qid], rng) if qid in shorts else answer)
        writer.writerow(row)
    return parse_submissions(buffer.getvalue(), "synthetic.csv", rubric.question_ids)


def class_profile(rubric: Rubric, submissions) -> dict:
    """Duplicate rates and lengths: what the encoder is given, and how realistic it is."""
    shorts = [q for q in rubric.questions if isinstance(q, ShortQuestion)]
    texts = [t for q in shorts for t in _rubric_texts(q)]
    answers = dup_answers = segs = distinct_within = words = 0
    for q in shorts:
        given = [submissions.answer(s, q.id) for s in submissions.students]
        given = [a for a in given if a.strip()]
        answers += len(given)
        dup_answers += len(given) - len(set(given))
        words += sum(len(a.split()) for a in given)
        pieces = [t for a in given for t in segments(a)]
        segs += len(pieces)
        distinct_within += len(set(pieces))
        texts += pieces
    distinct = len(dict.fromkeys(texts))
    return {
        "short_answers": answers,
        "mean_words": round(words / max(1, answers), 1),
        "duplicate_answer_share": round(dup_answers / max(1, answers), 4),
        "segments": segs,
        "segments_per_answer": round(segs / max(1, answers), 2),
        "distinct_segment_share": round(distinct_within / max(1, segs), 4),
        "texts": distinct,
    }, list(dict.fromkeys(texts))


def sentence_texts(rubric: Rubric, submissions) -> list[str]:
    """Each distinct sentence of the short answers (windows of an over-long one): reading every answer once."""
    shorts = [q for q in rubric.questions if isinstance(q, ShortQuestion)]
    given = (submissions.answer(s, q.id) for q in shorts for s in submissions.students)
    return list(dict.fromkeys(w for a in given for sentence in sentences(a.strip()) for w in windows(sentence)))


def _rubric_texts(question: ShortQuestion) -> list[str]:
    from grader.scoring.match import texts_to_encode

    return texts_to_encode(question)


class StubModel:
    """Stands in for the sentence-transformers model (see --stub): a unit vector per text, derived from its hash."""

    max_seq_length = 256

    def __init__(self, dim: int = 384) -> None:
        self.dim = dim

    def get_sentence_embedding_dimension(self) -> int:
        return self.dim

    def encode(self, texts, batch_size=64, **_: object):
        import hashlib

        import numpy as np

        seeds = [int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little") for t in texts]
        rows = (
            np.stack([np.random.default_rng(s).standard_normal(self.dim, dtype=np.float32) for s in seeds])
            if texts
            else np.zeros((0, self.dim), np.float32)
        )
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


class StubTransformer:
    """Stands in for the model's transformer when segments are pooled (--stub --segments pooled): the
    real tokenizer, and token embeddings drawn at random at once, so tokenizing, windows, pooling and
    their memory are the real ones."""

    def __init__(self, dim: int = 384) -> None:
        from transformers import AutoTokenizer

        from grader.embedding.encoder import default_model_path

        self.tokenizer, self.dim = AutoTokenizer.from_pretrained(str(default_model_path())), dim

    def parameters(self):
        import torch

        yield torch.zeros(1)

    def __call__(self, features: dict) -> dict:
        import torch

        rows, width = features["input_ids"].shape
        return {
            "token_embeddings": torch.randn(
                rows, width, self.dim, generator=torch.Generator().manual_seed(rows * 1000 + width)
            )
        }


class PoolingStubModel(StubModel):
    """The stand-in model with a tokenizer and a transformer module, for pooled segments."""

    def __init__(self, dim: int = 384) -> None:
        super().__init__(dim)
        self._transformer = StubTransformer(dim)
        self.tokenizer = self._transformer.tokenizer

    def __getitem__(self, index: int) -> StubTransformer:
        return self._transformer


def stub_encoder(segments: str = "separate") -> Encoder:
    mode = SegmentMode(segments)
    encoder = Encoder(Path("stub-model"), "cpu", segments=mode)
    if mode is SegmentMode.POOLED:
        encoder._model, encoder._cache, encoder._identity = PoolingStubModel(), None, "stub-model|float32"
        return encoder
    encoder._model, encoder._cache, encoder._identity = StubModel(), None, "stub-model|float32"
    return encoder


# ---- measuring one size -------------------------------------------------------------------------


class PeakRSS:
    """The highest resident set size seen while the block runs, sampled every 10 ms from /proc."""

    def __init__(self) -> None:
        self.peak = self.start = rss_bytes()

    def __enter__(self) -> PeakRSS:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss_bytes())


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: the process's peak so far
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def _with_cache(rubric: Rubric, submissions, encoder: Encoder):
    """The first run into a fresh cache file, the second from it: encoders, peaks, times, whether the marks agree."""
    with tempfile.TemporaryDirectory() as folder:
        cache_path = Path(folder) / "embeddings.sqlite"
        first = encoder.with_cache(cache_path)
        with PeakRSS() as memory:
            start, cpu = time.perf_counter(), time.process_time()
            grades = grade(rubric, submissions, first)
            grade_s, grade_cpu = time.perf_counter() - start, time.process_time() - cpu
        first.cache.close()
        marks = [(g.mark, g.raw_mark) for g in grades.items]
        del grades  # the second run's peak is its own, not the two runs' results held at once
        cache_bytes = cache_path.stat().st_size + sum(
            p.stat().st_size for p in Path(folder).glob("embeddings.sqlite-*")
        )
        second = encoder.with_cache(cache_path)
        with PeakRSS() as memory_second:
            start = time.perf_counter()
            again = grade(rubric, submissions, second)
            second_s = time.perf_counter() - start
        second.cache.close()
    same_marks = marks == [(g.mark, g.raw_mark) for g in again.items]
    del again
    return first, second, memory_second, second_s, cache_bytes, same_marks, grade_s, grade_cpu, memory


def _floor(encoder: Encoder, texts: list[str], most: int) -> tuple[float, float]:
    """Seconds and CPU seconds the bare model takes over `texts` (timed on a sample of `most`, scaled)."""
    sample = texts if len(texts) <= most else random.Random(1).sample(texts, most)
    start, cpu = time.perf_counter(), time.process_time()
    encoder._model.encode(
        sample, batch_size=encoder.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return (time.perf_counter() - start) * len(texts) / len(sample), (time.process_time() - cpu) * len(texts) / len(
        sample
    )


def measure(size: int, args: argparse.Namespace) -> dict:
    rubric, pools, made_of = exam(Path(args.datasets))
    submissions = synthetic_class(rubric, pools, size, args.seed)
    profile, texts = class_profile(rubric, submissions)
    if args.floor == "sentences":
        texts = sentence_texts(rubric, submissions)
    answers = len(submissions.students) * len(rubric.questions)

    start = time.perf_counter()
    encoder = (
        stub_encoder(args.segments)
        if args.stub
        else Encoder.load(device=args.device, batch_size=args.batch_size, segments=args.segments)
    )
    load_s = time.perf_counter() - start
    warm_up = texts[:: max(1, len(texts) // 200)][:200]
    encoder._model.encode(warm_up, batch_size=encoder.batch_size, normalize_embeddings=True, convert_to_numpy=True)

    floor_times = []
    if args.no_cache:  # nothing stored; with --repeat, grading and the floor alternate and the fastest of each counts
        grade_times = []
        for _ in range(args.repeat):
            with PeakRSS() as memory:
                start, cpu = time.perf_counter(), time.process_time()
                grade(rubric, submissions, encoder)
                grade_times.append((time.perf_counter() - start, time.process_time() - cpu))
            if args.repeat > 1:
                floor_times.append(_floor(encoder, texts, args.raw_sample))
        grade_s, grade_cpu = min(t[0] for t in grade_times), min(t[1] for t in grade_times)
        first, second, memory_second, second_s, cache_bytes, same_marks = encoder, None, None, float("nan"), 0, None
    else:
        first, second, memory_second, second_s, cache_bytes, same_marks, grade_s, grade_cpu, memory = _with_cache(
            rubric, submissions, encoder
        )

    sample = texts if len(texts) <= args.raw_sample else random.Random(1).sample(texts, args.raw_sample)
    floor_times = floor_times or [_floor(encoder, texts, args.raw_sample)]
    raw_s, raw_cpu = min(t[0] for t in floor_times), min(t[1] for t in floor_times)
    rubric_s = rubric_cpu = 0.0
    if args.floor == "sentences":  # the rubric's texts, which grading encodes too, timed on their own
        start, cpu = time.perf_counter(), time.process_time()
        encoder._model.encode(
            list(dict.fromkeys(t for q in rubric.questions if isinstance(q, ShortQuestion) for t in _rubric_texts(q))),
            batch_size=encoder.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        rubric_s, rubric_cpu = time.perf_counter() - start, time.process_time() - cpu
    if args.stub:  # no model, no floor: the stub's own time is reported, not a ratio
        raw_s = raw_cpu = float("nan")
    return {
        "stub": args.stub,
        "size": size,
        "class": made_of,
        "segment_mode": encoder.segments.value,
        "floor": args.floor,
        "floor_texts": len(texts),
        "device": encoder.device,
        "batch_size": encoder.batch_size,
        "students": len(submissions.students),
        "questions": len(rubric.questions),
        "answers": answers,
        **profile,
        "first_encoded": first.encoded,
        "second_encoded": second.encoded if second is not None else None,
        "model_load_s": round(load_s, 2),
        "grade_s": round(grade_s, 2),
        "grade_cpu_s": round(grade_cpu, 2),
        "answers_per_s": round(answers / grade_s, 1),
        "raw_encode_s": round(raw_s, 2),
        "raw_encode_cpu_s": round(raw_cpu, 2),
        "raw_sampled": len(sample) < len(texts),
        "repeat": args.repeat if args.no_cache else 1,
        "ratio": round(grade_s / raw_s, 3),
        "cpu_ratio": round(grade_cpu / raw_cpu, 3),
        "rubric_encode_s": round(rubric_s, 2),
        "rubric_encode_cpu_s": round(rubric_cpu, 2),
        "ratio_with_rubric": round(grade_s / (raw_s + rubric_s), 3),
        "cpu_ratio_with_rubric": round(grade_cpu / (raw_cpu + rubric_cpu), 3),
        "rss_before_mib": round(memory.start / 2**20),
        "peak_rss_mib": round(memory.peak / 2**20),
        "second_peak_rss_mib": round(memory_second.peak / 2**20) if memory_second is not None else None,
        "second_s": round(second_s, 2),
        "cache_ratio": round(second_s / grade_s, 4),
        "cache_mib": round(cache_bytes / 2**20, 1),
        "same_marks_from_cache": same_marks,
        "load_average": round(os.getloadavg()[0], 2),
    }


# ---- the report ----------------------------------------------------------------------------------


def report(results: list[dict]) -> str:
    model = (
        "STUB model (no encoding: grading's own cost)"
        if results[0].get("stub")
        else f"model on {results[0]['device']}, batch {results[0]['batch_size']}"
    )
    lines = [
        (
            f"class: {results[0]['class']}; {model}; segments {results[0].get('segment_mode', 'separate')}; "
            f"floor: each distinct {results[0].get('floor', 'segments')[:-1]} encoded once "
            f"({', '.join(str(r.get('floor_texts', r['texts'])) for r in results)} texts)"
        ),
        "",
        (
            "| answers | students | short answers (dup / mean words) | segments/answer (distinct) "
            "| texts encoded | grading | answers/s | raw encode | ratio (CPU) | RSS before / peak "
            "| cache: 2nd run / 1st | cache file |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        raw = f"{r['raw_encode_s']:.0f} s" + (" (sampled)" if r["raw_sampled"] else "") if not r.get("stub") else "-"
        lines.append(
            f"| {r['answers']:,} | {r['students']:,} | {r['short_answers']:,} "
            f"({r['duplicate_answer_share']:.1%} / {r['mean_words']}) "
            f"| {r['segments_per_answer']} ({r['distinct_segment_share']:.1%}) | {r['texts']:,} | {r['grade_s']:.1f} s "
            f"| {r['answers_per_s']:.0f} | {raw} | **{r['ratio']:.2f}** ({r['cpu_ratio']:.2f}) "
            f"| {r['rss_before_mib']:,} / {r['peak_rss_mib']:,} MiB "
            f"| {r['second_s']:.2f} s / {r['grade_s']:.1f} s = **{r['cache_ratio']:.3f}** "
            f"| {r['cache_mib']} MiB |"
        )
    lines.append("")
    for small, large in zip(results, results[1:]):
        scale = large["answers"] / small["answers"]
        grow = (large["peak_rss_mib"] - large["rss_before_mib"]) / max(
            1, small["peak_rss_mib"] - small["rss_before_mib"]
        )
        lines.append(
            f"{small['answers']:,} -> {large['answers']:,} answers (x{scale:.1f}): "
            f"grading time x{large['grade_s'] / small['grade_s']:.1f}, "
            f"texts x{large['texts'] / small['texts']:.1f}, "
            f"peak RSS x{large['peak_rss_mib'] / small['peak_rss_mib']:.2f} "
            f"(above the loaded model and class: x{grow:.1f})"
        )
    for r in results:
        checks = []
        if r.get("floor") == "sentences" and not r.get("stub"):
            checks.append(
                f"ratio to sentences {r['ratio']:.2f} (CPU {r['cpu_ratio']:.2f}) "
                f"{'<=' if r['ratio'] <= TARGET_SENTENCE_RATIO else '>'} {TARGET_SENTENCE_RATIO}; "
                f"to sentences and the rubric's texts {r['ratio_with_rubric']:.2f} "
                f"(CPU {r['cpu_ratio_with_rubric']:.2f})"
            )
        elif r["answers"] >= 9000 and not r.get("stub"):
            checks.append(f"ratio {r['ratio']:.2f} {'<' if r['ratio'] < TARGET_RATIO else '>='} {TARGET_RATIO}")
        checks.append(
            f"peak {r['peak_rss_mib'] / 1024:.2f} GiB "
            f"{'<' if r['peak_rss_mib'] / 1024 < TARGET_PEAK_GIB else '>='} {TARGET_PEAK_GIB}"
        )
        if r["same_marks_from_cache"] is not None:
            checks.append(
                "marks from the cache identical" if r["same_marks_from_cache"] else "MARKS FROM THE CACHE DIFFER"
            )
        if r["second_encoded"]:
            checks.append(f"second run encoded {r['second_encoded']} texts")
        lines.append(f"{r['answers']:,} answers: " + "; ".join(checks) + f" (load average {r['load_average']})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="class sizes in answers, comma-separated")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 64 on CPU, from free memory on CUDA")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--raw-sample", type=int, default=25_000, help="time the raw floor on at most this many texts")
    parser.add_argument("--datasets", default=str(DATASETS), help="folder of the shared corpora")
    parser.add_argument("--out", default=str(ROOT / "bench" / "out" / "scale.json"), help="results as JSON")
    parser.add_argument("--stub", action="store_true", help="no model: grading's own time and memory (see above)")
    parser.add_argument(
        "--segments",
        default=DEFAULT_SEGMENT_MODE.value,
        choices=("pooled", "separate"),
        help="how segments become vectors",
    )
    parser.add_argument(
        "--floor", default="segments", choices=("segments", "sentences"), help="what the raw encode floor encodes"
    )
    parser.add_argument("--no-cache", action="store_true", help="one run, cache off")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="with --no-cache: grade and time the floor N times, alternately; the fastest of each counts",
    )
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: measure one size, print JSON
    args = parser.parse_args()

    if args.one is not None:
        print("RESULT " + json.dumps(measure(args.one, args)), flush=True)
        return
    results = []
    for size in (int(s) for s in args.sizes.split(",") if s.strip()):
        command = (
            [
                sys.executable,
                __file__,
                "--one",
                str(size),
                "--device",
                args.device,
                "--seed",
                str(args.seed),
                "--raw-sample",
                str(args.raw_sample),
                "--datasets",
                args.datasets,
                "--segments",
                args.segments,
                "--floor",
                args.floor,
                "--repeat",
                str(args.repeat),
            ]
            + (["--stub"] if args.stub else [])
            + (["--no-cache"] if args.no_cache else [])
        )
        if args.batch_size is not None:
            command += ["--batch-size", str(args.batch_size)]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        line = next((l for l in done.stdout.splitlines() if l.startswith("RESULT ")), None)
        if line is None:
            print(f"size {size}: failed (exit {done.returncode})\n{done.stderr[-3000:]}", flush=True)
            continue
        results.append(json.loads(line.removeprefix("RESULT ")))
        print(f"size {size}: done in {time.perf_counter() - started:.0f} s: {line.removeprefix('RESULT ')}", flush=True)
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1))
    if results:
        print(report(results))


if __name__ == "__main__":
    main()
