"""Window-close comparisons: one closed window of one feature against the training baseline
(skew) and against the previous window (drift), plus data quality and schema violation rates.

Every test flags only when its statistic passes both an effect-size floor from the schema and
what the statistic reaches by chance at this window size (``distances.*_null_threshold``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scipy.stats import binom

from detectors.baseline.reference import FeatureReference
from detectors.drift.distances import (
    category_null_bounds,
    chi2_critical,
    coarsen,
    effective_size,
    goodness_of_fit,
    grouped,
    jensen_shannon,
    normalize,
    pearson_chi2,
    psi,
    rate_increase_null_threshold,
)
from detectors.stats import OTHER, FeatureWindow
from detectors.validate import CODES, RANGE_CODES
from detectors.window_report import FeatureScore

# Fewest values a bin group must expect before Pearson's chi-squared tail can be trusted down
# to false-alarm rates near 1e-6 (measured: <= 1.4x alpha at 1e-5 with 10, ~2.5x with 5).
MIN_EXPECTED = 10.0


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    detector: str
    statistic: float
    threshold: float
    message: str
    baseline: dict[str, Any] = field(default_factory=dict)
    current: dict[str, Any] = field(default_factory=dict)


def _bin_label(edges: tuple[float, ...], i: int) -> str:
    lo = f"{edges[i - 1]:.4g}" if i > 0 else "-inf"
    hi = f"{edges[i]:.4g}" if i < len(edges) else "+inf"
    return f"[{lo}, {hi})"


def window_categories(ref: FeatureReference, win: FeatureWindow) -> dict[str, float]:
    """Category frequencies of a window; with an open domain unseen values fold into 'other'."""
    cats = win.categories
    if cats is None or cats.total == 0:
        return {}
    counts: dict[str, float] = dict(cats.known)
    profiled = ref.profile.categorical
    closed = ref.spec.domain is not None or (profiled is not None and profiled.complete)
    if closed:
        counts.update(cats.new)
        counts[OTHER] = counts.get(OTHER, 0) + cats.other
    else:
        counts[OTHER] = counts.get(OTHER, 0) + cats.other + sum(cats.new.values())
    total = float(cats.total)
    return {k: v / total for k, v in counts.items()}


def bin_quantile(edges: tuple[float, ...], counts: list[int], p: float) -> float:
    """The p-quantile of values binned over ``edges``, linear within a bin; the open end bins
    are read at their finite edge."""
    total = sum(counts)
    if total == 0 or not edges:
        return math.nan
    target, seen = p * total, 0.0
    for i, c in enumerate(counts):
        if c and seen + c >= target:
            if i == 0 or i == len(edges):
                return edges[0] if i == 0 else edges[-1]
            lo, hi = edges[i - 1], edges[i]
            return lo + (hi - lo) * (target - seen) / c
        seen += c
    return edges[-1]


def has_support_bins(ref: FeatureReference) -> bool:
    """Baselines built since the bins bound the training range (detectors/baseline/profile.py)."""
    num = ref.profile.numeric
    return num is not None and len(ref.edges) >= 2 and ref.edges[-1] > num.max


def _shape(ref: FeatureReference, counts: list[int]) -> dict[str, float]:
    """Median and spread (p25..p75) of a window, from its bins."""
    q = [bin_quantile(ref.edges, counts, p) for p in (0.25, 0.5, 0.75)]
    return {"median": q[1], "spread": q[2] - q[0]}


def _describe_shape(ref: FeatureReference, now: dict[str, float]) -> str:
    num = ref.profile.numeric
    if num is None or ref.spec.sensitive:
        return ""
    median, spread = (
        num.quantiles.get("p50", math.nan),
        num.quantiles.get("p75", math.nan) - (num.quantiles.get("p25", math.nan)),
    )
    words = []
    if math.isfinite(median) and math.isfinite(now["median"]):
        words.append(f"median {now['median']:.4g} vs {median:.4g}")
    if math.isfinite(spread) and spread > 0 and math.isfinite(now["spread"]):
        ratio = now["spread"] / spread
        how = "wider" if ratio > 1.25 else "narrower" if ratio < 0.8 else "about the same"
        words.append(f"spread (p25..p75) {now['spread']:.4g} vs {spread:.4g}, {how}")
    return "; ".join(words)


def _out_of_support(
    ref: FeatureReference, win: FeatureWindow, score: FeatureScore, alpha: float
) -> Finding | None:
    """Values where training had (almost) none: below its support or above it. The chance level
    is the training's own share there (its rare absurd values), smoothed."""
    assert win.bins is not None and ref.profile.numeric is not None
    n = win.bins.total
    outside = win.bins.counts[0] + win.bins.counts[-1]
    share = outside / n if n else 0.0
    score.out_of_support = share
    expected = ref.bin_probs[0] + ref.bin_probs[-1]
    worth = ref.null.effective("skew", n)  # independent values the window is worth
    limit = max(
        ref.thresholds.out_of_support,
        expected + rate_increase_null_threshold(expected, worth, alpha),
        float(binom.isf(alpha, max(1, round(worth)), expected)) / max(1.0, worth),
    )
    if share <= limit:
        return None
    num = ref.profile.numeric
    where = "" if ref.spec.sensitive else f" [{num.min:.4g}, {num.max:.4g}]"
    return Finding(
        "distribution_skew",
        "out_of_support",
        share,
        limit,
        f"{share:.1%} of {n:,} values lie outside the training range{where} "
        f"({win.bins.counts[0]:,} below, {win.bins.counts[-1]:,} above; "
        f"chance allows {limit:.1%})",
        {"share": 0.0} if ref.spec.sensitive else {"share": 0.0, "min": num.min, "max": num.max},
        {"share": share, "below": win.bins.counts[0], "above": win.bins.counts[-1]},
    )


def _drift_inflation(ref: FeatureReference, n: float) -> float:
    """Two windows in a row differ by at most their own noise, which the skew table measures
    with many more chunks than the drift table has pairs at large sizes: the larger is kept."""
    return max(ref.null.at("drift", n), ref.null.at("skew", n))


def _skew_groups(ref: FeatureReference, q: list[float], n: float) -> list[range]:
    """Bin groups for the distance: the out-of-support bins always stand alone, so mass where
    training had none is never averaged away."""
    if not has_support_bins(ref):
        return coarsen(q, n, MIN_EXPECTED)
    inner = coarsen(q[1:-1], n, MIN_EXPECTED)
    last = len(q) - 1
    return [range(0, 1), *(range(g.start + 1, g.stop + 1) for g in inner), range(last, last + 1)]


def _numeric(
    ref: FeatureReference,
    win: FeatureWindow,
    prev: FeatureWindow | None,
    score: FeatureScore,
    alpha: float,
    seconds: float,
) -> list[Finding]:
    assert win.bins is not None
    out = []
    p = normalize(win.bins.counts)
    q = list(ref.bin_probs)
    n = win.bins.total
    floor = ref.thresholds.jensen_shannon
    skew_floor = ref.seasons.floor(seconds, floor)  # a cycle's hours differ by themselves
    groups = coarsen(q, n, MIN_EXPECTED)
    observed = grouped(win.bins.counts, groups)
    distance_groups = _skew_groups(ref, q, n)
    score.skew = jensen_shannon(
        normalize(grouped(win.bins.counts, distance_groups)), grouped(q, distance_groups)
    )
    score.psi = psi(p, q)
    score.skew_threshold = skew_floor
    inflation = ref.null.at("skew", n)
    x2 = goodness_of_fit(observed, grouped(q, groups)) / inflation
    crit = chi2_critical(len(groups), alpha)
    worst = max(range(len(p)), key=lambda i: abs(p[i] - q[i]))
    where = _bin_label(ref.edges, worst)
    shape = _shape(ref, win.bins.counts)
    base = {"mean": ref.mean, "std": ref.std, "bin": where, "bin_share": q[worst]}
    cur = {
        "mean": win.moments.mean,
        "std": win.moments.std,
        "bin": where,
        "bin_share": p[worst],
        "psi": score.psi,
        **shape,
    }
    if score.skew > skew_floor and x2 > crit:
        detail = f"biggest change in bin {where}: {p[worst]:.1%} of values now vs {q[worst]:.1%}"
        moved = _describe_shape(ref, shape)
        if ref.spec.sensitive:
            detail, moved = "", ""
            base, cur = {}, {"psi": score.psi}
        worth = f", worth {n / inflation:,.0f} independent ones" if inflation > 1 else ""
        out.append(
            Finding(
                "distribution_skew",
                "jensen_shannon",
                score.skew,
                score.skew_threshold,
                f"distribution differs from training: Jensen-Shannon {score.skew:.3f} bits "
                f"(floor {skew_floor:.3f}; chi-squared {x2:,.0f} where chance reaches {crit:.0f} "
                f"at {n:,} values{worth}; PSI {score.psi:.2f})"
                + (f"; {detail}" if detail else "")
                + (f"; {moved}" if moved else ""),
                base,
                cur,
            )
        )
    if has_support_bins(ref):
        support = _out_of_support(ref, win, score, alpha)
        if support is not None:
            out.append(support)
    if prev is not None and prev.bins is not None and prev.bins.total > 0:
        r = normalize(prev.bins.counts)
        m = prev.bins.total
        pooled = [(a * n + b * m) / (n + m) for a, b in zip(p, r, strict=True)]
        groups = coarsen(pooled, min(n, m), MIN_EXPECTED)
        now, before = grouped(win.bins.counts, groups), grouped(prev.bins.counts, groups)
        score.drift = jensen_shannon(normalize(now), normalize(before))
        score.drift_threshold = floor
        inflation = _drift_inflation(ref, 2 * n * m / (n + m))
        x2, crit = pearson_chi2([now, before]) / inflation, chi2_critical(len(groups), alpha)
        if score.drift > floor and x2 > crit:
            moved = (
                ""
                if ref.spec.sensitive
                else (f"; mean {win.moments.mean:.4g} vs {prev.moments.mean:.4g} before")
            )
            out.append(
                Finding(
                    "drift",
                    "jensen_shannon",
                    score.drift,
                    score.drift_threshold,
                    f"distribution moved since the previous window: Jensen-Shannon "
                    f"{score.drift:.3f} bits (floor {floor:.3f}; chi-squared {x2:,.0f} where "
                    f"chance reaches {crit:.0f}){moved}",
                    {} if ref.spec.sensitive else {"previous_mean": prev.moments.mean},
                    {} if ref.spec.sensitive else {"mean": win.moments.mean},
                )
            )
    return out


def _worst_category(
    p: dict[str, float],
    q: dict[str, float],
    n_eff: float,
    alpha: float,
    floor: float | Callable[[str], float],
    expected: dict[str, float] | None = None,
) -> tuple[float, float, str]:
    """The category whose frequency moved furthest past what chance allows it (each category
    has its own exact binomial bound under ``expected``, default q, and its own effect floor
    when ``floor`` is a function of the category), with that movement, its threshold and its
    name. Its movement is the L-infinity distance when one category moved."""
    keys = sorted(set(p) | set(q))
    bounds = category_null_bounds({k: (expected or q).get(k, 0.0) for k in keys}, n_eff, alpha)
    floors = floor if callable(floor) else (lambda _k: floor)
    limits = {k: max(floors(k), bounds[k]) for k in keys}
    moved = {k: abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in keys}
    worst = max(keys, key=lambda k: (moved[k] - limits[k], moved[k]))
    return moved[worst], limits[worst], worst


def _categorical(
    ref: FeatureReference,
    win: FeatureWindow,
    prev: FeatureWindow | None,
    score: FeatureScore,
    alpha: float,
    seconds: float,
) -> list[Finding]:
    out = []
    p = window_categories(ref, win)
    q = ref.category_probs
    n = win.valid

    def floor(value: str) -> float:  # a share that follows a cycle may swing by itself
        return ref.seasons.floor(seconds, ref.thresholds.l_infinity, value)

    score.skew, score.skew_threshold, value = _worst_category(
        p, q, ref.null.effective("skew", effective_size(n)), alpha, floor
    )
    if score.skew > score.skew_threshold:
        out.append(
            Finding(
                "distribution_skew",
                "l_infinity",
                score.skew,
                score.skew_threshold,
                f"category frequencies differ from training: L-infinity {score.skew:.3f} "
                f"(threshold {score.skew_threshold:.3f} at {n:,} values), largest at {value!r}: "
                f"{p.get(value, 0.0):.1%} now vs {q.get(value, 0.0):.1%} in training",
                {"value": value, "share": q.get(value, 0.0)},
                {"value": value, "share": p.get(value, 0.0)},
            )
        )
    if prev is not None and prev.valid > 0:
        r = window_categories(ref, prev)
        pooled = {
            k: (p.get(k, 0.0) * n + r.get(k, 0.0) * prev.valid) / (n + prev.valid)
            for k in set(p) | set(r)
        }
        size = effective_size(n, prev.valid)
        score.drift, score.drift_threshold, value = _worst_category(
            p, r, size / _drift_inflation(ref, 2 * size), alpha, ref.thresholds.l_infinity, pooled
        )
        if score.drift > score.drift_threshold:
            out.append(
                Finding(
                    "drift",
                    "l_infinity",
                    score.drift,
                    score.drift_threshold,
                    f"category frequencies moved since the previous window: L-infinity "
                    f"{score.drift:.3f} (threshold {score.drift_threshold:.3f}), largest at "
                    f"{value!r}: {p.get(value, 0.0):.1%} now vs {r.get(value, 0.0):.1%} before",
                    {"value": value, "share": r.get(value, 0.0)},
                    {"value": value, "share": p.get(value, 0.0)},
                )
            )
    return out


def _missing(
    ref: FeatureReference, win: FeatureWindow, score: FeatureScore, alpha: float
) -> list[Finding]:
    base = ref.missing_rate
    increase = score.missing_rate - base
    n = ref.null.effective("missing", win.seen)
    threshold = max(
        ref.thresholds.missing_rate_increase, rate_increase_null_threshold(base, n, alpha)
    )
    if increase <= threshold:
        return []
    return [
        Finding(
            "data_quality",
            "missing_rate",
            increase,
            threshold,
            f"missing in {score.missing_rate:.1%} of {win.seen:,} records vs {base:.1%} in "
            f"training (+{increase:.1%}, threshold +{threshold:.1%})",
            {"missing_rate": base},
            {"missing_rate": score.missing_rate},
        )
    ]


def violation_finding(
    code: str, count: int, seen: int, floor: float, alpha: float, effective: float | None = None
) -> Finding | None:
    """A schema or data-quality finding when violations clearly pass the tolerated rate;
    ``effective`` is what ``seen`` records are worth in independent ones (clustered tails)."""
    rate = count / seen if seen else 0.0
    threshold = floor + rate_increase_null_threshold(floor, effective or seen, alpha)
    if count == 0 or rate <= threshold:
        return None
    kind, meaning = CODES.get(code, ("schema_skew", code))
    return Finding(
        kind,
        code.lower(),
        rate,
        threshold,
        f"{rate:.1%} of {seen:,} records violate the schema with {code} ({meaning}); "
        f"tolerated up to {threshold:.1%}",
        {"violation_rate": 0.0},
        {"violation_rate": rate, "violations": count, "code": code},
    )


def compare_feature(
    ref: FeatureReference,
    win: FeatureWindow,
    prev: FeatureWindow | None,
    min_count: int,
    seconds: float = 0.0,
) -> tuple[FeatureScore, list[Finding]]:
    """Score one closed window of one feature (``seconds`` long; 0: unknown) and return what
    is anomalous about it."""
    alpha = ref.thresholds.false_alarm_rate
    violations = sum(win.violations.values())
    score = FeatureScore(
        feature=ref.name,
        seen=win.seen,
        valid=win.valid,
        missing_rate=win.missing / win.seen if win.seen else 0.0,
        violation_rate=violations / win.seen if win.seen else 0.0,
    )
    findings: list[Finding] = []
    for code, count in sorted(win.violations.items()):
        if code == "SCHEMA_NEW_COLUMN":
            continue  # new columns are scored per model, not per feature
        finding = violation_finding(
            code,
            count,
            win.seen,
            ref.thresholds.violation_rate,
            alpha,
            ref.null.effective("skew", win.seen) if code in RANGE_CODES else None,
        )
        if finding:
            findings.append(finding)
    if win.seen >= min_count:
        findings += _missing(ref, win, score, alpha)
    usable_prev = prev if prev is not None and prev.valid >= min_count else None
    if win.valid >= min_count:
        compare = _numeric if ref.numeric else _categorical
        findings += compare(ref, win, usable_prev, score, alpha, seconds)
    return score, findings
