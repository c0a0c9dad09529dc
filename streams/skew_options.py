"""Feature-skew settings -> the pure SkewOptions the Engine takes (None: feature skew is off)."""

from __future__ import annotations

from config.settings import FeatureSkewSettings
from detectors.skew.monitor import SkewOptions


def skew_options(s: FeatureSkewSettings) -> SkewOptions | None:
    if not s.enabled:
        return None
    return SkewOptions(
        window_seconds=s.window_seconds,
        wait_seconds=s.wait_seconds,
        horizon=s.horizon_seconds,
        max_pending=s.max_pending,
    )


def skew_options_for_check(s: FeatureSkewSettings) -> SkewOptions:
    """`logdrift check --pipeline` checks feature skew whatever ``enabled`` says; the rest of
    the section applies."""
    found = skew_options(s.model_copy(update={"enabled": True}))
    assert found is not None
    return found
