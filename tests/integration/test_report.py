"""`logdrift report` on the demo's output and on serving-log files, opened in headless Chromium.

The demo injects five changes (streams/simulation/demo.py); the report of its store must open
offline and show, for the drifted features, the training and latest-window distributions visibly
apart. The screenshot is read back: the bars of each colour reproduce the chart data's proportions,
the drifted features' bars are far apart and an unchanged feature's are not, and the threshold and
anomaly colours are on the timelines where they belong.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import orjson
import pytest
from PIL import Image

from connectors.baseline_files import load_baseline
from detectors.report.data import ReportData, build_report
from streams.report.charts import ANOMALY, BASELINE, CURRENT, THRESHOLD
from streams.report.inputs import from_store
from streams.simulation.demo import DEMO_PLAN
from streams.simulation.traffic import SCENARIOS, Injection, serving_records
from tests.integration.browser import Layout, bar_masses, color_mask, layout, screenshot
from tests.integration.conftest import logdrift

ARTIFACTS = Path(__file__).resolve().parents[2] / ".artifacts"
START = 1_795_860_000.0
LOADS = re.compile(r"""(?:src|href|action|data|poster)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("demo")
    out = logdrift("demo", "--workdir", workdir, timeout=600).stdout
    assert "MISSED" not in out
    assert "logdrift report --baseline" in out  # the demo tells how to look at it
    return workdir


@pytest.fixture(scope="module")
def demo_report(demo: Path) -> Path:
    html = demo / "report.html"
    out = logdrift(
        "report", "--baseline", demo / "baseline", "--store", demo / "logdrift.db", "--out", html
    ).stdout
    assert f"wrote {html}" in out
    return html


def assert_self_contained(html: Path) -> str:
    text = html.read_text(encoding="utf-8")
    assert 50_000 < len(text) < 5_000_000, f"{html}: {len(text):,} characters"
    assert not LOADS.findall(text), "the page loads something from the network"
    for tag in ("<script", "<link", "<iframe", "<img", "@import"):
        assert tag not in text, f"{tag} in a page that must open offline"
    assert not re.search(r"url\((?!#)", text), "a url() that is not an in-page reference"
    return text


def test_demo_report_is_one_self_contained_page_with_every_feature(demo_report: Path) -> None:
    text = assert_self_contained(demo_report)
    features = re.findall(r'<section id="f-\d+" class="feature" data-feature="([^"]+)"', text)
    assert sorted(features) == sorted(load_baseline(demo_report.parent / "baseline").references)
    assert text.count("<svg") == 2 * len(features)  # distribution and timeline each
    # the summary puts every changed feature above the unchanged ones
    changed = {SCENARIOS[name].feature for name, _ in DEMO_PLAN}
    assert set(features[: len(changed)]) == changed
    assert "INT_TYPE_NOT_INT_STRING" in text  # the schema break is in the violations table


def _proportions(bars: list[tuple[float, float]]) -> list[float]:
    total = sum(m for _, m in bars)
    return [m / total for _, m in bars]


def _centre(bars: list[tuple[float, float]]) -> float:
    """Mass-weighted mean bar index."""
    props = _proportions(bars)
    return sum(i * p for i, p in enumerate(props))


def _data(demo: Path) -> ReportData:
    baseline = load_baseline(demo / "baseline")
    return build_report(
        baseline, from_store(demo / "logdrift.db", "ctr", len(baseline.references), 1440)
    )


@pytest.fixture(scope="module")
def shot(demo: Path, demo_report: Path) -> tuple[np.ndarray, Layout]:
    work = demo / "chromium"
    work.mkdir()
    where = layout(demo_report, work)
    png = work / "report.png"
    screenshot(demo_report, png, where.height, work)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(png, ARTIFACTS / "report.png")
    print(f"\nreport screenshot: {png} (copied to {ARTIFACTS / 'report.png'})")
    return np.asarray(Image.open(png).convert("RGB")), where


def test_screenshot_bars_reproduce_the_chart_data(
    demo: Path, shot: tuple[np.ndarray, Layout]
) -> None:
    image, where = shot
    assert set(where.charts) == {c.feature for c in _data(demo).features}
    for chart in _data(demo).features:
        region = where.charts[chart.feature][0].crop(image)
        d = chart.distribution
        drawn = _proportions(bar_masses(color_mask(region, BASELINE)))
        expected = [p for p in d.baseline if p > 0.002]  # thinner than a pixel: not drawn
        assert drawn == pytest.approx(expected, abs=0.015), chart.feature
        if d.current:
            drawn = _proportions(bar_masses(color_mask(region, CURRENT)))
            expected = [p for p in d.current if p > 0.002]
            assert drawn == pytest.approx(expected, abs=0.015), chart.feature


def test_drifted_distributions_are_visibly_apart_and_unchanged_ones_are_not(
    shot: tuple[np.ndarray, Layout],
) -> None:
    image, where = shot

    def bars(feature: str) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        region = where.charts[feature][0].crop(image)
        return (
            bar_masses(color_mask(region, BASELINE)),
            bar_masses(color_mask(region, CURRENT)),
        )

    # device: web jumps from 10% to 40% (centre 0.65 -> ~1.1 bars); score: mean up half a
    # standard deviation (~2.2 of its 16 equal-mass bins)
    for feature, shift in (("device", 0.3), ("score", 1.0)):
        base, cur = bars(feature)
        assert len(base) == len(cur)
        moved = _centre(cur) - _centre(base)  # in bars, same x positions on both sides
        assert moved > shift, f"{feature}: centres {_centre(base):.2f} -> {_centre(cur):.2f}"
        base_x = sum(x * m for x, m in base) / sum(m for _, m in base)
        cur_x = sum(x * m for x, m in cur) / sum(m for _, m in cur)
        slot = (base[-1][0] - base[0][0]) / (len(base) - 1)
        assert cur_x - base_x > slot * shift, f"{feature}: pixel mass at {base_x:.0f}, {cur_x:.0f}"
    base, cur = bars("is_returning")
    assert abs(_centre(cur) - _centre(base)) < 0.05
    base, cur = bars("prediction")
    assert abs(_centre(cur) - _centre(base)) < 0.5


def test_timelines_show_the_threshold_and_anomalies_only_where_raised(
    shot: tuple[np.ndarray, Layout],
) -> None:
    image, where = shot
    for feature, raised in (("device", True), ("score", True), ("is_returning", False)):
        region = where.charts[feature][1].crop(image)
        assert color_mask(region, THRESHOLD, 40).sum() > 200, feature
        anomalies = color_mask(region, ANOMALY, 40).sum()
        assert (anomalies > 200) if raised else (anomalies == 0), (feature, anomalies)
        # the distribution colours belong to the distribution charts only
        assert color_mask(region, BASELINE).sum() == 0


def test_report_from_serving_log_files(tmp_path: Path, demo: Path) -> None:
    records = serving_records(
        30_000, rate=100, start=START, injections=[Injection("category_surge", 15_000)]
    )
    logs = tmp_path / "serving.jsonl"
    logs.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records) + b"not json\n")
    html = tmp_path / "report.html"
    out = logdrift("report", "--baseline", demo / "baseline", logs, "--out", html).stdout
    assert "moved past threshold: device" in out
    text = assert_self_contained(html)
    assert "30,000 records" in text
    assert re.search(r'data-feature="device"', text)
    first = re.search(r'<section id="f-1" class="feature" data-feature="([^"]+)"', text)
    assert first and first.group(1) == "device"
    assert "not JSON" in text  # the bad line is counted with its reason


def test_report_needs_exactly_one_source(tmp_path: Path, demo: Path) -> None:
    proc = logdrift(
        "report", "--baseline", demo / "baseline", "--out", tmp_path / "r.html", check=False
    )
    assert proc.returncode == 2
    assert "exactly one source" in proc.stderr
    csv = tmp_path / "serving.csv"
    csv.write_text("ts,model\n")
    proc = logdrift("report", "--baseline", demo / "baseline", csv, check=False)
    assert proc.returncode == 2
    assert "read as JSON lines, not csv" in proc.stderr
