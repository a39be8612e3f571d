from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from grader.calibration.agreement import METRICS, _quadratic_kappa, agreement, bootstrap


def test_perfect_agreement():
    a = agreement([0, 0.5, 1, 1], [0, 0.5, 1, 1], step=0.5)
    assert (a.mae, a.rmse, a.qwk, a.pearson, a.exact, a.within_step) == (0, 0, 1, pytest.approx(1), 1, 1)


def test_hand_computed_case():
    # machine 0, 1, 1 vs human 0, 0.5, 1 on steps of 0.5 -> categories (0,2,2) vs (0,1,2)
    a = agreement([0, 1, 1], [0, 0.5, 1], step=0.5)
    assert a.mae == pytest.approx(0.5 / 3)
    assert a.rmse == pytest.approx(math.sqrt(0.25 / 3))
    assert a.exact == pytest.approx(2 / 3) and a.within_step == 1
    # QWK by hand: observed weighted disagreement 1/4 * 1 / 3 ; expected from marginals
    observed = (1 / 3) * (1 / 4)
    h = [1 / 3, 1 / 3, 1 / 3]
    m = [1 / 3, 0, 2 / 3]
    expected = sum(h[i] * m[j] * (i - j) ** 2 / 4 for i in range(3) for j in range(3))
    assert a.qwk == pytest.approx(1 - observed / expected)


def test_constant_marks_give_nan_correlation():
    a = agreement([1, 1], [0, 1], step=1)
    assert math.isnan(a.pearson) and math.isnan(a.spearman)


def test_spearman_by_hand():
    # ranks (1,2,3,4) vs (1,3,2,4): d^2 sums to 2, rho = 1 - 6*2 / (4*(16-1)) = 0.8
    assert agreement([1, 2, 3, 4], [1, 3, 2, 4], step=1).spearman == pytest.approx(0.8)
    # ties take average ranks: machine (1.5,1.5,3) vs human (1,2,3) -> Pearson of the ranks
    assert agreement([0, 0, 1], [0, 0.5, 1], step=0.5).spearman == pytest.approx(
        np.corrcoef([1.5, 1.5, 3], [1, 2, 3])[0, 1]
    )


def test_existing_positional_construction_still_works():
    from grader.calibration.agreement import Agreement

    a = Agreement(3, 0.1, 0.2, 0.5, 0.9, 0.6, 1.0)
    assert math.isnan(a.spearman) and a.within_step == 1.0


PAIRS = [(0, 0), (0.5, 0), (1, 1), (1, 0.5), (0.5, 0.5), (0, 0.5), (1, 1), (0.5, 1), (0, 0), (1, 1)]


def _marks(copies):
    machine, human = zip(*(PAIRS * copies))
    return list(machine), list(human)


def test_bootstrap_intervals_contain_the_estimate_and_narrow_with_more_data():
    small, large = _marks(2), _marks(20)
    point = agreement(*large, step=0.5)
    wide, narrow = bootstrap(*small, step=0.5), bootstrap(*large, step=0.5)
    assert set(narrow) == set(METRICS)
    for name in METRICS:
        low, high = narrow[name]
        assert low <= getattr(point, name) <= high, name
    for name in ("mae", "rmse", "qwk", "pearson", "spearman", "exact"):
        assert narrow[name][1] - narrow[name][0] < wide[name][1] - wide[name][0], name
    # a quick sanity bound: the MAE of 40 copies of PAIRS is 0.2 and its 95% interval is well inside [0.1, 0.3]
    assert 0.1 < narrow["mae"][0] < 0.2 < narrow["mae"][1] < 0.3


def test_bootstrap_is_seeded_and_level_widens():
    machine, human = _marks(3)
    assert bootstrap(machine, human, 0.5, n_boot=200) == bootstrap(machine, human, 0.5, n_boot=200)
    ninety = bootstrap(machine, human, 0.5, n_boot=400, level=0.9)["mae"]
    ninety_nine = bootstrap(machine, human, 0.5, n_boot=400, level=0.99)["mae"]
    assert ninety_nine[0] <= ninety[0] and ninety[1] <= ninety_nine[1]


def test_bootstrap_skips_undefined_replicates():
    # constant machine marks: r and kappa are undefined in every resample
    ci = bootstrap([1, 1, 1], [0, 1, 1], step=1, n_boot=50)
    assert all(math.isnan(v) for v in ci["pearson"]) and ci["mae"][0] >= 0
    # one pair: no correlation at all, but an error
    ci = bootstrap([1], [0.5], step=0.5, n_boot=10)
    assert math.isnan(ci["spearman"][0]) and ci["mae"] == (0.5, 0.5)
    # 3 pairs, one different: some resamples are constant and are skipped, the rest give r = 1
    ci = bootstrap([0, 1, 1], [0, 1, 1], step=1, n_boot=200)
    assert ci["pearson"] == pytest.approx((1.0, 1.0)) and ci["qwk"] == pytest.approx((1.0, 1.0))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
def test_batched_kappa_equals_scikit_learn_replicate_by_replicate():
    rng = np.random.default_rng(1)
    human = rng.integers(0, 5, size=(100, 12))
    machine = np.clip(human + rng.integers(-2, 3, size=human.shape), 0, 4)
    machine[0] = human[0] = 2  # one constant replicate: undefined, NaN in both
    expected = [cohen_kappa_score(h, m, weights="quadratic", labels=np.arange(5)) for h, m in zip(human, machine)]
    assert np.allclose(_quadratic_kappa(human, machine), expected, equal_nan=True)
