"""Ack after durable: the embedded runner's journal and checkpoints (docs/durability.md).

    forward chunk --> Pipeline.handle (anomalies committed to the store)
      --> Journal.append (the chunk's accepted records, fsynced) --> ack
    every checkpoint_records records or checkpoint_seconds, after an idle close, at shutdown:
      Journal.checkpoint(engine_state.snapshot(engine)): the journal starts empty again
    at start: engine_state.restore(last checkpoint), Pipeline.replay(every journalled chunk),
      then a checkpoint, before the listener opens

Replays are idempotent: anomaly ids are deterministic and the store upserts them, window scores
are keyed by window, and the incident tracker (its state committed with every anomaly) ignores
evidence it has seen.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from config.settings import Settings
from connectors.journal import Journal
from connectors.store import DeadLetterBounds
from detectors import engine_state
from detectors.event_time import EventTimeLimits
from streams.embedded.runner import Pipeline

logger = logging.getLogger(__name__)


class Durable:
    def __init__(
        self,
        journal: Journal,
        pipeline: Pipeline,
        every_records: int,
        every_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.journal = journal
        self.pipeline = pipeline
        self.every_records = every_records
        self.every_seconds = every_seconds
        self.clock = clock
        self._at = clock()
        self.checkpoints = 0

    def recover(self) -> int:
        """Rebuild the engine from the last checkpoint and the journal; the records replayed."""
        state, chunks = self.journal.recover()
        if state is not None:
            for note in engine_state.restore(self.pipeline.engine, state):
                logger.warning("checkpoint in %s: %s", self.journal.directory, note)
        replayed = 0
        for chunk in chunks:
            self.pipeline.replay(chunk)
            replayed += len(chunk)
        self.checkpoint()
        if state is not None or replayed:
            logger.info(
                "resumed from the checkpoint in %s and %d journalled records",
                self.journal.directory,
                replayed,
            )
        return replayed

    def append(self) -> None:
        """Journal the chunk the pipeline just handled; returns once it is on disk."""
        self.journal.append(self.pipeline.accepted)
        if self.journal.entries >= self.every_records:
            self.checkpoint()

    def maybe_checkpoint(self) -> None:
        """The once-a-second tick: fsync by the "interval" policy, and a checkpoint when the
        journal holds anything older than ``every_seconds``."""
        self.journal.sync()
        if self.journal.entries and self.clock() - self._at >= self.every_seconds:
            self.checkpoint()

    def checkpoint(self) -> None:
        self.journal.checkpoint(engine_state.snapshot(self.pipeline.engine))
        self._at = self.clock()
        self.checkpoints += 1

    def close(self) -> None:
        self.journal.close()


def journal_dir(settings: Settings, store: Path) -> Path:
    return settings.journal.dir or store.with_name(store.name + ".journal")


def durable_from_settings(settings: Settings, pipeline: Pipeline, store: Path) -> Durable:
    j = settings.journal
    journal = Journal(journal_dir(settings, store), fsync=j.fsync)
    return Durable(journal, pipeline, j.checkpoint_records, j.checkpoint_seconds)


def event_time_limits(settings: Settings) -> EventTimeLimits:
    e = settings.event_time
    return EventTimeLimits(e.future_tolerance_seconds, e.max_age_seconds)


def dead_letter_bounds(settings: Settings) -> DeadLetterBounds:
    d = settings.dead_letters
    return DeadLetterBounds(d.max_count, d.max_age_days * 86_400.0)
