"""Grading speed: one correct submission end to end, and a batch with --jobs 1 and --jobs 2.

    python benchmarks/bench_grading.py [--submissions 8] [--repeat 1]

Prints a Markdown table (copied into benchmarks/grading.md). The batch holds the
reference solutions and mutants from tests/mutants (one mistake each), so that it grades
both passing and failing tests. Every figure is wall-clock time of the real command lines.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.mutants import MUTANTS, build  # noqa: E402


CPU: dict[float, float] = {}  # wall time -> CPU seconds of the command and all its descendants


def timed(*args: str) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    completed = subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True, cwd=ROOT)
    if completed.returncode != 0:
        raise SystemExit(f"grader {args} failed:\n{completed.stderr[-3000:]}")
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU[wall] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as scratch:
        scratch = Path(scratch)
        single = []
        for i in range(args.repeat):
            single.append(timed("grade", str(ROOT / "solutions"), "--out", str(scratch / f"one{i}"), "--quiet"))
        folder = scratch / "batch"
        folder.mkdir()
        shutil.copytree(ROOT / "solutions", folder / "solutions")
        for name in sorted(MUTANTS)[: args.submissions - 1]:
            build(MUTANTS[name], folder / name)
        count = len(list(folder.iterdir()))
        batch = {}
        for jobs in (1, 2):
            batch[jobs] = min(timed("batch", str(folder), "--out", str(scratch / f"out{jobs}_{i}"), "--jobs", str(jobs))
                              for i in range(args.repeat))
    load = os.getloadavg()
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: {platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}; load average at the end {load[0]:.1f}")
    print()
    def cpu(wall):
        return f"{CPU[wall]:.1f} s CPU, {CPU[wall] / wall:.2f} cores busy on average"
    print("| measurement | wall time | CPU time (grader, sandboxes, workers) |")
    print("|---|---|---|")
    print(f"| grade one correct submission (`python -m grader grade solutions`), best of {args.repeat} | "
          f"{min(single):.1f} s | {cpu(min(single))} |")
    print(f"| batch of {count} submissions, `--jobs 1` | {batch[1]:.1f} s ({batch[1] / count:.1f} s each) | "
          f"{cpu(batch[1])} |")
    print(f"| batch of {count} submissions, `--jobs 2` | {batch[2]:.1f} s ({batch[2] / count:.1f} s each) | "
          f"{cpu(batch[2])} |")
    print(f"| speed-up of `--jobs 2` | {batch[1] / batch[2]:.2f}x | |")


if __name__ == "__main__":
    main()
