"""Fixtures shared by the public tests.

`pg` and `ng` are the modules under test: your hw/policy_gradient.py and
hw/natural_gradient.py. (HW_IMPLEMENTATION=<package> runs the tests against another
importable package holding the same two modules, e.g. a copy of your work.)
"""
import importlib
import os

import hw  # noqa: F401  (imports TensorFlow quietly, before anything else does)
import pytest

IMPLEMENTATION = os.environ.get("HW_IMPLEMENTATION", "hw")


@pytest.fixture(scope="session")
def pg():
    """The Part 1 module under test (hw/policy_gradient.py)."""
    return importlib.import_module(f"{IMPLEMENTATION}.policy_gradient")


@pytest.fixture(scope="session")
def ng():
    """The Part 2 module under test (hw/natural_gradient.py)."""
    return importlib.import_module(f"{IMPLEMENTATION}.natural_gradient")
