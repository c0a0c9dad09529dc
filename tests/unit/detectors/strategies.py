"""Hypothesis strategies shared by the detectors tests: whatever JSON a serving app may log."""

from __future__ import annotations

from hypothesis import strategies as st

# Python's json module parses integers of any size; a float cannot hold one past 2**1024.
huge_integers = st.integers(min_value=2**1024, max_value=2**1100) | st.integers(
    min_value=-(2**1100), max_value=-(2**1024)
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | huge_integers
    | st.floats()  # NaN and both infinities included
    | st.text(max_size=8)
)

json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
