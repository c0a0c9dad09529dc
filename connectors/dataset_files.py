"""Writing a labelled training set: Parquet (pyarrow) or CSV, chosen by the file's suffix."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

FORMATS = (".parquet", ".csv")


def write_rows(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Every row's columns (the union, in first-seen order; absent cells empty)."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: the training set is written as {' or '.join(FORMATS)}")
    columns = list(dict.fromkeys(k for r in rows for k in r))
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows({k: _cell(v) for k, v in r.items()} for r in rows)
        return
    arrays = {}
    for c in columns:
        values = [r.get(c) for r in rows]
        try:
            arrays[c] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            # mixed types in one feature across records: kept as text rather than lost
            arrays[c] = pa.array([None if v is None else str(v) for v in values])
    pq.write_table(pa.table(arrays), path)


def _cell(value: Any) -> Any:
    return orjson.dumps(value).decode() if isinstance(value, dict | list) else value
