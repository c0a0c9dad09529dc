"""The runnable examples in detectors/ docstrings are part of the specification. pytest's
``testpaths`` is ``tests``, so ``--doctest-modules`` alone never collects detectors/: this runs
each module's examples from the unit suite."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import detectors

MODULES = sorted(m.name for m in pkgutil.walk_packages(detectors.__path__, "detectors."))


def test_there_are_examples_to_run() -> None:
    finder = doctest.DocTestFinder()
    examples = sum(
        len(t.examples) for name in MODULES for t in finder.find(importlib.import_module(name))
    )
    assert examples >= 20


@pytest.mark.parametrize("name", MODULES)
def test_the_docstring_examples_of_a_module_hold(name: str) -> None:
    module = importlib.import_module(name)
    failed, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False, report=True)
    assert failed == 0, f"{failed} docstring example(s) of {name} failed (printed above)"
