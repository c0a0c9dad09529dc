"""connectors.store: the embedded runner's SQLite store of anomalies and dead letters."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.store import AnomalyStore, DeadLetter
from detectors.anomaly import Anomaly, anomaly_id


def make_anomaly(
    *,
    ts: float = 1_000.0,
    model: str = "ctr",
    feature: str = "price",
    detector: str = "jensen_shannon",
    kind: str = "distribution_skew",
    severity: str = "medium",
    message: str = "price moved",
) -> Anomaly:
    return Anomaly(
        id=anomaly_id(model, "3", feature, kind, detector, ts),
        timestamp=ts,
        kind=kind,
        detector=detector,
        severity=severity,
        model=model,
        model_version="3",
        feature=feature,
        statistic=0.3,
        threshold=0.1,
        window_start=ts - 60,
        window_end=ts,
        window_count=500,
        message=message,
        slice={"category": "shoes"},
        baseline={"bins": [0.5, 0.5]},
        current={"bins": [0.9, 0.1]},
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AnomalyStore]:
    with AnomalyStore(tmp_path / "state" / "logdrift.db") as opened:  # parent dirs made
        yield opened


def test_anomalies_round_trip_whole(store: AnomalyStore) -> None:
    a = make_anomaly()
    assert store.put([a]) == 1
    assert store.query() == [a]


def test_put_is_an_upsert_by_id(store: AnomalyStore) -> None:
    first = make_anomaly(message="first delivery", severity="low")
    again = dataclasses.replace(first, message="re-delivered", severity="critical")
    store.put([first])
    assert store.put([again]) == 1
    assert store.count() == 1
    [stored] = store.query()
    assert stored.message == "re-delivered"
    assert store.query(min_severity="critical") == [again]  # indexed columns updated too


def test_put_writes_a_batch_in_one_transaction(store: AnomalyStore) -> None:
    good = make_anomaly(ts=1.0)
    bad = make_anomaly(ts=2.0, severity="apocalyptic")
    with pytest.raises(ValueError, match="must be one of info, low, medium, high, critical"):
        store.put([good, bad])
    assert store.count() == 0


def test_query_filters_combine_and_results_are_oldest_first(store: AnomalyStore) -> None:
    late_ctr = make_anomaly(ts=300.0)
    early_ctr_country = make_anomaly(ts=100.0, feature="country", detector="l_infinity")
    mid_rank_drift = make_anomaly(ts=200.0, model="rank", kind="drift", detector="adwin")
    store.put([late_ctr, early_ctr_country, mid_rank_drift])

    assert store.query() == [early_ctr_country, mid_rank_drift, late_ctr]
    assert store.query(model="ctr") == [early_ctr_country, late_ctr]
    assert store.query(model="ctr", feature="price") == [late_ctr]
    assert store.query(kind="drift") == [mid_rank_drift]
    assert store.query(since=200.0) == [mid_rank_drift, late_ctr]  # since is inclusive
    assert store.query(until=300.0) == [early_ctr_country, mid_rank_drift]  # until is not
    assert store.query(since=150.0, until=250.0) == [mid_rank_drift]
    assert store.query(limit=2) == [early_ctr_country, mid_rank_drift]
    assert store.query(model="nope") == []


def test_min_severity_keeps_that_level_and_above(store: AnomalyStore) -> None:
    by_level = {
        level: make_anomaly(ts=float(i), severity=level)
        for i, level in enumerate(["low", "medium", "high", "critical"])
    }
    store.put(list(by_level.values()))
    severities = [a.severity for a in store.query(min_severity="high")]
    assert severities == ["high", "critical"]
    assert len(store.query(min_severity="low")) == 4
    with pytest.raises(ValueError, match="min_severity must be one of"):
        store.query(min_severity="severe")


def test_info_ranks_below_low_and_low_keeps_its_stored_rank(store: AnomalyStore) -> None:
    # An improvement is stored at "info": `--severity low` leaves it out, `--severity info`
    # lists it; "low" keeps rank 0, as stores written before "info" existed hold it.
    improved = make_anomaly(ts=1.0, severity="info", message="error rate fell")
    low = make_anomaly(ts=2.0, severity="low", message="error rate rose")
    store.put([improved, low])
    assert store.query(min_severity="low") == [low]
    assert store.query(min_severity="info") == [improved, low]
    assert store.query() == [improved, low]
    ranks = store._fetch("SELECT severity, severity_rank FROM anomalies ORDER BY ts", [])
    assert ranks == [("info", -1), ("low", 0)]


def test_negative_limit_is_refused(store: AnomalyStore) -> None:
    with pytest.raises(ValueError, match="limit must be >= 0"):
        store.query(limit=-1)


def test_dead_letters_keep_raw_bytes_and_are_counted_by_reason(store: AnomalyStore) -> None:
    store.put_dead_letter(reason="invalid_json", raw=b"{oops", source="forward", ts=1.0)
    store.put_dead_letter(reason="no_features", raw=b'{"a": 1}', source="file:x", ts=2.0)
    store.put_dead_letter(reason="invalid_json", raw=b"\xff\x00", source="forward", ts=3.0)

    assert store.dead_letter_counts() == {"invalid_json": 2, "no_features": 1}
    assert store.dead_letters() == [
        DeadLetter(ts=1.0, reason="invalid_json", source="forward", raw=b"{oops"),
        DeadLetter(ts=2.0, reason="no_features", source="file:x", raw=b'{"a": 1}'),
        DeadLetter(ts=3.0, reason="invalid_json", source="forward", raw=b"\xff\x00"),
    ]
    assert [d.ts for d in store.dead_letters(limit=1)] == [1.0]
    assert store.count() == 0  # dead letters are not anomalies


def test_meta_is_a_key_value_store_that_overwrites(store: AnomalyStore) -> None:
    assert store.get_meta("offset") is None
    store.set_meta("offset", "10")
    store.set_meta("offset", "42")
    assert store.get_meta("offset") == "42"


def test_reopening_the_file_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "logdrift.db"
    a = make_anomaly()
    with AnomalyStore(path) as store:
        store.put([a])
        store.put_dead_letter(reason="invalid_json", raw=b"x", source="forward", ts=1.0)
        store.set_meta("baseline", "v7")
    with AnomalyStore(path) as reopened:
        assert reopened.query() == [a]
        assert reopened.dead_letter_counts() == {"invalid_json": 1}
        assert reopened.get_meta("baseline") == "v7"


def test_the_file_is_in_wal_mode_so_readers_do_not_block_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "logdrift.db"
    with AnomalyStore(path) as store:
        store.put([make_anomaly()])
        reader = sqlite3.connect(path)
        try:
            assert reader.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert reader.execute("SELECT COUNT(*) FROM anomalies").fetchone() == (1,)
        finally:
            reader.close()


def test_a_file_that_is_not_a_store_is_refused_by_name_and_left_untouched(
    tmp_path: Path,
) -> None:
    path = tmp_path / "anomalies.csv"
    content = b"id,ts\n1,2\n" * 100
    path.write_bytes(content)
    with pytest.raises(
        ValueError, match=f"{path} is not a logdrift anomaly store .*not a database"
    ):
        AnomalyStore(path)
    assert path.read_bytes() == content


def test_an_empty_file_becomes_a_fresh_store(tmp_path: Path) -> None:
    path = tmp_path / "touched.db"
    path.touch()
    with AnomalyStore(path) as store:
        assert store.count() == 0


def test_another_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE users (name TEXT)")
    other.close()
    with pytest.raises(ValueError, match=r"is not a logdrift anomaly store .*another SQLite"):
        AnomalyStore(path)


def test_a_store_from_a_newer_logdrift_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "logdrift.db"
    AnomalyStore(path).close()
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA user_version = 99")
    raw.close()
    with pytest.raises(ValueError, match="schema version 99"):
        AnomalyStore(path)


def test_dead_letters_in_a_batch_are_kept_in_order_in_one_call(tmp_path: Path) -> None:
    letters = [DeadLetter(float(i), f"reason {i % 2}", "forward:t", b"{}") for i in range(500)]
    with AnomalyStore(tmp_path / "a.db") as store:
        store.put_dead_letters(letters)
        store.put_dead_letters([])
        assert store.dead_letters() == letters
        assert store.dead_letter_counts() == {"reason 0": 250, "reason 1": 250}
