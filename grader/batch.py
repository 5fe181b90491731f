"""Grading a folder of submissions: one `python -m grader grade` process per submission
(so that one broken submission never stops the batch), N at a time, a tqdm progress
bar, one results folder per submission and a CSV gradebook."""
from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from . import results as res


def find_submissions(folder: Path) -> dict[str, Path]:
    """{name: path}: every sub-folder and .zip of `folder` (hidden entries skipped)."""
    found: dict[str, Path] = {}
    for entry in sorted(Path(folder).iterdir()):
        if entry.name.startswith((".", "_")):
            continue
        if entry.is_dir() or (entry.is_file() and entry.suffix.lower() == ".zip"):
            name = re.sub(r"[^A-Za-z0-9._@-]+", "_", entry.stem if entry.is_file() else entry.name)
            while name in found:
                name += "_"
            found[name] = entry
    return found


def _fallback(reason: str, config: dict) -> dict:
    return res.build_results({}, execution_time=0.0, config=config, notes=[reason],
                             default_message=f"not graded: {reason}")


def grade_in_subprocess(submission: Path, out: Path, *, timeout: float, config: dict) -> dict:
    """Grade one submission in its own grading process; always returns valid results."""
    started = time.monotonic()
    command = [sys.executable, "-m", "grader", "grade", str(submission), "--out", str(out), "--quiet"]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        problem = None if completed.returncode == 0 else \
            f"the grading process exited with code {completed.returncode}: {completed.stderr[-1000:]}"
    except subprocess.TimeoutExpired:
        problem = f"the grading process did not finish within {timeout:.0f} s"
    results = None
    try:
        results = json.loads((out / "results.json").read_text())
        if res.validate_results(results):
            results = None
    except (OSError, ValueError):
        results = None
    if results is None:
        results = _fallback(problem or "the grading process wrote no valid results.json", config)
        results["execution_time"] = int(time.monotonic() - started)
        res.write_results(out, results)
    return results


def write_gradebook(path: Path, graded: dict[str, dict], config: dict) -> Path:
    specs = res.test_specs(config)
    parts = sorted({s.part for s in specs})
    header = ["submission"] + [f"{s.number} {s.key} ({s.max_score:g})" for s in specs] + \
             [f"{p} ({sum(s.max_score for s in specs if s.part == p):g})" for p in parts] + \
             [f"total ({sum(s.max_score for s in specs):g})", "execution_time"]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for name, results in sorted(graded.items()):
            by_key = {}
            for test in results.get("tests", []):
                tags = test.get("tags") or []
                if len(tags) >= 2:
                    by_key[tags[1]] = test.get("score", 0.0)
            row = [name] + [f"{by_key.get(s.key, 0.0):g}" for s in specs]
            for part in parts:
                row.append(f"{sum(by_key.get(s.key, 0.0) for s in specs if s.part == part):g}")
            row += [f"{results.get('score', 0.0):g}", results.get("execution_time", 0)]
            writer.writerow(row)
    return path


def run_batch(folder: Path, out: Path, *, jobs: int = 1, quiet: bool = False) -> int:
    config = res.load_config()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    submissions = find_submissions(Path(folder))
    limits = config.get("limits", {})
    timeout = float(limits.get("total_timeout", 900)) + float(limits.get("startup_timeout", 180)) + 120
    graded: dict[str, dict] = {}
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    progress = tqdm(total=len(submissions), unit="submission", disable=quiet, file=sys.stderr) if tqdm else None
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(grade_in_subprocess, path, out / name, timeout=timeout, config=config): name
                   for name, path in submissions.items()}
        for future in as_completed(futures):
            name = futures[future]
            try:
                graded[name] = future.result()
            except Exception as exc:  # noqa: BLE001  (never stop the batch)
                graded[name] = _fallback(f"{type(exc).__name__}: {exc}", config)
                res.write_results(out / name, graded[name])
            if progress:
                progress.set_postfix_str(f"{name}: {graded[name]['score']:g}")
                progress.update(1)
    if progress:
        progress.close()
    gradebook = write_gradebook(out / "gradebook.csv", graded, config)
    if not quiet:
        for name in sorted(graded):
            print(f"{name:<40} {graded[name]['score']:g}")
        print(f"wrote {gradebook}")
    return 0
