"""Environment steps per second: hw.sampling.Sampler against gymnasium's raw stepping.

    python benchmarks/bench_sampler.py
    python benchmarks/bench_sampler.py --envs CartPole-v1 --num-envs 16 32 --steps 20000

For each environment and number of sub-environments, the same vector environment
(hw.sampling.make_vector_env: SyncVectorEnv, SAME_STEP autoreset, episode statistics) is
stepped (a) with random actions from `action_space.sample()` (gymnasium alone) and (b) by
`Sampler.sample`, the policy (64x64 tanh MLP) choosing all sub-environments' actions in one
tf.function call per step and the batch being assembled. The ratio (b)/(a) says how much
the policy and the bookkeeping cost on top of the simulator. Results: benchmarks/sampler.md.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import hw  # noqa: E402,F401
import tensorflow as tf  # noqa: E402

from hw.policies import CategoricalPolicy, GaussianPolicy  # noqa: E402
from hw.sampling import Sampler, make_vector_env  # noqa: E402


def raw_rate(env_id: str, num_envs: int, steps: int) -> float:
    envs = make_vector_env(env_id, num_envs, seed=0)
    envs.reset(seed=0)
    for _ in range(10):
        envs.step(envs.action_space.sample())
    n = math.ceil(steps / num_envs)
    start = time.perf_counter()
    for _ in range(n):
        envs.step(envs.action_space.sample())
    elapsed = time.perf_counter() - start
    envs.close()
    return n * num_envs / elapsed


def sampler_rate(env_id: str, num_envs: int, steps: int) -> float:
    envs = make_vector_env(env_id, num_envs, seed=0)
    obs_dim = envs.single_observation_space.shape[0]
    space = envs.single_action_space
    policy = (CategoricalPolicy(obs_dim, int(space.n), (64, 64)) if hasattr(space, "n")
              else GaussianPolicy(obs_dim, space.shape[0], (64, 64)))
    sampler = Sampler(envs, policy, seed=0)
    sampler.sample(10)  # trace the tf.function
    n = math.ceil(steps / num_envs)
    start = time.perf_counter()
    sampler.sample(n)
    elapsed = time.perf_counter() - start
    sampler.close()
    return n * num_envs / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", default=["CartPole-v1", "InvertedPendulum-v5"])
    parser.add_argument("--num-envs", nargs="+", type=int, default=[1, 4, 16, 32, 64])
    parser.add_argument("--steps", type=int, default=20_000, help="environment steps per measurement")
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow CPU threads (hw.train's default: 1)")
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    print(f"# nproc {os.cpu_count()}, {cpu}, TensorFlow {tf.__version__}, TF threads {args.threads}")
    print("| environment | envs | gymnasium, random actions (steps/s) | Sampler with the policy (steps/s) | ratio |")
    print("|---|---:|---:|---:|---:|")
    for env_id in args.envs:
        for num_envs in args.num_envs:
            raw = raw_rate(env_id, num_envs, args.steps)
            sampled = sampler_rate(env_id, num_envs, args.steps)
            print(f"| {env_id} | {num_envs} | {raw:,.0f} | {sampled:,.0f} | {sampled / raw:.2f} |", flush=True)


if __name__ == "__main__":
    main()
