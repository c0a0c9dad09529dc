"""``logdrift report``'s page: the chart data of detectors/report/data.py drawn with matplotlib
as inline SVG, in one HTML file that needs no network to open (no script, no font, no CDN).

Colours mean the same on every chart, and each is used by one series only, so a screenshot can
be checked by colour: baseline bars, current bars, the score line, its threshold, anomalies,
and the bands behind the timeline (partial windows; incidents will be drawn the same way).
"""

from __future__ import annotations

import io
import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib as mpl
from jinja2 import Environment
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure

from detectors.anomaly import iso
from detectors.report.data import Distribution, FeatureChart, Mark, ReportData, Span, Timeline
from streams.report.page import PAGE

BASELINE = "#1f5fbf"  # blue: training
CURRENT = "#f08c00"  # orange: the last full window
SCORE = "#202020"  # the statistic vs training
DRIFT = "#9a9a9a"  # the statistic vs the previous window
THRESHOLD = "#d62020"  # red: the alarm line
ANOMALY = "#8e3fbf"  # purple: anomalies on the timeline
# Bands behind the timeline, per Span.kind: one style each, labelled once in the legend.
SPAN_STYLES: dict[str, dict[str, Any]] = {
    "partial": {"facecolor": "#efefef", "edgecolor": "#c4c4c4", "hatch": "///", "lw": 0},
    # the anomalies' purple at the incident's edges: where it opened and where it resolved
    "incident": {"facecolor": (0.95, 0.89, 0.98, 0.6), "edgecolor": ANOMALY, "lw": 2.0},
}
SPAN_LEGEND = {"partial": "partial window", "incident": "incident (open to resolved)"}
DPI = 72
MAX_ANOMALY_ROWS = 500

mpl.rcParams.update(
    {
        "svg.fonttype": "path",  # glyphs as paths: the page needs no font to look the same
        "svg.hashsalt": "logdrift",  # stable ids: the same data gives the same file
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    # Inline SVG in HTML takes no XML prolog, doctype or RDF metadata (which name remote URIs).
    text = text[text.index("<svg") :]
    return re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)


def _nan(values: list[float | None]) -> list[float]:
    return [math.nan if v is None else v for v in values]


def distribution_svg(d: Distribution, feature: str) -> str:
    fig = Figure(figsize=(6.0, 3.1), dpi=DPI)
    ax = fig.add_subplot()
    xs = range(len(d.labels))
    width = 0.4 if d.current else 0.8
    offset = width / 2 if d.current else 0.0
    ax.bar([x - offset for x in xs], d.baseline, width, color=BASELINE, label="training")
    if d.current:
        which = "partial window" if d.partial else "last full window"
        window = f"{which} ({d.current_count:,} values)"
        ax.bar([x + offset for x in xs], d.current, width, color=CURRENT, label=window)
    else:
        note = "no valid value in any window"
        ax.text(1.0, 1.02, note, transform=ax.transAxes, ha="right", va="bottom", fontsize=8)
    ax.set_xticks(list(xs), d.labels, rotation=40 if d.numeric else 30, ha="right", fontsize=7)
    ax.set_ylabel("share of values")
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    title = "per training-quantile bin" if d.numeric else "per category"
    _title_and_legend(ax, f"{feature}: distribution {title}")
    ax.set_ylim(0, max([*d.baseline, *d.current, 0.01]) * 1.3)
    return _svg(fig)


def _title_and_legend(ax: Axes, title: str, ncol: int = 4) -> None:
    """Legend in a row between the title and the plot, where it never hides a bar or a line."""
    ax.set_title(title, loc="left", pad=22)
    ax.legend(
        loc="lower left",
        bbox_to_anchor=(0, 1.0),
        ncol=ncol,
        frameon=False,
        fontsize=8,
        borderaxespad=0.2,
        handlelength=1.6,
    )


def _dates(ts: list[float]) -> list[float]:
    """Epoch seconds as matplotlib's date numbers (days), so the axis shows UTC times."""
    return [float(date2num(datetime.fromtimestamp(t, UTC))) for t in ts]  # type: ignore[no-untyped-call]


def timeline_svg(t: Timeline, feature: str) -> str:
    fig = Figure(figsize=(6.6, 3.1), dpi=DPI)
    ax = fig.add_subplot()
    title = f"{feature}: {t.metric} vs training, per window"
    if not t.ends:
        ax.set_title(title, loc="left")
        ax.text(0.5, 0.5, "no closed window yet", transform=ax.transAxes, ha="center")
        ax.set_xticks([])
        ax.set_yticks([])
        return _svg(fig)
    _draw_spans(ax, t.spans)
    _draw_scores(ax, t)
    _draw_marks(ax, t.marks)
    locator = AutoDateLocator(tz=UTC)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=UTC))  # type: ignore[no-untyped-call]
    ax.set_ylim(bottom=0)
    _title_and_legend(ax, title, ncol=5)
    return _svg(fig)


def _draw_spans(ax: Axes, spans: list[Span]) -> None:
    """Bands behind everything else, one legend entry per kind."""
    labelled: set[str] = set()
    for span in spans:
        start, end = _dates([span.start, span.end])
        label = SPAN_LEGEND.get(span.kind, span.kind) if span.kind not in labelled else None
        labelled.add(span.kind)
        ax.axvspan(start, end, zorder=0, label=label, **SPAN_STYLES.get(span.kind, {}))


def _draw_scores(ax: Axes, t: Timeline) -> None:
    """The score per window end, a partial window's point hollow; drift; the threshold."""
    ends = _dates(t.ends)
    ax.plot(ends, _nan(t.skew), color=SCORE, marker="o", ms=3, lw=1.5, label="vs training")
    hollow = [i for i, partial in enumerate(t.partial) if partial and t.skew[i] is not None]
    if hollow:
        ax.plot(
            [ends[i] for i in hollow],
            _nan([t.skew[i] for i in hollow]),
            ls="none",
            marker="o",
            ms=5,
            mfc="white",
            mec=SCORE,
        )
    if any(v is not None for v in t.drift):
        ax.plot(ends, _nan(t.drift), color=DRIFT, lw=1, label="vs previous window")
    ax.plot(ends, _nan(t.threshold), color=THRESHOLD, ls="--", lw=1.5, label="threshold")


def _draw_marks(ax: Axes, marks: list[Mark]) -> None:
    """One line per anomaly at its time."""
    for i, mark in enumerate(marks):
        ax.axvline(
            _dates([mark.timestamp])[0],
            color=ANOMALY,
            lw=1.2,
            label="anomaly" if i == 0 else None,
        )


def _ratio(x: float) -> str:
    return "\u221e" if math.isinf(x) else f"{x:.2f}\u00d7"  # infinity, multiplication sign


def _num(x: float | None, fmt: str = ".3f") -> str:
    return "\u2013" if x is None or not math.isfinite(x) else format(x, fmt)


def _capitalize_first(text: str) -> str:
    """The first letter up, the rest as it is (Jinja's ``capitalize`` lowers the rest)."""
    return text[:1].upper() + text[1:]


def _environment() -> Environment:
    # Autoescaped: feature names, categories and messages come from serving data.
    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(ratio=_ratio, num=_num, iso=iso, capitalize_first=_capitalize_first)
    return env


def render_html(data: ReportData, generated: float) -> str:
    """The whole page; ``generated`` (epoch seconds) is printed, so time comes in as data."""
    charts = [
        (c, distribution_svg(c.distribution, c.feature), timeline_svg(c.timeline, c.feature))
        for c in data.features
    ]
    anomalies = data.anomalies[-MAX_ANOMALY_ROWS:]
    return (
        _environment()
        .from_string(PAGE)
        .render(
            data=data,
            charts=charts,
            anomalies=list(reversed(anomalies)),
            omitted=len(data.anomalies) - len(anomalies),
            generated=generated,
        )
    )


def write_report(data: ReportData, out: Path, generated: float) -> int:
    """Write the page; returns its size in bytes."""
    text = render_html(data, generated)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return len(text.encode())


__all__ = ["FeatureChart", "render_html", "write_report"]
