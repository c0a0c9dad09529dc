"""Rater agreement: Cohen's kappa and Krippendorff's alpha against reference values (hand-computed,
scikit-learn and the ``krippendorff`` package as test-only references), majority resolution with
ties and low agreement flagged, and the careless rater found."""

from __future__ import annotations

import math
import random

import krippendorff
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score

from detectors.labels.agreement import (
    AgreementOptions,
    agreement,
    cohen_kappa,
    krippendorff_alpha,
    resolve,
)

CHOICES = ("positive", "negative", "unsure")


def two_raters(pairs: list[tuple[str, str]]) -> dict[str, dict[str, str]]:
    return {f"i{n}": {"a": x, "b": y} for n, (x, y) in enumerate(pairs)}


def test_kappa_of_the_textbook_table_is_0_4() -> None:
    # 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> p_o 0.7, p_e 0.5, kappa 0.4
    pairs = [("y", "y")] * 20 + [("y", "n")] * 5 + [("n", "y")] * 10 + [("n", "n")] * 15
    assert cohen_kappa(two_raters(pairs), "a", "b") == pytest.approx(0.4)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(CHOICES), st.sampled_from(CHOICES)), min_size=2))
def test_kappa_matches_scikit_learn(pairs: list[tuple[str, str]]) -> None:
    ours = cohen_kappa(two_raters(pairs), "a", "b")
    left, right = [x for x, _ in pairs], [y for _, y in pairs]
    if len(set(left) | set(right)) == 1:
        assert math.isnan(ours)  # one choice only: chance agreement is certain, kappa undefined
        return
    assert ours == pytest.approx(cohen_kappa_score(left, right), abs=1e-9)


def test_kappa_uses_only_the_items_both_raters_answered() -> None:
    items = {"x": {"a": "y", "b": "y"}, "y": {"a": "n", "b": "n"}, "z": {"a": "y"}}
    assert cohen_kappa(items, "a", "b") == pytest.approx(1.0)
    assert math.isnan(cohen_kappa({"z": {"a": "y"}}, "a", "b"))


def test_alpha_of_krippendorffs_example_with_missing_answers_is_0_691() -> None:
    # The krippendorff package's documented example: three coders, fifteen units, gaps (nan).
    nan = np.nan
    data = [
        [nan, nan, nan, nan, nan, 3, 4, 1, 2, 1, 1, 3, 3, nan, 3],
        [1, nan, 2, 1, 3, 3, 4, 3, nan, nan, nan, nan, nan, nan, nan],
        [nan, nan, 2, 1, 3, 4, 4, nan, 2, 1, 1, 3, 3, nan, 4],
    ]
    items = {
        f"u{u}": {f"c{c}": str(int(row[u])) for c, row in enumerate(data) if not np.isnan(row[u])}
        for u in range(15)
    }
    assert krippendorff_alpha(items) == pytest.approx(0.691, abs=5e-4)
    reference = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert krippendorff_alpha(items) == pytest.approx(reference, abs=1e-9)


@pytest.mark.parametrize("seed", range(20))
def test_alpha_matches_the_krippendorff_package_for_random_batches(seed: int) -> None:
    rng = random.Random(seed)
    raters, units = rng.randint(2, 5), rng.randint(3, 40)
    coded = {0: "positive", 1: "negative", 2: "unsure"}
    data = [[rng.choice([0, 0, 1, 2, math.nan]) for _ in range(units)] for _ in range(raters)]
    items = {
        f"u{u}": {f"r{r}": coded[int(row[u])] for r, row in enumerate(data) if row[u] == row[u]}
        for u in range(units)
    }
    values = {v for ans in items.values() for v in ans.values()}
    pairable = sum(len(a) >= 2 for a in items.values())
    if len(values) < 2 or pairable == 0:
        assert math.isnan(krippendorff_alpha(items))
        return
    reference = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert krippendorff_alpha(items) == pytest.approx(reference, abs=1e-9)


def test_majority_resolves_and_ties_and_thin_majorities_are_flagged() -> None:
    clear = resolve("a", {"r1": "pos", "r2": "pos", "r3": "neg"}, 0.6)
    assert (clear.label, clear.votes, clear.raters, clear.flagged) == ("pos", 2, 3, False)
    tie = resolve("b", {"r1": "pos", "r2": "neg"}, 0.6)
    assert tie.label is None and tie.tie and tie.flagged
    thin = resolve("c", {"r1": "pos", "r2": "pos", "r3": "neg", "r4": "unsure", "r5": "x"}, 0.6)
    assert thin.label == "pos" and thin.low_agreement and not thin.tie


def test_the_careless_rater_is_flagged_and_the_careful_ones_are_not() -> None:
    rng = random.Random(7)
    truth = {f"i{n}": rng.choice(["pos", "neg"]) for n in range(200)}
    items = {}
    for item, label in truth.items():
        careful = {r: label if rng.random() < 0.95 else _other(label) for r in ("ann", "bob")}
        items[item] = {**careful, "cy": rng.choice(["pos", "neg"])}  # cy clicks at random
    feedback = {i: v for i, v in list(truth.items())[:50]}
    batch = agreement(items, feedback, AgreementOptions())
    assert batch.per_rater["cy"].careless
    assert not batch.per_rater["ann"].careless and not batch.per_rater["bob"].careless
    assert batch.kappas[("ann", "bob")] > 0.7 > 0.2 > abs(batch.kappas[("ann", "cy")])
    assert batch.per_rater["ann"].with_feedback > 0.85 and batch.per_rater["ann"].feedback_items
    assert 0.3 < batch.per_rater["cy"].with_feedback < 0.7
    assert 0.3 < batch.alpha < 0.7  # one of three at random drags the batch down
    line = batch.line("b1")
    assert "200 items, 3 raters" in line and "cy" in line and "careless?" in line


def _other(label: str) -> str:
    return "neg" if label == "pos" else "pos"


def test_options_are_checked_naming_the_parameter() -> None:
    with pytest.raises(ValueError, match="min_share"):
        AgreementOptions(min_share=0.0)
    with pytest.raises(ValueError, match="careless_kappa"):
        AgreementOptions(careless_kappa=2.0)
