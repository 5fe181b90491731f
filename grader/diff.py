"""`python -m grader diff OLD NEW`: what a regrade changed.

OLD and NEW are two batch outputs (folders holding gradebook.csv and one results folder per
student) or two gradebook CSV files. One row per student whose total or any test changed:
the old and new points of each changed test and, where NEW has results.json files, the
first line of the new message. Students who changed nothing are counted, not listed. The
rows are also written as a CSV (NEW/regrade-diff.csv for a folder, else beside NEW).
"""
from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

from .results import first_line

_TEST_COLUMN = re.compile(r"^\d+\.\d+ (?P<key>\w+) \([^)]*\)$")
_TOTAL_COLUMN = re.compile(r"^total \([^)]*\)$")


@dataclass
class Change:
    student: str
    old_total: float | None  # None: the student is missing from OLD
    new_total: float | None  # None: missing from NEW
    tests: list  # [(test key, old points or None, new points or None, new message)]


def _gradebook(path: Path) -> tuple[Path, dict[str, dict]]:
    """(the folder of results or None, {student: {"total": x, test key: points}})."""
    folder = path if path.is_dir() else None
    csv_path = path / "gradebook.csv" if folder else path
    if not csv_path.is_file():
        raise FileNotFoundError(f"{path}: neither a batch output folder (with gradebook.csv) nor a gradebook CSV")
    rows = {}
    with open(csv_path, newline="") as handle:
        for row in csv.DictReader(handle):
            scores = {}
            for column, value in row.items():
                test = _TEST_COLUMN.match(column or "")
                if test:
                    scores[test["key"]] = float(value)
                elif _TOTAL_COLUMN.match(column or ""):
                    scores["total"] = float(value)
            rows[row["submission"]] = scores
    return folder, rows


def _message(folder: Path | None, student: str, key: str) -> str:
    if folder is None:
        return ""
    try:
        results = json.loads((folder / student / "results.json").read_text())
    except (OSError, ValueError):
        return ""
    for test in results.get("tests", []):
        if key in (test.get("tags") or []):
            return first_line(test.get("output") or "")
    return ""


def diff(old: Path, new: Path) -> tuple[list[Change], int]:
    """(the students whose points changed, how many did not)."""
    _, before = _gradebook(Path(old))
    new_folder, after = _gradebook(Path(new))
    changes, unchanged = [], 0
    for student in sorted(set(before) | set(after)):
        a, b = before.get(student), after.get(student)
        if a is not None and a == b:
            unchanged += 1
            continue
        keys = [k for k in dict.fromkeys([*(a or {}), *(b or {})]) if k != "total"]
        tests = [(k, (a or {}).get(k), (b or {}).get(k), _message(new_folder, student, k))
                 for k in keys if (a or {}).get(k) != (b or {}).get(k)]
        changes.append(Change(student, (a or {}).get("total"), (b or {}).get("total"), tests))
    return changes, unchanged


def _points(x: float | None) -> str:
    return "-" if x is None else f"{x:g}"


def write_csv(path: Path, changes: list[Change]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "old total", "new total", "test", "old points", "new points", "new message"])
        for change in changes:
            for key, a, b, message in change.tests or [("", None, None, "")]:
                writer.writerow([change.student, _points(change.old_total), _points(change.new_total), key,
                                 _points(a), _points(b), message])
    return path


def format_changes(changes: list[Change], unchanged: int) -> str:
    lines = []
    for change in changes:
        lines.append(f"{change.student}: {_points(change.old_total)} -> {_points(change.new_total)}")
        for key, a, b, message in change.tests:
            lines.append(f"    {key}: {_points(a)} -> {_points(b)}" + (f"  {message[:100]}" if message else ""))
    lines.append(f"{len(changes)} student(s) changed, {unchanged} unchanged")
    return "\n".join(lines)


def main(old: Path, new: Path, csv_path: Path | None = None) -> int:
    changes, unchanged = diff(old, new)
    print(format_changes(changes, unchanged))
    new = Path(new)
    target = csv_path or (new / "regrade-diff.csv" if new.is_dir() else new.with_name(new.stem + "-diff.csv"))
    print(f"wrote {write_csv(target, changes)}")
    return 0
