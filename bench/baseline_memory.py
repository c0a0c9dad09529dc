"""Does building a baseline take memory in proportion to the training file? It should not: two
streaming passes keep a fixed set of sketches and counters per column.

    .venv/bin/python bench/baseline_memory.py [--rows 5000000] [--dir /tmp/logdrift-bench]

Writes a training CSV of ``--rows`` rows and one 10x smaller, then, for each in a fresh process,
builds a baseline with ``streams.offline.build_baseline`` and, separately, runs only its two
streaming passes (the part that reads the file; calibration afterwards works on a fixed-size
reservoir and peaks at the same height whatever the file). Prints file size, elapsed time and
peak RSS side by side. Linux only: it reads and resets the peak RSS in /proc/self.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BYTES_PER_ROW = 70  # a little above what one synthetic CTR row takes as CSV


@dataclass(frozen=True, slots=True)
class Measure:
    start_mb: float
    peak_mb: float
    seconds: float

    @property
    def growth_mb(self) -> float:
        return self.peak_mb - self.start_mb


@dataclass(frozen=True, slots=True)
class Build:
    rows: int
    size_mb: float
    full: Measure
    passes: Measure


def rss_mb() -> tuple[float, float]:
    """(resident set size now, its peak since the last reset) of this process, in MB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def reset_peak() -> float:
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # Linux >= 4.0: peak RSS := RSS now
    return rss_mb()[0]


def measured(work: Callable[[Path], None], path: Path) -> Measure:
    start = reset_peak()
    began = time.perf_counter()
    work(path)
    seconds = time.perf_counter() - began
    return Measure(start, rss_mb()[1], seconds)


def full_build(path: Path) -> None:
    from detectors.baseline.infer import BaselineOptions
    from streams.offline import build_baseline

    with tempfile.TemporaryDirectory() as out:
        build_baseline(path, Path(out), BaselineOptions(), "ctr", show_progress=False)


def two_passes(path: Path) -> None:
    from connectors.files import open_rows
    from detectors.baseline.infer import BaselineBuilder, BaselineOptions

    builder = BaselineBuilder(BaselineOptions())
    with open_rows(path) as rows:
        for row in rows:
            builder.first_pass(row)
    builder.fix_bins()
    with open_rows(path) as rows:
        for row in rows:
            builder.second_pass(row)


def measure_in_this_process(path: str) -> tuple[Measure, Measure]:
    import streams.offline  # noqa: F401  (imports out of the measurement)

    return measured(full_build, Path(path)), measured(two_passes, Path(path))


def measure(path: Path, rows: int) -> Build:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        full, passes = pool.apply(measure_in_this_process, (str(path),))
    return Build(rows, path.stat().st_size / 2**20, full, passes)


def write_training(path: Path, rows: int) -> None:
    from connectors.files import write_csv
    from streams.simulation.traffic import training_rows

    began = time.perf_counter()
    write_csv(path, training_rows(rows, seed=7))
    took = time.perf_counter() - began
    print(f"wrote {path} ({path.stat().st_size / 2**20:,.1f} MB) in {took:.1f} s")


def check_space(where: Path, rows: int) -> None:
    needed = 2 * 1.1 * rows * BYTES_PER_ROW
    free = shutil.disk_usage(where).free
    if free < needed:
        sys.exit(f"{where}: {free / 2**30:.1f} GiB free, need {needed / 2**30:.1f} GiB")


def print_builds(builds: list[Build]) -> None:
    print("peak RSS counted from the start of each step, in a fresh process")
    print(
        f"  {'rows':>10} {'file MB':>8} {'step':>21} {'seconds':>8} {'rows/s':>8} "
        f"{'RSS before MB':>14} {'peak RSS MB':>12} {'growth MB':>10}"
    )
    for b in builds:
        for step, m in (("build_baseline", b.full), ("two passes only", b.passes)):
            print(
                f"  {b.rows:10,} {b.size_mb:8,.1f} {step:>21} {m.seconds:8.1f} "
                f"{b.rows / m.seconds:8,.0f} {m.start_mb:14,.1f} {m.peak_mb:12,.1f} "
                f"{m.growth_mb:10.1f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/logdrift-bench"))
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    check_space(args.dir, args.rows)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    builds = []
    for rows in (args.rows // 10, args.rows):
        path = args.dir / f"training-{rows}.csv"
        write_training(path, rows)
        builds.append(measure(path, rows))
    print_builds(builds)


if __name__ == "__main__":
    main()
