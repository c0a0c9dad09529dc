"""Agreement between raters, and what their answers resolve to.

    answers per item (rater -> choice) --> majority per item (ties, low agreement flagged)
      --> Cohen's kappa per rater pair, Krippendorff's alpha (nominal) per batch
      --> each rater against the majority of the others, and against process feedback

Nominal labels only: a choice is a string from the label set. Pure: values in, figures out.

>>> items = {"a": {"ann": "yes", "bob": "yes"}, "b": {"ann": "no", "bob": "yes"},
...          "c": {"ann": "no", "bob": "no"}}
>>> round(cohen_kappa(items, "ann", "bob"), 3)
0.4
>>> round(krippendorff_alpha(items), 3)
0.444
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import combinations

Answers = Mapping[str, str]  # rater -> choice, for one item


def cohen_kappa(items: Mapping[str, Answers], a: str, b: str) -> float:
    """Cohen's kappa of raters ``a`` and ``b`` over the items both answered; nan when they share
    no item or chance agreement is already certain (both gave one and the same choice)."""
    pairs = [(ans[a], ans[b]) for ans in items.values() if a in ans and b in ans]
    if not pairs:
        return math.nan
    n = len(pairs)
    observed = sum(x == y for x, y in pairs) / n
    left, right = Counter(x for x, _ in pairs), Counter(y for _, y in pairs)
    expected = sum(left[c] * right[c] for c in left) / (n * n)
    if expected == 1.0:
        return math.nan
    return (observed - expected) / (1.0 - expected)


def krippendorff_alpha(items: Mapping[str, Answers]) -> float:
    """Krippendorff's alpha for nominal data over any number of raters, missing answers allowed;
    items with fewer than two answers carry no information about agreement and are left out."""
    coincidence: dict[tuple[str, str], float] = {}
    for ans in items.values():
        values = list(ans.values())
        m = len(values)
        if m < 2:
            continue
        for i, j in ((i, j) for i in range(m) for j in range(m) if i != j):
            pair = (values[i], values[j])
            coincidence[pair] = coincidence.get(pair, 0.0) + 1.0 / (m - 1)
    totals: dict[str, float] = {}
    for (c, _), weight in coincidence.items():
        totals[c] = totals.get(c, 0.0) + weight
    n = sum(totals.values())
    if n <= 1:
        return math.nan
    disagree = sum(w for (c, k), w in coincidence.items() if c != k)
    chance = sum(totals[c] * totals[k] for c in totals for k in totals if c != k)
    if chance == 0:
        return math.nan  # one choice only: agreement is undefined, not perfect
    return 1.0 - (n - 1) * disagree / chance


@dataclass(frozen=True, slots=True)
class Resolution:
    """What one item's answers resolve to: the majority choice, or None on a tie."""

    item: str
    label: str | None
    votes: int  # answers for the majority choice
    raters: int  # answers in all
    tie: bool
    low_agreement: bool

    @property
    def share(self) -> float:
        return self.votes / self.raters if self.raters else 0.0

    @property
    def flagged(self) -> bool:
        return self.tie or self.low_agreement


def resolve(item: str, answers: Answers, min_share: float) -> Resolution:
    """Majority of ``answers``; flagged for review on a tie or when the majority's share of the
    answers is below ``min_share``.

    >>> resolve("a", {"ann": "yes", "bob": "yes", "cy": "no"}, 0.6).label
    'yes'
    >>> resolve("b", {"ann": "yes", "bob": "no"}, 0.6).tie
    True
    """
    counts = Counter(answers.values()).most_common()
    if not counts:
        return Resolution(item, None, 0, 0, tie=False, low_agreement=True)
    top, votes = counts[0]
    tie = len(counts) > 1 and counts[1][1] == votes
    share = votes / len(answers)
    return Resolution(item, None if tie else top, votes, len(answers), tie, share < min_share)


@dataclass(slots=True)
class RaterFigures:
    """One rater's answers against the others'."""

    rater: str
    answered: int = 0
    with_others: float = math.nan  # share agreeing with the majority of the other raters
    with_feedback: float = math.nan  # share agreeing with process feedback, where it exists
    feedback_items: int = 0
    kappa_with_others: float = math.nan  # Cohen's kappa against the others' majority
    careless: bool = False


@dataclass(slots=True)
class BatchAgreement:
    items: int
    raters: list[str]
    alpha: float
    kappas: dict[tuple[str, str], float]
    resolutions: list[Resolution]
    per_rater: dict[str, RaterFigures] = field(default_factory=dict)

    @property
    def conflicts(self) -> int:
        return sum(r.raters > r.votes for r in self.resolutions)

    @property
    def flagged(self) -> list[Resolution]:
        return [r for r in self.resolutions if r.flagged]

    def line(self, batch: str) -> str:
        """The report line of one batch: items, raters, agreement, conflicts, rater mix."""
        mix = ", ".join(
            f"{f.rater} {f.answered} ({_pct(f.with_others)} with the others"
            + (f", {_pct(f.with_feedback)} with feedback" if f.feedback_items else "")
            + (", careless?" if f.careless else "")
            + ")"
            for f in self.per_rater.values()
        )
        kappas = ", ".join(f"{a}/{b} {_num(k)}" for (a, b), k in self.kappas.items())
        return (
            f"batch {batch}: {self.items} items, {len(self.raters)} raters, "
            f"alpha {_num(self.alpha)}, kappa {kappas or 'n/a'}; "
            f"{self.conflicts} conflicts, {len(self.flagged)} flagged for review; "
            f"raters: {mix}"
        )


@dataclass(frozen=True, slots=True)
class AgreementOptions:
    min_share: float = 0.6  # an item's majority below this share of its answers is flagged
    careless_kappa: float = 0.4  # a rater whose kappa with the others' majority is below: flagged

    def __post_init__(self) -> None:
        if not 0.0 < self.min_share <= 1.0:
            raise ValueError(f"min_share must be in (0, 1], got {self.min_share}")
        if not -1.0 <= self.careless_kappa <= 1.0:
            raise ValueError(f"careless_kappa must be in [-1, 1], got {self.careless_kappa}")


def agreement(
    items: Mapping[str, Answers],
    feedback: Mapping[str, str] | None = None,
    options: AgreementOptions = AgreementOptions(),
) -> BatchAgreement:
    """Every agreement figure of one batch. ``feedback``: item -> the process feedback's choice,
    for the items that have it."""
    raters = sorted({r for ans in items.values() for r in ans})
    kappas = {(a, b): cohen_kappa(items, a, b) for a, b in combinations(raters, 2)}
    resolutions = [resolve(item, ans, options.min_share) for item, ans in items.items()]
    batch = BatchAgreement(len(items), raters, krippendorff_alpha(items), kappas, resolutions)
    for rater in raters:
        batch.per_rater[rater] = _rater(rater, items, feedback or {}, options)
    return batch


def _rater(
    rater: str,
    items: Mapping[str, Answers],
    feedback: Mapping[str, str],
    options: AgreementOptions,
) -> RaterFigures:
    figures = RaterFigures(rater)
    pairs: dict[str, Answers] = {}
    for item, ans in items.items():
        if rater not in ans:
            continue
        figures.answered += 1
        # The majority of the *others*: with three raters one's own vote would decide it, and a
        # careless rater would look as good as a careful one whenever the careful two disagree.
        others = resolve(item, {r: c for r, c in ans.items() if r != rater}, 0.0)
        if others.label is not None:
            pairs[item] = {"self": ans[rater], "others": others.label}
    agree = sum(p["self"] == p["others"] for p in pairs.values())
    figures.with_others = agree / len(pairs) if pairs else math.nan
    figures.kappa_with_others = cohen_kappa(pairs, "self", "others")
    with_fb = [
        ans[rater] == feedback[i] for i, ans in items.items() if rater in ans and i in feedback
    ]
    figures.feedback_items = len(with_fb)
    figures.with_feedback = sum(with_fb) / len(with_fb) if with_fb else math.nan
    figures.careless = figures.kappa_with_others < options.careless_kappa  # False on nan
    return figures


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.0%}"


def _num(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.3f}"


def choices_seen(items: Iterable[Answers]) -> set[str]:
    return {c for ans in items for c in ans.values()}
