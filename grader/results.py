"""Points, Gradescope's results.json (building, validating, writing) and the printed table."""
from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .config import VISIBILITIES, Config

STATUSES = ("passed", "failed")


@dataclass
class Outcome:
    passed: bool
    message: str
    seconds: float = 0.0
    title: str = ""


def build_results(outcomes: dict[str, Outcome], *, execution_time: float, config: Config,
                  notes: list[str] = ()) -> dict:
    """A complete Gradescope results dictionary: every test of the configuration is listed
    (one without an outcome as failed, "not run")."""
    tests = []
    for spec in config.tests:
        outcome = outcomes.get(spec.key) or Outcome(False, "not run")
        tests.append({
            "name": f"{spec.number} {outcome.title or spec.key}",
            "number": spec.number,
            "score": spec.max_score if outcome.passed else 0.0,
            "max_score": spec.max_score,
            "status": "passed" if outcome.passed else "failed",
            "output": outcome.message or ("passed" if outcome.passed else "failed"),
            "tags": [spec.part, spec.key],
            "visibility": config.visibility,
            "extra_data": {"seconds": round(outcome.seconds, 2)},
        })
    return {
        "score": round(sum(t["score"] for t in tests), 4),
        "execution_time": int(math.ceil(execution_time)),
        "output": "\n".join(notes),
        "stdout_visibility": config.stdout_visibility,
        "tests": tests,
    }


def part_totals(results: dict) -> dict[str, tuple[float, float]]:
    totals: dict[str, list[float]] = {}
    for test in results["tests"]:
        part = test.get("tags", ["?"])[0]
        entry = totals.setdefault(part, [0.0, 0.0])
        entry[0] += test["score"]
        entry[1] += test["max_score"]
    return {k: (v[0], v[1]) for k, v in totals.items()}


def validate_results(data) -> list[str]:
    """Problems with a results dictionary against Gradescope's format (empty if valid)."""
    problems = []

    def number(value):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    if not isinstance(data, dict):
        return ["the top level is not an object"]
    allowed = {"score", "execution_time", "output", "output_format", "test_output_format", "test_name_format",
               "visibility", "stdout_visibility", "extra_data", "tests", "leaderboard"}
    problems += [f"unknown top-level key {k!r}" for k in data if k not in allowed]
    if "score" not in data and "tests" not in data:
        problems.append("neither score nor tests")
    if "score" in data and not number(data["score"]):
        problems.append("score is not a finite number")
    if "execution_time" in data and not (isinstance(data["execution_time"], int) and data["execution_time"] >= 0):
        problems.append("execution_time is not a non-negative integer")
    for key in ("output", "output_format", "test_output_format", "test_name_format"):
        if key in data and not isinstance(data[key], str):
            problems.append(f"{key} is not a string")
    for key in ("visibility", "stdout_visibility"):
        if key in data and data[key] not in VISIBILITIES:
            problems.append(f"{key} {data[key]!r} is not one of {VISIBILITIES}")
    tests = data.get("tests", [])
    if not isinstance(tests, list):
        return problems + ["tests is not a list"]
    test_keys = {"score", "max_score", "status", "name", "name_format", "number", "output", "output_format",
                 "tags", "visibility", "extra_data"}
    for i, test in enumerate(tests):
        where = f"tests[{i}]"
        if not isinstance(test, dict):
            problems.append(f"{where} is not an object")
            continue
        problems += [f"{where}: unknown key {k!r}" for k in test if k not in test_keys]
        for key in ("score", "max_score"):
            if key in test and not number(test[key]):
                problems.append(f"{where}.{key} is not a finite number")
        if "score" not in test and "status" not in test:
            problems.append(f"{where} has neither score nor status")
        if "status" in test and test["status"] not in STATUSES:
            problems.append(f"{where}.status {test['status']!r} is not passed/failed")
        for key in ("name", "number", "output", "name_format", "output_format"):
            if key in test and not isinstance(test[key], str):
                problems.append(f"{where}.{key} is not a string")
        if "tags" in test and not (isinstance(test["tags"], list) and all(isinstance(t, str) for t in test["tags"])):
            problems.append(f"{where}.tags is not a list of strings")
        if "visibility" in test and test["visibility"] not in VISIBILITIES:
            problems.append(f"{where}.visibility {test['visibility']!r} is not one of {VISIBILITIES}")
        if number(test.get("score")) and number(test.get("max_score")) and test["score"] > test["max_score"] + 1e-9:
            problems.append(f"{where}: score above max_score")
    if number(data.get("score")) and tests and all(isinstance(t, dict) and number(t.get("score")) for t in tests):
        if abs(sum(t["score"] for t in tests) - data["score"]) > 1e-6:
            problems.append("score is not the sum of the tests' scores")
    return problems


def write_results(directory: Path, results: dict) -> Path:
    """Write directory/results.json atomically (a reader never sees half a file)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "results.json"
    fd, temporary = tempfile.mkstemp(prefix=".results-", suffix=".json", dir=directory)
    with os.fdopen(fd, "w") as handle:
        json.dump(results, handle, indent=2)
        handle.write("\n")
    os.chmod(temporary, 0o640)
    os.replace(temporary, target)
    return target


def format_table(results: dict, width: int = 110) -> str:
    """The results as a readable table: test, points, status, first line of the message."""
    rows = [("test", "points", "status", "message")]
    for test in results["tests"]:
        message = (test.get("output") or "").strip().splitlines()
        first = message[0] if message else ""
        rows.append((test["name"], f"{_fmt(test['score'])}/{_fmt(test['max_score'])}", test["status"], first))
    name_width = min(max(len(r[0]) for r in rows), 60)
    lines = []
    for i, (name, points, status, message) in enumerate(rows):
        name = name if len(name) <= name_width else name[:name_width - 1] + "…"
        line = f"{name:<{name_width}}  {points:>7}  {status:<6}  {message}"
        lines.append(line[:width] if len(line) > width else line)
        if i == 0:
            lines.append("-" * min(width, len(line) + 10))
    for part, (score, total) in part_totals(results).items():
        lines.append(f"{part}: {_fmt(score)}/{_fmt(total)}")
    lines.append(f"total: {_fmt(results['score'])}/{_fmt(sum(t['max_score'] for t in results['tests']))}"
                 f"   ({results['execution_time']} s)")
    return "\n".join(lines)


def _fmt(x: float) -> str:
    return f"{x:g}"
