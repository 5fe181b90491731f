"""Helpers for the project's own tests: build an implementation package (the solutions,
the stubs, a mutant or an independent variant) and run the public tests against it."""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

from grader.stubs import GRADED_MODULES, ROOT, solution_source


def make_implementation(directory: Path, *, mutations: dict[str, list[tuple[str, str]]] | None = None,
                        sources: dict[str, str] | None = None, package: str = "impl") -> Path:
    """Write `directory/package/` holding both graded modules and return `directory`.

    Each module starts from the reference solution, or from `sources[module]` if given;
    `mutations[module]` is a list of (old, new) text replacements applied in turn, each of
    which must match exactly once, so that a mutant cannot silently stop being one.
    """
    target = directory / package
    target.mkdir(parents=True, exist_ok=True)
    (target / "__init__.py").write_text("import hw  # noqa: F401\n")
    for module in GRADED_MODULES:
        text = (sources or {}).get(module)
        if text is None:
            text = solution_source(module)
        for old, new in (mutations or {}).get(module, []):
            count = text.count(old)
            if count != 1:
                raise AssertionError(f"mutation of {module}: {old!r} occurs {count} times, expected once")
            text = text.replace(old, new)
        (target / f"{module}.py").write_text(text)
    return directory


def run_public_tests(package: str, *pytest_args: str, pythonpath: Path | None = None,
                     timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `pytest hw/tests` in a fresh process with HW_IMPLEMENTATION=package."""
    env = dict(os.environ, HW_IMPLEMENTATION=package)
    paths = [str(ROOT)] + ([str(pythonpath)] if pythonpath else [])
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--tb=short", *pytest_args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )


def output(result) -> str:
    """Everything a run printed."""
    return result.stdout + result.stderr


def failure_sections(text: str) -> dict[str, str]:
    """Pytest's --tb=short report, split into {test id: its failure section}."""
    parts = re.split(r"^_+ (\S+) _+$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def enclosing_function(source: str, text: str) -> str:
    """The name of the top-level function of `source` that holds `text`."""
    offset = source.index(text)
    line = source.count("\n", 0, offset) + 1
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and node.lineno <= line <= node.end_lineno:
            return node.name
    raise AssertionError(f"{text!r} is not inside a function")


def check_mutant_groups(mutants, groups, module: str, uses) -> None:
    """Mutants that share one public-test run must not hide one another.

    `mutants` are (name, function, [(old, new)], expected failing test, phrase) tuples;
    `uses(mutant)` is the set of functions its expected test runs. Every mutant is in one
    group, changes only its own function, and no function another mutant of its group
    changes is run by its test, so each failure comes from its own mistake.
    """
    by_name = {mutant[0]: mutant for mutant in mutants}
    assert sorted(name for group in groups for name in group) == sorted(by_name), "every mutant in one group"
    source = solution_source(module)
    for group in groups:
        functions = []
        for name in group:
            _, function, replacements, _, _ = by_name[name]
            assert {enclosing_function(source, old) for old, _ in replacements} == {function}, name
            functions.append(function)
        assert len(set(functions)) == len(functions), f"two mutants of one function in a group: {group}"
        for name in group:
            others = set(functions) - {by_name[name][1]}
            assert not uses(by_name[name]) & others, f"{name}: its test runs a function another mutant changes"


def assert_each_mutant_named(result, mutants) -> None:
    """Each mutant's expected test failed in `result` with its phrase in a failure message."""
    text = output(result)
    assert result.returncode == 1, text[-5000:]
    sections = failure_sections(text)
    for name, _, _, test, phrase in mutants:
        failures = {test_id: section for test_id, section in sections.items()
                    if test_id == test or test_id.startswith(test + "[")}
        assert failures, f"mutant {name!r}: {test} did not fail. Failed: {sorted(sections)}\n{text[-3000:]}"
        # The phrase must be in the failure message (pytest's "E" lines), not just in the source shown.
        messages = [line for section in failures.values() for line in section.splitlines() if line.startswith("E ")]
        assert any(phrase in line for line in messages), (
            f"mutant {name!r}: {test} failed without naming the mistake ({phrase!r}):\n"
            + "\n".join(failures.values())[-3000:])
