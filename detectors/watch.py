"""One feature judged event by event: its window accounting, its change detectors and the
sequential tests of its rates. The Engine and the worker's stage two both feed every value
through ``FeatureWatch.observe``, so the two paths account and alarm alike by construction.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detectors.baseline.reference import FeatureReference
from detectors.drift.change import Change, FeatureChange, feature_change
from detectors.drift.compare import has_support_bins
from detectors.drift.rates import RateAlarm, RateCusum, onset_of, rise_of, threshold
from detectors.stages import Observation
from detectors.stats import OTHER, FeatureWindow, Moments
from detectors.validate import RANGE_CODES

EVENT_BUDGET = 1e-9  # false alarms per event per feature, shared by all its rate tests
RATE_SCALE = 1_000  # the window size whose inflation the rate tests take
NOT_A_VIOLATION = "SCHEMA_MISSING_COLUMN"  # a missing required feature counts as missing
CATEGORY = "category:"  # key prefix of a category's share test

Signal = Change | RateAlarm


class FeatureWatch:
    """Event-by-event judgement of one feature against its reference. Missing values and
    violations are rates of every record; range violations and category shares are rates of
    the values that entered the statistics, as the training shares they are tested against."""

    def __init__(self, ref: FeatureReference) -> None:
        self.ref = ref
        self.change: FeatureChange | None = (
            feature_change(ref.profile.calibration, ref.scores, ref.mean, ref.std)
            if ref.numeric
            else None
        )
        t = ref.thresholds
        self._never = 1 / (max(1, ref.profile.count) + 2)  # smoothed: what training never had
        outside = ref.bin_probs[0] + ref.bin_probs[-1] if has_support_bins(ref) else self._never
        categories = 0 if ref.numeric else len(ref.category_probs) + 1
        self._h = threshold(EVENT_BUDGET, 3 + categories, 1.0)  # one budget over every test
        self.events = 0  # every record: the clock of missing values and violations
        self.valid = 0  # values in the statistics: the clock of range and category tests
        self.tests: dict[str, RateCusum] = {}
        self.bases: dict[str, float] = {}
        missing = ref.null.at("missing", RATE_SCALE)
        self._add("missing", rise_of(ref.missing_rate, t.missing_rate_increase), missing)
        self._add("violation", onset_of(self._never, t.violation_rate), 1.0)
        self._add("range", rise_of(outside, t.violation_rate), ref.null.at("skew", RATE_SCALE))
        self.bases.update(missing=ref.missing_rate, violation=self._never, range=outside)

    def _add(self, key: str, tuned: tuple[float, float] | None, inflation: float) -> None:
        if tuned is not None:  # None: a rate too close to 1 to rise by the floor
            self.tests[key] = RateCusum(*tuned, self._h * inflation)

    def observe(self, win: FeatureWindow, obs: Observation) -> list[Signal]:
        """Account one observation in ``win`` and return what alarmed on it."""
        t = self.events
        self.events += 1
        win.seen += 1
        out: list[Signal] = []
        if obs.missing:
            win.missing += 1
            self._hit("missing", "missing", "missing", t, out)
        violations = [c for c in obs.codes if c != NOT_A_VIOLATION]
        for code in obs.codes:
            win.violate(code)
        x = obs.value
        if x is not None:
            self.valid += 1
        if violations:
            if violations[0] in RANGE_CODES:
                self._hit("range", "range", violations[0], self.valid - 1, out)
            else:
                self._hit("violation", "violation", violations[0], t, out)
        if isinstance(x, float | int) and not isinstance(x, bool):
            x = float(x)
            win.bins.update(x)  # type: ignore[union-attr]
            if not violations:  # out of range: binned (out-of-support mass), never fed raw
                win.moments.update(x)
                if self.change is not None:
                    fired = self.change.update(x)
                    if fired is not None:
                        out.append(fired)
        elif isinstance(x, str):
            win.categories.update(x)  # type: ignore[union-attr]
            key = x if x in self.ref.category_probs else OTHER
            if self._category_test(key) is not None:
                self._hit(CATEGORY + key, "category", key, self.valid - 1, out)
        return out

    def observe_numbers(
        self, win: FeatureWindow, xs: NDArray[np.float64]
    ) -> list[tuple[int, Signal]]:
        """``observe`` over a run of valid, finite numbers (no missing value, no violation:
        no rate test is hit), columnwise: binned and counted with numpy, the change detectors
        fed in order; (index in the run, signal) of what alarmed."""
        n = len(xs)
        self.events += n
        self.valid += n
        win.seen += n
        bins = win.bins
        assert bins is not None  # a numeric feature's window
        found = np.bincount(
            np.searchsorted(bins.edges, xs, side="right"), minlength=len(bins.counts)
        )
        bins.counts = [a + b for a, b in zip(bins.counts, found.tolist(), strict=True)]
        _welford(win.moments, xs.tolist())
        if self.change is None:
            return []
        return list(self.change.update_many(xs))

    def observe_texts(self, win: FeatureWindow, texts: list[str]) -> list[tuple[int, Signal]]:
        """``observe`` over a run of valid category values (no missing value, no violation),
        per batch: each value counted once with its count, each category's share test fed the
        positions of its hits at once (``RateCusum.hits``); (index in the run, signal)."""
        n = len(texts)
        valid0 = self.valid
        self.events += n
        self.valid += n
        win.seen += n
        counts = win.categories
        assert counts is not None  # a categorical feature's window
        tally = Counter(texts)  # in order of first sight, as the tests are made one by one
        distinct = list(tally)
        code = {v: i for i, v in enumerate(distinct)}
        inverse = np.fromiter(map(code.__getitem__, texts), np.intp, n)
        found = np.fromiter(tally.values(), np.intp, len(distinct))
        fresh: dict[str, int] = {}
        for value, count in tally.items():
            if value in counts.known:
                counts.known[value] += count
            elif value in counts.new:
                counts.new[value] += count
            else:
                fresh[value] = count
        if fresh:
            counts._admit(fresh)
        order = np.argsort(inverse, kind="stable")
        groups = np.split(order, np.cumsum(found)[:-1])
        hits: dict[str, list[NDArray[np.intp]]] = {}
        for value, at in zip(distinct, groups, strict=True):
            key = value if value in self.ref.category_probs else OTHER
            hits.setdefault(key, []).append(at)
        out: list[tuple[int, Signal]] = []
        for key, parts in hits.items():
            cusum = self._category_test(key)
            if cusum is None:
                continue
            at = parts[0] if len(parts) == 1 else np.sort(np.concatenate(parts))
            for t, rate, events in cusum.hits(at.astype(np.int64) + valid0):
                full = CATEGORY + key
                alarm = RateAlarm("category", key, rate, events, self.bases[full], cusum.p0)
                out.append((t - valid0, alarm))
        out.sort(key=lambda e: e[0])
        return out

    def _category_test(self, value: str) -> RateCusum | None:
        key = CATEGORY + value
        if key not in self.tests and key not in self.bases:
            base = max(self.ref.category_probs.get(value, 0.0), self._never)
            floor = self.ref.seasons.floor(0.0, self.ref.thresholds.l_infinity, value)
            self.bases[key] = base  # a share that follows a cycle may swing by itself
            self._add(key, rise_of(base, floor), self.ref.null.at("skew", RATE_SCALE))
        return self.tests.get(key)

    def _hit(self, key: str, test: str, what: str, t: int, out: list[Signal]) -> None:
        cusum = self.tests.get(key)
        if cusum is not None and cusum.hit(t):
            events = t - cusum.run_start + 1
            out.append(RateAlarm(test, what, cusum.rate(t), events, self.bases[key], cusum.p0))

    # ---- state for changelog-backed tables ------------------------------------------------
    def rates_to_plain(self) -> dict[str, Any]:
        return {
            "v": RATES_VERSION,
            "events": self.events,
            "valid": self.valid,
            "tests": {k: c.to_plain() for k, c in self.tests.items()},
        }

    def restore_rates(self, data: dict[str, Any]) -> None:
        """Fill in stored CUSUM state (parameters always from this baseline); raises
        ValueError, KeyError, TypeError, AttributeError or OverflowError on bad data."""
        if data.get("v") != RATES_VERSION:
            raise ValueError(f"unknown rate state version {data.get('v')!r}")
        events, valid = int(data["events"]), int(data["valid"])
        for key, plain in data["tests"].items():
            value = str(key).removeprefix(CATEGORY)
            known = value in self.ref.category_probs or value == OTHER
            cusum = self._category_test(value) if key.startswith(CATEGORY) and known else None
            cusum = self.tests.get(key) if cusum is None else cusum
            if cusum is not None:  # a test this baseline no longer has is left behind
                cusum.restore(plain)
        self.events, self.valid = events, valid


def _welford(m: Moments, xs: list[float]) -> None:
    """``Moments.update`` over xs, the same arithmetic in the same order (a numpy merge would
    differ in the last bits, and the runners cut their batches differently)."""
    n, mean, m2 = m.n, m.mean, m.m2
    for x in xs:
        n += 1
        delta = x - mean
        mean += delta / n
        m2 += delta * (x - mean)
    m.n, m.mean, m.m2 = n, mean, m2
    m.min, m.max = min(m.min, min(xs)), max(m.max, max(xs))


RATES_VERSION = 2  # 1 kept the tests in fixed fields and ran every test on every record
