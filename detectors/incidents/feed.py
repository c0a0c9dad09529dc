"""What feeds the incident tracker, from what each path already produces: one function for
the Engine's ``Result`` (the embedded runner, ``logdrift check``, the demo) and one for the
worker's per-feature and per-model owners. Both end in ``IncidentTracker.apply``.

>>> from detectors.engine import Result

>>> from detectors.window_report import WindowReport
>>> from detectors.incidents.tracker import IncidentTracker
>>> r = Result(reports=[WindowReport("ctr", "3", 0.0, 60.0, 500, 0, [], [])])
>>> [(c.start, c.clock, c.monitored) for c in engine_closes(r)]
[(0.0, 'features', ())]
>>> track(IncidentTracker(), r).rollups[0].share
0.0
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from detectors.engine import Result
from detectors.incidents.tracker import FEATURES, LABELS, SKEW, Close, IncidentTracker, Step
from detectors.labels.monitor import LabelReport
from detectors.window_report import WindowReport


def engine_closes(result: Result) -> list[Close]:
    """Every window a step closed: feature windows (all of a model's features at once, so the
    roll-up is whole), windows of labels and windows of feature skew."""
    closes = [
        Close(r.model, r.version, r.start, r.end, FEATURES, tuple(s.feature for s in r.scores))
        for r in result.reports
    ]
    closes += [Close(r.model, r.version, r.start, r.end, LABELS) for r in result.labels]
    closes += [Close(r.model, r.version, r.start, r.end, SKEW) for r in result.skew]
    return closes


def track(tracker: IncidentTracker, result: Result) -> Step:
    """The Engine's step, into the tracker."""
    return tracker.apply(result.anomalies, engine_closes(result))


def feature_closes(
    reports: Iterable[WindowReport], feature: str, monitored: bool = True
) -> list[Close]:
    """Windows one stage-two owner closed, for its feature alone: its part of the roll-up
    (``monitored`` False for the owner of columns the schema does not know)."""
    part = (feature,) if monitored else ()
    return [Close(r.model, r.version, r.start, r.end, FEATURES, part) for r in reports]


def label_closes(
    reports: Sequence[LabelReport], sliced: Iterable[tuple[str, str, float, float]] = ()
) -> list[Close]:
    """Windows the label judge closed: windows of labels, and (slices on) per-slice feature
    windows, (model, version, start, end), which count for sliced feature incidents only."""
    closes = [Close(r.model, r.version, r.start, r.end, LABELS) for r in reports]
    closes += [Close(m, v, s, e, FEATURES) for m, v, s, e in sliced]
    return closes
