"""connectors.files: rows out of CSV, JSON lines and Parquet, streamed, with clear errors."""

from __future__ import annotations

import gzip
import math
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors.files import (
    BadRows,
    FileFormatError,
    infer_format,
    iter_json_lines,
    open_rows,
)


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def same(a: object, b: object) -> bool:
    """Equal values of the same type, with NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


# --- CSV -------------------------------------------------------------------------------

COERCIONS = [
    ("", None),
    ("0", 0),
    ("-12", -12),
    ("+7", 7),
    ("123456789012345678901234567890", 123456789012345678901234567890),
    ("007", "007"),  # leading zeros: an id or a zip code, not a number
    ("1_000", "1_000"),
    (" 5", " 5"),
    ("1.5", 1.5),
    ("-0.25", -0.25),
    (".5", 0.5),
    ("3.", 3.0),
    ("1e3", 1000.0),
    ("1E-2", 0.01),
    ("nan", math.nan),
    ("NaN", math.nan),
    ("inf", math.inf),
    ("-inf", -math.inf),
    ("Infinity", math.inf),
    ("true", True),
    ("True", True),
    ("false", False),
    ("False", False),
    ("TRUE", "TRUE"),
    ("yes", "yes"),
    ("DE", "DE"),
    ("12abc", "12abc"),
    ("1.2.3", "1.2.3"),
    ("٣", "٣"),  # int() takes Arabic-Indic digits; a CSV reader should not
]


@pytest.mark.parametrize(("cell", "expected"), COERCIONS)
def test_csv_cells_are_coerced_by_strict_literal_rules(
    tmp_path: Path, cell: str, expected: object
) -> None:
    path = write(tmp_path / "t.csv", f"id,v\n1,{cell}\n")
    [row] = list(open_rows(path))
    assert same(row["v"], expected), (cell, row["v"])


def test_csv_quoted_cells_keep_commas_and_newlines_and_bom_is_dropped(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", '\ufeffname,note\n"a, b","two\nlines"\nc,\n')
    assert list(open_rows(path)) == [
        {"name": "a, b", "note": "two\nlines"},
        {"name": "c", "note": None},
    ]


def test_csv_short_or_empty_row_is_bad_not_missing_values(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "a,b,c\n1,2\n")
    with pytest.raises(FileFormatError, match=r"t\.csv line 2: 2 cells but the header has 3"):
        list(open_rows(path))
    path = write(tmp_path / "e.csv", "a,b,c\n,,\n1,,3\n")
    with pytest.raises(FileFormatError, match=r"e\.csv line 2: every cell is empty"):
        list(open_rows(path))


def test_bad_rows_are_noted_and_skipped_when_collected(tmp_path: Path) -> None:
    text = "a,b\n1,2\n3\n,\n4,5,6\n7,8\n\n9,\n"
    bad = BadRows(keep=2)
    rows = list(open_rows(write(tmp_path / "t.csv", text), bad_rows=bad))
    assert rows == [{"a": 1, "b": 2}, {"a": 7, "b": 8}, {"a": 9, "b": None}]
    assert bad.count == 3
    assert bad.first == [
        (3, "1 cells but the header has 2 columns"),
        (4, "every cell is empty"),
    ]
    assert bad.summary() == (
        "3 bad rows (line 3: 1 cells but the header has 2 columns; "
        "line 4: every cell is empty; 1 more)"
    )


def test_bad_json_lines_are_noted_and_skipped_when_collected(tmp_path: Path) -> None:
    path = write(tmp_path / "t.jsonl", '{"a": 1}\n[1]\n{oops\n{"features": 3}\n{"a": 2}\n')
    bad = BadRows()
    assert list(open_rows(path, bad_rows=bad)) == [{"a": 1}, {"a": 2}]
    assert [line for line, _ in bad.first] == [2, 3, 4]


def test_csv_header_only_gives_no_rows(tmp_path: Path) -> None:
    source = open_rows(write(tmp_path / "t.csv", "a,b\n"))
    assert list(source) == []
    assert source.rows_read == 0


def test_csv_row_longer_than_header_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "train.csv", "a,b\n1,2\n3,4\n5,6,7\n8,9\n")
    with pytest.raises(FileFormatError, match=r"train\.csv line 4: 3 cells but the header has 2"):
        list(open_rows(path))


@pytest.mark.parametrize(
    ("content", "line", "problem"),
    [
        (b"a,a\n1,2\n", 1, "duplicate column 'a'"),
        (b"a,b\n1,2\n3,\xff\xfe\n", 3, "not valid UTF-8"),
        (b'a,b\n1,2\n3,"unclosed\n4,5\n', 4, "unexpected end of data"),
        (b'a,b\n1,"x"y\n', 2, "expected after"),
    ],
)
def test_csv_malformed_input_names_file_and_line(
    tmp_path: Path, content: bytes, line: int, problem: str
) -> None:
    path = write(tmp_path / "bad.csv", content)
    with pytest.raises(FileFormatError) as info:
        list(open_rows(path))
    assert str(info.value).startswith(f"{path} line {line}: ")
    assert problem in str(info.value)
    assert info.value.line == line


# --- JSON lines ------------------------------------------------------------------------


def test_jsonl_flat_rows_are_yielded_as_they_are_and_blank_lines_skipped(tmp_path: Path) -> None:
    text = '{"price": 1.0, "country": "DE"}\n\n   \n{"price": null, "tags": [1, 2]}\n'
    assert list(open_rows(write(tmp_path / "t.jsonl", text))) == [
        {"price": 1.0, "country": "DE"},
        {"price": None, "tags": [1, 2]},
    ]


def test_jsonl_serving_records_become_features_plus_prediction(tmp_path: Path) -> None:
    records = (
        b'{"ts": "2026-11-28T10:00:00.123Z", "request_id": "a1", "model": "ctr",'
        b' "features": {"price": 12.5, "country": "DE"}, "prediction": 0.13,'
        b' "slice": {"category": "shoes"}}\n'
        b'{"request_id": "a2", "features": {"price": 3}}\n'
    )
    assert list(open_rows(write(tmp_path / "serving.ndjson", records))) == [
        {"price": 12.5, "country": "DE", "prediction": 0.13},
        {"price": 3},
    ]


def test_jsonl_serving_field_names_are_parameters(tmp_path: Path) -> None:
    path = write(tmp_path / "t.jsonl", '{"x": {"price": 2}, "score": 0.9, "features": 1}\n')
    rows = list(open_rows(path, features_key="x", prediction_key="score"))
    assert rows == [{"price": 2, "prediction": 0.9}]


def test_jsonl_accepts_nan_and_infinity_as_python_json_writes_them(tmp_path: Path) -> None:
    path = write(tmp_path / "t.jsonl", '{"a": NaN, "b": Infinity, "c": -Infinity}\n')
    [row] = list(open_rows(path))
    assert math.isnan(row["a"]) and row["b"] == math.inf and row["c"] == -math.inf  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("bad_line", "problem"),
    [
        ("[1, 2]", "not a JSON object (got list)"),
        ('"text"', "not a JSON object (got str)"),
        ("null", "not a JSON object (got null)"),
        ('{"a": 1,', "invalid JSON (unexpected end of data at column 9)"),
        ('{"a": tru}', "invalid JSON (invalid literal, expected 'true' at column 7)"),
        ('{"features": [1]}', "'features' is not a JSON object (got list)"),
        (
            '{"features": {"prediction": 1}, "prediction": 2}',
            "a feature named 'prediction' collides",
        ),
    ],
)
def test_jsonl_bad_line_names_file_line_and_problem(
    tmp_path: Path, bad_line: str, problem: str
) -> None:
    path = write(tmp_path / "train.jsonl", f'{{"a": 1}}\n\n{bad_line}\n{{"a": 2}}\n')
    with pytest.raises(FileFormatError) as info:
        list(open_rows(path))
    assert str(info.value).startswith(f"{path} line 3: {problem}")


def test_iter_json_lines_reports_bad_lines_and_goes_on(tmp_path: Path) -> None:
    path = write(tmp_path / "logs.jsonl", '{"a": 1}\n[1]\n\n{oops\n{"a": 2}\n')
    seen = list(iter_json_lines(path))
    assert [number for number, _ in seen] == [1, 2, 4, 5]
    assert seen[0][1] == {"a": 1} and seen[3][1] == {"a": 2}
    errors = [item for _, item in seen if isinstance(item, FileFormatError)]
    assert [(e.line, e.problem.split(" (")[0]) for e in errors] == [
        (2, "not a JSON object"),
        (4, "invalid JSON"),
    ]


# --- Parquet ---------------------------------------------------------------------------


def test_parquet_rows_keep_nan_and_read_nulls_as_none(tmp_path: Path) -> None:
    n = 20_000  # more than one 8192-row batch and several row groups
    prices = [float(i) for i in range(n)]
    prices[1], prices[2] = math.nan, None  # type: ignore[call-overload]
    table = pa.table(
        {
            "price": pa.array(prices, pa.float64()),
            "country": pa.array(["DE", None] + ["FR"] * (n - 2)),
            "clicks": pa.array([None, *range(1, n)], pa.int64()),
        }
    )
    path = tmp_path / "train.parquet"
    pq.write_table(table, path, row_group_size=7_000)
    source = open_rows(path)
    rows = list(source)
    assert len(rows) == n == source.rows_read
    assert rows[0] == {"price": 0.0, "country": "DE", "clicks": None}
    assert math.isnan(rows[1]["price"])  # type: ignore[arg-type]
    assert rows[2] == {"price": None, "country": "FR", "clicks": 2}
    assert rows[-1] == {"price": float(n - 1), "country": "FR", "clicks": n - 1}
    assert source.position == source.size_bytes


def test_parquet_that_is_not_parquet_fails_when_opened(tmp_path: Path) -> None:
    path = write(tmp_path / "train.pq", b"this is not parquet at all, just text\n")
    with pytest.raises(FileFormatError, match=r"train\.pq: not a readable Parquet file"):
        open_rows(path)


# --- gzip, formats, progress -----------------------------------------------------------


def test_gzip_csv_and_jsonl_read_like_plain_and_progress_is_compressed_offset(
    tmp_path: Path,
) -> None:
    csv_path = write(tmp_path / "t.csv.gz", gzip.compress(b"a,b\n" + b"1,x\n" * 50_000))
    jsonl_path = write(tmp_path / "t.JSONL.GZ", gzip.compress(b'{"a": 1}\n' * 50_000))
    for path, first in ((csv_path, {"a": 1, "b": "x"}), (jsonl_path, {"a": 1})):
        source = open_rows(path)
        rows = iter(source)
        assert next(rows) == first
        assert source.position <= source.size_bytes
        assert sum(1 for _ in rows) == 49_999
        assert source.position == source.size_bytes == path.stat().st_size


def test_corrupt_gzip_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "t.jsonl.gz", gzip.compress(b'{"a": 1}\n' * 1000)[:-20])
    with pytest.raises(FileFormatError, match=r"t\.jsonl\.gz line \d+: corrupt gzip data"):
        list(open_rows(path))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.csv", ("csv", False)),
        ("a.CSV.gz", ("csv", True)),
        ("a.jsonl", ("jsonl", False)),
        ("a.ndjson.gz", ("jsonl", True)),
        ("a.json", ("jsonl", False)),
        ("a.parquet", ("parquet", False)),
        ("a.pq", ("parquet", False)),
    ],
)
def test_format_is_inferred_from_the_suffix(name: str, expected: tuple[str, bool]) -> None:
    assert infer_format(name) == expected


@pytest.mark.parametrize("name", ["a.txt", "a", "a.parquet.gz", "a.gz"])
def test_unknown_suffix_lists_the_accepted_ones(name: str) -> None:
    with pytest.raises(FileFormatError) as info:
        infer_format(name)
    assert str(info.value).startswith(f"{name}: unknown file type")
    assert ".csv, .jsonl, .ndjson, .json, .parquet, .pq, .csv.gz" in str(info.value)


def test_explicit_format_overrides_the_suffix_and_is_checked(tmp_path: Path) -> None:
    path = write(tmp_path / "export.txt", "a\n1\n")
    assert list(open_rows(path, "csv")) == [{"a": 1}]
    with pytest.raises(FileFormatError, match="fmt must be one of csv, jsonl, parquet"):
        open_rows(path, "xlsx")


@pytest.mark.parametrize("name", ["t.csv", "t.jsonl"])
def test_position_grows_and_reaches_size_at_the_end(tmp_path: Path, name: str) -> None:
    line = "1,xyz\n" if name.endswith(".csv") else '{"a": 1, "b": "xyz"}\n'
    header = "a,b\n" if name.endswith(".csv") else ""
    path = write(tmp_path / name, header + line * 20_000)
    source = open_rows(path)
    assert source.position == 0
    positions = [source.position for _ in source]
    assert positions == sorted(positions)
    assert 0 < positions[0] < source.size_bytes
    assert source.rows_read == 20_000
    assert source.position == source.size_bytes == path.stat().st_size


def test_close_stops_the_stream_early(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "a\n" + "1\n" * 100)
    with open_rows(path) as source:
        assert next(iter(source)) == {"a": 1}
    assert list(source) == []
    assert source.rows_read == 1


def test_csv_streams_a_large_file_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    note = "free text " * 90  # long lines: 50 MB in about 50k rows keeps the test quick
    block = "".join(f"{i},{i / 7},DE,{i % 2 == 0},{note}\n" for i in range(5_000))
    with path.open("w") as f:
        f.write("id,score,country,flag,note\n")
        while f.tell() < 50_000_000:
            f.write(block)
    tracemalloc.start()
    try:
        source = open_rows(path)
        count = sum(1 for _ in source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert path.stat().st_size >= 50_000_000
    assert count == source.rows_read > 45_000
    assert source.position == source.size_bytes
    assert peak < 4_000_000, f"peak traced memory {peak / 1e6:.1f} MB"
