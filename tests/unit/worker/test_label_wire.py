"""What the label join sends the label judge, and what it keeps in its table: the judge counts
each prediction and label once, however often a crash makes the join send them again."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiokafka.structs import ConsumerRecord
from faust.transport.drivers.aiokafka import Consumer

from detectors.engine import EngineOptions
from detectors.labels.join import Label, LabelJoin, MemoryStore, Pending
from detectors.labels.monitor import LabelMonitor, LabelOptions, LabelReport
from detectors.labels.slice_features import SliceFeatures
from detectors.labels.slice_windows import observed
from detectors.records import LABEL_SOURCE, FieldMapping
from streams.worker import label_agents
from streams.worker.label_agents import (
    Judged,
    Outcomes,
    TableStore,
    _apply,
    decode_pending,
    encode_pending,
    read_label,
)
from streams.worker.payloads import LabelOutcomes, LabelRow, PredictionRow
from tests.unit.detectors.conftest import traffic_baseline

T0 = 1_800_000_000.0
OPTIONS = LabelOptions(window_seconds=60, wait_seconds=0, slice_key="category", groups=("gender",))


def outcomes(partition: int, first_offset: int, n: int) -> Outcomes:
    out = Outcomes("ctr", "3")
    for i in range(n):
        ts = T0 + i / 10
        offset = first_offset + i
        out.predictions.append(PredictionRow(partition, offset, ts, "shoes", ("f",)))
        out.labels.append(LabelRow(partition, offset, ts, "shoes", ("f",), 0.8, ts + 30, i % 2))
    return out


def judge(*messages: Outcomes) -> Judged:
    judged = Judged(LabelMonitor(OPTIONS))
    for m in messages:
        _apply(judged, LabelOutcomes.decode(m.message({})), [], [])
    return judged


def counted(judged: Judged) -> tuple[int, int]:
    (bucket,) = judged.monitor.buckets.values()
    return bucket.overall.predictions, bucket.overall.labelled


def test_what_waits_in_the_table_survives_its_encoding() -> None:
    entry = Pending(T0, 3, 0.25, "ctr", "3", None, ("f", "__other__"))
    assert decode_pending(encode_pending(entry)) == entry
    label = Label(T0 + 60, 3, 1.0, offset=41)
    assert decode_pending(encode_pending(label)) == label


def test_the_judge_counts_every_prediction_and_label_it_is_sent() -> None:
    assert counted(judge(outcomes(0, 0, 50), outcomes(1, 0, 30))) == (80, 80)


def test_rows_sent_again_after_a_crash_are_counted_once() -> None:
    replay = outcomes(0, 20, 30)  # offsets 20..49 again, and 10 new ones after them
    replay.predictions += outcomes(0, 50, 10).predictions
    replay.labels += outcomes(0, 50, 10).labels
    assert counted(judge(outcomes(0, 0, 50), replay)) == (60, 60)


def test_labels_that_waited_for_their_prediction_are_guarded_by_the_predictions_offsets() -> None:
    direct = outcomes(0, 100, 10)  # labels read at feedback offsets 100..109
    waited = outcomes(0, 0, 10)  # labels met later by predictions at serving offsets 0..9
    waited.waited, waited.labels = waited.labels, []
    waited.predictions.clear()
    assert counted(judge(direct, waited, waited)) == (10, 20)


def test_guards_are_per_partition_and_per_kind() -> None:
    predictions_only = outcomes(2, 0, 40)
    predictions_only.labels.clear()
    labels_later = outcomes(2, 0, 40)  # labels come from feedback: their own offsets
    labels_later.predictions.clear()
    assert counted(judge(predictions_only, labels_later, outcomes(3, 0, 5))) == (45, 45)


def test_a_window_is_judged_only_once_every_partitions_predictions_and_labels_passed_it() -> None:
    judged = Judged(LabelMonitor(OPTIONS))  # windows of 60 s, judged right after they end
    reports: list[LabelReport] = []
    ahead, behind = (T0 + 500, T0 + 500), (T0 + 30, T0 + 30)
    for clocks in ({0: ahead, 1: behind}, {0: ahead, 1: (T0 + 500, T0 + 30)}):
        _apply(judged, LabelOutcomes.decode(outcomes(0, 0, 10).message(clocks)), [], reports)
        assert reports == []  # partition 1 has not read past the first window yet
    _apply(judged, LabelOutcomes.decode(Outcomes("ctr", "3").message({1: ahead})), [], reports)
    assert [(r.start, r.metrics["predictions"]) for r in reports] == [(T0, 10)]


def test_slice_feature_windows_close_once_every_partitions_predictions_passed_them() -> None:
    ctr_baseline = traffic_baseline()
    features = SliceFeatures(ctr_baseline, "category", EngineOptions(60, 1), "ctr", "3")
    judged = Judged(LabelMonitor(OPTIONS), features=features)
    message = Outcomes("ctr", "3")
    values = observed(ctr_baseline, {"price": 12.5, "device": "ios"})
    message.predictions += [
        PredictionRow(0, i, T0 + i / 20, "shoes", ("f",), values) for i in range(1_010)
    ]
    clocks = {0: (T0 + 61, T0), 1: (T0 + 5, T0)}
    _apply(judged, LabelOutcomes.decode(message.message(clocks)), [], [])
    assert list(features.open) == [T0]  # partition 1's predictions are still in it
    assert features.open[T0].count == 1_010
    # A slice is watched from the 1,000th prediction on (top-K refreshed every 1,000).
    assert features.open[T0].slices["shoes"]["price"].valid == 11
    _apply(judged, LabelOutcomes.decode(Outcomes("ctr", "3").message({1: (T0 + 61, T0)})), [], [])
    assert features.open == {} and features.windows.previous["shoes"]["price"].valid == 11


def test_rows_without_feature_values_leave_slice_windows_off() -> None:
    assert judge(outcomes(0, 0, 10)).features is None


def test_a_label_without_a_time_takes_the_brokers_timestamp() -> None:
    value = orjson.dumps({"request_id": "r1", "label": 1})
    sent_ms = int(T0 * 1000) + 250
    record = ConsumerRecord("feedback", 0, 7, sent_ms, 0, b"r1", value, None, 2, len(value), ())
    app = SimpleNamespace(app=SimpleNamespace(consumer_generation_id=1))
    message = Consumer._to_message(app, record.topic, record)  # type: ignore[arg-type]  # as Faust hands it
    assert read_label(message, value, FieldMapping()).ts == T0 + 0.25
    timed = orjson.dumps({"request_id": "r1", "label": 1, "ts": T0 - 60})
    assert read_label(message, timed, FieldMapping()).ts == T0 - 60  # its own time wins


def test_a_joined_prediction_leaves_the_table_only_once_its_batch_is_done() -> None:
    """A crash between the join and the outcomes' acknowledgement reads the batch again: the
    prediction must still be there for its label, or the label would find nothing."""
    table: dict[str, bytes] = {}
    store = TableStore(table)
    join = LabelJoin(store, horizon=3_600.0, cap=10)
    join.hold("a", Pending(T0, 0, 0.9, "ctr", "3", None, ()))
    assert join.label("a", Label(T0 + 60, 0, 1.0, offset=7)) is not None
    assert store.get("a") is None and "a" in table  # gone for this batch, kept in the table
    store.forget_deletes()  # the batch is not done (what the agent's forget does)
    join.rebuild(((k, decode_pending(v)) for k, v in table.items()), {0})
    assert join.label("a", Label(T0 + 60, 0, 1.0, offset=7)) is not None  # read again: joined
    store.apply_deletes()  # the outcomes were acknowledged
    assert table == {}


def test_label_outcomes_go_over_the_wire_as_arrays_and_come_back_typed() -> None:
    out = outcomes(0, 0, 2)
    raw = out.message({0: (T0, -math.inf)})
    plain = orjson.loads(raw)
    assert plain["predictions"][0] == [0, 0, T0, "shoes", ["f"], None]
    assert plain["labels"][1] == [0, 1, T0 + 0.1, "shoes", ["f"], 0.8, T0 + 30.1, 1]
    assert plain["clocks"] == {"0": [T0, None]}  # not read there yet: JSON has no -inf
    back = LabelOutcomes.decode(raw)
    assert (back.model, back.version) == ("ctr", "3")
    assert back.predictions == out.predictions and back.labels == out.labels
    assert back.clocks == {0: (T0, -math.inf)}


def test_a_label_outcomes_message_of_another_version_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="label-outcomes: unknown message version 2"):
        LabelOutcomes.decode(orjson.dumps({"v": 2, "model": "ctr"}))


def feedback_message(value: bytes, offset: int = 7) -> Any:
    record = ConsumerRecord("feedback", 0, offset, int(T0 * 1000), 0, b"r1", value, None, 2, 9, ())
    app = SimpleNamespace(app=SimpleNamespace(consumer_generation_id=1))
    return Consumer._to_message(app, record.topic, record)  # type: ignore[arg-type]


def test_a_human_label_keeps_its_mark_in_the_table_and_process_feedback_its_old_shape() -> None:
    human = Label(T0 + 60, 3, 1.0, offset=41, source="human")
    assert decode_pending(encode_pending(human)) == human
    process = Label(T0 + 60, 3, 1.0, offset=41)
    assert len(orjson.loads(encode_pending(process))) == 4, "as entries were before the mark"
    assert decode_pending(encode_pending(process)) == process


def test_a_human_label_row_round_trips_and_an_old_row_is_process_feedback() -> None:
    out = outcomes(0, 0, 2)
    out.labels[1] = out.labels[1]._replace(source="human")
    plain = orjson.loads(out.message({}))
    assert plain["labels"][0] == [0, 0, T0, "shoes", ["f"], 0.8, T0 + 30, 0], "unchanged"
    assert plain["labels"][1][-1] == "human"
    back = LabelOutcomes.decode(out.message({}))
    assert [r.source for r in back.labels] == ["process", "human"]
    assert back.labels == out.labels
    old = {"v": 1, "model": "ctr", "version": "3", "predictions": [], "waited": [], "clocks": {}}
    old["labels"] = [[0, 5, T0, None, [], 0.7, T0 + 9, 1]]  # a message from before the mark
    (row,) = LabelOutcomes.decode(orjson.dumps(old)).labels
    assert row.source == "process" and row.label == 1.0


def test_feedback_marked_human_reaches_the_judge_marked_human(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(label_agents, "detection", lambda: SimpleNamespace(mapping=FieldMapping()))
    join = LabelJoin(MemoryStore(), horizon=3_600.0, cap=10)
    by_model: dict[tuple[str, str], Outcomes] = {}
    for i, source in enumerate(("human", None, "human")):
        rid = f"r{i}"
        join.hold(rid, Pending(T0 + i, 0, 0.9, "ctr", "3", "shoes", ("f",)))
        fb: dict[str, Any] = {"ts": T0 + 60 + i, "request_id": rid, "label": 1}
        if source:
            fb[LABEL_SOURCE] = source
        value = orjson.dumps(fb)
        assert label_agents._join_label(join, feedback_message(value, i), value, by_model) is None
    # one waits for its prediction: the mark must survive the table too
    late = orjson.dumps({"ts": T0 + 90, "request_id": "r9", "label": 0, LABEL_SOURCE: "human"})
    assert label_agents._join_label(join, feedback_message(late, 9), late, by_model) is None
    out = by_model[("ctr", "3")]
    held = Pending(T0 + 5, 0, 0.2, "ctr", "3", "shoes", ("f",))
    waited = join.hold("r9", held)
    assert waited is not None and waited.source == "human"
    out.add_label(0, 20, held, waited, waited=True)
    assert [r.source for r in out.labels + out.waited] == ["human", "process", "human", "human"]
    judged = judge(out)
    assert judged.monitor.stats.human_labels == 3  # as the embedded Engine counts them
