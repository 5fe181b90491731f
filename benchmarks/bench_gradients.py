"""What the lecture's tricks buy: the pseudo-loss (Lecture 5 part 5) and CG on Fisher-vector
products (Lecture 9 part 4), timed with the reference solutions.

    python benchmarks/bench_gradients.py                              # both parts
    python benchmarks/bench_gradients.py --part per-sample --batches 100 1000 5000
    python benchmarks/bench_gradients.py --part natural --params 1e3 1e4 1e5 1e6 --fvp-fraction 0.1

Part "per-sample": one policy gradient through the pseudo-loss
(solutions.policy_gradient.policy_gradient: one backward pass over the batch) against the
per-sample gradients the pseudo-loss avoids (solutions.natural_gradient.score_matrix: B
gradients, batched with tf.vectorized_map; and, for small B, a Python loop of B tapes), on
the same batch of a 64x64 tanh categorical
policy (CartPole-sized, n = 4610 parameters), float32, for several batch sizes B.

Part "natural": one natural-gradient step on a categorical policy (16 inputs, 4 actions,
two tanh layers of width h, n ~ h^2 + 22 h parameters), float32, B = 2000 samples:
  explicit  score_matrix + fisher_matrix + natural_gradient_step (F formed, damped, solved);
  cg        natural_step_cg (10 CG iterations on Fisher-vector products, 11 products),
            the products on a random fraction of the batch (--fvp-fraction), as TRPO does;
  pg        one policy gradient on the whole batch, the unit the CG step is measured in.
Each (method, n) runs in a fresh subprocess; "peak RSS increase" is the process's peak
resident memory while the method runs (the kernel's VmHWM, reset just before through
/proc/self/clear_refs) minus its resident memory at that moment.
Times are the median of --repeats runs after one warm-up run; all eager, as the solutions are.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OBS_DIM, N_ACTIONS, BATCH, EPSILON, DAMPING = 16, 4, 2000, 0.01, 1e-3
LOOP_MAX_BATCH = 300
EXPLICIT_MAX_PARAMS = 12_000      # beyond this F alone (n^2 float32) passes ~0.5 GB: extrapolated instead


def width_for(params: float) -> int:
    """The hidden width h whose network has about `params` parameters (n = h^2 + 22 h + 4)."""
    return max(1, round((-(OBS_DIM + N_ACTIONS + 2) + ((OBS_DIM + N_ACTIONS + 2) ** 2 + 4 * params) ** 0.5) / 2))


def reset_peak_rss() -> float:
    """Reset the kernel's peak-RSS mark of this process (VmHWM, Linux) and return the RSS, MB."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
    return _status_mb("VmRSS")


def peak_rss_mb() -> float:
    """The peak RSS of this process since the last reset_peak_rss(), MB."""
    return _status_mb("VmHWM")


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def median_time(function, repeats: int) -> float:
    function()                                    # warm-up: traces, allocator pools
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def machine() -> str:
    import tensorflow as tf
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    return f"{os.cpu_count()} CPUs (nproc), {cpu}, Python {platform.python_version()}, TensorFlow {tf.__version__}"


# ----------------------------------------------------------------------------- part 1


def per_sample(batches: list[int], repeats: int) -> None:
    import hw  # noqa: F401
    import numpy as np
    import tensorflow as tf

    from hw.policies import CategoricalPolicy
    from hw.utils import num_params
    from solutions import natural_gradient as ng
    from solutions import policy_gradient as pg

    policy = CategoricalPolicy(4, 2, (64, 64), seed=0)
    rng = np.random.default_rng(0)

    def one_tape_per_sample(observations, actions):
        """The naive per-sample gradients: a Python loop of B tapes."""
        rows = []
        for i in range(observations.shape[0]):
            with tf.GradientTape() as tape:
                log_prob = policy.distribution(observations[i:i + 1]).log_prob(actions[i:i + 1])
            rows.append(tape.gradient(log_prob, policy.trainable_variables))
        return rows

    print(f"\n### Pseudo-loss gradient vs per-sample gradients (n = {num_params(policy)} parameters, float32)\n")
    print("| B | pseudo-loss gradient (ms) | per-sample score_matrix (ms) | per-sample, loop of B tapes (ms) "
          "| per sample: pseudo-loss (us) | per sample: score_matrix (us) | score_matrix / pseudo-loss |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for batch in batches:
        observations = tf.constant(rng.normal(size=(batch, 4)), tf.float32)
        actions = tf.constant(rng.integers(0, 2, size=batch))
        q_values = tf.constant(rng.normal(size=batch), tf.float32)
        t_pg = median_time(lambda: pg.policy_gradient(policy, observations, actions, q_values), repeats)
        t_scores = median_time(lambda: ng.score_matrix(policy, observations, actions), repeats)
        loop = "-"
        if batch <= LOOP_MAX_BATCH:
            loop = f"{1e3 * median_time(lambda: one_tape_per_sample(observations, actions), 1):.0f}"
        print(f"| {batch} | {1e3 * t_pg:.2f} | {1e3 * t_scores:.1f} | {loop} | {1e6 * t_pg / batch:.2f} "
              f"| {1e6 * t_scores / batch:.1f} | {t_scores / t_pg:.0f}x |", flush=True)


# ----------------------------------------------------------------------------- part 2


def one_natural(method: str, params: float, fraction: float, repeats: int) -> dict:
    """Time one method at one size in this process; returns a JSON-able record."""
    import hw  # noqa: F401
    import numpy as np
    import tensorflow as tf

    from hw.policies import CategoricalPolicy
    from hw.utils import flatten, get_flat_params, num_params
    from solutions import natural_gradient as ng
    from solutions import policy_gradient as pg

    policy = CategoricalPolicy(OBS_DIM, N_ACTIONS, (width_for(params),) * 2, seed=0)
    n = num_params(policy)
    rng = np.random.default_rng(0)
    observations = tf.constant(rng.normal(size=(BATCH, OBS_DIM)), tf.float32)
    actions = policy.distribution(observations).sample(seed=1)
    q_values = tf.constant(rng.normal(size=BATCH), tf.float32)
    fvp_observations = tf.gather(observations, rng.permutation(BATCH)[:max(1, round(fraction * BATCH))])
    g = flatten(pg.policy_gradient(policy, observations, actions, q_values))
    theta = get_flat_params(policy)
    before = reset_peak_rss()

    def explicit():
        fisher = ng.fisher_matrix(ng.score_matrix(policy, observations, actions))
        return ng.natural_gradient_step(theta, g, fisher + DAMPING * tf.eye(n), EPSILON)

    methods = {
        "pg": lambda: pg.policy_gradient(policy, observations, actions, q_values),
        "cg": lambda: ng.natural_step_cg(policy, fvp_observations, g, EPSILON, iterations=10, damping=DAMPING),
        "explicit": explicit,
    }
    seconds = median_time(methods[method], repeats)
    return {"method": method, "n": n, "seconds": seconds, "rss_before_mb": before, "peak_rss_mb": peak_rss_mb(),
            "fraction": fraction if method == "cg" else 1.0}


def natural(param_counts: list[float], fraction: float, repeats: int) -> None:
    records = []
    for params in param_counts:
        for method in ("pg", "cg", "cg-full", "explicit"):
            n_estimate = width_for(params) ** 2 + 22 * width_for(params)
            if method == "explicit" and n_estimate > EXPLICIT_MAX_PARAMS:
                continue
            if method == "cg-full" and fraction == 1.0:
                continue
            command = [sys.executable, __file__, "--one", method.removesuffix("-full"), str(params),
                       str(1.0 if method == "cg-full" else fraction), str(repeats)]
            done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
            if done.returncode != 0:
                print(f"<!-- {method} at n ~ {params:g} failed: {done.stderr.strip().splitlines()[-1:]} -->")
                continue
            records.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"<!-- {json.dumps(records[-1])} -->", flush=True)

    def row_for(method, n, frac=None):
        for r in records:
            if r["method"] == method and r["n"] == n and (frac is None or r["fraction"] == frac):
                return r
        return None

    print(f"\n### One natural-gradient step, B = {BATCH}, float32, FVP batch fraction {fraction:g}\n")
    print("| n | policy gradient (s) | CG step (s) | CG step / gradient | CG, full batch (s) | full / gradient "
          "| explicit F step (s) | explicit / gradient | F bytes (n^2 x 4) | peak RSS increase: pg / CG / explicit (MB) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in sorted({r["n"] for r in records}):
        pg_row, cg_row = row_for("pg", n), row_for("cg", n, fraction)
        full_row, ex_row = row_for("cg", n, 1.0), row_for("explicit", n)

        def cell(row, fmt="{:.3f}"):
            return fmt.format(row["seconds"]) if row else "-"

        def ratio(row):
            return f"{row['seconds'] / pg_row['seconds']:.1f}x" if row and pg_row else "-"

        def mem(row):
            return f"{row['peak_rss_mb'] - row['rss_before_mb']:.0f}" if row else "-"

        print(f"| {n} | {cell(pg_row)} | {cell(cg_row)} | {ratio(cg_row)} | {cell(full_row)} | {ratio(full_row)} "
              f"| {cell(ex_row)} | {ratio(ex_row)} | {n * n * 4 / 2**20:,.0f} MB "
              f"| {mem(pg_row)} / {mem(cg_row)} / {mem(ex_row)} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("per-sample", "natural", "both"), default="both")
    parser.add_argument("--batches", type=int, nargs="+", default=[100, 300, 1000, 3000, 5000])
    parser.add_argument("--params", type=float, nargs="+", default=[1e3, 3e3, 1e4, 1e5, 1e6])
    parser.add_argument("--fvp-fraction", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--one", nargs=4, metavar=("METHOD", "PARAMS", "FRACTION", "REPEATS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        method, params, fraction, repeats = args.one
        print(json.dumps(one_natural(method, float(params), float(fraction), int(repeats))))
        return
    import hw  # noqa: F401
    print(f"`python benchmarks/bench_gradients.py {' '.join(sys.argv[1:])}`".replace(" `", "`"))
    print(f"\n{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {machine()}")
    if args.part in ("per-sample", "both"):
        per_sample(args.batches, args.repeats)
    if args.part in ("natural", "both"):
        natural(args.params, args.fvp_fraction, args.repeats)


if __name__ == "__main__":
    main()
