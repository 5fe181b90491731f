"""A pytest plugin that runs the public tests against degenerate implementations.

    DEGENERATE_MODULE=policy_gradient DEGENERATE_REPORT=out.json \
        pytest -p tests.degenerate_plugin hw/tests/test_part1_policy_gradient.py

Every test that takes the module fixture (`pg` or `ng`) is run once against the reference
solution (tracing which graded functions it calls, directly or through another one), then
once per (kind, function) for each function that run called, against a copy of the
solution in which that one function returns zeros of the right shapes ("zeros") or NaNs
of the right shapes ("nan"). Each copy is the solution's source executed anew, so a
function that calls the degenerate one (policy_gradient calling discrete_pseudo_loss)
gets the degenerate result, as a student's would. Tensors are multiplied by 0 or nan, so
a degenerate loss stays connected to its inputs (its gradient is 0 or nan, not None).

The report lists, for each run, the test (its node id without the plugin's parameter),
the kind, the function, whether the function was called and the outcome; and for each
reference run the functions it called, in the order the tests ran.
"""
from __future__ import annotations

import ast
import json
import os
import re
import sys
import types

import hw  # noqa: F401  (imports TensorFlow quietly)
import numpy as np
import pytest
import tensorflow as tf

from grader.stubs import ROOT

MODULE = os.environ["DEGENERATE_MODULE"]
REPORT = os.environ["DEGENERATE_REPORT"]
FIXTURE = {"policy_gradient": "pg", "natural_gradient": "ng"}[MODULE]
SOURCE = (ROOT / "solutions" / f"{MODULE}.py").read_text()
FUNCTIONS = [node.name for node in ast.parse(SOURCE).body
             if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")]
KINDS = ("zeros", "nan")
PARAMETER = re.compile(r"DEGEN\.\w+\.\w+")

called: set[str] = set()  # graded functions called during the current test
traces: dict[str, list[str]] = {}  # test key -> the functions its reference run called
records: list[dict] = []


def degrade(value, kind: str):
    """value with every number replaced by 0 or nan, shapes, dtypes and types kept."""
    if isinstance(value, (list, tuple)):
        return type(value)(degrade(v, kind) for v in value)
    factor = 0.0 if kind == "zeros" else np.nan
    if isinstance(value, (tf.Tensor, tf.Variable)):
        return value * tf.constant(factor, value.dtype)
    return np.asarray(value) * factor


def implementation(kind: str, function: str) -> types.ModuleType:
    """The solution module executed anew as `degen_<kind>_<function>.<MODULE>`, with `function` degraded."""
    package_name = f"degen_{kind}_{function}"
    package = types.ModuleType(package_name)
    package.__path__ = []
    module = types.ModuleType(f"{package_name}.{MODULE}")
    module.__file__ = str(ROOT / "solutions" / f"{MODULE}.py")
    sys.modules[package_name], sys.modules[module.__name__] = package, module
    exec(compile(SOURCE, module.__file__, "exec"), module.__dict__)
    for name in FUNCTIONS:
        original = module.__dict__[name]

        def traced(*args, __name=name, __original=original, **kwargs):
            called.add(__name)
            result = __original(*args, **kwargs)
            return degrade(result, kind) if __name == function else result

        module.__dict__[name] = traced
    setattr(package, MODULE, module)
    return module


VARIANTS = [("reference", "all")] + [(kind, function) for kind in KINDS for function in FUNCTIONS]
MODULES = {variant: implementation(*variant) for variant in VARIANTS}


def pytest_generate_tests(metafunc):
    if FIXTURE in metafunc.fixturenames:
        metafunc.parametrize(FIXTURE, [MODULES[v] for v in VARIANTS], ids=[f"DEGEN.{k}.{f}" for k, f in VARIANTS])


def _variant(item):
    match = PARAMETER.search(item.nodeid)
    return tuple(match.group(0).split(".")[1:]) if match else None


def _key(item_or_id) -> str:
    return PARAMETER.sub("", getattr(item_or_id, "nodeid", item_or_id))


def pytest_collection_modifyitems(items):
    """The reference runs first (in the file's order), so that each trace is known before its variants run."""
    items.sort(key=lambda item: _variant(item) not in (None, ("reference", "all")))


def pytest_runtest_setup(item):
    called.clear()
    variant = _variant(item)
    if variant and variant[0] != "reference" and variant[1] not in traces.get(_key(item), ()):
        pytest.skip(f"does not call {variant[1]}")


def pytest_runtest_makereport(item, call):
    if call.when != "call":
        return
    variant = _variant(item)
    if variant == ("reference", "all"):
        traces[_key(item)] = sorted(called)
    if variant:
        item.user_properties.append(("degenerate", {"kind": variant[0], "function": variant[1],
                                                    "called": sorted(called)}))


def pytest_runtest_logreport(report):
    properties = dict(report.user_properties)
    if report.when == "call" and "degenerate" in properties:
        records.append({"test": _key(report.nodeid), "outcome": report.outcome, **properties["degenerate"]})


def pytest_sessionfinish(session):
    with open(REPORT, "w") as file:
        json.dump({"functions": FUNCTIONS, "records": records}, file, indent=1)
