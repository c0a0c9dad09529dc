"""river's own update, value by value: what the block versions (detectors/drift/adwin.py,
page_hinkley.py) must equal, and the path of any detector or setting they do not cover."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from river.base import DriftDetector


def one_by_one(d: DriftDetector, xs: NDArray[np.float64]) -> list[int]:
    """``d.update(x)`` for each x in order; the indices at which ``d.drift_detected`` was
    True."""
    out = []
    for i, x in enumerate(xs.tolist()):
        d.update(x)
        if d.drift_detected:
            out.append(i)
    return out
