"""How large the worker's label judge state grows for one model: the bytes the judge writes to
its changelog table once per batch, which must stay under Kafka's 1 MB message limit.

    .venv/bin/python bench/judge_state.py [--predictions 90000] [--top-k 20]

Feeds synthetic predictions and their labels (slices by category, fairness by gender) through
the judge's own message handling (``streams.worker.label_agents._apply``) in batches of
1,000, as the join sends them, and prints the largest state seen: JSON bytes per part and zlib
bytes.
"""

from __future__ import annotations

import argparse
import sys
import zlib
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detectors.baseline.schema import PREDICTION
from detectors.engine import EngineOptions
from detectors.labels.monitor import LabelMonitor, LabelOptions, group_values
from detectors.labels.slice_features import SliceFeatures
from detectors.labels.slice_features import to_plain as slices_plain
from detectors.labels.slice_windows import observed
from detectors.labels.state import to_plain
from detectors.records import decode_record, parse_ts
from streams.simulation.traffic import feedback_records, serving_records
from streams.worker.label_agents import Judged, Outcomes, _apply
from streams.worker.tables import encode_state
from tests.unit.detectors.conftest import traffic_baseline

BATCH = 1_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--predictions", type=int, default=90_000)
    parser.add_argument("--top-k", type=int, default=20)
    args = parser.parse_args()
    baseline = traffic_baseline()
    options = LabelOptions(
        window_seconds=120,
        wait_seconds=900,
        slice_key="category",
        top_k=args.top_k,
        groups=("gender",),
    )
    features = SliceFeatures(baseline, "category", EngineOptions(60, 200), "ctr", "3")
    judged = Judged(LabelMonitor(options), features=features)
    rows = list(
        serving_records(args.predictions, rate=100.0, start=1_800_000_000.0, seed=3, slices=True)
    )
    labels = {f["request_id"]: f for f in feedback_records(rows, seed=3)}
    largest: tuple[int, dict[str, int]] = (0, {})
    for first in range(0, len(rows), BATCH):
        message = Outcomes("ctr", "3")
        for offset, row in enumerate(rows[first : first + BATCH], start=first):
            record = decode_record(row)
            slice_, groups = (
                row["slice"]["category"],
                list(group_values(baseline, record, ("gender",))),
            )
            values = observed(baseline, {**record.features, PREDICTION: record.prediction})
            message.predictions.append([0, offset, record.ts, slice_, groups, values])
            label = labels[row["request_id"]]
            at = parse_ts(label["ts"])
            message.labels.append(
                [0, offset, record.ts, slice_, groups, record.prediction, at, label["label"]]
            )
        clock = (record.ts, record.ts)
        _apply(judged, orjson.loads(message.message({0: clock})), [], [])
        plain = {"monitor": to_plain(judged.monitor), "slices": slices_plain(features)}
        compressed = len(zlib.compress(encode_state(plain), 1))
        if compressed > largest[0]:
            largest = (compressed, {k: len(orjson.dumps(v)) for k, v in plain.items()})
    parts = ", ".join(f"{k} {v:,}" for k, v in largest[1].items())
    print(f"{args.predictions:,} predictions, top-K {args.top_k}, windows of labels 120 s judged")
    print("900 s after they end, slice feature windows 60 s; largest state:")
    print(f"JSON bytes: {parts} = {sum(largest[1].values()):,}; zlib: {largest[0]:,} bytes")


if __name__ == "__main__":
    main()
