"""Synthetic serving traffic for a click-through-rate model, with named changes to inject.

Used by ``logdrift simulate``, ``logdrift demo`` and the scenario tests. Each scenario changes
exactly one feature, so what should (and should not) be caught is known.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from detectors.anomaly import iso

COUNTRIES = ("US", "DE", "GB", "FR", "ES", "IT", "NL", "SE", "PL", "JP")
COUNTRY_WEIGHTS = (0.30, 0.18, 0.14, 0.11, 0.08, 0.06, 0.05, 0.04, 0.02, 0.02)
SCORE_MEAN, SCORE_SD = 0.6, 0.15


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    feature: str
    what: str


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("stationary", "", "nothing changes"),
        Scenario("mean_shift", "score", "score's mean rises by half a standard deviation"),
        Scenario("variance_change", "age", "age spreads out 1.8x around its mean"),
        Scenario("category_surge", "device", "web traffic jumps from 10% to 40%"),
        Scenario("new_category", "country", "a country never seen in training, 'BR', at 15%"),
        Scenario("schema_break", "age", "age arrives as a string instead of an int"),
        Scenario("missing_surge", "price", "price goes missing in 30% of records"),
    )
}
FEATURES = ("price", "age", "score", "country", "device", "is_returning")


@dataclass(frozen=True, slots=True)
class Injection:
    scenario: str
    at: int  # index of the first changed record

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {self.scenario!r}; one of {', '.join(SCENARIOS)}")


def _features(rng: random.Random, active: set[str]) -> dict[str, Any]:
    age = rng.gauss(40, 12)
    if "variance_change" in active:
        age = 40 + (age - 40) * 1.8
    score = rng.gauss(SCORE_MEAN, SCORE_SD)
    if "mean_shift" in active:
        score += 0.5 * SCORE_SD
    web = 0.40 if "category_surge" in active else 0.10
    u = rng.random()
    device = "web" if u < web else ("ios" if u < web + (1 - web) / 2 else "android")
    country = rng.choices(COUNTRIES, COUNTRY_WEIGHTS)[0]
    if "new_category" in active and rng.random() < 0.15:
        country = "BR"
    price: float | None = round(math.exp(rng.gauss(3.0, 0.5)), 2)
    if "missing_surge" in active and rng.random() < 0.3:
        price = None
    age_value: int | str = max(18, round(age))
    if "schema_break" in active:
        age_value = str(age_value)
    return {
        "price": price,
        "age": age_value,
        "score": score,
        "country": country,
        "device": device,
        "is_returning": rng.random() < 0.6,
    }


def _prediction(rng: random.Random, features: dict[str, Any]) -> float:
    logit = -1.5 + 1.2 * features["is_returning"] + rng.gauss(0, 0.8)
    return 1 / (1 + math.exp(-logit))


def training_rows(n: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """Flat rows, features plus the model's prediction, as a training set would hold them."""
    rng = random.Random(seed)
    for _ in range(n):
        features = _features(rng, set())
        yield {**features, "prediction": _prediction(rng, features)}


def serving_records(
    n: int,
    *,
    rate: float,
    start: float,
    injections: list[Injection] = (),  # type: ignore[assignment]
    seed: int = 1,
    model: str = "ctr",
    version: str = "3",
) -> Iterator[dict[str, Any]]:
    """Serving records (DESIGN section 2) with event times ``start + i / rate``."""
    rng = random.Random(seed)
    for i in range(n):
        active = {inj.scenario for inj in injections if i >= inj.at}
        features = _features(rng, active)
        yield {
            "ts": iso(start + i / rate),
            "request_id": f"{seed:x}-{i:x}",
            "model": model,
            "model_version": version,
            "features": features,
            "prediction": _prediction(rng, features),
        }
