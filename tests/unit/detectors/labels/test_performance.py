"""detectors.labels.performance: window metrics against scipy and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import mannwhitneyu

from detectors.labels.performance import SCORE_BINS, ErrorDetectors, PerformanceWindow, binned_auc

Pair = tuple[float, int]
pairs = st.lists(st.tuples(st.floats(0, 1), st.integers(0, 1)), max_size=60)


def fold(data: list[Pair], threshold: float = 0.5) -> PerformanceWindow:
    w = PerformanceWindow.zero()
    for score, label in data:
        w.update_classification(score, label, threshold)
    return w


def test_classification_metrics_match_hand_computed_values() -> None:
    data = [(0.9, 1), (0.7, 0), (0.4, 1), (0.2, 0), (0.6, 1), (0.1, 0)]
    m = fold(data).metrics()
    # predicted positive: 0.9 (tp), 0.7 (fp), 0.6 (tp); negative: 0.4 (fn), 0.2 (tn), 0.1 (tn)
    assert (m["accuracy"], m["error_rate"], m["positive_rate"]) == (4 / 6, 2 / 6, 3 / 6)
    assert (m["precision"], m["recall"]) == (2 / 3, 2 / 3)
    expected = -sum(math.log(s) if y else math.log(1 - s) for s, y in data) / 6
    assert m["log_loss"] == pytest.approx(expected)
    assert m["auc"] == pytest.approx(7 / 9)  # 7 of the 9 positive-negative pairs ordered right


def test_auc_equals_mann_whitney_u_over_n1_n2_of_the_binned_scores() -> None:
    rng = np.random.default_rng(3)
    labels = rng.random(5_000) < 0.3
    scores = np.clip(rng.normal(0.4 + 0.2 * labels, 0.2), 0, 1)
    w = fold(list(zip(scores.tolist(), labels.astype(int).tolist(), strict=True)))
    binned = np.minimum((scores * SCORE_BINS).astype(int), SCORE_BINS - 1)
    u = mannwhitneyu(binned[labels], binned[~labels]).statistic
    assert w.metrics()["auc"] == pytest.approx(u / (labels.sum() * (~labels).sum()), rel=1e-12)


def test_regression_metrics_are_mae_and_rmse() -> None:
    w = PerformanceWindow.zero()
    for prediction, label in [(3.0, 1.0), (2.0, 2.0), (0.0, 4.0)]:
        w.update_regression(prediction, label)
    m = w.metrics()
    assert m["mae"] == pytest.approx(2.0) and m["rmse"] == pytest.approx(math.sqrt(20 / 3))
    assert "accuracy" not in m


def test_coverage_is_labelled_over_logged_and_absent_without_predictions() -> None:
    w = fold([(0.9, 1)])
    assert "label_coverage" not in w.metrics()
    w.predictions = 4
    assert w.metrics()["label_coverage"] == 0.25


def test_auc_is_absent_when_only_classes_are_logged_or_one_class_is_labelled() -> None:
    assert "auc" not in fold([(1.0, 1), (0.0, 0), (1.0, 0)]).metrics()
    assert "auc" not in fold([(0.3, 1), (0.8, 1)]).metrics()


def test_binned_auc_counts_a_tie_as_a_half() -> None:
    assert binned_auc([1, 0], [1, 0]) == 0.5


@given(pairs, pairs)
def test_merge_of_folds_is_the_fold_of_the_concatenation(xs: list[Pair], ys: list[Pair]) -> None:
    merged, whole = fold(xs).merge(fold(ys)), fold(xs + ys)
    assert merged.log_loss == pytest.approx(whole.log_loss)
    merged.log_loss = whole.log_loss
    assert merged == whole


def test_error_detectors_report_the_recent_and_long_run_error_rates() -> None:
    detectors = ErrorDetectors({"adwin": {"delta": 0.002, "clock": 32.0}})
    rng = np.random.default_rng(1)
    fired = None
    for error in np.concatenate([rng.random(3_000) < 0.1, rng.random(3_000) < 0.6]):
        fired = detectors.update(bool(error)) or fired
    assert fired is not None and fired.detector == "adwin" and fired.recent > 0.3
    assert detectors.labels == 6_000 and 0.3 < detectors.error_rate < 0.4
