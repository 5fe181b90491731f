"""Points, Gradescope's results.json (building, validating, writing) and the printed table."""
from __future__ import annotations

import json
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .config import VISIBILITIES, Config

STATUSES = ("passed", "failed")
_ANSI = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean_text(text: str) -> str:
    """A message as it may reach a terminal or a web page: terminal escape sequences and
    control characters (all but newline and tab) removed."""
    return _CONTROL.sub("", _ANSI.sub("", text))


@dataclass
class Outcome:
    passed: bool
    message: str
    seconds: float = 0.0
    title: str = ""


_LABELS = ("Expected:", "Got:", "Likely mistake:", "Hint:")
_PRINTED = "\n\nYour code printed (truncated):\n"
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


def _md_escape(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text)


def to_markdown(message: str) -> str:
    """A test's message as Markdown, for Gradescope: the first line as written, the labelled
    lines (expected, got, likely mistake, hint) each a paragraph with its label in bold,
    tracebacks and the student's printed output in code blocks."""
    message, _, printed = message.partition(_PRINTED)
    paragraphs, code = [], []

    def flush_code():
        if code:
            paragraphs.append("```\n" + "\n".join(code).replace("```", "` ` `") + "\n```")
            code.clear()

    for line in message.splitlines():
        if line.startswith(("  ", "\t")) or line.lstrip().startswith("File \""):
            code.append(line)
            continue
        flush_code()
        label = next((lab for lab in _LABELS if line.startswith(lab)), None)
        if label:
            paragraphs.append(f"**{label}** {_md_escape(line[len(label):].strip())}")
        elif line.strip():
            paragraphs.append(_md_escape(line))
    flush_code()
    if printed:
        paragraphs.append("**Your code printed** (truncated):")
        paragraphs.append("```\n" + printed.replace("```", "` ` `") + "\n```")
    return "\n\n".join(paragraphs)


def plain_text(markdown: str) -> str:
    """A Markdown message back as plain text (escapes, bold marks and fences removed)."""
    lines = [line for line in markdown.splitlines() if line.strip() != "```"]
    return re.sub(r"\\(.)", r"\1", "\n".join(lines).replace("**", ""))


def first_line(markdown: str) -> str:
    """The first line of a Markdown message, as plain text (for the printed table)."""
    lines = plain_text(markdown).strip().splitlines()
    return lines[0] if lines else ""


def build_results(outcomes: dict[str, Outcome], *, execution_time: float, config: Config,
                  notes: list[str] = (), extra: dict | None = None) -> dict:
    """A complete Gradescope results dictionary: every test of the configuration is listed
    (one without an outcome as failed, "not run"); messages in Markdown; the top-level
    output says how many tests passed, counting only what the student can see now."""
    tests = []
    for spec in config.tests:
        outcome = outcomes.get(spec.key) or Outcome(False, "not run")
        message = clean_text(outcome.message or ("passed" if outcome.passed else "failed"))
        tests.append({
            "name": f"{spec.number} {outcome.title or spec.key}",
            "number": spec.number,
            "score": spec.max_score if outcome.passed else 0.0,
            "max_score": spec.max_score,
            "status": "passed" if outcome.passed else "failed",
            "output": to_markdown(message),
            "output_format": "md",
            "tags": [spec.part, spec.key],
            "visibility": config.visibility_of(spec.key),
            "extra_data": {"seconds": round(outcome.seconds, 2)},
        })
    shown = [t for t in tests if t["visibility"] == "visible"]
    summary = f"{sum(t['status'] == 'passed' for t in shown)} of {len(shown)} tests passed"
    withheld = len(tests) - len(shown)
    if withheld:
        summary += f" ({withheld} more test(s) are shown later and not counted here)"
    return {
        "score": round(sum(t["score"] for t in tests), 4),
        "execution_time": int(math.ceil(execution_time)),
        "output": clean_text("\n".join([summary + ".", *notes])),
        "stdout_visibility": config.stdout_visibility,
        "extra_data": extra or {},
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
        first = first_line(test.get("output") or "")
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
