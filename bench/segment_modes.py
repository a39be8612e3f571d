"""Segments pooled from one pass over each sentence, or each encoded alone: accuracy side by side.

    .venv/bin/python bench/segment_modes.py [--corpora mohler,saf,beetle,sci,sample] [--saf-per-question N]
                                            [--semeval-sample N] [--boot 1000]

Each corpus is graded both ways (`grader.embedding.spans.SegmentMode`) with the same rubric and the same
model. Marks are compared with the human marks uncalibrated (the grader's raw marks) and calibrated
on unseen answers (`bench/corpora.py`'s protocol: each question's answers in 2 folds, the Calibrator
fitted on one and scoring the other). The corpora come from `bench/corpora.py` (Mohler dev, SAF train,
SemEval-2013 train Beetle and SciEntsBank; SAF as shares of each question's maximum); "sample" is the
bundled dl-midsem class against our marks (short answers; calibrated on half the students, 2 folds).

For each metric: both values with 95 % percentile bootstrap intervals over answers, and the paired
difference pooled - separate with its interval (the same resamples for both ways). Pooled is "not
worse beyond noise" when that interval reaches the side where pooled is at least as good (r: >= 0;
RMSE, MAE: <= 0). Seeded: a re-run prints the same figures. The script reports and always exits 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from sklearn.model_selection import KFold  # noqa: E402

from grader.authoring.reference import MAX_POINTS  # noqa: E402
from grader.calibration.calibrate import Calibrator  # noqa: E402
from grader.calibration.exemplars import answer_vectors  # noqa: E402
from grader.embedding.encoder import Encoder  # noqa: E402
from grader.embedding.spans import SegmentMode  # noqa: E402
from grader.exam.files import read_human_marks  # noqa: E402
from grader.exam.rubric import ShortQuestion, load_rubric  # noqa: E402
from grader.exam.submissions import read_submissions  # noqa: E402
from grader.scoring.grade import grade  # noqa: E402

MODES = (SegmentMode.SEPARATE, SegmentMode.POOLED)
SEED = 0


def _corpora_module():
    spec = importlib.util.spec_from_file_location("bench_corpora", ROOT / "bench" / "corpora.py")
    module = sys.modules["bench_corpora"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def metric_values(predicted: np.ndarray, human: np.ndarray) -> np.ndarray:
    """(r, RMSE, MAE) per row: `predicted` and `human` are (replicates, answers)."""
    p, h = predicted - predicted.mean(axis=1, keepdims=True), human - human.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (p * h).sum(axis=1) / np.sqrt((p * p).sum(axis=1) * (h * h).sum(axis=1))
    rmse = np.sqrt(((predicted - human) ** 2).mean(axis=1))
    mae = np.abs(predicted - human).mean(axis=1)
    return np.stack([r, rmse, mae], axis=1)


def compare(separate: np.ndarray, pooled: np.ndarray, human: np.ndarray, boot: int) -> list[str]:
    """Table cells per metric: separate [CI], pooled [CI], pooled - separate [CI], verdict."""
    rows = np.random.default_rng(SEED).integers(0, len(human), size=(boot, len(human)))
    point_s = metric_values(separate[None], human[None])[0]
    point_p = metric_values(pooled[None], human[None])[0]
    rep_s, rep_p = metric_values(separate[rows], human[rows]), metric_values(pooled[rows], human[rows])
    diff = rep_p - rep_s
    cells = []
    for k, (name, higher_better) in enumerate((("r", True), ("RMSE", False), ("MAE", False))):
        lo_s, hi_s = np.nanpercentile(rep_s[:, k], [2.5, 97.5])
        lo_p, hi_p = np.nanpercentile(rep_p[:, k], [2.5, 97.5])
        lo_d, hi_d = np.nanpercentile(diff[:, k], [2.5, 97.5])
        d = point_p[k] - point_s[k]
        if (higher_better and lo_d > 0) or (not higher_better and hi_d < 0):
            verdict = "pooled better"
        elif (higher_better and hi_d < 0) or (not higher_better and lo_d > 0):
            verdict = "**pooled worse**"
        else:
            verdict = "within noise"
        cells.append(
            f"{name} | {point_s[k]:.3f} [{lo_s:.3f}, {hi_s:.3f}] | {point_p[k]:.3f} [{lo_p:.3f}, {hi_p:.3f}] "
            f"| {d:+.3f} [{lo_d:+.3f}, {hi_d:+.3f}] | {verdict}"
        )
    return cells


def corpus_marks(
    corpora, corpus, encoders: dict, shared
) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Human marks (shares of the max where the corpus says so) and, per mode, raw and calibrated marks."""
    fold = corpora.unseen_answer_folds(corpus)
    human = np.array([a.human for a in corpus.answers])
    top = np.ones(len(human))
    if corpus.normalise:
        maxima = {r.question_id: r.max_mark for r in corpus.references}
        top = np.array([maxima[a.question_id] for a in corpus.answers])
    marks = {}
    vectors = None
    for mode, encoder in encoders.items():
        graded = corpora.grade_corpus(corpus, encoder, MAX_POINTS, corpora.TOPIC_WEIGHT)
        if vectors is None:  # whole-answer vectors: texts encoded alone, the same both ways
            vectors = corpora.corpus_vectors(corpus, graded, shared)
        item = {(g.student_id, g.question_id): g for g in graded.grades.items}
        raw = np.array([item[key].raw_mark for key in graded.keys])
        calibrated, _ = corpora.calibrated(corpus, graded, fold, vectors)
        marks[mode] = (raw / top, calibrated / top)
    return human / top, marks


def sample_marks(encoders: dict, shared) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The bundled class against our marks: short answers, raw and calibrated on the other half of the students."""
    rubric = load_rubric(ROOT / "rubrics" / "dl-midsem.yaml")
    submissions = read_submissions(ROOT / "submissions" / "dl-midsem-sample.csv", rubric.question_ids)
    human = read_human_marks(ROOT / "submissions" / "dl-midsem-sample-marks.csv", set(rubric.question_ids))
    shorts = {q.id for q in rubric.questions if isinstance(q, ShortQuestion)}
    vectors = answer_vectors(rubric, submissions.answers, shared)
    students = list(submissions.students)
    folds = list(KFold(2, shuffle=True, random_state=SEED).split(students))
    marks, keys = {}, None
    for mode, encoder in encoders.items():
        grades = grade(rubric, submissions, encoder)
        items = [g for g in grades.items if g.question_id in shorts and (g.student_id, g.question_id) in human]
        keys = [(g.student_id, g.question_id) for g in items]
        calibrated = {}
        for train, test in folds:
            fitted = {students[i] for i in train}
            calibrator = Calibrator().fit(grades, rubric, {k: v for k, v in human.items() if k[0] in fitted}, vectors)
            after = calibrator.predict(grades, rubric, vectors)
            calibrated |= {(g.student_id, g.question_id): g.raw_mark for g in after.items if g.student_id not in fitted}
        marks[mode] = (np.array([g.raw_mark for g in items]), np.array([calibrated[k] for k in keys]))
    return np.array([human[k] for k in keys]), marks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", default="mohler,saf,beetle,sci,sample")
    parser.add_argument("--saf-per-question", type=int, default=0, help="at most N SAF answers per question (0: all)")
    parser.add_argument("--semeval-sample", type=int, default=0, help="answers per SemEval corpus (0: all)")
    parser.add_argument("--boot", type=int, default=1000)
    args = parser.parse_args()

    corpora = _corpora_module()
    model = Encoder.load(device="cpu")
    encoders = {mode: model.with_segments(mode) for mode in MODES}
    shared = corpora.MemoryEncoder(model)
    builders = {
        "mohler": corpora.mohler,
        "saf": lambda: corpora.saf(args.saf_per_question),
        "beetle": lambda: corpora.semeval("beetle", args.semeval_sample),
        "sci": lambda: corpora.semeval("sciEntsBank", args.semeval_sample),
    }
    print("| corpus | marks | metric | separate [95 % CI] | pooled [95 % CI] | pooled - separate [95 % CI] | verdict |")
    print("|---|---|---|---|---|---|---|")
    for name in args.corpora.split(","):
        start = time.perf_counter()
        if name == "sample":
            label = "dl-midsem sample (short answers)"
            human, marks = sample_marks(encoders, shared)
        else:
            corpus = builders[name]()
            label = f"{corpus.name} ({len(corpus.answers)} answers)"
            human, marks = corpus_marks(corpora, corpus, encoders, shared)
        for k, kind in enumerate(("uncalibrated", "calibrated, unseen answers")):
            for cells in compare(marks[SegmentMode.SEPARATE][k], marks[SegmentMode.POOLED][k], human, args.boot):
                print(f"| {label} | {kind} | {cells} |", flush=True)
        print(f"<!-- {name}: {time.perf_counter() - start:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
