"""Incidents as a specification: what opens, updates, escalates and resolves one, and that
replays rebuild the same incidents."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.anomaly import Anomaly, anomaly_id
from detectors.incidents.tracker import (
    FEATURES,
    LABELS,
    Close,
    IncidentOptions,
    IncidentTracker,
    incident_id,
    key_of,
    severity_rank,
)

W = 60.0


def alarm(
    window: int,
    *,
    feature: str = "price",
    kind: str = "drift",
    detector: str = "jensen_shannon",
    severity: str = "medium",
    statistic: float = 0.3,
    threshold: float = 0.1,
    slice_: dict[str, str] | None = None,
    model: str = "ctr",
    message: str = "",
) -> Anomaly:
    start = window * W
    return Anomaly(
        id=anomaly_id(model, "3", feature, kind, detector, start, slice_),
        timestamp=start + W,
        kind=kind,
        detector=detector,
        severity=severity,
        model=model,
        model_version="3",
        feature=feature,
        statistic=statistic,
        threshold=threshold,
        window_start=start,
        window_end=start + W,
        window_count=1000,
        message=message or f"{feature} moved in window {window}",
        slice=slice_ or {},
    )


def close(window: int, clock: str = FEATURES, model: str = "ctr") -> Close:
    monitored = ("age", "country", "price") if clock == FEATURES else None
    return Close(model, "3", window * W, (window + 1) * W, clock, monitored)


def run(tracker: IncidentTracker, windows: int, alarms: dict[int, list[Anomaly]]) -> list[str]:
    """Windows 0..windows-1, each with its alarms then its close; the actions, in order."""
    actions = []
    for w in range(windows):
        step = tracker.apply(alarms.get(w, []), [close(w)])
        actions += [c.action for c in step.changes]
    return actions


def test_the_first_alarm_opens_an_incident_keeping_its_time_and_anomaly() -> None:
    t = IncidentTracker()
    a = alarm(5)
    (change,) = t.apply([a], []).changes
    inc = change.incident
    assert change.action == "opened"
    assert (inc.opened_at, inc.opened_window, inc.first_anomaly) == (6 * W, 5 * W, a.id)
    assert (inc.status, inc.count, inc.severity, inc.detectors) == (
        "open",
        1,
        "medium",
        [a.detector],
    )
    assert inc.id == incident_id(key_of(a), 5 * W)
    assert inc.peak_effect == pytest.approx(3.0)


def test_later_alarms_update_count_detectors_peaks_and_the_latest_value() -> None:
    t = IncidentTracker()
    t.apply([alarm(0, statistic=0.5)], [close(0)])
    step = t.apply(
        [
            alarm(1, detector="psi", statistic=0.2, message="psi said so"),
            alarm(1, detector="adwin", severity="critical", statistic=-2.0, threshold=0.2),
        ],
        [close(1)],
    )
    inc = step.incidents()[0]
    assert inc.count == 3
    assert inc.detectors == ["adwin", "jensen_shannon", "psi"]
    assert inc.severity == "critical"  # the incident's severity is its peak
    assert inc.peak_effect == pytest.approx(10.0)  # |statistic| / threshold
    assert [c.action for c in step.changes] == ["updated", "escalated"]
    assert inc.escalated_at == 2 * W
    # the latest alarm: the newest time, then the larger id among alarms of the same time
    latest = max((alarm(1, detector=d) for d in ("psi", "adwin")), key=lambda a: a.id)
    assert (inc.last_seen, inc.last_anomaly, inc.message) == (2 * W, latest.id, latest.message)
    assert inc.last_window == 1 * W


def test_a_lower_severity_later_never_lowers_the_peak() -> None:
    t = IncidentTracker()
    t.apply([alarm(0, severity="high")], [close(0)])
    (change,) = t.apply([alarm(1, severity="low", message="small now")], []).changes
    assert change.action == "updated"
    assert change.incident.severity == "high"
    assert change.incident.message == "small now"  # the latest message, not the peak's


def test_it_resolves_after_quiet_windows_closed_windows_without_an_alarm() -> None:
    t = IncidentTracker(IncidentOptions(quiet_windows=3))
    actions = run(t, 6, {0: [alarm(0)], 1: [alarm(1)]})
    assert actions == ["opened", "updated", "resolved"]
    assert not t.open
    # windows 2, 3 and 4 were quiet: resolved at the end of window 4
    t2 = IncidentTracker(IncidentOptions(quiet_windows=3))
    resolved = []
    for w in range(6):
        resolved += [c for c in t2.apply([alarm(w)] if w < 2 else [], [close(w)]).changes]
    (last,) = [c.incident for c in resolved if c.action == "resolved"]
    assert (last.resolved_at, last.quiet, last.count) == (5 * W, 3, 2)


def test_a_change_that_lasts_is_one_incident_whatever_the_number_of_windows() -> None:
    t = IncidentTracker()
    alarms = {w: [alarm(w), alarm(w, detector="psi")] for w in range(100)}
    actions = run(t, 100, alarms)
    assert actions.count("opened") == 1
    assert len({inc.id for inc in t.open.values()}) == 1
    assert next(iter(t.open.values())).count == 200


def test_an_alarm_after_resolution_opens_a_new_incident_with_a_new_id() -> None:
    t = IncidentTracker(IncidentOptions(quiet_windows=2))
    opened = []
    for w in range(10):
        step = t.apply([alarm(w)] if w in (0, 7) else [], [close(w)])
        opened += [c.incident.id for c in step.changes if c.action == "opened"]
    assert len(opened) == 2 and opened[0] != opened[1]
    assert opened[1] == incident_id(key_of(alarm(7)), 7 * W)


def test_one_incident_per_feature_and_kind_and_slices_are_their_own() -> None:
    t = IncidentTracker()
    step = t.apply(
        [
            alarm(0),
            alarm(0, kind="distribution_skew"),  # the same change as the drift: one incident
            alarm(0, kind="data_quality"),
            alarm(0, feature="age"),
            alarm(0, slice_={"category": "shoes"}),
            alarm(0, slice_={"category": "hats"}),
            alarm(0, slice_={"category": "shoes"}, detector="psi"),
        ],
        [],
    )
    assert [c.action for c in step.changes].count("opened") == 5
    (price,) = [
        i for i in step.incidents() if (i.feature, i.kind, i.slice) == ("price", "drift", {})
    ]
    assert price.count == 2 and not price.slice  # drift and skew of price
    shoes = [i for i in step.incidents() if i.slice == {"category": "shoes"}]
    assert len(shoes) == 1 and shoes[0].count == 2


def test_info_anomalies_are_evidence_and_never_open_an_incident() -> None:
    t = IncidentTracker()
    assert t.apply([alarm(0, severity="info", kind="concept_drift")], []).changes == []
    assert not t.open
    t.apply([alarm(1)], [])
    (change,) = t.apply([alarm(1, severity="info", detector="psi")], []).changes
    inc = change.incident
    assert (inc.evidence, inc.count, inc.severity) == (1, 1, "medium")
    assert severity_rank("whatever-comes-next") == 0


def test_info_alarms_do_not_keep_an_incident_open() -> None:
    t = IncidentTracker(IncidentOptions(quiet_windows=2))
    alarms = {0: [alarm(0)]} | {w: [alarm(w, severity="info")] for w in range(1, 5)}
    # evidence in windows 1 and 2, and still resolved at the close of window 2
    assert run(t, 5, alarms) == ["opened", "updated", "updated", "resolved"]


def test_label_kinds_resolve_by_windows_of_labels_not_feature_windows() -> None:
    t = IncidentTracker(IncidentOptions(quiet_windows=2))
    t.apply([alarm(0, kind="concept_drift", feature="error")], [])
    for w in range(5):
        assert not t.apply([], [close(w)]).changes  # feature windows: not its clock
    step = t.apply([], [close(1, LABELS), close(2, LABELS)])
    assert [c.action for c in step.changes] == ["resolved"]


def test_the_same_alarms_and_windows_again_change_nothing() -> None:
    t = IncidentTracker(IncidentOptions(quiet_windows=2))
    alarms = {0: [alarm(0)], 1: [alarm(1, severity="high")], 6: [alarm(6)]}
    run(t, 8, alarms)
    before = json.dumps(t.to_plain(), sort_keys=True)
    replay = [a for found in alarms.values() for a in found]
    assert t.apply(replay, [close(w) for w in range(8)]).changes == []
    assert json.dumps(t.to_plain(), sort_keys=True) == before


def test_the_order_within_a_step_does_not_matter() -> None:
    events = [alarm(0), alarm(0, detector="psi", severity="high"), alarm(1)]
    a, b = IncidentTracker(), IncidentTracker()
    a.apply(events, [close(0), close(1)])
    b.apply(list(reversed(events)), [close(1), close(0)])
    assert a.to_plain() == b.to_plain()


def test_the_plain_round_trip_keeps_everything_and_goes_on_the_same() -> None:
    t = IncidentTracker(IncidentOptions(quiet_windows=3))
    run(t, 3, {0: [alarm(0, threshold=0.0)], 1: [alarm(1, slice_={"c": "x"})]})
    plain = json.loads(json.dumps(t.to_plain()))  # through JSON, as in a changelog
    back = IncidentTracker.from_plain(t.options, plain)
    assert back.to_plain() == t.to_plain()
    assert math.isinf(back.open[key_of(alarm(0))].peak_effect)  # a threshold of 0
    later_a = t.apply([], [close(3), close(4)])
    later_b = back.apply([], [close(3), close(4)])
    assert [c.action for c in later_a.changes] == ["resolved", "resolved"]
    assert [c.incident.to_plain() for c in later_a.changes] == [
        c.incident.to_plain() for c in later_b.changes
    ]
    with pytest.raises(ValueError, match="version"):
        IncidentTracker.from_plain(t.options, {**plain, "v": 99})


def test_the_rollup_counts_monitored_features_with_an_alarm_in_the_window() -> None:
    t = IncidentTracker()
    step = t.apply(
        [
            alarm(0),
            alarm(0, detector="psi"),
            alarm(0, feature="age", kind="data_quality"),
            alarm(0, feature="unknown_col", kind="schema_skew"),
            alarm(0, feature="country", slice_={"c": "x"}),
            alarm(0, severity="info"),
            alarm(1, feature="country"),  # the next window's
        ],
        [close(0)],
    )
    (r,) = step.rollups
    assert r.features_alarmed == ["age", "price"]
    assert r.alarmed["unknown_col"] == ["schema_skew"]
    assert r.share == pytest.approx(2 / 3)
    (r1,) = t.apply([], [close(1)]).rollups
    assert r1.features_alarmed == ["country"]


def test_options_are_validated_naming_the_parameter() -> None:
    with pytest.raises(ValueError, match="quiet_windows"):
        IncidentOptions(quiet_windows=0)


def test_kept_keys_are_bounded() -> None:
    t = IncidentTracker(IncidentOptions(quiet_windows=1, max_keys=5))
    for w in range(40):
        t.apply([alarm(w, feature=f"col{w}", kind="schema_skew")], [close(w)])
    assert len(t.marks) <= 6 and len(t.floors) <= 6


windows = st.lists(
    st.lists(
        st.tuples(
            st.sampled_from(["price", "age"]),
            st.sampled_from(["drift", "distribution_skew", "concept_drift"]),
            st.sampled_from(["jensen_shannon", "psi", "adwin"]),
            st.sampled_from(["info", "low", "medium", "high", "critical"]),
            st.floats(0.0, 5.0),
        ),
        max_size=4,
    ),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(windows, st.integers(1, 4))
def test_feeding_the_same_anomalies_twice_changes_nothing(
    plan: list[list[tuple[str, str, str, str, float]]], quiet: int
) -> None:
    t = IncidentTracker(IncidentOptions(quiet_windows=quiet))
    fed = []
    for w, found in enumerate(plan):
        alarms = [
            alarm(w, feature=f, kind=k, detector=d, severity=s, statistic=x)
            for f, k, d, s, x in found
        ]
        fed += alarms
        t.apply(alarms, [close(w), close(w, LABELS)])
        before = json.dumps(t.to_plain(), sort_keys=True)
        assert t.apply(alarms, []).changes == []  # the same step's alarms again
        assert t.apply(fed, []).changes == []  # every alarm so far again
        assert json.dumps(t.to_plain(), sort_keys=True) == before
