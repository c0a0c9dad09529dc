"""Streaming readers for training data and serving logs: CSV, JSON lines, Parquet.

Every reader holds one line (or one Parquet batch) at a time, so a baseline can be
built from a file far larger than memory. Rows come out as ``dict[str, object]`` with
plain Python values; a malformed file raises :class:`FileFormatError`, whose message
names the file, the line (or Parquet row group) and what was wrong.

>>> coerce_cell("12"), coerce_cell("1e3"), coerce_cell("True"), coerce_cell(""), coerce_cell("007")
(12, 1000.0, True, None, '007')
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
import zlib
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

FORMATS = ("csv", "jsonl", "parquet")
_SUFFIX_FORMATS = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_GZIP_FORMATS = ("csv", "jsonl")  # Parquet compresses its pages itself
_ACCEPTED = ", ".join(
    [*_SUFFIX_FORMATS, *(s + ".gz" for s, f in _SUFFIX_FORMATS.items() if f in _GZIP_FORMATS)]
)
PARQUET_BATCH_ROWS = 8192

# Strict literals only: int() would also take " 7", "1_000" and "007", and turning a zip
# code or an id with leading zeros into a number silently changes its meaning.
_INT = re.compile(r"[+-]?(?:0|[1-9][0-9]*)")
_FLOAT = re.compile(
    r"[+-]?(?:(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+"
    r"|nan|inf|infinity)",
    re.IGNORECASE,
)
_BOOLS = {"true": True, "True": True, "false": False, "False": False}


class FileFormatError(ValueError):
    """A file that cannot be read as the format it claims; says where and what."""

    def __init__(
        self, path: str | Path, problem: str, *, line: int | None = None, where: str = ""
    ) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        location = f" line {line}" if line is not None else (f" {where}" if where else "")
        super().__init__(f"{self.path}{location}: {problem}")


@dataclass(slots=True)
class BadRows:
    """Rows a reader skipped, for a report: how many, and the first few with their reason.

    Memory stays bounded however many rows are bad: only ``keep`` of them are remembered.
    """

    keep: int = 5
    count: int = 0
    first: list[tuple[int, str]] = field(default_factory=list)  # (line, problem)

    def add(self, line: int, problem: str) -> None:
        self.count += 1
        if len(self.first) < self.keep:
            self.first.append((line, problem))

    def summary(self) -> str:
        """``3 bad rows (line 4: ...; line 9: ...)``."""
        shown = "; ".join(f"line {line}: {problem}" for line, problem in self.first)
        more = f"; {self.count - len(self.first):,} more" if self.count > len(self.first) else ""
        return f"{self.count:,} bad row{'s' if self.count != 1 else ''} ({shown}{more})"


def coerce_cell(text: str) -> object:
    """A CSV cell as a value: "" is missing, then int, float, bool, else the text itself."""
    if text == "":
        return None
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return _BOOLS.get(text, text)


def infer_format(path: str | Path, fmt: str | None = None) -> tuple[str, bool]:
    """(format, gzip-compressed): ``fmt`` if given, else from the suffix (``x.csv.gz``)."""
    name = str(path).lower()
    compressed = name.endswith(".gz")
    if fmt is None:
        stem = name.removesuffix(".gz")
        fmt = next((f for suffix, f in _SUFFIX_FORMATS.items() if stem.endswith(suffix)), None)
    elif fmt not in FORMATS:
        raise FileFormatError(path, f"fmt must be one of {', '.join(FORMATS)} (got {fmt!r})")
    if fmt is None or (compressed and fmt not in _GZIP_FORMATS):
        raise FileFormatError(path, f"unknown file type; accepted suffixes: {_ACCEPTED}")
    return fmt, compressed


def open_rows(
    path: str | Path,
    fmt: str | None = None,
    *,
    features_key: str = "features",
    prediction_key: str = "prediction",
    bad_rows: BadRows | None = None,
) -> RowSource:
    """A one-pass stream of the rows of a CSV, JSON lines or Parquet file.

    A malformed row (a CSV row with more or fewer cells than the header or with every cell
    empty, a JSON line that is not an object) raises, or with ``bad_rows`` is noted there and
    skipped, so a caller can report them all and decide."""
    return RowSource(
        path, fmt, features_key=features_key, prediction_key=prediction_key, bad_rows=bad_rows
    )


def iter_json_lines(path: str | Path) -> Iterator[tuple[int, dict[str, Any] | FileFormatError]]:
    """(line number, object) for every non-blank line, (line number, error) for a bad one.

    Bad lines do not stop the walk, so a checker can count and report them all. Only a
    file that cannot be read any further (corrupt gzip) raises.
    """
    raw, stream = _open_stream(path, str(path).lower().endswith(".gz"))
    try:
        for number, line in _numbered_lines(path, stream):
            parsed = _parse_json_line(path, number, line)
            if parsed is not None:
                yield number, parsed
    finally:
        stream.close()
        raw.close()


class RowSource:
    """The rows of one file, read once, with progress for a progress bar.

    ``position`` is the bytes consumed so far (the compressed offset for gzip, an
    estimate from rows read for Parquet); it equals ``size_bytes`` once exhausted.
    Iterating a second time yields nothing, as with a file object.
    """

    def __init__(
        self,
        path: str | Path,
        fmt: str | None = None,
        *,
        features_key: str = "features",
        prediction_key: str = "prediction",
        bad_rows: BadRows | None = None,
    ) -> None:
        self.path = Path(path)
        self.bad_rows = bad_rows
        self.fmt, self.compressed = infer_format(path, fmt)
        self.size_bytes = self.path.stat().st_size
        self.rows_read = 0
        self._features_key = features_key
        self._prediction_key = prediction_key
        self._raw: io.BufferedReader | None = None  # its offset is the progress of text formats
        self._final_position = 0
        self._line = 0  # the last line read (handed to the csv parser)
        self._parquet_rows = _parquet_row_count(path) if self.fmt == "parquet" else 0
        self._rows = self._read_rows()

    @property
    def line(self) -> int:
        """Where the last row came from: its line (its row number in a Parquet file)."""
        return self.rows_read if self.fmt == "parquet" else self._line

    @property
    def position(self) -> int:
        if self.fmt == "parquet":
            if self._parquet_rows == 0:
                return self._final_position
            return self.size_bytes * self.rows_read // self._parquet_rows
        if self._raw is not None and not self._raw.closed:
            return self._raw.tell()
        return self._final_position

    def __iter__(self) -> Iterator[dict[str, object]]:
        return self._rows

    def close(self) -> None:
        """Release the file early, e.g. when the caller stops before the end."""
        self._rows.close()

    def __enter__(self) -> RowSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _read_rows(self) -> Generator[dict[str, object], None, None]:
        rows = self._parquet() if self.fmt == "parquet" else self._text_rows()
        try:
            for row in rows:
                self.rows_read += 1
                yield row
        finally:
            rows.close()
        if self.fmt == "parquet":
            self._final_position = self.size_bytes

    def _text_rows(self) -> Generator[dict[str, object], None, None]:
        raw, stream = _open_stream(self.path, self.compressed)
        self._raw = raw
        try:
            lines = _numbered_lines(self.path, stream)
            yield from self._csv(lines) if self.fmt == "csv" else self._jsonl(lines)
        finally:
            self._final_position = raw.tell()
            stream.close()
            raw.close()

    def _csv(self, lines: Iterator[tuple[int, bytes]]) -> Iterator[dict[str, object]]:
        # strict: an unclosed quote fails at the end instead of swallowing the rest of the file
        reader = csv.DictReader(self._decoded(lines), strict=True)
        try:
            width = _check_header(self.path, reader.fieldnames or [])
            for row in reader:
                problem = _csv_row_problem(row, width)
                if problem is None:
                    yield {k: coerce_cell(text) for k, text in row.items()}
                else:
                    self._bad(FileFormatError(self.path, problem, line=self._line))
        except csv.Error as exc:
            raise FileFormatError(self.path, str(exc), line=self._line) from exc

    def _decoded(self, lines: Iterator[tuple[int, bytes]]) -> Iterator[str]:
        """Text for the csv module, noting the line in hand: csv's line_num lags on errors.

        Decoding line by line is safe because b"\\n" never sits inside a UTF-8 sequence.
        """
        decoder = codecs.getincrementaldecoder("utf-8-sig")()  # drops a leading BOM
        for self._line, line in lines:
            try:
                yield decoder.decode(line)
            except UnicodeDecodeError as exc:
                problem = f"not valid UTF-8 ({exc.reason} at byte {exc.start})"
                raise FileFormatError(self.path, problem, line=self._line) from exc

    def _bad(self, error: FileFormatError) -> None:
        if self.bad_rows is None:
            raise error
        self.bad_rows.add(error.line or 0, error.problem)

    def _jsonl(self, lines: Iterator[tuple[int, bytes]]) -> Iterator[dict[str, object]]:
        for number, line in lines:
            self._line = number
            parsed = _parse_json_line(self.path, number, line)
            try:
                if isinstance(parsed, FileFormatError):
                    raise parsed
                if parsed is not None:
                    yield self._flatten(number, parsed)
            except FileFormatError as exc:
                self._bad(exc)

    def _flatten(self, number: int, record: dict[str, Any]) -> dict[str, object]:
        """A serving record becomes its features plus "prediction"; a flat row stays."""
        if self._features_key not in record:
            return record
        features = record[self._features_key]
        if not isinstance(features, dict):
            problem = f"{self._features_key!r} is not a JSON object (got {_json_type(features)})"
            raise FileFormatError(self.path, problem, line=number)
        if self._prediction_key not in record:
            return features
        if "prediction" in features:
            problem = "a feature named 'prediction' collides with the record's prediction"
            raise FileFormatError(self.path, problem, line=number)
        return {**features, "prediction": record[self._prediction_key]}

    def _parquet(self) -> Generator[dict[str, object], None, None]:
        with pq.ParquetFile(self.path) as parquet:
            for group in range(parquet.num_row_groups):
                try:
                    for batch in parquet.iter_batches(PARQUET_BATCH_ROWS, row_groups=[group]):
                        yield from batch.to_pylist()
                except (pa.ArrowException, OSError) as exc:
                    where = f"row group {group}"
                    raise FileFormatError(self.path, str(exc), where=where) from exc


def _parquet_row_count(path: str | Path) -> int:
    """Checked when opened, so a wrong file fails before the caller starts consuming."""
    try:
        return int(pq.read_metadata(path).num_rows)
    except (pa.ArrowException, OSError) as exc:
        raise FileFormatError(path, f"not a readable Parquet file ({exc})") from exc


def _open_stream(path: str | Path, compressed: bool) -> tuple[io.BufferedReader, io.BufferedIOBase]:
    """(raw file, byte stream): the raw file's offset measures progress even under gzip."""
    raw = open(path, "rb")  # noqa: SIM115 - the callers close it in a finally
    if not compressed:
        return raw, raw
    return raw, gzip.GzipFile(fileobj=raw, mode="rb")


def _numbered_lines(path: str | Path, stream: io.BufferedIOBase) -> Iterator[tuple[int, bytes]]:
    number = 0
    while True:
        try:
            line = stream.readline()
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise FileFormatError(path, f"corrupt gzip data ({exc})", line=number + 1) from exc
        if not line:
            return
        number += 1
        yield number, line


def _csv_row_problem(row: dict[str | None, Any], width: int) -> str | None:
    """Why a CSV row cannot be trusted, or None. A short row is a broken export, not missing
    values (a CSV writer writes empty cells for those): read as missing, it would make every
    feature optional."""
    if None in row:  # DictReader files surplus cells under the key None
        return f"{width + len(row[None])} cells but the header has {width} columns"
    cells = sum(text is not None for text in row.values())  # DictReader pads short rows
    if cells < width:
        return f"{cells} cells but the header has {width} columns"
    if width > 1 and all(text == "" for text in row.values()):
        return "every cell is empty"
    return None


def _check_header(path: str | Path, names: Sequence[str]) -> int:
    """The header's width; a repeated name would silently drop a column's cells."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise FileFormatError(path, f"duplicate column {name!r} in the header", line=1)
        seen.add(name)
    return len(names)


def _parse_json_line(
    path: str | Path, number: int, line: bytes
) -> dict[str, Any] | FileFormatError | None:
    """The object on one line, the error saying why not, or None for a blank line."""
    if not line.strip():
        return None
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        value = _loads_non_finite(line)
        if value is None:
            column = min(exc.pos, len(line.rstrip())) + 1  # not past the end: no "line 2"
            problem = f"invalid JSON ({exc.msg} at column {column})"
            return FileFormatError(path, problem, line=number)
    if not isinstance(value, dict):
        return FileFormatError(path, f"not a JSON object (got {_json_type(value)})", line=number)
    return value


def _loads_non_finite(line: bytes) -> Any:
    """Python's json.dumps writes NaN and Infinity by default, and serving apps log with it;
    those values are exactly what the data-quality checks count, so they must get through."""
    if b"NaN" not in line and b"Infinity" not in line:
        return None
    try:
        return json.loads(line)
    except ValueError:
        return None


def _json_type(value: object) -> str:
    return "null" if value is None else type(value).__name__


def write_csv(path: str | Path, rows: Iterable[dict[str, object]]) -> int:
    """Write rows (the first row's keys are the header) as CSV; None becomes an empty cell."""
    count = 0
    with open(path, "w", newline="") as f:
        writer: csv.DictWriter[str] | None = None
        for row in rows:
            if writer is None:
                writer = csv.DictWriter(f, fieldnames=list(row))
                writer.writeheader()
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
            count += 1
    return count
