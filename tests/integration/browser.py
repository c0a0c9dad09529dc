"""Headless Chromium (Debian's `chromium`, installed by `make browser`) for the report tests: a
full-page screenshot, and where each chart landed on it.

Where the charts are is measured in a copy of the page with one script added at its end (the
report itself has none): the script writes the bounding boxes of every chart into the DOM, and
Chromium's --dump-dom prints it. Same width, same layout: the boxes locate the charts in the
screenshot of the untouched page.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.integration.patience import bound

WIDTH = 1400
FLAGS = (
    "--headless",
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
_MEASURE = """<script>
(() => {
  const box = (e) => { const r = e.getBoundingClientRect();
    return [r.left + scrollX, r.top + scrollY, r.width, r.height]; };
  const out = { height: document.documentElement.scrollHeight, sections: [...document
    .querySelectorAll("section.feature")].map((s) => ({ feature: s.dataset.feature,
      charts: [...s.querySelectorAll("svg")].map(box) })) };
  const pre = document.createElement("pre");
  pre.id = "layout"; pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
})();
</script>"""


@dataclass(frozen=True, slots=True)
class Box:
    left: int
    top: int
    width: int
    height: int

    def crop(self, image: np.ndarray) -> np.ndarray:
        return image[self.top : self.top + self.height, self.left : self.left + self.width]


@dataclass(frozen=True, slots=True)
class Layout:
    height: int
    charts: dict[str, tuple[Box, Box]]  # feature -> (distribution, timeline)


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium is not installed: run `make browser` (apt-get install chromium)")
    return path


def _run(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=bound(120),
    )
    if proc.returncode != 0:
        raise AssertionError(f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}")
    return proc


def layout(html: Path, workdir: Path) -> Layout:
    measured = workdir / "measured.html"
    page = html.read_text(encoding="utf-8")
    measured.write_text(page.replace("</body>", _MEASURE + "</body>"), encoding="utf-8")
    proc = _run(
        [f"--window-size={WIDTH},1000", "--dump-dom", measured.as_uri()], workdir / "profile"
    )
    found = re.search(r'<pre id="layout">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"no layout in the dumped DOM: {proc.stdout[-500:]}"
    data = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    charts = {}
    for s in data["sections"]:
        dist, line = (Box(*(round(v) for v in b)) for b in s["charts"])
        charts[s["feature"]] = (dist, line)
    return Layout(int(data["height"]), charts)


def screenshot(html: Path, png: Path, height: int, workdir: Path) -> None:
    _run(
        [f"--window-size={WIDTH},{height}", f"--screenshot={png}", html.as_uri()],
        workdir / "profile",
    )
    assert png.exists() and png.stat().st_size > 10_000, f"no screenshot at {png}"


def color_mask(image: np.ndarray, hex_color: str, tolerance: int = 10) -> np.ndarray:
    """Pixels within ``tolerance`` of a colour on every channel (anti-aliased edges are not)."""
    rgb = np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.int16)
    diff = np.abs(image[..., :3].astype(np.int16) - rgb)
    return np.all(diff <= tolerance, axis=-1)


def bar_masses(mask: np.ndarray) -> list[tuple[float, float]]:
    """(centre x, pixel mass) of each bar, left to right. A bar is a run of columns standing on
    the lowest row the colour reaches (the chart's zero line); counting each column only up
    from there leaves out the legend's swatch above the plot."""
    rows = np.nonzero(mask.any(axis=1))[0]
    if rows.size == 0:
        return []
    base = rows[-1]
    heights = []
    for x in range(mask.shape[1]):
        h = 0
        while base - h >= 0 and mask[base - h, x]:
            h += 1
        heights.append(h)
    bars, x = [], 0
    while x < len(heights):
        if heights[x] == 0:
            x += 1
            continue
        start = x
        while x < len(heights) and heights[x] > 0:
            x += 1
        mass = float(sum(heights[start:x]))
        bars.append(((start + x - 1) / 2, mass))
    return bars
