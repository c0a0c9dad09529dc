"""`logdrift check --pipeline FILE`: the pipeline's feature records of a JSON-lines file fed to
the engine beside the serving records, in event-time order, so the feature-skew join sees the
two as the runner would. Each file is read once, as a stream: one record of look-ahead.
"""

from __future__ import annotations

import math
from pathlib import Path

from connectors.files import FileFormatError, iter_json_lines
from detectors.engine import Engine, Result
from detectors.records import DecodeError, FieldMapping, PipelineRecord, decode_pipeline


class PipelineFeed:
    """The pipeline file's records, handed to the engine up to a serving record's time."""

    def __init__(self, path: Path, engine: Engine, mapping: FieldMapping) -> None:
        self.path, self.engine, self.mapping = path, engine, mapping
        self.records = 0
        self.bad_lines: list[str] = []
        self._lines = iter_json_lines(path)
        self._next: PipelineRecord | None = self._read()

    def due(self, ts: float) -> bool:
        """Whether a pipeline record waits at or before ``ts``."""
        return self._next is not None and self._next.ts <= ts

    def until(self, ts: float) -> Result:
        """Every pipeline record at or before ``ts`` (math.inf: the rest of the file)."""
        result = Result()
        while self._next is not None and self._next.ts <= ts:
            result.extend(self.engine.pipeline(self._next))
            self.records += 1
            self._next = self._read()
        return result

    def rest(self) -> Result:
        return self.until(math.inf)

    def _read(self) -> PipelineRecord | None:
        for number, item in self._lines:
            if isinstance(item, FileFormatError):
                self.bad_lines.append(str(item))
                continue
            try:
                return decode_pipeline(item, self.mapping)
            except DecodeError as exc:
                self.bad_lines.append(f"{self.path} line {number}: {exc}")
        return None
