"""The data behind every chart of ``logdrift report``: pure, so each number on the page can be
tested without drawing it.

From a baseline, the per-window scores of each feature, the statistics of each feature's last
full window and the anomalies, it builds per feature: baseline vs current proportions (per
baseline bin for numbers, per category otherwise), the score series with its threshold, the
anomaly marks and the spans (partial windows) on that timeline; a summary sorted by how far
each feature moved in the last full window (detectors/report/summary.py); and the schema
violations. Memory is bounded by features, bins and windows, never by events.

>>> summary_of({"bins": [1, 3, 0], "categories": None, "violations": {}, "seen": 4, "missing": 0})
([0.25, 0.75, 0.0], 4)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from detectors.anomaly import Anomaly
from detectors.baseline.reference import Baseline, FeatureReference
from detectors.incidents.tracker import Incident
from detectors.report.summary import PartialWindow, ScorePoint, SummaryRow, headline, summary_row
from detectors.skew.monitor import SkewReport
from detectors.stats import OTHER, FeatureWindow
from detectors.validate import CODES
from detectors.window_report import FeatureScore

MAX_CATEGORIES = 20  # bars per category chart; the rest are summed into "(other)"
OTHER_LABEL = "(other)"


@dataclass(slots=True)
class ReportInput:
    """What a source (log files through the engine, the SQLite store, Elasticsearch) yields.

    ``current`` holds each feature's last full window as plain counts (``window_summary``), so
    a store or an index can carry it without raw values; its latest partial one while it has
    no full one (``current_partial``)."""

    scores: list[ScorePoint] = field(default_factory=list)
    current: dict[str, dict[str, Any]] = field(default_factory=dict)
    current_window: dict[str, tuple[float, float]] = field(default_factory=dict)
    current_partial: set[str] = field(default_factory=set)
    anomalies: list[Anomaly] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)  # drawn as spans when present
    violations: dict[str, dict[str, int]] = field(default_factory=dict)
    dead_letters: dict[str, int] = field(default_factory=dict)
    records: int = 0
    source: str = ""
    skew: list[SkewReport] = field(default_factory=list)  # feature skew's judged windows
    pipeline_records: int = 0  # the pipeline's feature records read (feature skew)

    def add_window(
        self,
        start: float,
        end: float,
        scores: Iterable[FeatureScore],
        windows: dict[str, Any],
        partial: bool = False,
    ) -> None:
        """Account one closed window: its scores, its violations, and its statistics as the
        latest seen of each feature (``windows``: plain summaries or FeatureWindows), a full
        window before any partial one; ``partial``: judged at shutdown on too few records."""
        for s in scores:
            self.scores.append(ScorePoint(start, end, s, partial))
        for name, win in windows.items():
            plain = win if isinstance(win, dict) else window_summary(win)
            for code, n in plain.get("violations", {}).items():
                codes = self.violations.setdefault(name, {})
                codes[code] = codes.get(code, 0) + n
            held = (False, -math.inf)  # (full, end) of the window held: full ones first
            if name in self.current_window:
                held = (name not in self.current_partial, self.current_window[name][1])
            if plain.get("seen", 0) and (not partial, end) >= held:
                self.current[name] = plain
                self.current_window[name] = (start, end)
                (self.current_partial.add if partial else self.current_partial.discard)(name)


def window_summary(win: FeatureWindow) -> dict[str, Any]:
    """A window's counts as plain data: bins, categories, violations. No moments: their min and
    max would be raw values, which a sensitive feature must never leave the worker with."""
    cats = win.categories
    categories = None
    if cats is not None:
        categories = {k: v for k, v in cats.known.items() if v} | dict(cats.new)
        if cats.other:
            categories[OTHER] = categories.get(OTHER, 0) + cats.other
    return {
        "seen": win.seen,
        "missing": win.missing,
        "violations": dict(win.violations),
        "bins": None if win.bins is None else list(win.bins.counts),
        "categories": categories,
    }


def summary_of(plain: dict[str, Any]) -> tuple[list[float] | dict[str, float], int]:
    """Proportions and their total from a window summary (bins, else categories)."""
    counts = plain.get("bins")
    if counts is not None:
        total = sum(counts)
        return [c / total if total else 0.0 for c in counts], total
    cats: dict[str, int] = plain.get("categories") or {}
    total = sum(cats.values())
    return {k: v / total for k, v in cats.items()} if total else {}, total


@dataclass(frozen=True, slots=True)
class Distribution:
    """Side-by-side bars: ``labels[i]`` has ``baseline[i]`` of the training values and
    ``current[i]`` of the last full window's (empty when no window had a valid value);
    ``partial``: that window is partial, there being no full one."""

    numeric: bool
    labels: list[str]
    baseline: list[float]
    current: list[float]
    current_count: int
    window: tuple[float, float] | None
    partial: bool = False


@dataclass(frozen=True, slots=True)
class Mark:
    timestamp: float
    kind: str
    detector: str
    severity: str
    message: str


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of the timeline drawn as a band: a partial window, or an incident from its
    opening to its resolution (or its last alarm, while it is open)."""

    start: float
    end: float
    kind: str  # "partial" or "incident"
    label: str


@dataclass(frozen=True, slots=True)
class Timeline:
    """The skew statistic (vs training) per window end, its threshold, the drift statistic (vs
    the previous window), which windows are partial, the anomalies on the feature marked at
    their times, and spans."""

    metric: str
    ends: list[float]
    skew: list[float | None]
    threshold: list[float | None]
    drift: list[float | None]
    marks: list[Mark]
    partial: list[bool] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FeatureChart:
    feature: str
    sensitive: bool
    distribution: Distribution
    timeline: Timeline
    summary: SummaryRow


@dataclass(frozen=True, slots=True)
class ViolationRow:
    feature: str
    code: str
    meaning: str
    count: int
    share: float  # of the records that reached the feature


@dataclass(frozen=True, slots=True)
class SkewRow:
    """One feature's feature skew over the report's windows: serving against the pipeline."""

    feature: str
    windows: int
    joined: int
    differ: int
    one_side: int  # present on one side only
    worst: float  # the largest share of disagreeing requests in a window
    worst_threshold: float  # that window's threshold
    worst_end: float
    anomalies: int

    @property
    def share(self) -> float:
        return self.differ / self.joined if self.joined else 0.0


def skew_rows(reports: Sequence[SkewReport], model: str | None) -> list[SkewRow]:
    """Per feature, the windows of joined requests summed; flagged features first."""
    found: dict[str, list[Any]] = {}
    for r in reports:
        if model is not None and r.model != model:
            continue
        flagged = {a.feature for a in r.anomalies}
        for name, s in r.features.items():
            row = found.setdefault(name, [0, 0, 0, 0, -1.0, 0.0, 0.0, 0])
            share = float(s.get("share") or 0.0)
            row[0] += 1
            row[1] += int(s.get("joined") or 0)
            row[2] += int(s.get("differ") or 0)
            row[3] += int(s.get("serving_only") or 0) + int(s.get("pipeline_only") or 0)
            if share > row[4]:
                row[4:7] = [share, float(s.get("threshold") or 0.0), r.end]
            row[7] += name in flagged
    rows = [SkewRow(name, *values) for name, values in found.items()]
    return sorted(rows, key=lambda r: (-r.anomalies, -r.worst, r.feature))


@dataclass(frozen=True, slots=True)
class ReportData:
    model: str
    period: tuple[float, float] | None
    windows: int
    records: int
    source: str
    features: list[FeatureChart]  # in summary order
    violations: list[ViolationRow]
    dead_letters: list[tuple[str, int]]
    anomalies: list[Anomaly]
    judged: tuple[float, float] | None = None  # the last full window (of any feature)
    partial: list[PartialWindow] = field(default_factory=list)
    headline: str = ""
    skew: list[SkewRow] = field(default_factory=list)  # feature skew, when the source had it
    skew_windows: int = 0
    pipeline_records: int = 0

    def in_partial_window(self, a: Anomaly) -> bool:
        return any(p.start == a.window_start for p in self.partial)


def bin_labels(edges: tuple[float, ...]) -> list[str]:
    """'[lo, hi)' per bin, with the open ends of the under- and overflow bins.

    >>> bin_labels((0.0, 1.5))
    ['< 0', '[0, 1.5)', '>= 1.5']
    """
    if not edges:
        return ["all"]
    inner = [f"[{a:.4g}, {b:.4g})" for a, b in pairwise(edges)]
    return [f"< {edges[0]:.4g}", *inner, f">= {edges[-1]:.4g}"]


def _trim(labels: list[str], base: list[float], cur: list[float]) -> slice:
    """The bins between the first and last that hold anything (the underflow bin below the
    training minimum is usually empty on both sides)."""
    used = [i for i in range(len(labels)) if base[i] > 0 or (cur and cur[i] > 0)]
    return slice(used[0], used[-1] + 1) if used else slice(0, len(labels))


def numeric_distribution(
    ref: FeatureReference,
    plain: dict[str, Any] | None,
    window: tuple[float, float] | None,
    partial: bool = False,
) -> Distribution:
    assert ref.profile.numeric is not None
    # A sensitive feature's edges are training values (the lowest is its minimum): bins are
    # named by rank instead.
    labels = (
        [f"bin {i}" for i in range(len(ref.edges) + 1)]
        if ref.spec.sensitive
        else bin_labels(ref.edges)
    )
    base = list(ref.profile.numeric.frequencies)
    cur: list[float] = []
    total = 0
    if plain is not None:
        props, total = summary_of(plain)
        if total and isinstance(props, list) and len(props) == len(base):
            cur = props
        else:
            total = 0
    keep = _trim(labels, base, cur)
    return Distribution(
        True,
        labels[keep],
        base[keep],
        cur[keep] if cur else [],
        total,
        window if cur else None,
        partial and bool(cur),
    )


def categorical_distribution(
    ref: FeatureReference,
    plain: dict[str, Any] | None,
    window: tuple[float, float] | None,
    partial: bool = False,
) -> Distribution:
    base = {k: v for k, v in ref.category_probs.items() if v > 0}
    cur: dict[str, float] = {}
    total = 0
    if plain is not None:
        props, total = summary_of(plain)
        cur = props if isinstance(props, dict) else {}
    names = sorted(
        (set(base) | set(cur)) - {OTHER},
        key=lambda k: (-max(base.get(k, 0.0), cur.get(k, 0.0)), k),
    )
    shown, rest = names[:MAX_CATEGORIES], names[MAX_CATEGORIES:]
    labels = list(shown)
    b = [base.get(k, 0.0) for k in shown]
    c = [cur.get(k, 0.0) for k in shown]
    other_b = base.get(OTHER, 0.0) + sum(base.get(k, 0.0) for k in rest)
    other_c = cur.get(OTHER, 0.0) + sum(cur.get(k, 0.0) for k in rest)
    if other_b > 0 or other_c > 0:
        labels.append(OTHER_LABEL)
        b.append(other_b)
        c.append(other_c)
    has_current = bool(cur)
    return Distribution(
        False,
        labels,
        b,
        c if has_current else [],
        total if has_current else 0,
        window if has_current else None,
        partial and has_current,
    )


def metric_name(ref: FeatureReference) -> str:
    return "Jensen-Shannon (bits)" if ref.numeric else "L-infinity"


def timeline(
    ref: FeatureReference,
    points: list[ScorePoint],
    anomalies: list[Anomaly],
    incidents: Sequence[Incident] = (),
) -> Timeline:
    """With incidents, the change is drawn as their spans, not one mark per anomaly."""
    spans = [
        Span(p.start, p.end, "partial", f"partial window ({p.score.seen:,} records)")
        for p in points
        if p.partial
    ]
    spans += [
        Span(
            i.opened_at,
            i.resolved_at if i.resolved_at is not None else i.last_seen,
            "incident",
            f"{i.status} {i.severity} {i.kind} incident, {i.count:,} alarms",
        )
        for i in incidents
    ]
    marks = [Mark(a.timestamp, a.kind, a.detector, a.severity, a.message) for a in anomalies]
    return Timeline(
        metric=metric_name(ref),
        ends=[p.end for p in points],
        skew=[p.score.skew for p in points],
        threshold=[p.score.skew_threshold for p in points],
        drift=[p.score.drift for p in points],
        marks=[] if incidents else marks,
        partial=[p.partial for p in points],
        spans=spans,
    )


def partial_windows(points: Iterable[ScorePoint]) -> list[PartialWindow]:
    """Each partial window once, oldest first, with the records it was judged on."""
    seen: dict[tuple[float, float], int] = {}
    for p in points:
        if p.partial:
            seen[(p.start, p.end)] = max(seen.get((p.start, p.end), 0), p.score.seen)
    return [PartialWindow(s, e, n) for (s, e), n in sorted(seen.items())]


def violation_rows(data: ReportInput, seen: dict[str, int]) -> list[ViolationRow]:
    rows = []
    for feature, codes in data.violations.items():
        for code, count in codes.items():
            if count:
                n = seen.get(feature, 0)
                meaning = CODES.get(code, ("", code))[1]
                rows.append(ViolationRow(feature, code, meaning, count, count / n if n else 0.0))
    return sorted(rows, key=lambda r: (-r.count, r.feature, r.code))


def build_report(baseline: Baseline, data: ReportInput, model: str | None = None) -> ReportData:
    """Every chart's data, features in summary order: most moved (last full window) first,
    then by the peak over the period, then by name; the headline."""
    points: dict[str, list[ScorePoint]] = {}
    for p in sorted(data.scores, key=lambda p: (p.end, p.start)):
        points.setdefault(p.score.feature, []).append(p)
    by_feature: dict[str, list[Anomaly]] = {}
    for a in sorted(data.anomalies, key=lambda a: (a.timestamp, a.id)):
        by_feature.setdefault(a.feature, []).append(a)
    charts = []
    for name, ref in baseline.references.items():
        pts, found = points.get(name, []), by_feature.get(name, [])
        plain, window = data.current.get(name), data.current_window.get(name)
        build = numeric_distribution if ref.numeric else categorical_distribution
        charts.append(
            FeatureChart(
                name,
                ref.spec.sensitive,
                build(ref, plain, window, name in data.current_partial),
                timeline(ref, pts, found, [i for i in data.incidents if i.feature == name]),
                summary_row(name, ref.spec.type, metric_name(ref), pts, found),
            )
        )
    charts.sort(key=lambda c: (-c.summary.latest_ratio, -c.summary.peak_ratio, c.feature))
    seen = {p.score.feature: 0 for p in data.scores}
    for p in data.scores:
        seen[p.score.feature] += p.score.seen
    starts = [p.start for p in data.scores]
    ends = [p.end for p in data.scores]
    full = [p for p in data.scores if not p.partial]
    judged = max(((p.start, p.end) for p in full), key=lambda w: (w[1], w[0]), default=None)
    partial = partial_windows(data.scores)
    return ReportData(
        model=model or baseline.model or "",
        period=(min(starts), max(ends)) if starts else None,
        windows=len({(p.start, p.end) for p in data.scores}),
        records=data.records,
        source=data.source,
        features=charts,
        violations=violation_rows(data, seen),
        dead_letters=sorted(data.dead_letters.items(), key=lambda kv: (-kv[1], kv[0])),
        anomalies=sorted(data.anomalies, key=lambda a: (a.timestamp, a.id)),
        judged=judged,
        partial=partial,
        headline=headline([c.summary for c in charts], judged, partial),
        skew=skew_rows(data.skew, model or baseline.model),
        skew_windows=len({(r.model, r.version, r.start) for r in data.skew}),
        pipeline_records=data.pipeline_records,
    )
