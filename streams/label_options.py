"""Label settings -> the pure LabelOptions the Engine takes (None: labels are off)."""

from __future__ import annotations

from config.settings import LabelSettings
from detectors.labels.fairness import Fairness
from detectors.labels.monitor import LabelOptions


def label_options(s: LabelSettings) -> LabelOptions | None:
    if not s.enabled:
        return None
    f = s.fairness
    return LabelOptions(
        task=s.task,
        decision_threshold=s.decision_threshold,
        horizon=s.horizon_seconds,
        max_pending=s.max_pending,
        window_seconds=s.window_seconds,
        wait_seconds=s.wait_seconds,
        slice_key=s.slices.key,
        top_k=s.slices.top_k,
        groups=tuple(f.groups),
        fairness=Fairness(f.threshold, f.change_floor, f.min_labels, f.false_alarm_rate),
        reference_windows=f.reference_windows,
        budget=s.false_alarm_budget,
    )
