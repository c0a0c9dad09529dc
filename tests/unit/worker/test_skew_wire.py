"""What the feature-skew join keeps in its table and sends its judge: sides survive the table's
codec, and the judge compares each joined request once, however often a crash makes the join
send it again, judging a window once every partition's two clocks passed it (the first
batches read some partitions only)."""

from __future__ import annotations

import orjson

from detectors.keyed_join import KeyedJoin
from detectors.skew.monitor import PipelineSide, ServingSide, SkewOptions, SkewWindows
from streams.worker.label_agents import TableStore
from streams.worker.skew_agents import decode_side, encode_side
from streams.worker.skew_judge import Judged, _apply
from tests.unit.detectors.conftest import traffic_baseline

T0 = 1_800_000_000.0
FEATURES = {"price": 12.5, "age": 40, "score": 0.1, "country": "DE", "device": "ios"}


def test_both_sides_survive_the_tables_codec_and_join_from_it() -> None:
    serving = ServingSide(T0, 2, "ctr", "3", FEATURES)
    pipeline = PipelineSide(T0 + 5, 2, "ctr", FEATURES | {"price": 1250.0})
    assert decode_side(encode_side(serving)) == serving
    assert decode_side(encode_side(pipeline)) == pipeline
    table: dict[str, bytes] = {}
    store = TableStore(table, encode_side, decode_side)
    join = KeyedJoin(store, 600.0, 10, ServingSide, PipelineSide)
    assert join.hold("r1", serving) is None and "r1" in table
    assert join.match("r1", pipeline) == serving
    store.apply_deletes()
    assert table == {}


def message(first_offset: int, n: int, clocks: dict[str, list[float | None]]) -> dict:
    pairs = []
    for i in range(n):
        price = 1250.0 if i % 10 == 0 else 12.5
        pairs.append(["p", 1, first_offset + i, T0 + i / 10, FEATURES, FEATURES | {"price": price}])
    plain = {"v": 1, "model": "ctr", "version": "3", "pairs": pairs, "clocks": clocks}
    return orjson.loads(orjson.dumps(plain))


def test_a_resent_message_is_compared_once_and_the_window_waits_for_every_partition() -> None:
    baseline = traffic_baseline()
    options = SkewOptions(window_seconds=60.0, wait_seconds=0.0)
    judged = Judged(SkewWindows(options, lambda model: baseline))
    raised: list = []
    reports: list = []
    # kafka.partitions (4) partitions; partition 3's pipeline records are not read yet
    behind = {str(p): [T0 + 70, T0 + 70] for p in range(3)} | {"3": [T0 + 70, None]}
    _apply(judged, message(0, 400, behind), raised, reports)
    _apply(judged, message(0, 400, behind), raised, reports)  # a crash sent it again
    assert reports == [] and judged.windows.buckets[(("ctr", "3"), T0)].joined == 400
    caught_up = {"3": [T0 + 70, T0 + 75]}
    step = _apply(judged, message(0, 400, caught_up), raised, reports)
    assert [r.joined for r in reports] == [400]
    assert [a.feature for a in raised] == ["price"]
    assert [c.action for c in step.changes] == ["opened"]
