"""Incidents, not pages: anomalies are evidence, an incident is what pages a person.

One incident per model, version, feature, kind of change and slice (``Anomaly.kind``, with
drift and distribution skew one change: ``CHANGES``). It opens
at the first alarm, every later alarm updates it (count, detectors, peak severity and effect,
the latest value and message), and it resolves once ``quiet_windows`` closed windows of its
model version passed without an alarm of its key. A later alarm opens a new incident, with a
new id: the id is a hash of the key and the opening window's start, so a replay of the same
anomalies rebuilds the same incidents and overwrites them instead of duplicating them.

Which windows count: feature windows (``WindowReport``) for schema_skew, distribution_skew,
drift and data_quality; windows of labels (``LabelReport``) for concept_drift and fairness,
since labels keep their own clock; windows of joined pipeline features (``SkewReport``) for
feature_skew. An anomaly whose severity is not low, medium, high or
critical ("info": an improvement) is kept on an open incident as evidence and opens none.

Pure and clock-free: time is the anomalies' and windows' event time. Feeding the same anomalies
and window closes again changes nothing (per key and detector, the newest window seen is kept).

>>> from detectors.anomaly import Anomaly
>>> def alarm(start, severity="medium", detector="jensen_shannon"):
...     return Anomaly("a%d" % start, start + 60, "drift", detector, severity, "ctr", "3",
...                    "price", 0.3, 0.1, start, start + 60, 1000, "price moved")
>>> t = IncidentTracker(IncidentOptions(quiet_windows=2))
>>> [c.action for c in t.apply([alarm(0)], [Close("ctr", "3", 0, 60)]).changes]
['opened']
>>> step = t.apply([alarm(60, "high")], [Close("ctr", "3", 60, 120)])
>>> [c.action for c in step.changes], step.changes[-1].incident.count
(['escalated'], 2)
>>> step = t.apply([], [Close("ctr", "3", 120, 180), Close("ctr", "3", 180, 240)])
>>> [(c.action, c.incident.severity, c.incident.resolved_at) for c in step.changes]
[('resolved', 'high', 240)]
>>> t.apply([alarm(0), alarm(60, "high")], []).changes  # a replay: nothing new
[]
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from detectors.anomaly import SEVERITIES, Anomaly
from detectors.incidents.rollups import RollUp, RollUps

PAGED = SEVERITIES[SEVERITIES.index("low") :]  # "info" (an improvement) never pages

STATE_VERSION = 1
LABEL_KINDS = frozenset({"concept_drift", "fairness"})
FEATURES, LABELS = "features", "labels"  # the two clocks windows close by ...
SKEW = "feature_skew"  # ... and the third: windows of joined serving and pipeline features
# A key, its slice as sorted "k=v" text: (model, version, feature, kind, slice)
Key = tuple[str, str, str, str, str]


def severity_rank(severity: str) -> int:
    """low 1 .. critical 4; anything else (an "info" improvement) 0, below low.

    >>> severity_rank("low"), severity_rank("critical"), severity_rank("info")
    (1, 4, 0)
    """
    return PAGED.index(severity) + 1 if severity in PAGED else 0


def clock_of(kind: str) -> str:
    """Whose closed windows count towards resolving an incident of ``kind``."""
    if kind == SKEW:
        return SKEW
    return LABELS if kind in LABEL_KINDS else FEATURES


def slice_text(slice_: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(slice_.items()))


# Kinds that are one change to the person paged: a distribution that moved away from training
# (skew) has moved between windows too (drift); both open one incident.
CHANGES = {"drift": "distribution_skew"}


def change_of(kind: str) -> str:
    return CHANGES.get(kind, kind)


def key_of(a: Anomaly) -> Key:
    return (a.model, a.model_version, a.feature, change_of(a.kind), slice_text(a.slice))


def incident_id(key: Key, opened_window: float) -> str:
    """Same key, same opening window, same id: replays overwrite."""
    text = "\x1f".join(["incident", *key, f"{opened_window:.3f}"])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def effect_of(a: Anomaly) -> float:
    """How far the statistic passed its threshold (statistic / threshold)."""
    return abs(a.statistic) / a.threshold if a.threshold > 0 else math.inf


@dataclass(frozen=True, slots=True)
class IncidentOptions:
    quiet_windows: int = 3  # closed windows without an alarm that resolve an incident
    max_keys: int = 10_000  # keys remembered without an open incident (replay guards)

    def __post_init__(self) -> None:
        if self.quiet_windows < 1:
            raise ValueError(f"quiet_windows must be at least 1, got {self.quiet_windows}")
        if self.max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, got {self.max_keys}")


@dataclass(frozen=True, slots=True)
class Close:
    """A closed window of one model version: ``clock`` says whose window it is (features or
    labels); ``monitored`` names the features it judged, for the roll-up (None: no roll-up)."""

    model: str
    version: str
    start: float
    end: float
    clock: str = FEATURES
    monitored: tuple[str, ...] | None = None


@dataclass(slots=True)
class Incident:
    id: str
    model: str
    version: str
    feature: str
    kind: str
    slice: dict[str, str]
    opened_at: float  # the first alarm's time
    opened_window: float  # the first alarm's window start (part of the id)
    first_anomaly: str
    severity: str  # the peak severity
    peak_effect: float
    escalated_at: float  # when the severity last rose (the opening, at first)
    last_anomaly: str = ""
    last_seen: float = -math.inf
    last_window: float = -math.inf  # newest window start with an alarm
    window_end: float = -math.inf
    count: int = 0
    detectors: list[str] = field(default_factory=list)
    statistic: float = 0.0
    threshold: float = 0.0
    message: str = ""
    current: dict[str, Any] = field(default_factory=dict)
    evidence: int = 0  # info anomalies recorded on it
    quiet: int = 0  # closed windows since the last alarm
    status: str = "open"
    resolved_at: float | None = None

    def line(self) -> str:
        """One readable line for a terminal: what opened or resolved."""
        where = f"{self.model}{f' v{self.version}' if self.version else ''}/{self.feature}"
        if self.slice:
            where += f" [{slice_text(self.slice)}]"
        head = f"incident {self.status:8} {self.severity.upper():8} {self.kind:17} {where}"
        if self.status == "resolved":
            alarms = f"{self.count} alarm{'s' if self.count != 1 else ''}"
            return f"{head}: quiet for {self.quiet} windows after {alarms}"
        return f"{head}: {self.message}"

    def to_plain(self) -> dict[str, Any]:
        plain = {name: getattr(self, name) for name in self.__slots__}
        return {
            k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in plain.items()
        }

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> Incident:
        inc = cls(**data)
        for name in ("peak_effect", "last_seen", "last_window", "window_end"):
            if getattr(inc, name) is None:
                setattr(inc, name, math.inf if name == "peak_effect" else -math.inf)
        return inc


@dataclass(frozen=True, slots=True)
class Change:
    action: str  # opened | updated | escalated | resolved
    incident: Incident  # a snapshot, safe to keep


@dataclass(slots=True)
class Step:
    changes: list[Change] = field(default_factory=list)
    rollups: list[RollUp] = field(default_factory=list)

    def incidents(self) -> list[Incident]:
        """The newest snapshot of every incident the step changed (what to upsert)."""
        return list({c.incident.id: c.incident for c in self.changes}.values())

    def extend(self, other: Step) -> None:
        self.changes += other.changes
        self.rollups += other.rollups


class IncidentTracker:
    def __init__(self, options: IncidentOptions = IncidentOptions()) -> None:
        self.options = options
        self.open: dict[Key, Incident] = {}
        self.marks: dict[Key, dict[str, float]] = {}  # newest window start per kind:detector
        self.floors: dict[Key, float] = {}  # alarms before it belong to a resolved incident
        self.closed: dict[tuple[str, str, str], float] = {}  # newest closed window end per clock
        self.rollups = RollUps()

    def apply(self, anomalies: Iterable[Anomaly], closes: Iterable[Close]) -> Step:
        """One step's anomalies and closed windows, in event-time order: a window's alarms (by
        time, then id; info last) before its close, its close before the next window's alarms.
        Any order within the step gives the same result."""
        Order = tuple[float, int, float, str]
        events: list[tuple[Order, Anomaly | Close]] = [
            ((a.window_start, 0 if severity_rank(a.severity) else 1, a.timestamp, a.id), a)
            for a in anomalies
        ]
        events += [((c.start, 2, c.end, c.clock), c) for c in closes]
        step = Step()
        for _, event in sorted(events, key=lambda e: e[0]):
            if isinstance(event, Close):
                step.extend(self.close(event))
            elif (change := self.alarm(event)) is not None:
                step.changes.append(change)
        return step

    def alarm(self, a: Anomaly) -> Change | None:
        key = key_of(a)
        marks = self.marks.setdefault(key, {})
        mark = f"{a.kind}:{a.detector}"  # one key holds drift and skew, both by jensen_shannon
        fresh = a.window_start > marks.get(mark, -math.inf)
        if a.window_start < self.floors.get(key, -math.inf):
            return None  # evidence of an incident already resolved
        marks[mark] = max(a.window_start, marks.get(mark, -math.inf))
        rank = severity_rank(a.severity)
        closed = self.closed.get((a.model, a.model_version, FEATURES), -math.inf)
        if (
            rank
            and fresh
            and clock_of(a.kind) == FEATURES
            and not a.slice
            and a.window_start >= closed
        ):
            self.rollups.alarmed(a)
        inc = self.open.get(key)
        if inc is None:
            if not rank or not fresh:
                return None
            inc = self.open[key] = _opened(key, a)
            return Change("opened", copy.deepcopy(inc))
        before = (inc.count, inc.evidence, inc.severity, inc.peak_effect, inc.last_seen)
        action = _update(inc, a, rank, fresh)
        if before == (inc.count, inc.evidence, inc.severity, inc.peak_effect, inc.last_seen):
            return None
        return Change(action, copy.deepcopy(inc))

    def close(self, c: Close) -> Step:
        where = (c.model, c.version, c.clock)
        if c.end <= self.closed.get(where, -math.inf):
            return Step()  # seen already
        self.closed[where] = c.end
        step = Step()
        if c.clock == FEATURES and c.monitored is not None:
            step.rollups.append(self.rollups.close(c.model, c.version, c.start, c.end, c.monitored))
        for key, inc in list(self.open.items()):
            if (inc.model, inc.version, clock_of(inc.kind)) != where:
                continue
            inc.quiet = 0 if inc.last_window >= c.start else inc.quiet + 1
            if inc.quiet >= self.options.quiet_windows:
                inc.status, inc.resolved_at = "resolved", c.end
                del self.open[key]
                self.floors[key] = c.end
                step.changes.append(Change("resolved", copy.deepcopy(inc)))
        self._bound()
        return step

    def _bound(self) -> None:
        """Keys without an open incident are remembered (replay guards) up to ``max_keys``;
        the ones resolved longest ago go first."""
        idle = [k for k in self.marks if k not in self.open]
        excess = len(idle) - self.options.max_keys
        if excess > 0:
            for key in sorted(idle, key=lambda k: self.floors.get(k, -math.inf))[:excess]:
                self.marks.pop(key, None)
                self.floors.pop(key, None)

    def to_plain(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "open": [inc.to_plain() for inc in self.open.values()],
            "marks": [[list(k), m] for k, m in self.marks.items()],
            "floors": [[list(k), f] for k, f in self.floors.items()],
            "closed": [[*w, end] for w, end in self.closed.items()],
            "rollups": self.rollups.to_plain(),
        }

    @classmethod
    def from_plain(cls, options: IncidentOptions, data: dict[str, Any]) -> IncidentTracker:
        """The tracker a ``to_plain`` described; raises ValueError for another version."""
        if data.get("v") != STATE_VERSION:
            raise ValueError(f"unknown incident state version {data.get('v')!r}")
        t = cls(options)
        for plain in data["open"]:
            inc = Incident.from_plain(plain)
            key = (inc.model, inc.version, inc.feature, change_of(inc.kind), slice_text(inc.slice))
            t.open[key] = inc
        t.marks = {_key(k): {d: float(w) for d, w in m.items()} for k, m in data["marks"]}
        t.floors = {_key(k): float(f) for k, f in data["floors"]}
        t.closed = {(str(m), str(v), str(c)): float(e) for m, v, c, e in data["closed"]}
        t.rollups = RollUps.from_plain(data["rollups"])
        return t


def _key(plain: Sequence[Any]) -> Key:
    model, version, feature, kind, slice_ = (str(x) for x in plain)
    return (model, version, feature, kind, slice_)


def _opened(key: Key, a: Anomaly) -> Incident:
    inc = Incident(
        id=incident_id(key, a.window_start),
        model=a.model,
        version=a.model_version,
        feature=a.feature,
        kind=a.kind,
        slice=dict(a.slice),
        opened_at=a.timestamp,
        opened_window=a.window_start,
        first_anomaly=a.id,
        severity=a.severity,
        peak_effect=effect_of(a),
        escalated_at=a.timestamp,
    )
    _update(inc, a, severity_rank(a.severity), True)
    return inc


def _update(inc: Incident, a: Anomaly, rank: int, fresh: bool) -> str:
    """Fold one alarm in; every field is a count of fresh alarms or a maximum, so the same
    alarm twice changes nothing. Returns the change's name."""
    if not rank:
        inc.evidence += fresh
        return "updated"
    action = "updated"
    if fresh:
        inc.count += 1
        inc.quiet = 0
    if rank > severity_rank(inc.severity):
        inc.severity, inc.escalated_at, action = a.severity, a.timestamp, "escalated"
    inc.peak_effect = max(inc.peak_effect, effect_of(a))
    inc.detectors = sorted({*inc.detectors, a.detector})
    inc.last_window = max(inc.last_window, a.window_start)
    inc.window_end = max(inc.window_end, a.window_end)
    if (a.timestamp, a.id) >= (inc.last_seen, inc.last_anomaly):
        inc.last_seen, inc.last_anomaly = a.timestamp, a.id
        inc.statistic, inc.threshold, inc.message = a.statistic, a.threshold, a.message
        inc.current = dict(a.current)
    return action
