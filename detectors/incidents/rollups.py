"""Per model version and closed window, one roll-up: which monitored features had an alarm,
and their share of the features monitored. "3 of 12 features alarmed" reads differently from
"12 of 12" (a broken upstream join, a deploy): the roll-up says which it is.

Roll-ups are mergeable, like the statistics: the worker judges each feature apart, each owner
makes the roll-up of its own feature, and merging the parts gives the Engine's roll-up.

>>> a = RollUp("ctr", "3", 0.0, 60.0, ("price",), {"price": ["drift"]})
>>> b = RollUp("ctr", "3", 0.0, 60.0, ("age", "country"), {})
>>> m = a.merge(b)
>>> m.monitored, m.features_alarmed, m.share
(('age', 'country', 'price'), ['price'], 0.3333333333333333)
>>> m == b.merge(a)
True
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from detectors.anomaly import Anomaly


def rollup_id(model: str, version: str, window_start: float) -> str:
    text = "\x1f".join(["rollup", model, version, f"{window_start:.3f}"])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class RollUp:
    model: str
    version: str
    start: float
    end: float
    monitored: tuple[str, ...]  # the features judged in the window, sorted
    alarmed: dict[str, list[str]]  # feature (or unknown column) -> kinds of its alarms

    @property
    def id(self) -> str:
        return rollup_id(self.model, self.version, self.start)

    @property
    def features_alarmed(self) -> list[str]:
        """Monitored features with an alarm (unknown columns are listed in ``alarmed`` only)."""
        return sorted(set(self.alarmed) & set(self.monitored))

    @property
    def share(self) -> float:
        return len(self.features_alarmed) / len(self.monitored) if self.monitored else 0.0

    def merge(self, other: RollUp) -> RollUp:
        """Both parts' features and alarms. The end is the monitored parts' (the owner of
        unknown columns judges no feature and knows its window's end only roughly)."""
        kinds = {f: set(k) for f, k in self.alarmed.items()}
        for f, k in other.alarmed.items():
            kinds.setdefault(f, set()).update(k)
        ends = [r.end for r in (self, other) if r.monitored] or [self.end, other.end]
        return RollUp(
            self.model,
            self.version,
            min(self.start, other.start),
            max(ends),
            tuple(sorted({*self.monitored, *other.monitored})),
            {f: sorted(k) for f, k in sorted(kinds.items())},
        )

    def line(self) -> str:
        n, m = len(self.features_alarmed), len(self.monitored)
        which = f": {', '.join(self.features_alarmed)}" if n else ""
        return f"roll-up {self.model}/{self.version}: {n} of {m} features alarmed{which}"

    def to_plain(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "start": self.start,
            "end": self.end,
            "monitored": list(self.monitored),
            "alarmed": self.alarmed,
        }

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> RollUp:
        alarmed = {str(f): [str(k) for k in ks] for f, ks in data["alarmed"].items()}
        return cls(
            str(data["model"]),
            str(data["version"]),
            float(data["start"]),
            float(data["end"]),
            tuple(str(f) for f in data["monitored"]),
            alarmed,
        )


@dataclass(slots=True)
class RollUps:
    """The alarms of the windows not closed yet, per model version, by window start."""

    pending: dict[tuple[str, str], dict[float, dict[str, set[str]]]] = field(default_factory=dict)

    def alarmed(self, a: Anomaly) -> None:
        windows = self.pending.setdefault((a.model, a.model_version), {})
        windows.setdefault(a.window_start, {}).setdefault(a.feature, set()).add(a.kind)

    def close(
        self, model: str, version: str, start: float, end: float, monitored: tuple[str, ...]
    ) -> RollUp:
        """The closed window's roll-up: alarms of windows that started by ``start``."""
        windows = self.pending.get((model, version), {})
        kinds: dict[str, set[str]] = {}
        for ws in [w for w in windows if w <= start]:
            for feature, found in windows.pop(ws).items():
                kinds.setdefault(feature, set()).update(found)
        if not windows:
            self.pending.pop((model, version), None)
        alarmed = {f: sorted(k) for f, k in sorted(kinds.items())}
        return RollUp(model, version, start, end, tuple(sorted(monitored)), alarmed)

    def to_plain(self) -> list[list[Any]]:
        return [
            [m, v, ws, {f: sorted(k) for f, k in found.items()}]
            for (m, v), windows in self.pending.items()
            for ws, found in windows.items()
        ]

    @classmethod
    def from_plain(cls, rows: list[list[Any]]) -> RollUps:
        out = cls()
        for m, v, ws, found in rows:
            windows = out.pending.setdefault((str(m), str(v)), {})
            windows[float(ws)] = {str(f): {str(k) for k in ks} for f, ks in found.items()}
        return out


@dataclass(slots=True)
class PartialRollUps:
    """The worker's parts of one model version's recent windows (each stage-two owner makes
    its feature's part), merged until every expected feature's part is in. Merging is a union,
    so a part delivered twice changes nothing.

    >>> p = PartialRollUps()
    >>> part = RollUp("ctr", "3", 0.0, 60.0, ("price",), {"price": ["drift"]})
    >>> p.add(part, frozenset({"price", "age"})) is None
    True
    >>> p.add(RollUp("ctr", "3", 0.0, 60.0, ("age",), {}), frozenset({"price", "age"})).share
    0.5
    """

    parts: dict[float, RollUp] = field(default_factory=dict)
    keep: int = 16  # windows kept for parts still to come

    def add(self, part: RollUp, expected: frozenset[str]) -> RollUp | None:
        """The whole roll-up once every expected feature is in (again, when a late part of
        unknown columns changes it); None while parts are missing."""
        before = self.parts.get(part.start)
        merged = part if before is None else before.merge(part)
        self.parts[part.start] = merged
        for start in sorted(self.parts)[: -self.keep]:
            del self.parts[start]
        if not expected <= set(merged.monitored) or merged == before:
            return None
        return merged

    def to_plain(self) -> dict[str, Any]:
        return {"v": 1, "parts": [r.to_plain() for r in self.parts.values()]}

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> PartialRollUps:
        if data.get("v") != 1:
            raise ValueError(f"unknown roll-up state version {data.get('v')!r}")
        parts = [RollUp.from_plain(r) for r in data["parts"]]
        return cls({r.start: r for r in parts})
