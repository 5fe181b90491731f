"""The public tests fail every implementation that returns zeros or NaNs, and run in the order
that makes `pytest hw/ -x` stop at the most telling message.

tests/degenerate_plugin.py runs each public test against the reference solution (tracing
which graded functions it calls) and then against copies of the solution in which one
function returns zeros of the right shapes, or NaNs: every such copy must fail every test
that calls the degraded function. The reference traces also give each test's functions,
from which the order is checked: a test that calls several graded functions (an aggregate
check, such as policy_gradient against the exact J) runs after the tests of each of those
functions alone (the value checks that name mistakes).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from grader.stubs import ROOT
from tests.support import output, run_public_tests

FILES = {"policy_gradient": ["hw/tests/test_part1_policy_gradient.py", "hw/tests/test_train.py"],
         "natural_gradient": ["hw/tests/test_part2_natural_gradient.py"]}


def _run(module: str, report) -> subprocess.CompletedProcess:
    env = dict(os.environ, DEGENERATE_MODULE=module, DEGENERATE_REPORT=str(report))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "tests.degenerate_plugin",
                           "-q", "--tb=no", "-k", "not sampler and not split_paths and not truncated and not bad_options",
                           *FILES[module]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """{module: (the plugin's report, the run)} for both parts, run side by side."""
    folder = tmp_path_factory.mktemp("degenerate")
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {module: pool.submit(_run, module, folder / f"{module}.json") for module in FILES}
        runs = {module: future.result() for module, future in futures.items()}
    result = {}
    for module, run in runs.items():
        path = folder / f"{module}.json"
        assert path.exists(), output(run)[-5000:]
        result[module] = (json.loads(path.read_text()), run)
    return result


@pytest.mark.parametrize("module", FILES)
def test_zeros_and_nans_fail_every_public_test_that_calls_them(reports, module):
    report, run = reports[module]
    records = report["records"]
    references = [r for r in records if r["kind"] == "reference"]
    assert references and all(r["outcome"] == "passed" for r in references), output(run)[-5000:]
    degenerate = [r for r in records if r["kind"] != "reference" and r["function"] in r["called"]]
    passed = sorted(f"{r['test']} with {r['kind']} from {r['function']}" for r in degenerate if r["outcome"] != "failed")
    assert not passed, "public tests that pass although a function they call returns zeros or nan:\n" + "\n".join(passed)
    for kind in ("zeros", "nan"):
        untested = set(report["functions"]) - {r["function"] for r in degenerate if r["kind"] == kind}
        assert not untested, f"no public test calls {sorted(untested)} (with {kind})"


@pytest.mark.parametrize("module", FILES)
def test_single_function_checks_run_before_the_tests_that_combine_them(reports, module):
    report, _ = reports[module]
    order = [(r["test"], set(r["called"])) for r in report["records"] if r["kind"] == "reference"]
    problems = []
    for position, (test, functions) in enumerate(order):
        if len(functions) < 2:
            continue
        for later, (other, other_functions) in enumerate(order):
            if later > position and len(other_functions) == 1 and other_functions <= functions \
                    and other.split("::")[0] == test.split("::")[0]:
                problems.append(f"{other} (only {sorted(other_functions)[0]}) runs after {test} "
                                f"({', '.join(sorted(functions))})")
    assert not problems, "\n".join(problems)


def test_pytest_x_on_the_stubs_stops_first_at_a_part1_test():
    result = run_public_tests("hw", "hw/", "-x")
    text = output(result)
    assert result.returncode == 1, text[-3000:]
    first = re.search(r"^FAILED (\S+)", text, flags=re.M) or re.search(r"^_+ (\S+) _+$", text, flags=re.M)
    assert first and first.group(1).startswith(("hw/tests/test_part1_policy_gradient.py::",
                                                "test_discounted_return")), text[-3000:]
    assert "NotImplementedError: discounted_return: TODO" in text, text[-3000:]
    assert " passed" not in text.splitlines()[-1], text[-3000:]
