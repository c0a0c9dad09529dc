"""Window roll-ups: the parts per-feature owners make merge into the whole roll-up, in any
order and any number of times."""

from __future__ import annotations

import itertools

import pytest

from detectors.incidents.rollups import PartialRollUps, RollUp

FEATURES = frozenset({"age", "price", "device"})


def part(feature: str, kinds: list[str], start: float = 0.0) -> RollUp:
    alarmed = {feature: kinds} if kinds else {}
    return RollUp("ctr", "3", start, start + 60, (feature,), alarmed)


def test_the_parts_merge_into_the_whole_in_any_order() -> None:
    parts = [part("age", []), part("price", ["drift", "distribution_skew"]), part("device", [])]
    unknown = RollUp("ctr", "3", 0.0, 600.0, (), {"new_col": ["schema_skew"]})  # rough end
    wholes = []
    for order in itertools.permutations([*parts, unknown]):
        merged = order[0]
        for p in order[1:]:
            merged = merged.merge(p)
        wholes.append(merged)
    whole = wholes[0]
    assert all(w == whole for w in wholes)
    assert whole.end == 60.0  # the monitored parts' end, not the unknown columns' guess
    assert whole.features_alarmed == ["price"]
    assert whole.alarmed["price"] == ["distribution_skew", "drift"]
    assert whole.share == pytest.approx(1 / 3)
    assert whole.merge(parts[1]) == whole  # a part twice changes nothing


def test_a_whole_rollup_comes_out_once_every_feature_is_in_and_again_only_if_it_changes() -> None:
    p = PartialRollUps()
    assert p.add(part("age", []), FEATURES) is None
    assert p.add(part("price", ["drift"]), FEATURES) is None
    whole = p.add(part("device", []), FEATURES)
    assert whole is not None and whole.features_alarmed == ["price"]
    assert p.add(part("device", []), FEATURES) is None  # a re-delivered part
    late = p.add(RollUp("ctr", "3", 0.0, 60.0, (), {"new_col": ["schema_skew"]}), FEATURES)
    assert late is not None and late.id == whole.id and "new_col" in late.alarmed
    back = PartialRollUps.from_plain(p.to_plain())
    assert back.parts == p.parts


def test_only_the_newest_windows_are_kept() -> None:
    p = PartialRollUps(keep=4)
    for w in range(10):
        p.add(part("age", [], start=60.0 * w), FEATURES)
    assert sorted(p.parts) == [360.0, 420.0, 480.0, 540.0]
    with pytest.raises(ValueError, match="version"):
        PartialRollUps.from_plain({"v": 2, "parts": []})
