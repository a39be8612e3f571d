"""grader.scoring.engine: the sample graded on a local Ray cluster gives the local engine's marks and flags."""

from __future__ import annotations

import importlib.util
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

import pytest

from grader.exam.rubric import load_rubric
from grader.exam.submissions import read_submissions
from grader.scoring.checker import describe
from grader.scoring.concept_check import DEFAULT_DIR, load
from grader.scoring.engine import EncoderSpec, Engine, grade_on_ray, same_marks, with_class_collusion
from grader.scoring.flags import Flag, possible_collusion
from grader.scoring.grade import grade
from tests.conftest import RUBRIC, SAMPLE


def test_class_collusion_replaces_what_a_batch_saw(sample, rubric):
    """Flags found within a batch are dropped; pairs across the whole class are put back in grade()'s place."""
    fresh = with_class_collusion(sample.grades, rubric, sample.submissions)
    assert same_marks(sample.grades, fresh) == []
    # a batch that saw a "copy" the class as a whole does not have, and lost one it does have
    first = sample.grades.items[20]
    planted = replace(first, flags=(*first.flags, possible_collusion("nobody", 0.99)))
    items = list(sample.grades.items)
    items[20] = planted
    cleared = {i for i, g in enumerate(items) if any(f.code == "possible-collusion" for f in g.flags)} - {20}
    for i in cleared:
        items[i] = replace(items[i], flags=tuple(f for f in items[i].flags if f.code != "possible-collusion"))
    rebuilt = with_class_collusion(replace(sample.grades, items=tuple(items)), rubric, sample.submissions)
    assert [g.flags for g in rebuilt.items] == [g.flags for g in sample.grades.items]


def test_an_engine_is_one_of_the_enum():
    assert [e.value for e in Engine] == ["local", "ray"]
    with pytest.raises(ValueError, match="'spark' is not a valid Engine"):
        Engine("spark")


def _grade_on_a_local_ray_cluster(cache, threshold):
    """The bundled sample on a local Ray cluster, in a child process: Ray's core worker keeps threads
    and descriptors in its process after `ray.shutdown()`, which must not reach the tests after this one."""
    import ray

    rubric = load_rubric(RUBRIC)
    submissions = read_submissions(SAMPLE, rubric.question_ids)
    shipped = load(DEFAULT_DIR)
    check = replace(shipped, opposition=replace(shipped.opposition, threshold=threshold))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        done = []
        grades = grade_on_ray(
            rubric,
            submissions,
            EncoderSpec(device="cpu", cache=cache),
            progress=lambda n, total: done.append((n, total)),
            checker=check,
        )
    finally:
        ray.shutdown()
    return grades, done


def test_ray_gives_the_local_marks_with_the_same_check(sample, rubric, encoder, tmp_path):
    if importlib.util.find_spec("ray") is None:  # found, not imported: Ray runs in the child alone
        pytest.skip("ray is optional: pip install 'ray[data]'")
    threshold = 0.3  # the opposition's threshold low enough to take points on this sample
    shipped = load(DEFAULT_DIR)
    check = replace(shipped, opposition=replace(shipped.opposition, threshold=threshold))
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
        grades, done = child.submit(_grade_on_a_local_ray_cluster, tmp_path / "cache.sqlite", threshold).result()
    assert grades.model == sample.grades.model
    assert grades.students == sample.grades.students
    assert done[-1] == (42, 42) and len(done) >= 2  # more than one batch: the class really was split
    local = grade(rubric, sample.submissions, encoder, checker=check)
    assert same_marks(local, grades, tolerance=1e-4) == []
    assert grades.checker == local.checker == describe(check)
    assert same_marks(sample.grades, local) != []  # the check took points: the workers used it too
    collusion = [g for g in grades.items if any(f.code == "possible-collusion" for f in g.flags)]
    assert [g.flags for g in collusion] == [
        g.flags for g in sample.grades.items if any(f.code == "possible-collusion" for f in g.flags)
    ]
    assert isinstance(grades.items[0].flags, tuple) and all(isinstance(f, Flag) for g in grades.items for f in g.flags)
