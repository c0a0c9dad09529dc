"""The baseline as the engine uses it: schema and profile joined per feature, with reference
frequencies precomputed once so the per-event path does no work it could do at start."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from detectors.baseline.null_levels import NullLevels, Seasons
from detectors.baseline.profile import FeatureProfile, Profile, category_text
from detectors.baseline.schema import PREDICTION, FeatureSpec, Schema, Thresholds
from detectors.baseline.scores import ScoreMap
from detectors.privacy import keyed_hash
from detectors.stats import OTHER, BinCounts, CategoryCounts, FeatureWindow
from detectors.validate import Checked, check_value

NEW_CATEGORY_CAP = 32
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FeatureReference:
    name: str
    spec: FeatureSpec
    thresholds: Thresholds
    profile: FeatureProfile
    edges: tuple[float, ...]
    bin_probs: tuple[float, ...]
    categories: tuple[str, ...]
    category_probs: dict[str, float]
    missing_rate: float
    null: NullLevels = NullLevels()  # noqa: RUF009 (frozen: one shared empty table is safe)
    seasons: Seasons = Seasons()  # noqa: RUF009
    scores: ScoreMap | None = None

    @property
    def numeric(self) -> bool:
        return self.spec.numeric

    @property
    def mean(self) -> float:
        return self.profile.numeric.mean if self.profile.numeric else math.nan

    @property
    def std(self) -> float:
        return self.profile.numeric.std if self.profile.numeric else math.nan

    def empty_window(self) -> FeatureWindow:
        if self.numeric:
            return FeatureWindow(bins=BinCounts.zero(self.edges))
        return FeatureWindow(categories=CategoryCounts.zero(self.categories, NEW_CATEGORY_CAP))


def smoothed(probs: list[float], n: int) -> tuple[float, ...]:
    """Add half a pseudo-count per bin: a bin empty in training is rare, not impossible."""
    k = len(probs)
    return tuple((p * n + 0.5) / (n + 0.5 * k) for p in probs)


def _hashed(values: dict[str, float], key: bytes) -> dict[str, float]:
    """A feature marked sensitive after profiling still has raw categories: hash them now."""
    return {v if v.startswith("h:") else keyed_hash(key, v): p for v, p in values.items()}


def _reference(name: str, schema: Schema, profile: FeatureProfile, key: bytes) -> FeatureReference:
    spec = schema.spec(name)
    valid = profile.count - profile.missing
    edges: tuple[float, ...] = ()
    bin_probs: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()
    category_probs: dict[str, float] = {}
    if spec.numeric:
        if profile.numeric is None:
            raise ValueError(
                f"feature {name!r}: schema says {spec.type} but the profile has no "
                "numeric statistics; rebuild the baseline"
            )
        edges = tuple(profile.numeric.edges)
        bin_probs = smoothed(profile.numeric.frequencies, valid)
    else:
        cat = profile.categorical
        if cat is None:
            raise ValueError(
                f"feature {name!r}: schema says {spec.type} but the profile has no "
                "category statistics; rebuild the baseline"
            )
        freqs = _hashed(cat.frequencies, key) if spec.sensitive else cat.frequencies
        domain = set(spec.domain or ())
        if spec.sensitive:
            domain = set(_hashed(dict.fromkeys(domain, 0.0), key))
            spec = spec.model_copy(update={"domain": sorted(domain) if spec.domain else None})
        categories = tuple(sorted(set(freqs) | domain))
        category_probs = {k: freqs.get(k, 0.0) for k in categories}
        category_probs[OTHER] = cat.other
    return FeatureReference(
        name=name,
        spec=spec,
        thresholds=schema.thresholds_for(name),
        profile=profile,
        edges=edges,
        bin_probs=bin_probs,
        categories=categories,
        category_probs=category_probs,
        missing_rate=(profile.missing + 1) / (profile.count + 2),
        null=_stored(name, "null_levels", NullLevels.from_json, profile.null_levels)
        or NullLevels(),
        seasons=_seasons(name, profile, spec.sensitive, key),
        scores=_stored(name, "scores", ScoreMap.from_json, profile.scores)
        if spec.numeric
        else None,
    )


def _seasons(name: str, profile: FeatureProfile, sensitive: bool, key: bytes) -> Seasons:
    seasons = _stored(name, "seasons", Seasons.from_json, profile.seasons) or Seasons()
    if not sensitive or not seasons.values:
        return seasons
    hashed = {  # marked sensitive after profiling: its categories are keyed hashes by now
        (v if v.startswith("h:") or v == OTHER else keyed_hash(key, v)): t
        for v, t in seasons.values.items()
    }
    return Seasons(seasons.seconds, seasons.excess, hashed)


def _stored(name: str, key: str, read: Callable[[Any], T], data: Any) -> T | None:
    """A table of profile.json read with an error that names the feature and key."""
    try:
        return read(data) if data else None
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"profile.json: features.{name}.{key}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Baseline:
    schema: Schema
    profile: Profile
    privacy_key: bytes
    references: dict[str, FeatureReference]

    @classmethod
    def of(cls, schema: Schema, profile: Profile, privacy_key: bytes) -> Baseline:
        refs = {}
        for name in schema.monitored():
            if name not in profile.features:
                raise ValueError(
                    f"feature {name!r} is in the schema but not in the profile; "
                    "rebuild the baseline or remove it from schema.yaml"
                )
            refs[name] = _reference(name, schema, profile.features[name], privacy_key)
        return cls(schema, profile, privacy_key, refs)

    @property
    def model(self) -> str | None:
        return self.schema.model

    def sensitive(self, name: str) -> bool:
        return self.references[name].spec.sensitive

    def check(self, ref: FeatureReference, value: object) -> Checked:
        """``value`` checked against ``ref``'s spec; a sensitive category comes out as its keyed
        hash, so no raw sensitive value goes further."""
        text = None
        if ref.spec.sensitive and isinstance(value, str | bool):
            text = keyed_hash(self.privacy_key, category_text(value))
        return check_value(ref.name, ref.spec, value, text)


__all__ = ["PREDICTION", "Baseline", "FeatureReference"]
