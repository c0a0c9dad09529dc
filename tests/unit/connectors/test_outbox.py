"""connectors.outbox: documents wait in the SQLite store until Elasticsearch acknowledged
them; nothing is lost by a restart, nothing refused is silently forgotten."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from connectors.outbox import Outbox, OutboxCounts, OutboxItem
from connectors.store import AnomalyStore
from detectors.engine import Result
from streams.embedded.shipper import documents_for
from tests.elastic_samples import START, anomaly, report


def item(n: int) -> OutboxItem:
    return OutboxItem("anomalies", f"id-{n}", START, orjson.dumps({"n": n}))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AnomalyStore]:
    with AnomalyStore(tmp_path / "logdrift.db") as opened:
        yield opened


def test_documents_are_committed_with_their_anomalies_and_wait_oldest_first(
    store: AnomalyStore,
) -> None:
    a = anomaly()
    store.put([a], outbox=[item(1), item(2)])
    store.put([], outbox=[item(3)])
    pending = Outbox(store).pending(limit=10)
    assert [r.item.doc_id for r in pending] == ["id-1", "id-2", "id-3"]
    assert pending[0].item == item(1)
    assert store.query() == [a]


def test_a_failed_transaction_leaves_neither_the_anomaly_nor_its_documents(
    store: AnomalyStore,
) -> None:
    bad = OutboxItem("anomalies", "id-x", START, None)  # type: ignore[arg-type]  # NOT NULL
    with pytest.raises(Exception, match="NOT NULL"):
        store.put([anomaly()], outbox=[item(1), bad])
    assert store.count() == 0
    assert Outbox(store).backlog() == 0


def test_shipped_and_rejected_rows_leave_the_backlog_and_are_counted(store: AnomalyStore) -> None:
    store.put([], outbox=[item(n) for n in range(5)])
    outbox = Outbox(store)
    first, second, third, *_ = outbox.pending(limit=3)
    outbox.mark_shipped([first.seq, second.seq], now=1.0)
    outbox.mark_rejected([(third.seq, "400 strict_dynamic_mapping_exception: [x]")])
    assert [r.item.doc_id for r in outbox.pending(limit=10)] == ["id-3", "id-4"]
    assert outbox.counts() == OutboxCounts(pending=2, shipped=2, rejected=1)
    (refused,) = outbox.rejected()
    assert (refused.item.doc_id, refused.error) == (
        "id-2",
        "400 strict_dynamic_mapping_exception: [x]",
    )


def test_pending_respects_the_batch_limit(store: AnomalyStore) -> None:
    store.put([], outbox=[item(n) for n in range(7)])
    assert len(Outbox(store).pending(limit=3)) == 3


def test_pruning_forgets_only_rows_shipped_before_the_cutoff(store: AnomalyStore) -> None:
    store.put([], outbox=[item(n) for n in range(3)])
    outbox = Outbox(store)
    a, b, _ = outbox.pending(limit=3)
    outbox.mark_shipped([a.seq], now=100.0)
    outbox.mark_shipped([b.seq], now=200.0)
    assert outbox.prune_shipped(before=150.0) == 1
    assert outbox.counts() == OutboxCounts(pending=1, shipped=1, rejected=0)


def test_the_backlog_survives_closing_and_reopening_the_store(tmp_path: Path) -> None:
    path = tmp_path / "logdrift.db"
    with AnomalyStore(path) as s:
        s.put([], outbox=[item(1), item(2)])
        Outbox(s).mark_shipped([Outbox(s).pending(1)[0].seq], now=1.0)
    with AnomalyStore(path) as s:
        assert [r.item.doc_id for r in Outbox(s).pending(10)] == ["id-2"]


def test_a_step_result_becomes_one_anomaly_document_each_and_one_score_per_feature() -> None:
    flagged = anomaly()
    items = documents_for(Result([flagged], [report(anomalies=[flagged])]))
    targets = [i.target for i in items]
    assert targets == ["anomalies", "drift-scores", "drift-scores", "drift-scores"]
    first = items[0]
    assert (first.doc_id, first.window_start) == (flagged.id, flagged.window_start)
    assert orjson.loads(first.body) == orjson.loads(orjson.dumps(flagged.to_document()))
    assert all(i.window_start == START for i in items[1:])
    assert len({i.doc_id for i in items}) == 4
