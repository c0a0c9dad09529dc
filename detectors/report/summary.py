"""What ``logdrift report`` says in words: each feature's verdict and the page's headline.

A verdict is taken on the last *full* window: a window judged at shutdown on fewer than
``min_count`` records (``partial``) is drawn and listed, never taken as the verdict, unless
there is no other. Besides the last window, a feature's row says for how many windows it was
past its threshold, counted from the first time it was.

>>> def skew(x):  # against a threshold of 0.25
...     return FeatureScore("device", 100, 100, 0.0, skew=x, skew_threshold=0.25)
>>> p = [ScorePoint(0.0, 60.0, skew(0.5)), ScorePoint(60.0, 120.0, skew(0.75)),
...      ScorePoint(120.0, 130.0, skew(0.0), partial=True)]
>>> row = summary_row("device", "categorical", "L-infinity", p, [])
>>> row.latest_ratio, row.window, row.past, row.judged
(3.0, (60.0, 120.0), 2, 2)
>>> row.history
'past threshold in 2 of 2 windows since 1970-01-01T00:00:00.000Z'
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from detectors.anomaly import Anomaly, iso
from detectors.window_report import FeatureScore


@dataclass(frozen=True, slots=True)
class ScorePoint:
    """One feature's score in one closed window; ``partial``: judged at shutdown on fewer than
    ``min_count`` records."""

    start: float
    end: float
    score: FeatureScore
    partial: bool = False


@dataclass(frozen=True, slots=True)
class SummaryRow:
    feature: str
    type: str
    metric: str
    latest: float | None  # skew in the judged window (the last full one)
    threshold: float | None
    latest_ratio: float  # largest statistic / threshold in that window (skew or an anomaly)
    reason: str  # what that largest ratio is: "distribution_skew (L-infinity)", ...
    peak_ratio: float  # the same, over every full window
    anomalies: int
    kinds: list[str]
    missing_rate: float | None
    violation_rate: float | None
    window: tuple[float, float] | None = None  # the judged window
    partial: bool = False  # no full window: the judged one is partial
    past: int = 0  # full windows past the threshold, from the first that was
    judged: int = 0  # full windows from the first past the threshold (all, if none was)
    since: float | None = None  # start of the first full window past the threshold

    @property
    def tally(self) -> str:
        """'21 of 22 windows since ...', 'never, in 22 windows', or '' with no full window."""
        if self.since is None:
            return f"never, in {self.judged} windows" if self.judged else ""
        return f"{self.past} of {self.judged} windows since {iso(self.since)}"

    @property
    def history(self) -> str:
        """'past threshold in 21 of 22 windows since ...', 'never past threshold in 22
        windows', or '' with no full window."""
        if self.since is None:
            return f"never past threshold in {self.judged} windows" if self.judged else ""
        return f"past threshold in {self.tally}"


def ratio(statistic: float | None, threshold: float | None) -> float:
    if statistic is None or threshold is None:
        return 0.0
    if threshold <= 0:
        return math.inf if statistic > 0 else 0.0
    return statistic / threshold


def window_ratios(
    points: list[ScorePoint], anomalies: list[Anomaly]
) -> dict[float, tuple[float, str]]:
    """Per window start, the largest statistic / threshold and what it is: the skew score's, or
    any anomaly's raised in that window (schema and missing-value ones have no skew to show)."""
    ratios = {p.start: (ratio(p.score.skew, p.score.skew_threshold), "skew") for p in points}
    for a in anomalies:
        here = (ratio(a.statistic, a.threshold), f"{a.kind} ({a.detector})")
        ratios[a.window_start] = max(ratios.get(a.window_start, (0.0, "")), here)
    return ratios


def summary_row(
    feature: str, type_: str, metric: str, points: list[ScorePoint], anomalies: list[Anomaly]
) -> SummaryRow:
    """``points`` in time order. An anomaly whose window has no score point counts as full."""
    ratios = window_ratios(points, anomalies)
    partial = {p.start for p in points if p.partial}
    full = {start: r for start, r in ratios.items() if start not in partial}
    judged = full or ratios
    full_points = [p for p in points if not p.partial]
    last = full_points[-1] if full_points else (points[-1] if points else None)
    latest, why = judged[max(judged)] if judged else (0.0, "")
    past = sorted(start for start, (r, _) in full.items() if r > 1)
    since = past[0] if past else None
    return SummaryRow(
        feature=feature,
        type=type_,
        metric=metric,
        latest=last.score.skew if last else None,
        threshold=last.score.skew_threshold if last else None,
        latest_ratio=latest,
        reason=f"distribution_skew ({metric})" if why == "skew" else why,
        peak_ratio=max((r for r, _ in judged.values()), default=0.0),
        anomalies=len(anomalies),
        kinds=sorted({a.kind for a in anomalies}),
        missing_rate=last.score.missing_rate if last else None,
        violation_rate=last.score.violation_rate if last else None,
        window=(last.start, last.end) if last else None,
        partial=bool(last and last.partial),
        past=len(past),
        judged=len(full) if since is None else sum(1 for s in full if s >= since),
        since=since,
    )


@dataclass(frozen=True, slots=True)
class PartialWindow:
    start: float
    end: float
    count: int  # records the window was judged on


def headline(
    rows: list[SummaryRow], judged: tuple[float, float] | None, partial: list[PartialWindow]
) -> str:
    """One sentence for the terminal and the page's top: the judged window, what was past its
    threshold there and for how long, and the partial windows left out of the verdict."""
    if judged is None:
        if not partial:
            return "no closed window"
        head = f"no full window, only partial ones ({_windows(partial)}): judged on those"
    else:
        head = f"judged on the last full window, {iso(judged[0])} to {iso(judged[1])}"
    moved = [r for r in rows if r.latest_ratio > 1]
    found = (
        "moved past threshold: " + ", ".join(f"{r.feature} ({_since(r)})" for r in moved)
        if moved
        else "nothing past threshold"
    )
    later = [p for p in partial if judged is not None and p.start >= judged[1]]
    verb = "is" if len(later) == 1 else "are"
    tail = f"; {_windows(later)} {verb} partial: shown, not judged" if later else ""
    return f"{head}; {found}{tail}"


def _since(row: SummaryRow) -> str:
    if row.since is None:  # only partial windows moved, or an anomaly without a score point
        return f"{row.latest_ratio:.2f}x"
    return f"{row.latest_ratio:.2f}x; in {row.past} of {row.judged} windows since {iso(row.since)}"


def _windows(partial: list[PartialWindow]) -> str:
    """'the window X to Y (37 records)' or 'the 3 windows from X' (at least one)."""
    if len(partial) == 1:
        p = partial[0]
        return f"the window {iso(p.start)} to {iso(p.end)} ({p.count:,} records)"
    return f"the {len(partial)} windows from {iso(partial[0].start)}"
