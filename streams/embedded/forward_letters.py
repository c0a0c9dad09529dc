"""Bad forward entries into the runner's dead letters: one transaction per batch, counted
with the runner's own dead letters, sensitive feature values redacted as theirs are.

    ForwardServer --bad entries of a frame (BadEntry: reason, detail, JSON-safe copy)-->
      ForwardDeadLetters --> AnomalyStore.put_dead_letters (one commit), RunnerStats, metrics
"""

from __future__ import annotations

import time

import orjson

from connectors.forward import BadEntry
from connectors.store import DeadLetter
from detectors.privacy import redact
from streams import metrics
from streams.embedded.runner import Pipeline


class ForwardDeadLetters:
    """The ForwardServer's bad-entry handler for the embedded runner."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self._sensitive = [
            (b.privacy_key, frozenset(n for n, r in b.references.items() if r.spec.sensitive))
            for b in pipeline.engine.baselines.values()
        ]

    async def __call__(self, bad: list[BadEntry]) -> None:
        received = time.time()  # a bad entry's own time may be what is wrong with it
        letters = [
            DeadLetter(received, entry.detail, f"forward:{entry.tag}", self._raw(entry))
            for entry in bad
        ]
        self.pipeline.store.put_dead_letters(letters)
        stats = self.pipeline.stats
        for entry in bad:
            reason = f"forward: {entry.reason}"
            metrics.record_dead_letter(reason)
            stats.dead_letters += 1
            stats.dead_by_reason[reason] = stats.dead_by_reason.get(reason, 0) + 1
        metrics.record_out("dead-letters", len(bad))

    def _raw(self, entry: BadEntry) -> bytes:
        raw = entry.raw
        if isinstance(raw, list) and len(raw) == 2 and isinstance(raw[1], dict):
            record: object = raw[1]
            for key, names in self._sensitive:
                record = redact(record, self.pipeline.mapping.features, names, key)
            raw = [raw[0], record]
        return orjson.dumps({"entry": raw, "index": entry.index}, default=str)
