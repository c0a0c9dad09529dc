"""connectors.journal: what was appended since the last checkpoint comes back in order after a
crash; a frame torn by the crash is cut away; a checkpoint drops what it covers."""

from __future__ import annotations

from pathlib import Path

from connectors.journal import CHECKPOINT, Journal


def recovered(directory: Path) -> tuple[object, list[list[object]]]:
    state, chunks = Journal(directory).recover()
    return state, list(chunks)


def test_appended_chunks_come_back_in_order_with_no_checkpoint_yet(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    j.recover()
    j.append([[1.0, {"a": 1}], [2.0, {"b": b"\x00bytes"}]])
    j.append([[3.0, {"c": "\udcff surrogate-escaped"}]])
    j.close()  # as kill -9 leaves it: no checkpoint
    assert recovered(tmp_path) == (
        None,
        [[[1.0, {"a": 1}], [2.0, {"b": b"\x00bytes"}]], [[3.0, {"c": "\udcff surrogate-escaped"}]]],
    )


def test_a_checkpoint_replaces_the_chunks_it_covers(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    j.recover()
    j.append([[1.0, {"a": 1}]])
    j.checkpoint({"windows": [1]})
    j.append([[2.0, {"a": 2}]])
    j.close()
    assert recovered(tmp_path) == ({"windows": [1]}, [[[2.0, {"a": 2}]]])
    assert len(list(tmp_path.glob("segment-*.log"))) == 1, "the covered segment is gone"


def test_a_torn_last_frame_is_cut_away_and_appending_goes_on(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    j.recover()
    j.append([[1.0, {"a": 1}]])
    j.append([[2.0, {"a": 2}]])
    j.close()
    segment = next(tmp_path.glob("segment-*.log"))
    segment.write_bytes(segment.read_bytes()[:-3])  # the crash cut the second write short
    j = Journal(tmp_path)
    _, chunks = j.recover()
    assert list(chunks) == [[[1.0, {"a": 1}]]]
    j.checkpoint({"n": 1})
    j.append([[3.0, {"a": 3}]])
    j.close()
    assert recovered(tmp_path) == ({"n": 1}, [[[3.0, {"a": 3}]]])


def test_a_crash_between_checkpoint_and_cleanup_replays_nothing_twice(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    j.recover()
    j.append([[1.0, {"a": 1}]])
    j.close()
    kept = {p.name: p.read_bytes() for p in tmp_path.glob("segment-*.log")}
    j = Journal(tmp_path)
    list(j.recover()[1])
    j.checkpoint({"n": 1})
    for name, data in kept.items():  # as if the old segment had not been deleted yet
        (tmp_path / name).write_bytes(data)
    assert recovered(tmp_path) == ({"n": 1}, [])


def test_a_damaged_checkpoint_replays_the_journal_onto_fresh_state(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    j.recover()
    j.append([[1.0, {"a": 1}]])
    j.close()
    (tmp_path / CHECKPOINT).write_text("{not json")
    assert recovered(tmp_path) == (None, [[[1.0, {"a": 1}]]])


def test_the_journal_counts_what_it_holds_since_the_checkpoint(tmp_path: Path) -> None:
    j = Journal(tmp_path, fsync="never")
    j.recover()
    j.append([[1.0, {}], [2.0, {}]])
    assert (j.entries, j.bytes > 0) == (2, True)
    j.checkpoint(None)
    assert (j.entries, j.bytes) == (0, 0)
