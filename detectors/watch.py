"""One feature judged event by event: its window accounting, its change detectors and the
sequential tests of its rates. The Engine and the worker's stage two both feed every value
through ``FeatureWatch.observe``, so the two paths account and alarm alike by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from detectors.baseline import FeatureReference
from detectors.change import Change, FeatureChange, feature_change
from detectors.rates import RateAlarm, RateCusum, onset_of, rise_of, threshold
from detectors.stages import Observation
from detectors.stats import OTHER, FeatureWindow
from detectors.validate import RANGE_CODES

EVENT_BUDGET = 1e-9  # false alarms per event per feature, shared by its rate tests
RATE_SCALE = 1_000  # the window size whose inflation the rate tests take
NOT_A_VIOLATION = "SCHEMA_MISSING_COLUMN"  # a missing required feature counts as missing

Signal = Change | RateAlarm


@dataclass(slots=True)
class _Rates:
    missing: RateCusum
    violation: RateCusum
    range: RateCusum
    categories: dict[str, RateCusum]


class FeatureWatch:
    """Event-by-event judgement of one feature against its reference."""

    def __init__(self, ref: FeatureReference) -> None:
        self.ref = ref
        self.change: FeatureChange | None = (
            feature_change(ref.profile.calibration, ref.scores, ref.mean, ref.std)
            if ref.numeric
            else None
        )
        t = ref.thresholds
        rows = max(1, ref.profile.count)
        never = 1 / (rows + 2)  # the smoothed rate of something training never had
        outside = ref.bin_probs[0] + ref.bin_probs[-1] if ref.bin_probs else never
        clustered = ref.null.at("skew", RATE_SCALE)
        self.events = 0
        self.rates = _Rates(
            RateCusum(
                *rise_of(ref.missing_rate, t.missing_rate_increase),
                threshold(EVENT_BUDGET, 3, ref.null.at("missing", RATE_SCALE)),
            ),
            RateCusum(*onset_of(never, t.violation_rate), threshold(EVENT_BUDGET, 3, 1.0)),
            RateCusum(*rise_of(outside, t.violation_rate), threshold(EVENT_BUDGET, 3, clustered)),
            {},
        )
        self.bases = {"missing": ref.missing_rate, "violation": never, "range": outside}
        self._category_h = threshold(
            EVENT_BUDGET, len(ref.category_probs) + 1, ref.null.at("skew", RATE_SCALE)
        )
        self._never = never

    def observe(self, win: FeatureWindow, obs: Observation) -> list[Signal]:
        """Account one observation in ``win`` and return what alarmed on it."""
        t = self.events
        self.events += 1
        win.seen += 1
        out: list[Signal] = []
        if obs.missing:
            win.missing += 1
            self._hit("missing", "missing", t, out)
        violations = [c for c in obs.codes if c != NOT_A_VIOLATION]
        for code in obs.codes:
            win.violate(code)
        if violations:
            test = "range" if violations[0] in RANGE_CODES else "violation"
            self._hit(test, violations[0], t, out)
        x = obs.value
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
            self._category(x, t, out)
        return out

    def _category(self, value: str, t: int, out: list[Signal]) -> None:
        key = value if value in self.ref.category_probs else OTHER
        if self._category_cusum(key) is not None:
            self._hit("category", key, t, out)

    def _category_cusum(self, key: str) -> RateCusum | None:
        cusum = self.rates.categories.get(key)
        if cusum is None:
            base = max(self.ref.category_probs.get(key, 0.0), self._never)
            floor = self.ref.seasons.floor(0.0, self.ref.thresholds.l_infinity, key)
            p0, p1 = rise_of(base, floor)  # a share that follows a cycle may swing by itself
            if p1 >= 0.99:  # a category that is nearly everything cannot rise further
                return None
            cusum = self.rates.categories[key] = RateCusum(p0, p1, self._category_h)
            self.bases[key] = base
        return cusum

    def _hit(self, test: str, what: str, t: int, out: list[Signal]) -> None:
        key = test if test != "category" else what
        cusum = self.rates.categories[key] if test == "category" else getattr(self.rates, test)
        if cusum.hit(t):
            events = t - cusum.run_start + 1
            out.append(RateAlarm(test, what, cusum.rate(t), events, self.bases[key], cusum.p0))

    # ---- state for changelog-backed tables ------------------------------------------------
    def rates_to_plain(self) -> dict[str, Any]:
        r = self.rates
        return {
            "v": 1,
            "events": self.events,
            "missing": r.missing.to_plain(),
            "violation": r.violation.to_plain(),
            "range": r.range.to_plain(),
            "categories": {k: c.to_plain() for k, c in r.categories.items()},
        }

    def restore_rates(self, data: dict[str, Any]) -> None:
        """Fill in stored CUSUM state; raises ValueError (or KeyError, TypeError) on bad data."""
        if data.get("v") != 1:
            raise ValueError(f"unknown rate state version {data.get('v')!r}")
        self.events = int(data["events"])
        self.rates.missing.restore(data["missing"])
        self.rates.violation.restore(data["violation"])
        self.rates.range.restore(data["range"])
        for key, plain in data["categories"].items():
            cusum = self._category_cusum(str(key))  # parameters from this baseline, not the state
            if cusum is not None:
                cusum.restore(plain)
