"""Issue 15, feature skew: the training pipeline's features for logged requests, joined to what
serving logged for them. A unit change in one path for 3% of requests and one category mapped
differently in one path are both caught and named; when the two paths agree (within float
noise) over a million joined requests, nothing is raised."""

from __future__ import annotations

from detectors.baseline.reference import Baseline
from tests.scenarios.skewed import cents_for, mapped, recomputed, run_engine, run_monitor

EVENTS = 60_000  # 600 s at 100/s: two judged 300 s windows of joined requests


def test_the_pipeline_in_cents_for_3_percent_of_requests_is_feature_skew_on_price(
    baseline: Baseline,
) -> None:
    run = run_engine(baseline, EVENTS, lambda i, f: cents_for(0.03)(i, recomputed(i, f)))
    skew = run.of_kind("feature_skew")
    assert skew and {a.feature for a in skew} == {"price"}, run.describe()
    assert run.joined == EVENTS and run.windows == 2
    for a in skew:
        assert "price (ctr v3): 3." in a.message
        assert "the pipeline's value is 100x serving's in 100% of them: a unit change?" in a.message
        assert 0.025 < a.statistic < 0.04


def test_one_category_mapped_differently_in_one_path_is_feature_skew_naming_the_pair(
    baseline: Baseline,
) -> None:
    run = run_engine(baseline, EVENTS, lambda i, f: mapped("DE", "GER")(i, recomputed(i, f)))
    skew = run.of_kind("feature_skew")
    assert skew and {a.feature for a in skew} == {"country"}, run.describe()
    assert all("serving's 'DE' is the pipeline's 'GER' in 100% of them" in a.message for a in skew)


def test_both_paths_agreeing_over_a_million_joined_requests_raise_nothing(
    baseline: Baseline,
) -> None:
    run = run_monitor(baseline, 1_000_000)
    assert run.joined == 1_000_000
    assert run.windows >= 30  # 10,000 s in 300 s windows
    assert not run.anomalies, run.describe()
