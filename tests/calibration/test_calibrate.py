"""The calibrator on the real development set (graded once per session with the real model)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import yaml

from grader.calibration import calibrate
from grader.calibration.calibrate import METHODS, Calibrator, examples
from grader.errors import GraderError, InputError
from grader.exam.rubric import ShortQuestion, parse_rubric
from grader.scoring.match import round_to_step
from tests.conftest import RUBRIC


def _first_students(sample, n: int) -> dict:
    keep = set(sample.grades.students[:n])
    return {k: v for k, v in sample.human.items() if k[0] in keep}


def test_fit_compares_every_method_and_keeps_the_best_beyond_noise(sample, rubric):
    fitted = Calibrator().fit(sample.grades, rubric, sample.human, sample.vectors)
    assert set(fitted.cv_mae_) == set(METHODS)
    best = min(fitted.cv_mae_, key=fitted.cv_mae_.get)
    assert fitted.method_ in (best, "default")
    assert fitted.cv_mae_[fitted.method_] <= fitted.cv_mae_["default"]
    assert fitted.rubric_fingerprint_ == rubric.fingerprint and fitted.model_ == "all-MiniLM-L6-v2"
    without = Calibrator().fit(sample.grades, rubric, sample.human)  # no answer vectors: exemplar cannot compete
    assert set(without.cv_mae_) == set(METHODS) - {"exemplar"}


def test_a_method_no_better_than_the_default_beyond_noise_is_not_chosen(sample, rubric):
    """Marks that are the default marks but for a handful moved one step: whatever wins the noisy
    cross-validation by a hair, the default is kept; marks one step above the default everywhere are
    learned."""
    default = {(g.student_id, g.question_id): g.mark for g in sample.grades.items}
    found = examples(sample.grades, rubric, default)
    nudged = dict(default)
    for e in found[::40]:
        nudged[e.key] = min(e.question.marks, e.human + e.question.step)
    assert Calibrator().fit(sample.grades, rubric, nudged, sample.vectors).method_ == "default"
    lifted = {e.key: min(e.question.marks, e.human + e.question.step) for e in found}
    assert Calibrator().fit(sample.grades, rubric, lifted, sample.vectors).method_ != "default"


@pytest.mark.parametrize("method", METHODS)
def test_predict_keeps_marks_on_steps_and_leaves_mcqs_and_blanks_alone(sample, rubric, method):
    fitted = Calibrator(method=method).fit(sample.grades, rubric, sample.human, sample.vectors)
    assert fitted.method_ == method
    predicted = fitted.predict(sample.grades, rubric, sample.vectors)
    for before, after in zip(sample.grades.items, predicted.items):
        question = rubric.question(before.question_id)
        if not isinstance(question, ShortQuestion) or not before.points:
            assert after == before
            continue
        assert 0 <= after.mark <= question.marks
        assert after.mark / question.step == pytest.approx(round(after.mark / question.step))


def test_works_from_ten_marked_answers_per_question(sample, rubric):
    few = _first_students(sample, 12)
    fitted = Calibrator().fit(sample.grades, rubric, few)
    assert all(n >= 10 for n in fitted.counts_.values())
    assert len(examples(sample.grades, rubric, few)) == sum(fitted.counts_.values())
    fitted.predict(sample.grades, rubric)


def test_default_method_changes_nothing(sample, rubric):
    predicted = Calibrator(method="default").fit(sample.grades, rubric, sample.human).predict(sample.grades, rubric)
    assert [g.mark for g in predicted.items] == [g.mark for g in sample.grades.items]
    assert not any(g.calibrated for g in predicted.items)


@pytest.mark.parametrize("method, mapped", [("isotonic", True), ("exemplar", True), ("thresholds", False)])
def test_a_grade_says_whether_a_fitted_map_made_its_mark(sample, rubric, method, mapped):
    """Triage reads this: a mapped mark is not the sum of its points' credits; a refitted curve's is."""
    predicted = (
        Calibrator(method=method)
        .fit(sample.grades, rubric, sample.human, sample.vectors)
        .predict(sample.grades, rubric, sample.vectors)
    )
    shorts = [g for g in predicted.items if g.points]
    assert shorts and all(g.calibrated == mapped for g in shorts)
    assert not any(g.calibrated for g in predicted.items if not g.points)  # MCQs and blanks


@pytest.mark.parametrize("method", ["auto", "exemplar", "thresholds"])
def test_save_load_round_trip_predicts_the_same(sample, rubric, tmp_path, method):
    fitted = Calibrator(method=method).fit(sample.grades, rubric, sample.human, sample.vectors)
    path = tmp_path / "exam.calibration"
    calibrate.save(fitted, path)
    data = json.loads(path.read_text())
    assert data["format"] == "grader-calibration" and data["version"] == 3
    assert data["method"] == fitted.method_ and data["model"] == "all-MiniLM-L6-v2"
    loaded = calibrate.load(path)
    assert loaded.method_ == fitted.method_
    assert (
        loaded.predict(sample.grades, rubric, sample.vectors).items
        == fitted.predict(sample.grades, rubric, sample.vectors).items
    )


def test_the_exemplar_state_holds_the_marked_answers_and_names_them_as_evidence(sample, rubric, tmp_path):
    half = _first_students(sample, 21)
    fitted = Calibrator(method="exemplar").fit(sample.grades, rubric, half, sample.vectors)
    marked = fitted.params_["marked"]
    assert {q: len(m["students"]) for q, m in marked.items()} == fitted.counts_
    predicted = fitted.predict(sample.grades, rubric, sample.vectors)
    leaned = [g for g in predicted.items if g.neighbours]
    assert leaned and all(len(g.neighbours) <= 3 for g in leaned)
    for g in leaned:
        assert g.student_id not in [n.student_id for n in g.neighbours]  # never its own neighbour
        for n in g.neighbours:
            assert half[(n.student_id, g.question_id)] == n.mark
        assert [n.similarity for n in g.neighbours] == sorted((n.similarity for n in g.neighbours), reverse=True)
    summary = fitted.summary()
    assert "vectors_f32_base64" not in json.dumps(summary) and summary["params"]["marked"] == fitted.counts_
    with pytest.raises(GraderError, match="needs the answers' vectors"):
        fitted.predict(sample.grades, rubric)


def test_exemplar_features_are_leave_one_out_while_fitting(sample, rubric):
    """A marked answer's features come from the other marked answers: were it its own neighbour, every
    training row would see its own mark at similarity 1 and the fit would trust neighbours blindly."""
    from grader.calibration.calibrate import ExemplarRidge

    found = examples(sample.grades, rubric, sample.human, sample.vectors)
    model = ExemplarRidge().fit(found)
    x = model._features(found)
    top = list(model.features).index("top_similarity")
    duplicate_free = [
        i
        for i, e in enumerate(found)
        if sum(np.allclose(e.vector, f.vector) for f in found if f.question.id == e.question.id) == 1
    ]
    assert duplicate_free and (x[duplicate_free, top] < 0.999).all()


def test_the_exemplar_model_corrects_towards_the_marks_of_near_marked_answers(sample, rubric):
    """Where the TA marked a question more generously than the pooled model predicts, unmarked answers
    close to those marked ones move up; the stored residuals are what the fit left unexplained."""
    from grader.calibration.calibrate import ExemplarRidge

    first = _first_students(sample, 21)
    found = examples(sample.grades, rubric, first, sample.vectors)
    plain = ExemplarRidge().fit(found)
    qid = "I4"
    generous = {k: (min(v + 0.5, rubric.question(qid).marks) if k[1] == qid else v) for k, v in first.items()}
    lifted = ExemplarRidge().fit(examples(sample.grades, rubric, generous, sample.vectors))
    assert lifted.residuals_[qid].mean() > plain.residuals_[qid].mean()
    others = [
        e
        for e in examples(sample.grades, rubric, sample.human, sample.vectors)
        if e.key not in first and e.question.id == qid
    ]
    assert others and (lifted.raw_marks(others) - plain.raw_marks(others)).mean() > 0.05
    restored = ExemplarRidge.from_params(json.loads(json.dumps(lifted.to_params())))
    assert np.allclose(restored.raw_marks(others), lifted.raw_marks(others))
    older = lifted.to_params()
    del older["residuals"]  # written before the correction existed: graded without it
    assert not ExemplarRidge.from_params(older).residuals_[qid].any()


def test_calibrating_on_half_the_sample_beats_no_calibration_on_the_other_half(sample, rubric):
    """The README's figure: fitted on the marks of 21 students, graded on the other 21, and the other way
    round (short answers, QWK on the pooled held-out marks)."""
    from grader.calibration.agreement import agreement

    first = _first_students(sample, 21)
    second = {k: v for k, v in sample.human.items() if k not in first}
    predicted = {}
    for fit_on in (first, second):
        fitted = Calibrator().fit(sample.grades, rubric, fit_on, sample.vectors)
        predicted |= {
            (g.student_id, g.question_id): g.mark
            for g in fitted.predict(sample.grades, rubric, sample.vectors).items
            if (g.student_id, g.question_id) not in fit_on
        }
    shorts = examples(sample.grades, rubric, sample.human)
    calibrated = agreement([predicted[e.key] for e in shorts], [e.human for e in shorts], 0.25)
    default = agreement([e.grade.mark for e in shorts], [e.human for e in shorts], 0.25)
    assert calibrated.qwk > default.qwk + 0.02
    assert calibrated.mae < default.mae


def test_refuses_another_rubric_version_or_model(sample, rubric):
    fitted = Calibrator(method="isotonic").fit(sample.grades, rubric, sample.human)
    fitted.check(rubric, "all-MiniLM-L6-v2")
    data = yaml.safe_load(RUBRIC.read_text())
    edited = copy.deepcopy(data)
    edited["questions"][12]["points"][1]["text"] += " Also gradients."
    with pytest.raises(GraderError, match="another version of the rubric"):
        fitted.check(parse_rubric(edited, "x"), "all-MiniLM-L6-v2")
    with pytest.raises(GraderError, match="fitted with model 'all-MiniLM-L6-v2', but grading uses 'other-model'"):
        fitted.check(rubric, "other-model")


def test_marks_graded_with_other_segments_are_refused(sample, rubric):
    from dataclasses import replace

    fitted = Calibrator(method="pooled").fit(sample.grades, rubric, sample.human)
    assert fitted.to_dict()["segments"] == "separate"
    with pytest.raises(GraderError, match="fitted on marks with separate segments.*--segments separate"):
        fitted.predict(replace(sample.grades, segments="pooled"), rubric)


def test_bad_calibration_files_are_clear_errors(tmp_path):
    path = tmp_path / "c.json"
    with pytest.raises(InputError, match="no such calibration file"):
        calibrate.load(path)
    path.write_text("{not json")
    with pytest.raises(InputError, match="cannot read the calibration"):
        calibrate.load(path)
    path.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(InputError, match="not a grader calibration file"):
        calibrate.load(path)
    path.write_text(json.dumps({"format": "grader-calibration", "version": 99}))
    with pytest.raises(InputError, match="format version 99"):
        calibrate.load(path)


def test_unknown_method_and_no_marks(sample, rubric):
    with pytest.raises(GraderError, match="unknown calibration method 'magic'"):
        Calibrator(method="magic").fit(sample.grades, rubric, sample.human)
    with pytest.raises(GraderError, match="found 0"):
        Calibrator().fit(sample.grades, rubric, {("nobody", "I3"): 1.0})
    with pytest.raises(GraderError, match="needs the answers' vectors"):
        Calibrator(method="exemplar").fit(sample.grades, rubric, sample.human)


@pytest.mark.parametrize("method", ["pooled", "thresholds"])
def test_flags_follow_the_calibrated_mark_and_the_others_are_kept(sample, rubric, method):
    from grader.scoring.flags import MARK_DEPENDENT, borderline

    predicted = Calibrator(method=method).fit(sample.grades, rubric, sample.human).predict(sample.grades, rubric)
    for before, after in zip(sample.grades.items, predicted.items):
        question = rubric.question(before.question_id)
        if not isinstance(question, ShortQuestion) or not before.points:
            continue
        kept = lambda g: [f for f in g.flags if f.code not in MARK_DEPENDENT]  # noqa: E731
        assert kept(after) == kept(before), (before.student_id, before.question_id)
        near = borderline(after.raw_mark, question.step)
        assert (near in after.flags) == (near is not None)
        assert [f.code for f in after.flags].count("borderline") <= 1


def test_the_criterion_chooses_by_its_own_error(sample, rubric):
    by_rmse = Calibrator(criterion="rmse").fit(sample.grades, rubric, sample.human, sample.vectors)
    assert set(by_rmse.cv_rmse_) == set(METHODS)
    assert by_rmse.method_ in (min(by_rmse.cv_rmse_, key=by_rmse.cv_rmse_.get), "default")
    for m in METHODS:  # a root mean square is never below the mean of the same errors
        assert by_rmse.cv_rmse_[m] >= by_rmse.cv_mae_[m] - 1e-12
    assert by_rmse.to_dict()["settings"]["criterion"] == "rmse"
    by_mae = Calibrator(criterion="mae").fit(sample.grades, rubric, sample.human, sample.vectors)
    assert by_mae.method_ in (min(by_mae.cv_mae_, key=by_mae.cv_mae_.get), "default")
    with pytest.raises(GraderError, match="unknown calibration criterion 'r2'"):
        Calibrator(criterion="r2").fit(sample.grades, rubric, sample.human)


def test_a_version_1_file_written_before_the_criterion_still_loads(sample, rubric, tmp_path):
    fitted = Calibrator(method="pooled").fit(sample.grades, rubric, sample.human)
    data = fitted.to_dict()
    del data["cv_rmse"], data["settings"]["criterion"]
    data["version"] = 1
    path = tmp_path / "old.calibration"
    path.write_text(json.dumps(data))
    loaded = calibrate.load(path)
    assert loaded.criterion == "mae" and loaded.cv_rmse_ == {}
    assert loaded.predict(sample.grades, rubric).items == fitted.predict(sample.grades, rubric).items


@pytest.mark.parametrize("method", ["pooled", "exemplar"])
def test_the_concept_doubt_is_weighed_from_the_marks_and_neutral_where_missing(sample, rubric, method):
    """Answers alike in everything the rubric reads but the concept check's doubt, which a TA's marks
    follow: the calibration learns to mark the doubted ones down; an answer graded without the check
    (doubt None) is predicted between the two, from the training mean, not as either kind."""
    from dataclasses import replace

    from grader.calibration.calibrate import MODELS, Example
    from grader.calibration.methods import Method

    marked = examples(sample.grades, rubric, sample.human, sample.vectors)
    base = next(e for e in marked if 0 < e.grade.raw_mark < e.question.marks)
    found = []
    for i in range(40):
        doubted = i % 2 == 1
        grade = replace(base.grade, student_id=f"s{i}", concept_doubt=0.95 if doubted else 0.2)
        found.append(Example(base.question, grade, 0.0 if doubted else base.question.marks, base.vector, base.lexical))
    model = MODELS[Method(method)]().fit(found)
    unsure = replace(found[0], grade=replace(found[0].grade, student_id="s99", concept_doubt=None))
    trusted, doubted, unknown = model.raw_marks([found[0], found[1], unsure])
    assert trusted > unknown > doubted


@pytest.mark.parametrize("method", ["pooled", "exemplar"])
def test_a_model_fitted_before_the_concept_doubt_is_refused_in_one_line(sample, rubric, tmp_path, method):
    """Version 2 files fitted these models on features without `concept_doubt`: reading their weights
    against today's features would shift every column, so they are refused, saying what to do."""
    data = Calibrator(method=method).fit(sample.grades, rubric, sample.human, sample.vectors).to_dict()
    data["version"] = 2
    if method == "pooled":
        del data["params"]["features"], data["params"]["fill"]
    else:
        data["params"]["features"].remove("concept_doubt")
    path = tmp_path / "old.calibration"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"earlier grader on other features: re-run `grader calibrate`") as refused:
        calibrate.load(path)
    assert "\n" not in str(refused.value) and "old.calibration" in str(refused.value)


def test_the_similarity_method_reads_the_plain_cosine(sample, rubric):
    """Where the TA's marks follow each point's plain similarity, not the score discounted for echoing
    the question, the similarity method fits them better than isotonic on the discounted score."""
    found = examples(sample.grades, rubric, sample.human)
    ranked = {}
    for e in found:
        share = sum(p.marks * p.similarity for p in e.grade.points) / e.question.marks
        ranked[(e.grade.student_id, e.question.id)] = round_to_step(
            e.question.marks * min(1.0, max(0.0, (share - 0.3) / 0.4)), e.question.step, e.question.marks
        )
    fitted = Calibrator().fit(sample.grades, rubric, ranked)
    assert fitted.method_ == "similarity"
    assert fitted.cv_mae_["similarity"] < fitted.cv_mae_["isotonic"]
