"""detectors.baseline.reference: schema and profile joined per feature, with reference frequencies
ready before the first event (smoothed, hashed where sensitive)."""

from __future__ import annotations

from typing import Any

import pytest

from detectors.baseline.profile import CategoricalProfile, FeatureProfile, NumericProfile, Profile
from detectors.baseline.reference import Baseline
from detectors.baseline.schema import Schema
from detectors.privacy import keyed_hash
from detectors.stats import OTHER, BinCounts, CategoryCounts

KEY = b"key"


def numeric(freqs: list[float], *, count: int = 1_000, missing: int = 0) -> FeatureProfile:
    edges = [float(i) for i in range(len(freqs) - 1)]
    return FeatureProfile(
        "float",
        count,
        missing,
        0,
        0,
        numeric=NumericProfile(1.5, 1.0, 0.0, 3.0, {}, edges, freqs),
    )


def categorical(
    freqs: dict[str, float], *, other: float = 0.0, count: int = 1_000
) -> FeatureProfile:
    return FeatureProfile(
        "categorical",
        count,
        0,
        0,
        0,
        categorical=CategoricalProfile(freqs, other, len(freqs), other == 0),
    )


PROFILE = Profile(
    rows=1_000,
    source="t",
    features={
        "price": numeric([0.0, 0.5, 0.5, 0.0], missing=10),
        "device": categorical({"ios": 0.6, "web": 0.4}),
        "email": categorical({"a@b.c": 0.5, "d@e.f": 0.5}),
        "hashed": categorical({keyed_hash(KEY, "x"): 1.0}),
        "prediction": numeric([0.25, 0.25, 0.25, 0.25]),
    },
)


def schema(**features: dict[str, Any]) -> Schema:
    specs: dict[str, Any] = {
        "price": {"type": "float"},
        "device": {"type": "categorical", "domain": ["android", "ios", "web"]},
        "email": {"type": "categorical", "sensitive": True, "domain": ["a@b.c"]},
        "hashed": {"type": "categorical", "sensitive": True},
    }
    specs.update(features)
    return Schema.model_validate(
        {
            "model": "ctr",
            "features": specs,
            "prediction": {"type": "float"},
            "thresholds": {"by_type": {"float": {"jensen_shannon": 0.05}}},
        }
    )


@pytest.fixture(scope="module")
def baseline() -> Baseline:
    return Baseline.of(schema(), PROFILE, KEY)


def test_every_monitored_name_gets_a_reference(baseline: Baseline) -> None:
    assert list(baseline.references) == ["price", "device", "email", "hashed", "prediction"]
    assert baseline.model == "ctr"


def test_bin_probabilities_are_smoothed_so_no_bin_is_impossible(baseline: Baseline) -> None:
    price = baseline.references["price"]
    assert price.edges == (0.0, 1.0, 2.0)
    assert sum(price.bin_probs) == pytest.approx(1.0)
    assert all(p > 0 for p in price.bin_probs)
    # half a pseudo-count per bin over the 990 valid training values
    assert price.bin_probs[0] == pytest.approx(0.5 / (990 + 2))
    assert price.bin_probs[1] == pytest.approx((495 + 0.5) / (990 + 2))


def test_the_missing_rate_is_smoothed_too(baseline: Baseline) -> None:
    assert baseline.references["price"].missing_rate == pytest.approx(11 / 1_002)
    assert baseline.references["device"].missing_rate == pytest.approx(1 / 1_002)


def test_category_probabilities_cover_the_domain_and_other(baseline: Baseline) -> None:
    device = baseline.references["device"]
    assert device.categories == ("android", "ios", "web")
    assert device.category_probs == {"android": 0.0, "ios": 0.6, "web": 0.4, OTHER: 0.0}


def test_a_feature_marked_sensitive_after_profiling_is_hashed_now(baseline: Baseline) -> None:
    email = baseline.references["email"]
    hashed = {keyed_hash(KEY, "a@b.c"), keyed_hash(KEY, "d@e.f")}
    assert set(email.categories) == hashed
    assert set(email.category_probs) == {*hashed, OTHER}
    assert email.spec.domain == [keyed_hash(KEY, "a@b.c")]
    assert "a@b.c" not in repr(email.categories) + repr(email.spec)


def test_values_hashed_at_profiling_are_not_hashed_twice(baseline: Baseline) -> None:
    assert baseline.references["hashed"].categories == (keyed_hash(KEY, "x"),)


def test_thresholds_come_from_the_ladder(baseline: Baseline) -> None:
    assert baseline.references["price"].thresholds.jensen_shannon == 0.05
    assert baseline.references["device"].thresholds.jensen_shannon == 0.01


def test_an_empty_window_has_the_baselines_bins_or_categories(baseline: Baseline) -> None:
    price = baseline.references["price"].empty_window()
    assert price.bins == BinCounts.zero((0.0, 1.0, 2.0)) and price.categories is None
    device = baseline.references["device"].empty_window()
    assert device.bins is None
    assert isinstance(device.categories, CategoryCounts)
    assert set(device.categories.known) == {"android", "ios", "web"}


def test_a_schema_feature_missing_from_the_profile_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match="'age'"):
        Baseline.of(schema(age={"type": "int"}), PROFILE, KEY)


def test_a_schema_type_the_profile_cannot_serve_is_an_error_naming_the_feature() -> None:
    with pytest.raises(ValueError, match=r"'device'.*numeric"):
        Baseline.of(schema(device={"type": "int"}), PROFILE, KEY)
    with pytest.raises(ValueError, match=r"'price'.*category"):
        Baseline.of(schema(price={"type": "categorical"}), PROFILE, KEY)
