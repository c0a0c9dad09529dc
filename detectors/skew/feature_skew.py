"""Feature skew: the same request's features as serving logged them and as the training pipeline
(or feature store) computed them, compared value by value.

Distribution tests cannot see a skew where both sides have the same distribution but disagree
per example (a shuffled join, a stale lookup, a rounding or a unit in one path only). Per
feature and window this keeps, over the joined requests: how many disagree beyond the schema's
tolerance (numbers: ``skew_absolute`` and ``skew_relative``, as ``math.isclose``; categories:
exact), how many have the value on one side only, and the typical size and direction of the
differences (median ratio and median difference, and the most common ratio or value pair, each
kept in bounded sketches and counters). A window flags ``feature_skew`` when the share that
disagrees passes the schema's ``skew_rate`` by more than chance allows at that many joined
requests (the rate rule of the other window tests, ``compare.violation_finding``'s). Sensitive
features keep counts and ratios only: no difference in their units, no value pair.

>>> from detectors.baseline.schema import Thresholds
>>> w = SkewWindow()
>>> for s, p in [(1250.0, 12.5), (3.0, 3.0), (None, 4.0), (7.0, 7.0000001)]:
...     _ = w.add(s, p, Thresholds(), numeric=True, sensitive=False)
>>> w.joined, w.differ, w.pipeline_only, w.mismatch_share
(4, 1, 1, 0.5)
>>> w.common_value(), w.median_ratio()
(('100', 1.0), 100.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import datasketches as ds

from detectors.baseline.profile import category_text
from detectors.baseline.schema import Thresholds
from detectors.drift.distances import rate_increase_null_threshold
from detectors.privacy import keyed_hash

SKETCH_K = 200  # KLL accuracy: exact below 200 values, ~1.3% rank error above, a few KB
MAX_COMMON = 16  # distinct ratios or value pairs counted per feature and window; the rest: other
OTHER_KEY = "\x1fother"
MAJORITY = 0.5  # a ratio or pair this common among the differences is named in the message
Outcome = Literal["same", "differ", "serving_only", "pipeline_only"]


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def outcome(serving: object, pipeline: object, t: Thresholds, numeric: bool) -> Outcome:
    """How one request's two values of a feature compare (absent or None: missing).

    >>> outcome(12.5, 12.5000000001, Thresholds(), numeric=True)
    'same'
    >>> outcome("DE", "de", Thresholds(), numeric=False), outcome(None, 3, Thresholds(), True)
    ('differ', 'pipeline_only')
    """
    if _missing(serving) or _missing(pipeline):
        if _missing(serving) and _missing(pipeline):
            return "same"
        return "pipeline_only" if _missing(serving) else "serving_only"
    s, p = _number(serving), _number(pipeline)
    if numeric and s is not None and p is not None:
        close = math.isclose(s, p, rel_tol=t.skew_relative, abs_tol=t.skew_absolute)
        return "same" if close else "differ"
    return "same" if category_text(serving) == category_text(pipeline) else "differ"


def _sketch() -> ds.kll_floats_sketch:
    return ds.kll_floats_sketch(SKETCH_K)


@dataclass(slots=True)
class SkewWindow:
    """One feature's comparisons over one window's joined requests."""

    joined: int = 0
    differ: int = 0  # both sides have it, beyond tolerance
    serving_only: int = 0
    pipeline_only: int = 0
    numeric_differ: int = 0  # of ``differ``: both values numbers
    ratios: ds.kll_floats_sketch = field(default_factory=_sketch)  # serving / pipeline
    differences: ds.kll_floats_sketch = field(default_factory=_sketch)  # serving - pipeline
    common: dict[str, int] = field(default_factory=dict)  # ratio (3 digits) or value pair

    @property
    def mismatches(self) -> int:
        return self.differ + self.serving_only + self.pipeline_only

    @property
    def mismatch_share(self) -> float:
        return self.mismatches / self.joined if self.joined else 0.0

    def add(
        self,
        serving: object,
        pipeline: object,
        t: Thresholds,
        numeric: bool,
        sensitive: bool,
        key: bytes = b"",
    ) -> Outcome:
        """Count one joined request's two values; ``key`` (the baseline's privacy key) hashes
        a sensitive feature's value pairs."""
        self.joined += 1
        if type(serving) is type(pipeline) and serving == pipeline:
            return "same"  # the usual case, decided without the tolerances
        found = outcome(serving, pipeline, t, numeric)
        if found == "serving_only":
            self.serving_only += 1
        elif found == "pipeline_only":
            self.pipeline_only += 1
        elif found == "differ":
            self.differ += 1
            self._describe(serving, pipeline, numeric, sensitive, key)
        return found

    def _describe(
        self, serving: object, pipeline: object, numeric: bool, sensitive: bool, key: bytes
    ) -> None:
        s, p = _number(serving), _number(pipeline)
        if numeric and s is not None and p is not None:
            self.numeric_differ += 1
            if not sensitive:
                self.differences.update(s - p)
            if p != 0 and math.isfinite(s / p):
                self.ratios.update(s / p)
                self._count(f"{s / p:.3g}")
            return
        pair = f"{category_text(serving)}\x1f{category_text(pipeline)}"
        if sensitive:  # the pair's identity, never its values (keyed: no dictionary attack)
            pair = keyed_hash(key, pair)
        self._count(pair)

    def _count(self, key: str) -> None:
        if key not in self.common and len(self.common) >= MAX_COMMON:
            key = OTHER_KEY
        self.common[key] = self.common.get(key, 0) + 1

    def common_value(self) -> tuple[str, float] | None:
        """The most common ratio (numbers) or value pair among the differences, and its share."""
        named = [(n, k) for k, n in self.common.items() if k != OTHER_KEY]
        if not named or not self.differ:
            return None
        count, key = max(named, key=lambda nk: (nk[0], nk[1]))
        return key, count / self.differ

    def median_ratio(self) -> float | None:
        return None if self.ratios.is_empty() else float(self.ratios.get_quantile(0.5))

    def median_difference(self) -> float | None:
        return None if self.differences.is_empty() else float(self.differences.get_quantile(0.5))

    def summary(self) -> dict[str, float | int | None]:
        """Counts, shares and the typical difference: what the drift-score documents carry."""
        return {
            "joined": self.joined,
            "differ": self.differ,
            "serving_only": self.serving_only,
            "pipeline_only": self.pipeline_only,
            "share": self.mismatch_share,
            "one_side_share": (self.serving_only + self.pipeline_only) / self.joined
            if self.joined
            else 0.0,
            "median_ratio": self.median_ratio(),
            "median_difference": self.median_difference(),
        }


@dataclass(frozen=True, slots=True)
class SkewFinding:
    statistic: float  # share of joined requests that disagree
    threshold: float
    message: str  # what differs, without where and when (the caller adds them)
    current: dict[str, Any]


def skew_threshold(t: Thresholds, effective: float) -> float:
    """The share of disagreeing requests chance allows above the schema's floor, for a window
    worth ``effective`` independent requests.

    >>> round(skew_threshold(Thresholds(), 4_210), 4)
    0.0033
    """
    return t.skew_rate + rate_increase_null_threshold(t.skew_rate, effective, t.false_alarm_rate)


def judge(w: SkewWindow, t: Thresholds, effective: float, sensitive: bool) -> SkewFinding | None:
    """A finding when the window's share of disagreeing requests passes the threshold."""
    threshold = skew_threshold(t, effective)
    share = w.mismatch_share
    if w.mismatches == 0 or share <= threshold:
        return None
    summary = w.summary()
    if sensitive:
        summary["median_difference"] = None
    message = (
        f"{share:.1%} of {w.joined:,} joined requests differ between serving and the pipeline"
        f"{_how(w, sensitive)}, tolerated up to {threshold:.2%}"
    )
    return SkewFinding(share, threshold, message, summary)


def _how(w: SkewWindow, sensitive: bool) -> str:
    parts = []
    if w.differ:
        parts.append(_typical(w, sensitive))
    one_side = w.serving_only + w.pipeline_only
    if one_side:
        parts.append(
            f"present on one side only in {one_side / w.joined:.1%}: serving only "
            f"{w.serving_only:,}, pipeline only {w.pipeline_only:,}"
        )
    return f" ({'; '.join(parts)})" if parts else ""


def _typical(w: SkewWindow, sensitive: bool) -> str:
    common = w.common_value()
    numbers = w.numeric_differ * 2 > w.differ
    if common is not None and common[1] >= MAJORITY:
        key, share = common
        if numbers:
            ratio = float(key)
            hint = ": a unit change?" if _power_of_ten(ratio) else ""
            if 0 < ratio < 1:  # said as the larger side's multiple: "100x", not "0.01x"
                big = f"{1 / ratio:.3g}"
                return f"the pipeline's value is {big}x serving's in {share:.0%} of them{hint}"
            return f"serving is {key}x the pipeline's value in {share:.0%} of them{hint}"
        if sensitive:
            return f"one pair of values in {share:.0%} of them: mapped differently in one path?"
        s, p = key.split("\x1f", 1)
        return (
            f"serving's {s!r} is the pipeline's {p!r} in {share:.0%} of them: "
            "mapped differently in one path?"
        )
    median, difference = w.median_ratio(), w.median_difference()
    if numbers and median is not None:
        shown = f"median ratio serving/pipeline {median:.3g}x"
        if difference is not None and not sensitive:
            shown += f", median difference {difference:+.4g}"
        return shown
    return f"{w.differ:,} with other values"


def _power_of_ten(ratio: float) -> bool:
    if ratio <= 0:
        return False
    exponent = math.log10(ratio)
    return exponent != 0 and abs(exponent - round(exponent)) < 1e-3
