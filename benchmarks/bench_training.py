"""How long the reference takes to solve CartPole-v1 and InvertedPendulum-v5.

    python benchmarks/bench_training.py                       # pg and trpo, both envs, seeds 0 1 2
    python benchmarks/bench_training.py --algos pg --envs CartPole-v1 -- --learning-rate 0.02

Each run is `python -m hw.train --impl solutions --target-return <threshold>` in this
process (TensorFlow is imported once, before the clock starts): the wall seconds from the
start of training (environment creation, tf.function tracing included) until the mean
return of the last 20 finished episodes reaches the threshold, and the environment steps
it took. Flags after `--` go to hw.train (to try settings other than the presets).
Results: benchmarks/training.md.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import hw  # noqa: E402,F401
import tensorflow as tf  # noqa: E402

from hw import train  # noqa: E402

THRESHOLDS = {"CartPole-v1": 475.0, "InvertedPendulum-v5": 950.0}
BUDGET = {"CartPole-v1": 400_000, "InvertedPendulum-v5": 600_000}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algos", nargs="+", default=["pg", "trpo"])
    parser.add_argument("--envs", nargs="+", default=list(THRESHOLDS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    import os
    print(f"# nproc {os.cpu_count()}, {cpu_model()}, TensorFlow {tf.__version__}, Python {platform.python_version()}")
    results = []
    with tempfile.TemporaryDirectory() as runs:
        for env in args.envs:
            for algo in args.algos:
                rows = []
                for seed in args.seeds:
                    summary = train.main(["--algo", algo, "--env", env, "--impl", "solutions", "--seed", str(seed),
                                          "--target-return", str(THRESHOLDS[env]), "--total-steps", str(BUDGET[env]),
                                          "--runs-dir", runs, "--no-progress", *extra])
                    rows.append(dict(env=env, algo=algo, seed=seed, seconds=round(summary["wall_time"], 1),
                                     steps=summary["env_steps"], solved=summary["solved"],
                                     final_return=round(summary["return_mean"], 1)))
                    print(json.dumps(rows[-1]), flush=True)
                results.extend(rows)
                solved = [r for r in rows if r["solved"]]
                print(f"| {env} | {algo} | " + " | ".join(
                    f"{r['seconds']} s / {r['steps']}" + ("" if r["solved"] else " (not solved)") for r in rows)
                    + f" | median {statistics.median(r['seconds'] for r in rows):.1f} s / "
                      f"{statistics.median(r['steps'] for r in rows):.0f} steps | {len(solved)}/{len(rows)} solved |",
                    flush=True)
    if args.json:
        args.json.write_text(json.dumps(dict(extra_flags=extra, results=results), indent=1) + "\n")


if __name__ == "__main__":
    main()
