"""What delayed labels cost: the engine on decoded records without labels, with labels on
(predictions held, labels joined, slices and a fairness group), and the memory of pending
predictions.

    .venv/bin/python bench/labels.py [--records 100000] [--pending 1000000]

Prints records/s (best of three; "with labels" counts predictions and labels alike) side by
side, then RSS growth and bytes per entry for ``--pending`` predictions held without labels.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.engine import OPTIONS, RATE, START, make_baseline, rss_mb
from detectors.engine import Engine
from detectors.labels.feedback import PendingPredictions
from detectors.labels.monitor import LabelOptions
from detectors.records import decode_feedback, decode_record, is_feedback
from streams.simulation.traffic import feedback_records, interleave, serving_records

LABELS = LabelOptions(
    window_seconds=300, wait_seconds=900, slice_key="category", groups=("gender",)
)


def best_rate(run, items: int) -> float:
    best = float("inf")
    for _ in range(3):
        gc.collect()
        began = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - began)
    return items / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--pending", type=int, default=1_000_000)
    args = parser.parse_args()
    baseline = make_baseline()
    raws = list(serving_records(args.records, rate=RATE, start=START, seed=1, slices=True))
    records = [decode_record(r) for r in raws]
    mixed = [
        ("label", decode_feedback(r)) if is_feedback(r) else ("record", decode_record(r))
        for r in interleave(raws, feedback_records(raws))
    ]
    Engine([baseline], OPTIONS, LABELS)  # calibrates the error detectors once (cached)

    def plain() -> None:
        engine = Engine([baseline], OPTIONS)
        for r in records:
            engine.process(r)

    def labelled() -> None:
        engine = Engine([baseline], OPTIONS, LABELS)
        for kind, item in mixed:
            engine.feedback(item) if kind == "label" else engine.process(item)  # type: ignore[arg-type]

    without = best_rate(plain, len(records))
    with_labels = best_rate(labelled, len(mixed))
    print(f"{'engine, no labels':32} {without:>12,.0f} records/s")
    print(f"{'engine, labels on':32} {with_labels:>12,.0f} records+labels/s")
    per_prediction = len(records) / (len(mixed) / with_labels)
    print(f"{'  = predictions with their label':32} {per_prediction:>12,.0f} predictions/s")

    ids = [f"{i:x}-{i:x}" for i in range(args.pending)]
    gc.collect()
    before, _ = rss_mb()
    pending = PendingPredictions(horizon=86_400.0, cap=args.pending)
    for i, rid in enumerate(ids):
        pending.add(rid, ts=float(i), prediction=0.5, model=0, slice_=i % 20, groups=0)
    after, _ = rss_mb()
    grown = (after - before) * 1024 * 1024
    print(
        f"{args.pending:,} pending predictions: RSS +{after - before:,.0f} MB, "
        f"{grown / len(pending):,.0f} bytes per entry (cap {pending.cap:,})"
    )


if __name__ == "__main__":
    main()
