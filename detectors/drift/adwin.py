"""river's ADWIN over a block of values at once: the same alarms at the same indices, its state
kept in the river object itself (so checkpoints, detectors/drift/change_state.py, read and
write it as before).

river's ``ADWIN.update`` is a Python method around a Rust core (``AdaptiveWindowing``): on a
block, the wrapper (the reset after an alarm, the ``drift_detected`` property) costs four
times the core. This calls the core in the loop and resets as river does, on the value after
an alarm.

>>> from river.drift import ADWIN
>>> rng = np.random.default_rng(7)
>>> xs = np.concatenate([rng.normal(0, 1, 1_000), rng.normal(1, 1, 1_000)])
>>> river = ADWIN(delta=0.002, clock=32)
>>> one_by_one = [i for i, x in enumerate(xs) if (river.update(x), river.drift_detected)[1]]
>>> adwin = ADWIN(delta=0.002, clock=32)
>>> update_many(adwin, xs[:1_100]) + [1_100 + i for i in update_many(adwin, xs[1_100:])]
[1055]
>>> one_by_one
[1055]
"""

from __future__ import annotations

from itertools import takewhile
from operator import not_

import numpy as np
from numpy.typing import NDArray
from river.drift import ADWIN


def update_many(d: ADWIN, xs: NDArray[np.float64]) -> list[int]:
    """``d.update(x)`` for each x in order; the indices at which ``d.drift_detected`` was
    True."""
    out: list[int] = []
    values = iter(xs.tolist())
    detected, at, n = d.drift_detected, 0, len(xs)
    while at < n:
        if detected:
            d._reset()  # a fresh core, as river's update does after an alarm
        # the core on each value up to the next alarm, which takewhile consumes: no Python per value
        at += len(list(takewhile(not_, map(d._helper.update, values))))
        detected = at < n
        if detected:
            out.append(at)
            at += 1
    d._drift_detected = detected
    return out
