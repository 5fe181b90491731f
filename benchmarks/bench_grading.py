"""Grading speed: one correct submission end to end (with and without its hidden instance
cached, and at half a CPU as on Gradescope), and a batch with --jobs 1 and --jobs 2.

    python benchmarks/bench_grading.py [--submissions 16] [--repeat 1]

Prints a Markdown table (copied into benchmarks/grading.md). The batch holds the
reference solutions and mutants from tests/mutants (one mistake each), so that it grades
both passing and failing tests. Every figure is wall-clock time of the real command lines,
with a hidden-instance cache of its own (GRADER_CACHE in a scratch folder).

Half a CPU: the grading command is pinned to core 0 (taskset) beside a busy loop pinned to
the same core, so that it gets about half of one core, as in Gradescope's default container.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.mutants import MUTANTS, build  # noqa: E402

def timed(*args: str, env: dict, prefix: tuple = ()) -> float:
    started = time.monotonic()
    completed = subprocess.run([*prefix, sys.executable, "-I", "-m", "grader", *args], capture_output=True, text=True,
                               cwd="/", env=env)
    if completed.returncode != 0:
        raise SystemExit(f"grader {args} failed:\n{completed.stderr[-3000:]}")
    return time.monotonic() - started


def half_cpu(function):
    """Run function() with a busy loop on core 0; the caller pins its command to core 0."""
    hog = subprocess.Popen(["taskset", "-c", "0", sys.executable, "-c", "while True: pass"])
    try:
        return function()
    finally:
        hog.kill()
        hog.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as scratch:
        scratch = Path(scratch)
        env = dict(os.environ, GRADER_CACHE=str(scratch / "cache"))
        solutions = str(ROOT / "solutions")
        cold = timed("grade", solutions, "--out", str(scratch / "cold"), "--quiet", env=env)
        warm = min(timed("grade", solutions, "--out", str(scratch / f"warm{i}"), "--quiet", env=env)
                   for i in range(args.repeat))
        pinned = ("taskset", "-c", "0")
        half_env = dict(env, GRADER_CACHE=str(scratch / "cache-half"))
        half_cold = half_cpu(lambda: timed("grade", solutions, "--out", str(scratch / "half-cold"), "--quiet",
                                           "--student", "half", env=half_env, prefix=pinned))
        half_warm = half_cpu(lambda: timed("grade", solutions, "--out", str(scratch / "half-warm"), "--quiet",
                                           "--student", "half", env=half_env, prefix=pinned))
        folder = scratch / "batch"
        folder.mkdir()
        shutil.copytree(ROOT / "solutions", folder / "solutions")
        for name in sorted(MUTANTS)[: args.submissions - 1]:
            build(MUTANTS[name], folder / name)
        count = len(list(folder.iterdir()))
        # Every student's instance first (the batch computes them before grading, in --jobs
        # processes); then both batches grade with the instances cached.
        started = time.monotonic()
        subprocess.run([sys.executable, "-I", "-c", "import sys; from grader import instances; "
                        "from grader.config import load_config; c = load_config(); "
                        "instances.ensure([instances.instance_seed(c.seed, s) for s in sys.argv[1:]], "
                        "c.limits.instance_timeout, processes=2)", *sorted(p.name for p in folder.iterdir())],
                       check=True, cwd="/", env=env)
        instances_time = time.monotonic() - started
        batch = {}
        for jobs in (1, 2):
            batch[jobs] = min(timed("batch", str(folder), "--out", str(scratch / f"out{jobs}_{i}"), "--jobs",
                                    str(jobs), env=env) for i in range(args.repeat))
    load = os.getloadavg()
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: {platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}; load average at the end {load[0]:.1f}")
    print()

    print("| measurement | wall time |")
    print("|---|---|")
    print(f"| grade one correct submission, its instance not cached (pre-pass included) | {cold:.1f} s |")
    print(f"| grade one correct submission, instance cached, best of {args.repeat} | {warm:.1f} s |")
    print(f"| the same at half a CPU, instance not cached (Gradescope's case) | {half_cold:.1f} s |")
    print(f"| the same at half a CPU, instance cached | {half_warm:.1f} s |")
    print(f"| the {count} students' instances, 2 processes | {instances_time:.1f} s |")
    print(f"| batch of {count} submissions, `--jobs 1` | {batch[1]:.1f} s ({batch[1] / count:.1f} s each) |")
    print(f"| batch of {count} submissions, `--jobs 2` | {batch[2]:.1f} s ({batch[2] / count:.1f} s each) |")
    print(f"| speed-up of `--jobs 2` | {batch[1] / batch[2]:.2f}x |")


if __name__ == "__main__":
    main()
