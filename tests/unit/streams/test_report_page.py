"""`logdrift report`'s page: it headlines the last full window, says for how many windows each
feature was past its threshold, and marks partial windows in the tables and on the timeline."""

from __future__ import annotations

from detectors.report.data import ReportInput, build_report
from streams.report.charts import SPAN_STYLES, render_html, timeline_svg
from tests.unit.detectors.report.test_data import T0, WEEK, anomaly, baseline, drifting_for_weeks


def test_the_page_headlines_the_last_full_window_and_marks_the_partial_one() -> None:
    data = ReportInput()
    drifting_for_weeks(data)
    in_partial = anomaly("device", T0 + WEEK * 22.5, 0.9, 0.3, start=T0 + WEEK * 22)  # type: ignore[arg-type]
    data.anomalies = [in_partial]
    report = build_report(baseline(), data)
    page = render_html(report, T0)
    assert '<p class="headline">Judged on the last full window, ' in page
    assert "moved past threshold: device (4.00x; in 21 of 22 windows since" in page
    assert "(37 records) is partial: shown, not judged." in page
    assert '<td class="narrow">21 of 22 windows since 2026-11-28T10:00:00.000Z</td>' in page
    assert "Last full window " in page
    assert '<span class="partial">(partial window)</span>' in page  # the anomaly's row
    assert "nothing past threshold" not in page


def test_a_partial_window_is_a_band_on_the_timeline_and_only_then() -> None:
    data = ReportInput()
    drifting_for_weeks(data)
    device = next(c for c in build_report(baseline(), data).features if c.feature == "device")
    band = str(SPAN_STYLES["partial"]["facecolor"])
    assert band in timeline_svg(device.timeline, "device")
    full_only = ReportInput()
    full_only.scores = [p for p in data.scores if not p.partial]
    device = next(c for c in build_report(baseline(), full_only).features if c.feature == "device")
    assert band not in timeline_svg(device.timeline, "device")
