"""Serving records and training rows shaped like production (DESIGN section 7), seeded.

Every feature is one small function of a random Generator and the events' event times. They
are what i.i.d. test streams are not: autocorrelated (AR(1), phi 0.9 and 0.99 per event,
standardized so the marginal standard deviation is known), seasonal (a daily cycle of event
time), heavy-tailed (lognormal, sigma 1.0 and 1.5), bounded with ties at the bounds, constant,
categorical with shares that follow the time of day, and sprinkled with absurd values (one finite
1e300, an occasional -1e12). Arrivals are steady or bursty (heavy-tailed gaps: bursts of
thousands of events a second, then quiet).

Training rows are the same process run stationary, one row every ``TRAINING_STEP`` seconds of
event time over ``TRAINING_DAYS`` days, with a ``ts`` column, written to JSON lines in time
order. Each change (``CHANGES``) alters one thing of one feature from a known record on.

    python -m tests.scenarios.production --table   # run the scored suite, rewrite docs/scenarios.md
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray
from scipy.signal import lfilter

from detectors.anomaly import iso

Floats = NDArray[np.float64]
Feature = Callable[[np.random.Generator, Floats], NDArray[Any]]

MODEL, VERSION = "ranker", "7"
DAY = 86_400.0
SERVING_START = 1_795_860_000.0  # 2026-11-28T10:00:00Z; training ends here
TRAINING_DAYS = 28
TRAINING_STEP = 10.0  # seconds of event time between training rows
CHANNELS = ("web", "ios", "android", "partner")
ABSURD_RATE = 1e-5  # -1e12 values per event, in ar_fast and amount


def ar1(rng: np.random.Generator, n: int, phi: float) -> Floats:
    """A stationary AR(1) series with marginal N(0, 1): x[t] = phi x[t-1] + sqrt(1-phi^2) e[t].
    The first value is drawn from the marginal, so there is no warm-up."""
    scale = math.sqrt(1 - phi * phi)
    e = rng.standard_normal(n)
    e[0] /= scale
    return np.asarray(lfilter([scale], [1.0, -phi], e), dtype=np.float64)


def cycle(t: Floats) -> Floats:
    """sin of the time of day: 0 at midnight UTC, 1 at 06:00."""
    return np.sin(2 * math.pi * (t % DAY) / DAY)


def ar_fast(rng: np.random.Generator, t: Floats) -> Floats:
    """AR(1), phi 0.9: mean 50, sd 10."""
    return 50 + 10 * ar1(rng, t.size, 0.9)


def ar_slow(rng: np.random.Generator, t: Floats) -> Floats:
    """AR(1), phi 0.99: mean 0, sd 1 (effective sample size 1/199 of the count)."""
    return ar1(rng, t.size, 0.99)


def daily(rng: np.random.Generator, t: Floats) -> Floats:
    """A daily cycle: 15 + 4 sin(time of day) + N(0, 3)."""
    return 15 + 4 * cycle(t) + 3 * rng.standard_normal(t.size)


def amount(rng: np.random.Generator, t: Floats) -> Floats:
    """Lognormal, sigma 1.0, median e^3 = 20.1, i.i.d."""
    return np.exp(3 + rng.standard_normal(t.size))


def latency(rng: np.random.Generator, t: Floats) -> Floats:
    """Lognormal, sigma 1.5, median 80, its log an AR(1) with phi 0.9; about 1% missing (NaN)."""
    x = np.exp(math.log(80) + 1.5 * ar1(rng, t.size, 0.9))
    x[rng.random(t.size) < 0.01] = np.nan
    return x


def ratio(rng: np.random.Generator, t: Floats) -> Floats:
    """Normalized to [0, 1]: Beta(2, 5), with 2% exactly 0 and 0.5% exactly 1 (clipped)."""
    x = rng.beta(2, 5, t.size)
    u = rng.random(t.size)
    x[u < 0.02] = 0.0
    x[u > 0.995] = 1.0
    return x


def dormant(rng: np.random.Generator, t: Floats) -> Floats:
    """Constant 0.0 (a field the serving app always filled with its default)."""
    return np.zeros(t.size)


def iid(rng: np.random.Generator, t: Floats) -> Floats:
    """i.i.d. N(100, 15): the easy case, kept as the check that what works stays."""
    return 100 + 15 * rng.standard_normal(t.size)


def channel(rng: np.random.Generator, t: Floats) -> NDArray[Any]:
    """web/ios/android/partner: partner 2%, web 45% +- 5 points with the time of day."""
    web = 0.45 + 0.05 * cycle(t)
    ios = 0.30 - 0.03 * cycle(t)
    u = rng.random(t.size)
    picks = np.where(u < web, 0, np.where(u < web + ios, 1, np.where(u < 0.98, 2, 3)))
    return np.asarray(CHANNELS, dtype=object)[picks]


FEATURES: dict[str, Feature] = {
    f.__name__: f for f in (ar_fast, ar_slow, daily, amount, latency, ratio, dormant, iid, channel)
}


def sprinkle_absurd(rng: np.random.Generator, x: Floats, huge: bool = True) -> Floats:
    """One finite 1e300 somewhere (unless not ``huge``), and -1e12 at about ``ABSURD_RATE`` of
    the events (at least once)."""
    x = x.copy()
    x[rng.random(x.size) < ABSURD_RATE] = -1e12
    x[rng.integers(x.size)] = -1e12
    where = rng.integers(x.size)
    if huge:
        x[where] = 1e300
    return x


def prediction(columns: dict[str, NDArray[Any]], rng: np.random.Generator) -> Floats:
    """The model's output depends only on features no change touches, so a change to one input
    is never also a change to the prediction."""
    z = 0.8 * columns["ar_slow"] + 0.15 * (columns["daily"] - 15) + 2 * columns["ratio"]
    return 1 / (1 + np.exp(-(-1.2 + z + 0.5 * rng.standard_normal(z.size))))


def steady(rng: np.random.Generator, n: int, rate: float, start: float) -> Floats:
    """Evenly spaced event times, ``rate`` a second."""
    return start + np.arange(n) / rate


def bursty(rng: np.random.Generator, n: int, rate: float, start: float) -> Floats:
    """Gaps from a Lomax (Pareto II) with shape 1.3, mean 1/rate: infinite variance, so most
    gaps are a fraction of a millisecond (bursts) and a few last tens of seconds (quiet)."""
    shape = 1.3
    gaps = rng.pareto(shape, n) * (shape - 1) / rate
    gaps[0] = 0.0
    return start + np.cumsum(gaps)


ARRIVALS = {"steady": steady, "bursty": bursty}


def columns_at(seed: int, t: Floats, purpose: str, huge: bool = True) -> dict[str, NDArray[Any]]:
    """Every feature at event times ``t``, each from its own stream of ``seed``, and the
    prediction. ``purpose`` keeps training and serving draws apart for the same seed; ``huge``
    says whether the absurd values include the one 1e300."""
    root = np.random.SeedSequence([seed, sum(purpose.encode())])
    names = [*FEATURES, "absurd", "prediction"]
    streams = dict(zip(names, root.spawn(len(names)), strict=True))
    cols = {name: f(np.random.default_rng(streams[name]), t) for name, f in FEATURES.items()}
    absurd = np.random.default_rng(streams["absurd"])
    for name in ("ar_fast", "amount"):
        cols[name] = sprinkle_absurd(absurd, cols[name], huge)
    cols["prediction"] = prediction(cols, np.random.default_rng(streams["prediction"]))
    return cols


@dataclass(frozen=True, slots=True)
class Change:
    """From record ``at`` on, ``apply`` alters one feature's column (and nothing else)."""

    name: str
    feature: str
    what: str
    apply: Callable[[np.random.Generator, NDArray[Any]], NDArray[Any]]


def _shift_sd(sd: float) -> Callable[[np.random.Generator, NDArray[Any]], NDArray[Any]]:
    return lambda rng, x: x + 0.5 * sd


def _median_times(k: float) -> Callable[[np.random.Generator, NDArray[Any]], NDArray[Any]]:
    return lambda rng, x: x * k


def _spread(rng: np.random.Generator, x: NDArray[Any]) -> NDArray[Any]:
    return 100 + (x - 100) * 1.5  # variance x2.25, the median (and mean) unchanged


def _alive(rng: np.random.Generator, x: NDArray[Any]) -> NDArray[Any]:
    return rng.normal(0.0, 1.0, x.size)


def _as_strings(rng: np.random.Generator, x: NDArray[Any]) -> NDArray[Any]:
    out = x.astype(object)
    hit = rng.random(x.size) < 0.005
    out[hit] = [f"{v:.2f}" for v in x[hit]]
    return out


def _missing(rng: np.random.Generator, x: NDArray[Any]) -> NDArray[Any]:
    x = x.copy()
    x[rng.random(x.size) < 0.09] = np.nan  # 9% more on top of the 1%: about 10% in all
    return x


def _partner_surge(rng: np.random.Generator, x: NDArray[Any]) -> NDArray[Any]:
    x = x.copy()
    # 6.1% of the rest becomes partner: 2% + 98% x 6.12% = 8%
    x[(x != "partner") & (rng.random(x.size) < 0.06 / 0.98)] = "partner"
    return x


CHANGES = {
    c.name: c
    for c in (
        Change("ar_mean_shift", "ar_fast", "AR(1) phi 0.9: mean +0.5 sd", _shift_sd(10)),
        Change("lognormal_level", "amount", "lognormal sigma 1: median x1.6", _median_times(1.6)),
        Change("spread", "iid", "normal: variance x2.25, same median", _spread),
        Change("comes_alive", "dormant", "constant in training, now N(0, 1)", _alive),
        Change("schema_break", "amount", "0.5% of values logged as strings", _as_strings),
        Change("missing_spike", "latency", "missing 1% -> 10%", _missing),
        Change("category_share", "channel", "partner 2% -> 8%", _partner_surge),
        Change("iid_mean_shift", "iid", "i.i.d. normal: mean +0.5 sd", _shift_sd(15)),
    )
}


@dataclass(frozen=True, slots=True)
class Stream:
    """One seeded serving stream: ``events`` records, ``rate`` a second on average."""

    seed: int
    events: int
    rate: float = 500.0
    arrival: str = "steady"
    start: float = SERVING_START
    change: str | None = None
    at: int | None = None  # index of the first changed record

    def times(self) -> Floats:
        rng = np.random.default_rng([self.seed, 7])
        t = ARRIVALS[self.arrival](rng, self.events, self.rate, self.start)
        return np.floor(t * 1000) / 1000  # as logged: milliseconds

    def columns(self, t: Floats) -> dict[str, NDArray[Any]]:
        cols = columns_at(self.seed, t, "serving")
        if self.change is not None and self.at is not None:
            c = CHANGES[self.change]
            after = cols[c.feature][self.at :]
            changed = c.apply(np.random.default_rng([self.seed, 11]), after)
            head = cols[c.feature][: self.at].astype(changed.dtype)
            cols[c.feature] = np.concatenate([head, changed])
        return cols


def _values(column: NDArray[Any]) -> list[Any]:
    """Plain Python values for JSON: NaN is a missing value (null)."""
    if column.dtype == object:
        return [None if isinstance(v, float) and math.isnan(v) else v for v in column.tolist()]
    return [None if math.isnan(v) else v for v in column.tolist()]


CHUNK = 65_536  # records converted to Python values at a time: memory stays flat


def serving_records(stream: Stream, t: Floats | None = None) -> Iterator[dict[str, Any]]:
    """Serving records (DESIGN section 2) of ``stream``, in event-time order."""
    t = stream.times() if t is None else t
    cols = stream.columns(t)
    names = list(FEATURES)
    for lo in range(0, t.size, CHUNK):
        part = slice(lo, lo + CHUNK)
        values = [_values(cols[n][part]) for n in names]
        times, predictions = t[part].tolist(), cols["prediction"][part].tolist()
        rows = zip(times, zip(*values, strict=True), predictions, strict=True)
        for i, (ts, row, p) in enumerate(rows, start=lo):
            yield {
                "ts": iso(ts),
                "request_id": f"{stream.seed:x}-{i:x}",
                "model": MODEL,
                "model_version": VERSION,
                "features": dict(zip(names, row, strict=True)),
                "prediction": p,
            }


def training_rows(
    seed: int, days: float = TRAINING_DAYS, step: float = TRAINING_STEP, huge: bool = True
) -> Iterator[dict[str, Any]]:
    """Flat training rows with a ``ts`` column: ``days`` of event time ending where serving
    starts, one row every ``step`` seconds, in time order."""
    t = SERVING_START - days * DAY + np.arange(int(days * DAY / step)) * step
    cols = columns_at(seed, t, "training", huge)
    names = [*FEATURES, "prediction"]
    values = [_values(cols[n]) for n in names]
    for ts, row in zip(t.tolist(), zip(*values, strict=True), strict=True):
        yield {"ts": iso(ts), **dict(zip(names, row, strict=True))}


def write_training(
    path: Path,
    seed: int,
    days: float = TRAINING_DAYS,
    step: float = TRAINING_STEP,
    huge: bool = True,
) -> int:
    """Training rows as JSON lines (one object a line, time order); returns the row count."""
    count = 0
    with path.open("wb") as f:
        for row in training_rows(seed, days, step, huge):
            f.write(orjson.dumps(row) + b"\n")
            count += 1
    return count


if __name__ == "__main__":
    if sys.argv[1:] != ["--table"]:
        sys.exit("usage: python -m tests.scenarios.production --table")
    from tests.scenarios.production_report import main

    main()
