"""The columnar block decoder and ``Engine.process_blocks`` against the exact path:
``decode_record`` record by record into ``process_batch``/``process``."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from detectors.anomaly import iso
from detectors.baseline.reference import Baseline
from detectors.blocks import decode_block
from detectors.engine import Engine, EngineOptions, Result
from detectors.labels.monitor import LabelOptions
from detectors.records import (
    DecodeError,
    FieldMapping,
    decode_feedback,
    decode_pipeline,
    decode_record,
    parse_ts,
)
from detectors.skew.monitor import SkewOptions
from streams.simulation.traffic import (
    Injection,
    LabelFlip,
    feedback_records,
    interleave,
    serving_records,
)
from tests.unit.detectors.conftest import traffic_baseline

OPTIONS = EngineOptions(window_seconds=10.0, min_count=200)
LABELS = LabelOptions(window_seconds=60, wait_seconds=0, slice_key="category", top_k=4)

_ts = st.one_of(
    st.just("2026-11-28T10:00:00.5Z"),
    st.just("2026-11-28T10:00:01+02:00"),
    st.just("2026-11-28T10:00:02"),  # naive: read as UTC
    st.just("yesterday"),
    st.just("0001-01-01T00:00:00Z"),  # before 1970
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-10, 10**14),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=1),
)
_id = st.one_of(
    st.none(),
    st.sampled_from(["ctr", "fraud", "", "x" * 257, "3"]),
    st.integers(0, 5),
    st.booleans(),
    st.lists(st.integers(), max_size=1),
    st.floats(0, 1),
)
_features = st.one_of(
    st.dictionaries(
        st.sampled_from(["x", "y", "country"]),
        st.one_of(st.integers(), st.floats(), st.text(max_size=3), st.none()),
        max_size=3,
    ),
    st.lists(st.integers(), max_size=1),
    st.none(),
)


@st.composite
def _raw(draw: st.DrawFn) -> object:
    if draw(st.integers(0, 30)) == 0:
        return draw(st.one_of(st.integers(), st.text(max_size=2), st.lists(st.none(), max_size=1)))
    out: dict[str, object] = {}
    for key, strategy in (
        ("ts", _ts),
        ("model", _id),
        ("model_version", _id),
        ("request_id", _id),
        ("features", _features),
        ("prediction", st.one_of(st.floats(0, 1), st.none(), st.text(max_size=2))),
        ("slice", st.one_of(st.none(), st.just({"region": "eu"}), st.just([1]))),
    ):
        if draw(st.integers(0, 9)):  # now and then the field is absent
            out[key] = draw(strategy)
    return out


_clean = st.fixed_dictionaries(
    {
        "ts": st.one_of(
            st.floats(0, 2e9),
            st.integers(0, 2 * 10**12),
            st.integers(0, 2 * 10**9).map(lambda s: iso(s / 1000)),
        ),
        "model": st.sampled_from(["ctr", "fraud", 7]),
        "model_version": st.sampled_from(["1", "2", 3]),
        "features": st.dictionaries(st.sampled_from(["x", "y"]), st.integers(), max_size=2),
    },
    optional={"prediction": st.floats(0, 1), "request_id": st.text(max_size=4)},
)


def _exact(raws: list[object]) -> list[Any] | None:
    try:
        return [decode_record(r) for r in raws]
    except DecodeError:
        return None


def _check_against_exact(raws: list[object]) -> bool:
    """decode_block's groups hold exactly what decode_record says of every record; None only
    when the exact path is needed (and always when decode_record refuses one)."""
    groups = decode_block(raws)
    records = _exact(raws)
    if records is None:
        assert groups is None
        return False
    if groups is None:
        return False
    keys = list(dict.fromkeys((r.model, r.version) for r in records))
    assert [(g.model, g.version) for g in groups] == keys
    assert sorted(i for g in groups for i in g.index) == list(range(len(raws)))
    for g in groups:
        for k, i in enumerate(g.index):
            r = records[i]
            assert (g.model, g.version) == (r.model, r.version)
            assert g.ts[k] == r.ts
            assert g.features[k] == r.features
            assert g.predictions[k] == r.prediction
    return True


@settings(max_examples=300, deadline=None)
@given(st.lists(_raw(), min_size=1, max_size=6))
def test_a_block_decodes_as_each_record_does_or_takes_the_exact_path(raws: list[object]) -> None:
    _check_against_exact(raws)


@settings(max_examples=200, deadline=None)
@given(st.lists(_clean, min_size=1, max_size=8))
def test_a_clean_block_of_several_models_and_times_decodes_columnwise(
    raws: list[dict[str, Any]],
) -> None:
    assert _check_against_exact(list(raws))


def test_a_dotted_mapping_takes_the_exact_path() -> None:
    raws = [{"meta": {"ts": 1.0}, "model": "ctr", "features": {}}]
    assert decode_block(raws, FieldMapping(ts="meta.ts")) is None
    assert decode_record(raws[0], FieldMapping(ts="meta.ts")).ts == 1.0


@pytest.fixture(scope="module")
def baseline() -> Baseline:
    return traffic_baseline()


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    """Changes to find, late records, unknown columns, a schema break (strings in a numeric
    column) and records of a model without a baseline."""
    injections = [
        Injection("mean_shift", 2_000),
        Injection("missing_surge", 2_500),
        Injection("schema_break", 3_500),
    ]
    out = list(serving_records(5_000, rate=100.0, start=1.8e9, injections=injections, seed=5))
    rng = random.Random(2)
    for row in out:
        if rng.random() < 0.02:
            row["ts"] = iso(parse_ts(row["ts"]) - rng.uniform(0, 25))
        if rng.random() < 0.03:
            row["features"][f"extra_{rng.randrange(40)}"] = 1
        if rng.random() < 0.01:
            row["model"] = "fraud"
        if rng.random() < 0.01:
            row["model_version"] = "4"
    return out


def _verdicts(result: Result) -> tuple[list[Any], list[Any]]:
    """Each model version's anomalies and reports in order (a batch is accounted one model
    version after another, so two versions' verdicts interleave differently than one by one)."""
    anomalies = sorted(result.anomalies, key=lambda a: (a.model, a.model_version))
    reports = [
        (r.model, r.version, r.start, r.end, r.count, r.late, r.partial, r.scores, r.windows)
        for r in sorted(result.reports, key=lambda r: (r.model, r.version))
    ]
    return [a.to_dict() for a in anomalies], reports


@settings(max_examples=6, deadline=None)
@given(st.lists(st.integers(1, 4_999), max_size=30, unique=True).map(sorted))
@example(cuts=[3425])  # versions 3 and 4 alarm in one block: accounted one version after another
def test_blocks_give_the_record_by_record_windows_alarms_and_refusals(
    baseline: Baseline, rows: list[dict[str, Any]], cuts: list[int]
) -> None:
    exact, columnar = Engine([baseline], OPTIONS), Engine([baseline], OPTIONS)
    want, got = Result(), Result()
    want_refused: list[int] = []
    got_refused: list[int] = []
    taken = 0
    for lo, hi in zip([0, *cuts], [*cuts, len(rows)], strict=True):
        for i in range(lo, hi):
            try:
                want.extend(exact.process(decode_record(rows[i])))
            except DecodeError as exc:
                assert exc.field == "model"
                want_refused.append(i)
        groups = decode_block(rows[lo:hi])
        assert groups is not None  # every row decodes: the blocks go columnwise
        result, refused = columnar.process_blocks(groups)
        got.extend(result)
        got_refused += [lo + i for i, _ in refused]
        taken += 1
    want.extend(exact.close_all())
    got.extend(columnar.close_all())
    assert want_refused and got_refused == want_refused
    assert {a.feature for a in want.anomalies} >= {"score", "price"}  # the test can fail
    assert _verdicts(got) == _verdicts(want)
    assert taken == len(cuts) + 1


def _feed_mixed(engine: Engine, rows: list[dict[str, Any]], blocks: bool) -> Result:
    """Serving records, their labels and the pipeline's features in arrival order; each run
    of serving records between two others as one block (``blocks``) or record by record."""
    out, run = Result(), []

    def serve() -> None:
        if not run:
            return
        if blocks:
            groups = decode_block(run)
            assert groups is not None
            result, refused = engine.process_blocks(groups)
            assert refused == []
            out.extend(result)
        else:
            for raw in run:
                out.extend(engine.process(decode_record(raw)))
        run.clear()

    for raw in rows:
        if "features" in raw and "prediction" in raw:
            run.append(raw)
            continue
        serve()
        if "label" in raw:
            out.extend(engine.feedback(decode_feedback(raw)))
        else:
            out.extend(engine.pipeline(decode_pipeline(raw)))
    serve()
    out.extend(engine.close_all())
    return out


def test_blocks_with_labels_and_feature_skew_on_give_the_record_by_record_verdicts(
    baseline: Baseline,
) -> None:
    """Labels and feature skew hold each record past its window: a block decodes its records
    whole for them (``Block.records``), and every verdict is the one of records one by one."""
    rows = list(serving_records(4_000, rate=10.0, start=1.8e9, slices=True, seed=3))
    labels = feedback_records(rows, delay=lambda rng: 0.05, flips=[LabelFlip(2_000)])
    pipeline = [
        {
            "ts": r["ts"],
            "request_id": r["request_id"],
            "model": r["model"],
            "features": {
                **r["features"],
                "price": r["features"]["price"] * (100 if i % 20 == 0 else 1),
            },
        }
        for i, r in enumerate(rows)
        if i % 3 == 0 and isinstance(r["features"].get("price"), float)
    ]
    mixed = list(interleave(rows, labels, pipeline))

    def engine() -> Engine:
        return Engine(
            [baseline], OPTIONS, LABELS, SkewOptions(window_seconds=60.0, wait_seconds=0.0)
        )

    want = _feed_mixed(engine(), mixed, blocks=False)
    got = _feed_mixed(engine(), mixed, blocks=True)
    assert {a.kind for a in want.anomalies} >= {"feature_skew", "concept_drift"}  # can fail
    assert _verdicts(got) == _verdicts(want)
    assert [r.line() for r in got.labels] == [r.line() for r in want.labels]
