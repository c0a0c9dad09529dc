"""Records into an Engine the way ``logdrift check`` and the embedded runner feed it: blocks of
records, column by column where a block decodes cleanly (detectors/blocks.py), record by record
where it does not. The verdicts equal record-by-record feeding (tests/unit/detectors/
test_blocks.py shows it); the suite judges what users run, at the speed they get."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any, Generic, TypeVar

from detectors.blocks import decode_block
from detectors.engine import Engine, Result
from detectors.records import decode_record
from streams.offline import CHECK_BATCH


def feed(engine: Engine, records: Iterable[dict[str, Any]]) -> Iterator[Result]:
    """What the engine says about each block of ``records``, in order. A record the engine
    refuses raises its DecodeError, as ``engine.process(decode_record(raw))`` would."""
    it = iter(records)
    while block := list(islice(it, CHECK_BATCH)):
        groups = decode_block(block)
        if groups is None:
            for raw in block:
                yield engine.process(decode_record(raw))
            continue
        result, refused = engine.process_blocks(groups)
        if refused:
            raise refused[0][1]
        yield result


T = TypeVar("T")


class Counted(Iterator[T], Generic[T]):
    """The items of an iterable, counting how many were taken (``n``): a stream fed lazily
    is counted without being held."""

    def __init__(self, items: Iterable[T]) -> None:
        self._items, self.n = iter(items), 0

    def __next__(self) -> T:
        item = next(self._items)
        self.n += 1
        return item
