"""Grading a folder of submissions: each submission is graded as the student its name gives
(the sub-folder's or the zip's name), on that student's hidden instance. The instances are
computed first (trusted processes, see instances/), then up to `jobs` grading processes
(`python -I -m grader grade`) run at a time, one per submission, each with its own fresh
sandbox. A tqdm progress bar follows them; one results folder per submission and a CSV
gradebook.

A grading process that dies or overruns is killed; its submission keeps the complete
results.json the grader writes before it starts (every test at 0) or gets a fallback one,
and the batch goes on: one broken submission never stops it."""
from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import instances
from . import results as res
from .config import Config, load_config, with_training


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


def _read_valid(out: Path) -> dict | None:
    try:
        results = json.loads((Path(out) / "results.json").read_text())
    except (OSError, ValueError):
        return None
    return None if res.validate_results(results) else results


def grade_in_process(submission: Path, out: Path, student: str, config: Config) -> dict:
    """Grade one submission in a grading process of its own; always returns valid results."""
    limits = config.limits
    timeout = limits.instance_timeout + limits.startup_timeout + limits.total_timeout + limits.call_timeout
    command = [sys.executable, "-I", "-m", "grader", "grade", str(submission), "--out", str(out), "--quiet",
               "--student", student] + (["--train"] if config.training.enabled else [])
    env = dict(os.environ, GRADER_CONFIG=str(config.path))
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, env=env, start_new_session=True, cwd="/")
    reason = None
    try:
        _, stderr = process.communicate(timeout=timeout)
        if process.returncode != 0:
            reason = f"the grading process failed (exit {process.returncode}): {stderr.decode(errors='replace')[-500:]}"
    except subprocess.TimeoutExpired:
        reason = f"grading did not finish within {timeout:.0f} s"
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        process.wait()
    results = _read_valid(out)
    if results is None:
        results = res.build_results({}, execution_time=0.0, config=config, notes=[reason or "no valid results.json"])
        res.write_results(out, results)
    elif reason:
        results["output"] = (results["output"] + "\n" if results["output"] else "") + f"batch: {reason}"
        res.write_results(out, results)
    return results


def write_gradebook(path: Path, graded: dict[str, dict], config: Config) -> Path:
    specs = config.tests
    parts = sorted(config.totals)
    header = ["submission"] + [f"{s.number} {s.key} ({s.max_score:g})" for s in specs] + \
             [f"{p} ({sum(s.max_score for s in specs if s.part == p):g})" for p in parts] + \
             [f"total ({sum(s.max_score for s in specs):g})", "execution_time"]
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for name, results in sorted(graded.items()):
            by_key = {test["tags"][1]: test["score"] for test in results.get("tests", [])
                      if len(test.get("tags") or []) >= 2}
            row = [name] + [f"{by_key.get(s.key, 0.0):g}" for s in specs]
            for part in parts:
                row.append(f"{sum(by_key.get(s.key, 0.0) for s in specs if s.part == part):g}")
            row += [f"{results.get('score', 0.0):g}", results.get("execution_time", 0)]
            writer.writerow(row)
    return path


def run_batch(folder: Path, out: Path, *, jobs: int = 1, quiet: bool = False, train: bool = False) -> int:
    config = with_training(load_config()) if train else load_config()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    submissions = find_submissions(Path(folder))
    seeds = [instances.instance_seed(config.seed, name) for name in submissions]
    instances.ensure(seeds, config.limits.instance_timeout, processes=jobs)  # before any student code runs
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    progress = tqdm(total=len(submissions), unit="submission", disable=quiet, file=sys.stderr) if tqdm else None
    graded: dict[str, dict] = {}
    lock = threading.Lock()

    def one(item):
        name, path = item
        results = grade_in_process(path, out / name, name, config)
        with lock:
            graded[name] = results
            if progress:
                progress.set_postfix_str(f"{name}: {results['score']:g}")
                progress.update(1)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(one, submissions.items()))
    if progress:
        progress.close()
    gradebook = write_gradebook(out / "gradebook.csv", graded, config)
    if not quiet:
        for name in sorted(graded):
            print(f"{name:<40} {graded[name]['score']:g}")
        print(f"wrote {gradebook}")
    return 0
