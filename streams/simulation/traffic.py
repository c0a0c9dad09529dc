"""Synthetic serving traffic for a click-through-rate model, with named changes to inject.

Used by ``logdrift simulate``, ``logdrift demo`` and the scenario tests. Each scenario changes
exactly one feature (or the model's output), so what should (and should not) be caught is known.

With ``slices=True`` records also carry a slice object (product category, and a customer group
for fairness), and ``feedback_records`` makes the delayed labels (clicks) for them, with label
changes to inject: flipped for part of one slice's or one group's traffic, or for everyone's.
Slices, groups and labels come from their own random streams, so the features and predictions
of a seed are the same with or without them.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from detectors.anomaly import iso
from detectors.records import parse_ts

COUNTRIES = ("US", "DE", "GB", "FR", "ES", "IT", "NL", "SE", "PL", "JP")
COUNTRY_WEIGHTS = (0.30, 0.18, 0.14, 0.11, 0.08, 0.06, 0.05, 0.04, 0.02, 0.02)
SCORE_MEAN, SCORE_SD = 0.6, 0.15
CATEGORIES = (
    "mens_dress_shoes",
    "womens_running_shoes",
    "kids_sneakers",
    "handbags",
    "watches",
    "sunglasses",
    "jackets",
    "jeans",
)
CATEGORY_WEIGHTS = (0.10, 0.18, 0.12, 0.14, 0.08, 0.10, 0.13, 0.15)
GENDERS = ("f", "m", "x")
GENDER_WEIGHTS = (0.47, 0.47, 0.06)


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
        Scenario(
            "prediction_shift",
            "prediction",
            "the model's output rises (its logit +0.8) while every input stays the same",
        ),
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


def _prediction(rng: random.Random, features: dict[str, Any], shifted: bool = False) -> float:
    logit = -1.5 + 1.2 * features["is_returning"] + rng.gauss(0, 0.8) + (0.8 if shifted else 0.0)
    return 1 / (1 + math.exp(-logit))


def _slice(rng: random.Random) -> dict[str, str]:
    return {
        "category": rng.choices(CATEGORIES, CATEGORY_WEIGHTS)[0],
        "gender": rng.choices(GENDERS, GENDER_WEIGHTS)[0],
    }


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
    slices: bool = False,
    slice_surge: SliceSurge | None = None,
) -> Iterator[dict[str, Any]]:
    """Serving records (DESIGN section 2) with event times ``start + i / rate``."""
    rng = random.Random(seed)
    slice_rng = random.Random(f"slices-{seed}")
    for i in range(n):
        active = {inj.scenario for inj in injections if i >= inj.at}
        features = _features(rng, active)
        record = {
            "ts": iso(start + i / rate),
            "request_id": f"{seed:x}-{i:x}",
            "model": model,
            "model_version": version,
            "features": features,
            "prediction": _prediction(rng, features, "prediction_shift" in active),
        }
        if slices:
            record["slice"] = _slice(slice_rng)
            if slice_surge is not None and slice_surge.applies(i, record, slice_rng):
                features["device"] = "web"
        yield record


@dataclass(frozen=True, slots=True)
class SliceSurge:
    """From record ``at`` on, ``share`` of one slice's records come from the web: a change
    local to that slice, too small to see in the whole."""

    at: int
    key: str
    value: str
    share: float = 0.4

    def applies(self, i: int, record: dict[str, Any], rng: random.Random) -> bool:
        hit = i >= self.at and record["slice"].get(self.key) == self.value
        return hit and rng.random() < self.share


@dataclass(frozen=True, slots=True)
class LabelFlip:
    """From record ``at`` on, flip the label of ``share`` of the records whose slice object has
    ``key == value`` (every record when ``key`` is empty): the concept changes there only."""

    at: int
    share: float = 0.3
    key: str = ""
    value: str = ""

    def applies(self, i: int, record: dict[str, Any]) -> bool:
        return i >= self.at and (
            not self.key or record.get("slice", {}).get(self.key) == self.value
        )


def uniform_delay(low: float, high: float) -> Callable[[random.Random], float]:
    """Label delays in event-time seconds, uniform between ``low`` and ``high``."""
    return lambda rng: rng.uniform(low, high)


TEN_MINUTES = uniform_delay(0.0, 600.0)


def feedback_records(
    records: Iterable[dict[str, Any]],
    *,
    delay: Callable[[random.Random], float] = TEN_MINUTES,
    flips: Iterable[LabelFlip] = (),
    coverage: float = 1.0,
    seed: int = 1,
) -> list[dict[str, Any]]:
    """One feedback record (DESIGN section 2) per labelled prediction, ``delay`` after it, in
    event-time order. The model is calibrated: the click happens with the predicted
    probability, then flips apply."""
    rng = random.Random(f"labels-{seed}")
    changes = list(flips)
    out = []
    for i, record in enumerate(records):
        clicked = rng.random() < record["prediction"]
        flipped = any(f.applies(i, record) and rng.random() < f.share for f in changes)
        if rng.random() >= coverage:
            continue
        ts = parse_ts(record["ts"]) + delay(rng)
        out.append(
            (
                ts,
                {
                    "ts": iso(ts),
                    "request_id": record["request_id"],
                    "label": int(clicked != flipped),
                },
            )
        )
    out.sort(key=lambda pair: pair[0])
    return [record for _, record in out]


def interleave(*streams: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Merge streams sorted by event time into one, as a log shipper would deliver them."""
    keyed = [((parse_ts(r["ts"]), n, r) for r in stream) for n, stream in enumerate(streams)]
    for _, _, record in heapq.merge(*keyed, key=lambda t: (t[0], t[1])):
        yield record
