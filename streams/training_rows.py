"""Training-style rows read as serving records, so ``logdrift check`` can hold a training file
(CSV, Parquet, or JSON lines of columns, as ``logdrift baseline`` reads it) against a baseline:
the file a baseline was built from must raise nothing against it, and next month's training
file can be held against this month's before a retrain.

Each row becomes a record of the baseline's model: the event time from the time column the
baseline was ordered by (or ``--time-column``; without one, rows one second apart in file
order), the features the baseline monitors, and the prediction column (``--prediction-column``
as given to ``logdrift baseline``). Columns the baseline
does not know (ids, labels, the time column) are left out and named once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.files import BadRows, FileFormatError, infer_format, iter_json_lines, open_rows
from detectors.baseline.reference import Baseline
from detectors.baseline.schema import PREDICTION
from detectors.records import FieldMapping, field_at, parse_ts

NO_TIME_STEP = 1.0  # seconds between rows of a file without a time column
ORDERED_BY = "time ("


def holds_rows(path: Path, mapping: FieldMapping) -> bool:
    """True when ``path`` holds training-style rows rather than serving records: CSV or
    Parquet, or JSON lines whose first object has no features field."""
    fmt, _ = infer_format(path)
    if fmt != "jsonl":
        return True
    for _, item in iter_json_lines(path):
        return not isinstance(item, FileFormatError) and field_at(item, mapping.features) is None
    return False


def baseline_time_column(baseline: Baseline) -> str | None:
    """The column the baseline's rows were ordered by ("time (ts)" -> "ts"), if any."""
    order = baseline.profile.order
    return order[len(ORDERED_BY) : -1] if order.startswith(ORDERED_BY) else None


@dataclass(slots=True)
class RowsAsRecords:
    """The rows of one training file as serving-record objects, numbered by line."""

    path: Path
    baseline: Baseline
    time_column: str | None
    prediction: str = PREDICTION  # the training file's name for the model's output
    left_out: set[str] = field(default_factory=set)  # columns the baseline does not know

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any] | FileFormatError]]:
        known = set(self.baseline.references) - {PREDICTION}
        bad = _Skipped()
        with open_rows(self.path, bad_rows=bad) as source:
            for i, row in enumerate(source):
                yield from bad.drain(self.path)
                yield source.line, self._record(i, row, known)
        yield from bad.drain(self.path)

    def _record(self, i: int, row: dict[str, Any], known: set[str]) -> dict[str, Any]:
        self.left_out.update(k for k in row if k not in known and k != self.prediction)
        if self.time_column is None:
            ts: object = i * NO_TIME_STEP
        else:
            try:
                ts = parse_ts(row.get(self.time_column))
            except ValueError:
                ts = row.get(self.time_column)  # decode_record names the field and the problem
        return {
            "ts": ts,
            "model": self.baseline.model,
            "features": {k: row[k] for k in row if k in known},
            "prediction": row.get(self.prediction),
        }


class _Skipped(BadRows):
    """Skipped rows handed on in file order, each as the error check reports for its line."""

    def __init__(self) -> None:
        super().__init__(keep=0)
        self.pending: list[tuple[int, str]] = []

    def add(self, line: int, problem: str) -> None:
        super().add(line, problem)
        self.pending.append((line, problem))

    def drain(self, path: Path) -> Iterator[tuple[int, FileFormatError]]:
        for line, problem in self.pending:
            yield line, FileFormatError(path, problem, line=line)
        self.pending.clear()
