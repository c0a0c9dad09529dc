"""Issue 12: a training file checked against its own baseline raises nothing (DESIGN section 7).

Four weeks of training rows (one every 30 s: AR(1) features, the daily cycle, lognormal tails,
the absurd values) become a baseline exactly as `logdrift baseline` makes one; then the very same
rows, as serving records in their own event time, go through the engine with windows of a
minute, ten minutes, an hour, a day and a week. Data cannot drift from itself: any anomaly is a
threshold that did not learn how the training data varies at that window size.
"""

from __future__ import annotations

import pytest

from tests.scenarios.production_plan import SELF_CHECK_WINDOWS
from tests.scenarios.production_runs import ProductionBoard


@pytest.mark.slow
@pytest.mark.parametrize(
    "seconds", SELF_CHECK_WINDOWS.values(), ids=[k.replace(" ", "_") for k in SELF_CHECK_WINDOWS]
)
def test_the_training_file_checked_against_its_own_baseline_raises_nothing(
    production: ProductionBoard, seconds: float
) -> None:
    check = production.self_check(seconds)
    assert check.error is None, check.error
    assert check.records > 0 and check.windows > 0
    shown = "\n".join(a.line() for a in check.anomalies[:10])
    assert not check.anomalies, f"{len(check.anomalies):,} anomalies, first:\n{shown}"
