"""The store's dead letters are bounded by count and by age (issue 14 row 8): past either bound
the oldest go first and are counted; listing them reads a page at a time."""

from __future__ import annotations

import sqlite3
import time
import tracemalloc
from pathlib import Path

import pytest

from connectors.store import AnomalyStore, DeadLetterBounds


def put(store: AnomalyStore, n: int, start: int = 0, size: int = 10) -> None:
    for i in range(start, start + n):
        store.put_dead_letter(reason=f"r{i}", raw=b"x" * size, source="forward:t", ts=float(i))


def test_past_the_count_the_oldest_go_first_and_are_counted(tmp_path: Path) -> None:
    with AnomalyStore(tmp_path / "a.db") as s:
        s.bound_dead_letters(DeadLetterBounds(max_count=100, max_age_seconds=86_400))
        put(s, 250)
        kept = s.dead_letters()
        assert [d.reason for d in kept] == [f"r{i}" for i in range(150, 250)]
        assert s.dead_letters_dropped() == 150 == s.dropped_dead_letters
    with AnomalyStore(tmp_path / "a.db") as s:
        assert s.dead_letters_dropped() == 150, "the count survives a restart"


def test_past_the_age_the_oldest_go_by_arrival_not_by_event_time(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with AnomalyStore(path) as s:
        put(s, 30)
    with sqlite3.connect(path) as conn:  # the first 20 arrived two days ago
        conn.execute("UPDATE dead_letters SET received = ? WHERE seq <= 20", (time.time() - 2e5,))
    with AnomalyStore(path) as s:
        s.bound_dead_letters(DeadLetterBounds(max_count=1_000, max_age_seconds=86_400))
        assert [d.reason for d in s.dead_letters()] == [f"r{i}" for i in range(20, 30)]
        assert s.dead_letters_dropped() == 20
        # ts 0 (a too_old record) is event time: it is kept like any fresh arrival
        s.put_dead_letter(reason="too_old", raw=b"{}", source="forward:t", ts=0.0)
        assert s.dead_letters()[-1].reason == "too_old"


def test_bounds_are_validated_with_the_name_of_the_bound() -> None:
    with pytest.raises(ValueError, match="max_count"):
        DeadLetterBounds(max_count=0)
    with pytest.raises(ValueError, match="max_age_seconds"):
        DeadLetterBounds(max_age_seconds=0)


def test_listing_reads_a_page_at_a_time(tmp_path: Path) -> None:
    with AnomalyStore(tmp_path / "a.db") as s:
        put(s, 600, size=20_000)  # 12 MB of dead letters
        assert [d.reason for d in s.iter_dead_letters(limit=3)] == ["r0", "r1", "r2"]
        tracemalloc.start()
        n = sum(1 for _ in s.iter_dead_letters(page=50))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert n == 600
    assert peak < 3_000_000, f"peak {peak:,} bytes: more than a page was held"
