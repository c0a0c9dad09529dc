"""Does reading a forward frame cost work in proportion to its size, in bounded steps?

    .venv/bin/python bench/forward_decode.py [--members 25000,50000,100000,200000,400000]

Prints, side by side for CompressedPackedForward frames of N empty gzip members, the time of
the member-by-member reader that hands zlib the whole rest of the stream per member (what
connectors/forward.py did before issue 14; quadratic: each member copies the rest back as
`unused_data`) and of `Frame.batches` (linear), with the longest single batch; then the same
for a Forward frame of N one-entry records `[0, {}]`. The old reader is skipped above 200,000
members (it takes minutes there).
"""

from __future__ import annotations

import argparse
import gzip
import sys
import time
import zlib

from connectors.forward import parse_frame

_GZIP_WBITS = 16 + zlib.MAX_WBITS


def old_gunzip(data: bytes) -> int:
    """The reader before issue 14: a fresh inflater fed the whole remaining stream."""
    rest, size = data, 0
    while rest:
        inflater = zlib.decompressobj(_GZIP_WBITS)
        size += len(inflater.decompress(rest))
        rest = inflater.unused_data
    return size


def timed_batches(obj: object) -> tuple[float, float, int]:
    frame = parse_frame(obj)
    longest = 0.0
    began = time.perf_counter()
    batches = 0
    iterator = frame.batches()
    while True:
        step = time.perf_counter()
        try:
            next(iterator)
        except StopIteration:
            break
        longest = max(longest, time.perf_counter() - step)
        batches += 1
    return time.perf_counter() - began, longest, batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", default="25000,50000,100000,200000,400000")
    args = parser.parse_args()
    counts = [int(n) for n in args.members.split(",")]
    print(f"python {sys.version.split()[0]}")
    print("CompressedPackedForward, N empty gzip members")
    print(f"  {'members':>9}  {'old s':>8}  {'new s':>8}  {'longest batch ms':>17}  batches")
    for n in counts:
        data = gzip.compress(b"", mtime=0) * n
        old = "-"
        if n <= 200_000:
            began = time.perf_counter()
            old_gunzip(data)
            old = f"{time.perf_counter() - began:8.2f}"
        obj = ["t", data, {"compressed": "gzip"}]
        took, longest, batches = timed_batches(obj)
        print(f"  {n:>9,}  {old:>8}  {took:8.2f}  {longest * 1000:17.1f}  {batches:>7,}")
    print("Forward, N entries [0, {}]")
    print(f"  {'entries':>9}  {'new s':>8}  {'longest batch ms':>17}  batches")
    for n in counts:
        took, longest, batches = timed_batches(["t", [[0, {}]] * n])
        print(f"  {n:>9,}  {took:8.2f}  {longest * 1000:17.1f}  {batches:>7,}")


if __name__ == "__main__":
    main()
