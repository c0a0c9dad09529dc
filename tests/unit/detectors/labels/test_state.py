"""The label judge's state survives its changelog: a monitor restored from a snapshot at any
point goes on to raise exactly the anomalies and reports of one never interrupted; parameters
come from the options; a snapshot it cannot use gives a fresh monitor (or a fresh detector) and
a note, never an exception."""

from __future__ import annotations

import dataclasses
import heapq
import json
import math
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from detectors.anomaly import Anomaly
from detectors.labels.monitor import ALL, LabelMonitor, LabelOptions, LabelStats
from detectors.labels.state import from_plain, to_plain
from detectors.records import FeedbackRecord

T0 = 1_800_000_000.0
MODEL = ("ctr", "3")
OPTIONS = LabelOptions(
    window_seconds=60, wait_seconds=120, slice_key="category", top_k=3, groups=("gender",)
)
CATEGORIES, WEIGHTS = ("shoes", "hats", "socks", "bags", "belts"), (4, 3, 3, 1, 1)

Step = tuple[str, Any]


def stream(n: int = 24_000, seed: int = 3) -> Iterator[Step]:
    """Predictions at 20/s and the worker's watermark every 2.5 s. Nine in ten are labelled:
    most 20 s later, every third 90 s later, one in a hundred 400 s later (after its window was
    judged: a late label). From the middle on, 60% of the labels of gender=f and 30% of those of
    shoes are flipped: concept drift in the model and its slices, and unfairness to f.

    The sketch of a window sees two delays because it compacts at random: a quantile is the
    same from run to run only where it sits on a plateau of the distribution."""
    rng = random.Random(seed)
    waiting: list[tuple[float, int, Step]] = []
    for i in range(n):
        ts = T0 + i / 20
        category, gender = rng.choices(CATEGORIES, WEIGHTS)[0], rng.choice("fm")
        score = rng.random()
        yield "predicted", (ts, category, (gender,))
        label = float(rng.random() < score)
        flip = 0.6 if gender == "f" else 0.3 if category == "shoes" else 0.0
        if i > n // 2 and rng.random() < flip:
            label = 1.0 - label
        delay = 400 if i % 100 == 7 else 90 if i % 3 == 0 else 20
        if i % 10 != 5:
            labelled = ("labelled", (ts, score, category, (gender,), ts + delay, label))
            heapq.heappush(waiting, (ts + delay, i, labelled))
        while waiting and waiting[0][0] <= ts:
            yield heapq.heappop(waiting)[2]
        if i % 50 == 0:
            yield "advance", ts


def apply(m: LabelMonitor, step: Step) -> list[object]:
    """One step the way the worker's judge takes it; the anomalies and reports it gives."""
    kind, args = step
    if kind == "predicted":
        ts, category, groups = args
        m.predicted(MODEL, ts, m.slice_label(category), groups)
        return []
    if kind == "labelled":
        at, score, category, groups, label_ts, value = args
        label = FeedbackRecord(label_ts, "", value)
        return list(m.labelled(MODEL, at, score, m.known_slice(category), groups, label).anomalies)
    result = m.advance_to(args)
    return [*result.anomalies, *result.reports]


def through_json(m: LabelMonitor) -> LabelMonitor:
    restored, notes = from_plain(OPTIONS, json.loads(json.dumps(to_plain(m))))
    assert notes == []
    return restored


def fed(steps: list[Step], fraction: float) -> LabelMonitor:
    m = LabelMonitor(OPTIONS)
    for s in steps[: int(len(steps) * fraction)]:
        apply(m, s)
    return m


@pytest.fixture(scope="module")
def steps() -> list[Step]:
    return list(stream())


@pytest.fixture(scope="module")
def uninterrupted(steps: list[Step]) -> tuple[list[list[object]], LabelStats]:
    m = LabelMonitor(OPTIONS)
    return [apply(m, s) for s in steps], m.stats


@pytest.fixture(scope="module")
def plain(steps: list[Step]) -> dict[str, Any]:
    """A snapshot after the change began: windows open, references complete, detectors busy."""
    return to_plain(fed(steps, 0.6))


# What the stream raises: ADWIN on the model (at 0.54 of the steps), on shoes (0.58), socks
# (0.61) and hats (0.69); DDM on the model (0.695) and on shoes (0.72); both fairness detectors
# for f in every window judged from 0.64 on (the change one against the reference windows).
ADWIN, DDM, GAP, MOVED = "adwin", "ddm", "error_rate_disparity", "error_rate_disparity_change"
EVERYTHING = {(ADWIN, ALL), (ADWIN, "shoes"), (DDM, ALL), (DDM, "shoes"), (GAP, "f"), (MOVED, "f")}
CUTS = {
    "before the first window is judged": ((0.1,), EVERYTHING),
    "at the change": ((0.5,), EVERYTHING),
    "after two ADWIN alarms, DDM on its way": (
        (0.6,),
        {(ADWIN, "socks"), (DDM, ALL), (DDM, "shoes"), (GAP, "f"), (MOVED, "f")},
    ),
    "between the DDM alarms": ((0.7,), {(DDM, "shoes"), (GAP, "f"), (MOVED, "f")}),
    "a worker that keeps crashing": ((0.2, 0.5, 0.56, 0.65, 0.7), EVERYTHING),
}


@pytest.mark.parametrize(("cuts", "raised_after"), CUTS.values(), ids=CUTS.keys())
def test_a_restored_monitor_goes_on_exactly_as_one_never_interrupted(
    steps: list[Step],
    uninterrupted: tuple[list[list[object]], LabelStats],
    cuts: tuple[float, ...],
    raised_after: set[tuple[str, str]],
) -> None:
    expected, stats = uninterrupted
    at = [int(len(steps) * c) for c in cuts]
    m = LabelMonitor(OPTIONS)
    out = []
    for i, s in enumerate(steps):
        if i in at:
            m = through_json(m)
        out.append(apply(m, s))
    assert out[at[0] :] == expected[at[0] :]  # anomalies field by field, reports with latency
    assert m.stats == stats and m.stats.late_labels > 0
    after = [a for found in out[at[0] :] for a in found if isinstance(a, Anomaly)]
    where = {(a.detector, next(iter(a.slice.values()), ALL)) for a in after}
    assert where >= raised_after


def test_the_snapshot_is_plain_json_and_restores_to_the_same_state(steps: list[Step]) -> None:
    m = fed(steps, 0.6)
    plain = to_plain(m)
    assert json.loads(json.dumps(plain)) == plain  # no tuples, no non-str keys, no objects
    restored, notes = from_plain(OPTIONS, plain)
    assert notes == [] and to_plain(restored) == plain
    assert restored._next_close == m._next_close and restored.buckets.keys() == m.buckets.keys()
    labelled = [(k, b.latency) for k, b in m.buckets.items() if not b.latency.is_empty()]
    assert labelled
    for key, sketch in labelled:
        copy, ranks = restored.buckets[key].latency, [0.1, 0.5, 0.9]
        assert copy.n == sketch.n and copy.get_quantiles(ranks) == sketch.get_quantiles(ranks)


def test_a_fresh_monitor_round_trips_with_its_watermark_at_minus_infinity() -> None:
    restored = through_json(LabelMonitor(OPTIONS))
    assert restored.watermark == -math.inf and restored._next_close == math.inf


def test_parameters_come_from_the_options_not_the_snapshot(plain: dict[str, Any]) -> None:
    later = dataclasses.replace(OPTIONS, wait_seconds=600, decision_threshold=0.7)
    restored, notes = from_plain(later, plain)
    assert notes == [] and restored.options is later
    assert restored._next_close == min(b.end for b in restored.buckets.values()) + 600


@pytest.mark.parametrize("data", [{"v": 99}, {"v": None}, {}, ["not", "a", "dict"]])
def test_a_snapshot_of_another_version_gives_a_fresh_monitor_and_a_note(data: Any) -> None:
    m, notes = from_plain(OPTIONS, data)
    assert len(notes) == 1 and "version" in notes[0]
    assert not m.buckets and m.watermark == -math.inf


@pytest.mark.parametrize(
    "other",
    [
        dataclasses.replace(OPTIONS, groups=("age",)),
        dataclasses.replace(OPTIONS, window_seconds=300),
        dataclasses.replace(OPTIONS, slice_key=None),
        dataclasses.replace(OPTIONS, task="regression"),
    ],
)
def test_a_snapshot_kept_under_options_of_another_shape_gives_a_fresh_monitor(
    plain: dict[str, Any], other: LabelOptions
) -> None:
    m, notes = from_plain(other, plain)
    assert notes == ["label state was kept under other options: fresh"] and not m.buckets


def _flip_latency_bytes(p: dict[str, Any]) -> None:
    text = p["buckets"][0]["latency"]
    p["buckets"][0]["latency"] = text[:40] + ("A" if text[40] != "A" else "B") + text[41:]


DAMAGES: dict[str, Callable[[dict[str, Any]], None]] = {
    "a bucket without its counts": lambda p: p["buckets"][0].pop("overall"),
    "latency bytes changed (they could crash the sketch)": _flip_latency_bytes,
    "a model id never interned": lambda p: p["buckets"][0].update(model=7),
    "a histogram of the wrong length": lambda p: p["buckets"][0]["overall"]["positives"].pop(),
    "a negative count": lambda p: p["reference"][0].update(count=-1),
    "a count that is text": lambda p: p["slice_keys"]["counts"].update(shoes="12"),
    "a watermark that is not a number": lambda p: p.update(watermark=math.nan),
    "stats that are not a dict": lambda p: p.update(stats=[0, 0, 0]),
    "a list where a dict was": lambda p: p.update(buckets={"0": p["buckets"]}),
}


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_a_damaged_snapshot_gives_a_fresh_monitor_and_a_note(
    plain: dict[str, Any], damage: Callable[[dict[str, Any]], None]
) -> None:
    damaged = json.loads(json.dumps(plain))
    damage(damaged)
    m, notes = from_plain(OPTIONS, damaged)
    assert len(notes) == 1 and notes[0].startswith("damaged label state")
    assert not m.buckets and not m.detectors and m.watermark == -math.inf


def test_a_detector_snapshot_that_does_not_fit_is_rebuilt_fresh_alone(
    plain: dict[str, Any],
) -> None:
    damaged = json.loads(json.dumps(plain))
    entry = next(d for d in damaged["detectors"] if d["slice"] == ALL)
    adwin, ddm = entry["detectors"]
    adwin["v"] = 7
    restored, notes = from_plain(OPTIONS, damaged)
    assert notes == ["adwin of slice '' starts fresh: unknown detector snapshot version 7"]
    detectors = restored.detectors[(entry["model"], ALL)]
    assert detectors.labels == entry["labels"] and detectors.detectors[0].seen == 0
    assert detectors.detectors[1].seen == ddm["seen"] > 0
    assert restored.buckets.keys() and to_plain(restored)["buckets"] == plain["buckets"]


ENTRY_DAMAGES: dict[str, tuple[Callable[[dict[str, Any]], None], str | None]] = {
    # None: the slice's detectors are left out, and made fresh at its next label
    "more errors than labels": (lambda d: d.update(errors=d["labels"] + 1), None),
    "a model id that is text": (lambda d: d.update(model=str(d["model"])), None),
    "no detector snapshots": (lambda d: d.update(detectors=None), None),
    "a DDM state out of range": (lambda d: d["detectors"][1]["ddm"].update(mean=1.5), "ddm"),
    "no DDM snapshot": (lambda d: d["detectors"].pop(), "ddm"),
}


@pytest.mark.parametrize(("damage", "fresh"), ENTRY_DAMAGES.values(), ids=ENTRY_DAMAGES.keys())
def test_a_damaged_detector_entry_gives_fresh_detectors_and_a_note(
    plain: dict[str, Any], damage: Callable[[dict[str, Any]], None], fresh: str | None
) -> None:
    damaged = json.loads(json.dumps(plain))
    entry = next(d for d in damaged["detectors"] if d["slice"] == "shoes")
    key = (entry["model"], "shoes")
    damage(entry)
    restored, notes = from_plain(OPTIONS, damaged)
    assert len(notes) == 1 and "of slice 'shoes'" in notes[0]
    kept = [d for d in to_plain(restored)["detectors"] if d["slice"] != "shoes"]
    assert kept == [d for d in plain["detectors"] if d["slice"] != "shoes"]
    if fresh is None:
        assert key not in restored.detectors
    else:
        seen = {c.name: c.seen for c in restored.detectors[key].detectors}
        assert seen.pop(fresh) == 0 and all(n > 0 for n in seen.values())


def test_a_snapshot_from_before_human_labels_were_counted_restores_them_as_zero(
    plain: dict[str, Any],
) -> None:
    older = json.loads(json.dumps(plain))
    older["stats"].pop("human_labels")
    restored, notes = from_plain(OPTIONS, older)
    assert notes == [] and restored.stats.human_labels == 0
    assert restored.stats.late_labels == plain["stats"]["late_labels"]
