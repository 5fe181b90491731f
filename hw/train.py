"""Train a policy with your policy gradient (Part 1) or natural policy gradient (Part 2).

    python -m hw.train --algo pg   --env CartPole-v1
    python -m hw.train --algo trpo --env InvertedPendulum-v5 --seed 1
    python -m hw.train --algo npg  --env LinearQuadratic1D-v0
    python -m hw.train --help          # every option; per-environment defaults at the end

The functions you wrote are called from here: `estimate_q_values` and `policy_gradient`
(hw/policy_gradient.py) for every algorithm, `importance_sampled_pseudo_loss`,
`natural_step_cg`, `mean_kl` and `line_search` (hw/natural_gradient.py) for npg/trpo.
Everything else (sampling, the value baseline, Adam, logging) is provided. The file
reads top to bottom, like the single-file implementations of CleanRL:

    1. options and per-environment presets
    2. helpers: the implementation to train with, policies, Adam, the value baseline, logs
    3. the training loop: sample a batch -> Q-values -> advantages -> policy update
                          -> value-baseline regression -> log

Each run writes runs/<exp-name>/seed<seed>/: progress.csv (one row per iteration),
config.json (the settings this algorithm uses) and TensorBoard scalars (x axis:
environment steps). The default <exp-name> records every setting that differs from the
preset, so that two experiments never write into one folder. Plot runs with
`python -m hw.plot runs/<exp-name> ... --out curve.png`.
"""
from __future__ import annotations

import argparse
import csv
import importlib
import json
import math
import sys
import time
from pathlib import Path

import hw  # noqa: F401  (imports TensorFlow quietly; must come before TensorFlow)
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from tensorflow.core.framework import summary_pb2
from tqdm import tqdm

from hw.policies import MLP, CategoricalPolicy, GaussianPolicy, LinearGaussianPolicy
from hw.sampling import EPISODE_WINDOW, KNOWN_ENVS, Sampler, UnsupportedEnvironment, make_vector_env
from hw.utils import flatten, get_flat_params, set_flat_params

# =======================================================================================
# 1. Options
# =======================================================================================

ALGORITHMS = ("pg", "npg", "trpo")

#: Settings used unless an environment preset or a command-line flag says otherwise.
DEFAULTS = dict(
    total_steps=200_000,        # environment steps to train for
    target_return=None,         # stop early once the mean return of the last 20 episodes reaches it
    num_envs=16,                # environments stepped side by side (one policy call per step for all)
    batch_size=4000,            # environment steps per policy update (rounded up to a multiple of num_envs)
    gamma=0.99,
    reward_to_go=True,
    baseline=True,              # learned value baseline V(s): advantages Q - V
    normalize_advantages=True,
    hidden_sizes=(64, 64),
    log_std=-0.5,               # initial log standard deviation of a Gaussian policy
    learning_rate=0.01,         # pg: Adam step size
    optimizer="adam",           # pg: adam (the lecture's recommendation) or sgd
    epsilon=0.01,               # npg/trpo: the KL step size
    cg_iterations=10,
    damping=0.1,
    backtrack_ratio=0.8,
    max_backtracks=10,
    value_learning_rate=0.003,
    value_epochs=5,             # passes over the batch per value-baseline fit
    value_minibatch=256,
    init_k=0.0,                 # LinearQuadratic1D-v0: the starting policy a ~ N(k s, sigma^2)
    init_sigma=1.0,
)

#: Per-environment (and per-algorithm) settings, tuned with the reference solutions on
#: CartPole-v1 and InvertedPendulum-v5 (docs/training.md gives the times). They override
#: DEFAULTS; flags override both.
PRESETS = {
    "CartPole-v1": {
        "all": dict(total_steps=200_000, num_envs=16, batch_size=2000, gamma=0.99),
        "pg": dict(learning_rate=0.02),
        "npg": dict(epsilon=0.02),
        "trpo": dict(epsilon=0.02),
    },
    "InvertedPendulum-v5": {
        "all": dict(total_steps=300_000, num_envs=16, batch_size=2000, gamma=0.99),
        "pg": dict(learning_rate=0.01, gamma=0.95),
        "npg": dict(epsilon=0.02),
        "trpo": dict(epsilon=0.05, batch_size=4000),
    },
    "LinearQuadratic1D-v0": {
        # The lecture's 1-D example: a ~ N(k s, sigma^2), 10 undiscounted steps. Both
        # algorithms start from the same policy (k = 0, sigma = 1). Vanilla PG uses plain
        # gradient ascent (sgd) so that its step follows the raw gradient, as in the lecture.
        "all": dict(total_steps=100_000, num_envs=20, batch_size=2000, gamma=1.0, baseline=False,
                    normalize_advantages=False),
        "pg": dict(optimizer="sgd", learning_rate=0.01),
        "npg": dict(epsilon=0.01),
        "trpo": dict(epsilon=0.01),
    },
}


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hw.train", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="defaults: " + ", ".join(f"{k}={v}" for k, v in DEFAULTS.items())
               + "\n\nper-environment defaults (override the above; flags override both):\n" + "\n".join(
            f"  {env} {algo}: " + ", ".join(f"{k}={v}" for k, v in settings.items())
            for env, presets in PRESETS.items() for algo, settings in presets.items()))
    add = parser.add_argument
    # Every default is None here: resolve_config fills DEFAULTS, then the preset.
    add("--algo", choices=ALGORITHMS, default="pg", help="pg: Part 1; npg, trpo: Part 2 (default pg)")
    add("--env", default="CartPole-v1", help=f"gymnasium id, e.g. {', '.join(KNOWN_ENVS)}")
    add("--impl", default="hw", help="the package whose policy_gradient.py / natural_gradient.py to train with "
                                     "(default hw: your code)")
    add("--seed", type=int, default=0)
    add("--exp-name", default=None, help="runs/<exp-name>/seed<seed>/ (default: <algo>_<env> plus every setting "
                                         "that differs from the preset, e.g. pg_CartPole-v1_no-baseline_batch-size-500)")
    add("--runs-dir", default="runs")
    add("--total-steps", type=positive_int)
    add("--target-return", type=float, help="stop once the mean return of the last 20 episodes reaches this")
    add("--num-envs", type=positive_int)
    add("--batch-size", type=positive_int, help="environment steps per update")
    add("--gamma", type=float)
    add("--reward-to-go", action=argparse.BooleanOptionalAction, default=None)
    add("--baseline", action=argparse.BooleanOptionalAction, default=None, help="learned value baseline")
    add("--normalize-advantages", action=argparse.BooleanOptionalAction, default=None)
    add("--hidden-sizes", type=positive_int, nargs="+")
    add("--log-std", type=float, help="initial log std of the Gaussian policy")
    add("--learning-rate", type=positive_float, help="pg step size")
    add("--optimizer", choices=("adam", "sgd"), help="pg optimizer")
    add("--epsilon", type=positive_float, help="npg/trpo KL step size")
    add("--cg-iterations", type=positive_int)
    add("--damping", type=float)
    add("--backtrack-ratio", type=float)
    add("--max-backtracks", type=positive_int)
    add("--value-learning-rate", type=positive_float)
    add("--value-epochs", type=positive_int)
    add("--value-minibatch", type=positive_int)
    add("--init-k", type=float, help="LinearQuadratic1D-v0: initial k")
    add("--init-sigma", type=positive_float, help="LinearQuadratic1D-v0: initial sigma")
    add("--threads", type=positive_int, default=1, help="TensorFlow CPU threads (default 1: small networks)")
    add("--progress", action=argparse.BooleanOptionalAction, default=True, help="tqdm progress bar")
    return parser


def resolve_config(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict:
    """DEFAULTS, then the environment's preset, then the flags given on the command line."""
    preset = PRESETS.get(args.env, {})
    config = {**DEFAULTS, **preset.get("all", {}), **preset.get(args.algo, {})}
    config.update({key: value for key, value in vars(args).items() if value is not None})
    config.setdefault("exp_name", None)
    config["hidden_sizes"] = tuple(config["hidden_sizes"])
    if not 0.0 <= config["gamma"] <= 1.0:
        parser.error(f"--gamma must be in [0, 1], got {config['gamma']}")
    if not 0.0 < config["backtrack_ratio"] < 1.0:
        parser.error(f"--backtrack-ratio must be in (0, 1), got {config['backtrack_ratio']}")
    if config["damping"] < 0:
        parser.error(f"--damping must be >= 0, got {config['damping']}")
    unused = [key for key in DEFAULTS if getattr(args, key, None) is not None and key not in used_settings(config)]
    if unused:
        print(f"note: --algo {config['algo']} on {config['env']} does not use "
              + ", ".join("--" + key.replace("_", "-") for key in unused), file=sys.stderr)
    if config["exp_name"] is None:
        config["exp_name"] = experiment_name(config)
    return config


#: Names in experiment names: the three variance-reduction switches read _no-rtg, _no-baseline, _no-norm.
SWITCHES = {"reward_to_go": "rtg", "baseline": "baseline", "normalize_advantages": "norm"}
#: What identifies a run rather than configures the algorithm.
RUN_KEYS = ("algo", "env", "impl", "seed", "exp_name")


def used_settings(config: dict, policy_kind: str | None = None) -> list[str]:
    """The settings the run's algorithm reads, in DEFAULTS order.

    policy_kind: "categorical", "gaussian" or "linear" (the 1-D example); None when not
    known yet (before the environment is made): then a network policy's settings all count.
    """
    if policy_kind is None:
        policy_kind = "linear" if config["env"].startswith("LinearQuadratic1D") else "network"
    used = {"total_steps", "target_return", "num_envs", "batch_size", "gamma", "reward_to_go", "baseline",
            "normalize_advantages"}
    used |= {"linear": {"init_k", "init_sigma"}, "categorical": {"hidden_sizes"},
             "gaussian": {"hidden_sizes", "log_std"}, "network": {"hidden_sizes", "log_std"}}[policy_kind]
    if config["baseline"]:
        used |= {"hidden_sizes", "value_learning_rate", "value_epochs", "value_minibatch"}  # the value network
    used |= {"pg": {"learning_rate", "optimizer"}, "npg": {"epsilon", "cg_iterations", "damping"},
             "trpo": {"epsilon", "cg_iterations", "damping", "backtrack_ratio", "max_backtracks"}}[config["algo"]]
    return [key for key in DEFAULTS if key in used]


def experiment_name(config: dict) -> str:
    """<algo>_<env>, then every used setting that differs from the preset: _no-baseline, _batch-size-500, ..."""
    preset = PRESETS.get(config["env"], {})
    reference = {**DEFAULTS, **preset.get("all", {}), **preset.get(config["algo"], {})}
    parts = [config["algo"], config["env"]]
    for key in used_settings(config):
        value, default = config[key], reference[key]
        if key in ("hidden_sizes",):
            value, default = tuple(value), tuple(default)
        if value == default:
            continue
        if key in SWITCHES:
            parts.append(("" if value else "no-") + SWITCHES[key])
        else:
            shown = "x".join(str(v) for v in value) if isinstance(value, tuple) else f"{value:g}" \
                if isinstance(value, float) else str(value)
            parts.append(f"{key.replace('_', '-')}-{shown}")
    return "_".join(parts)


# =======================================================================================
# 2. Helpers
# =======================================================================================

class TrainingError(SystemExit):
    """Stops the command with a message (exit status 1) instead of a traceback."""

    def __init__(self, message: str):
        super().__init__(f"hw.train: {message}")


def load_implementation(package: str, algo: str):
    """The modules whose functions are trained with: (policy_gradient, natural_gradient or None)."""
    def load(module: str):
        try:
            return importlib.import_module(f"{package}.{module}")
        except ModuleNotFoundError as error:
            if error.name not in (package, f"{package}.{module}"):
                raise
            raise TrainingError(f"--impl {package}: cannot import {package}.{module} ({error})") from None

    return load("policy_gradient"), (load("natural_gradient") if algo in ("npg", "trpo") else None)


def policy_kind(policy) -> str:
    """"linear" (the 1-D example), "categorical" or "gaussian"."""
    if isinstance(policy, LinearGaussianPolicy):
        return "linear"
    return "categorical" if policy.discrete else "gaussian"


def make_policy(env_id: str, envs, config: dict, seed: int):
    """CategoricalPolicy for Discrete actions, GaussianPolicy for a Box, the lecture's
    LinearGaussianPolicy for the 1-D example."""
    obs_dim = envs.single_observation_space.shape[0]
    space = envs.single_action_space
    if env_id.startswith("LinearQuadratic1D"):
        return LinearGaussianPolicy(k=config["init_k"], sigma=config["init_sigma"], dtype=tf.float64)
    if hasattr(space, "n"):
        return CategoricalPolicy(obs_dim, int(space.n), config["hidden_sizes"], seed=seed)
    return GaussianPolicy(obs_dim, space.shape[0], config["hidden_sizes"], log_std=config["log_std"], seed=seed)


def copy_policy(source, target) -> None:
    for s, t in zip(source.trainable_variables, target.trainable_variables):
        t.assign(s)


class Optimizer(tf.Module):
    """Adam (Kingma and Ba, 2015), or plain gradient descent: variables -= step(gradients).

    Written out rather than taken from Keras, so that it works on any tf.Variables.
    """

    def __init__(self, variables, learning_rate: float, kind: str = "adam",
                 beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        super().__init__()
        self.params, self.kind = list(variables), kind
        self.learning_rate, self.beta1, self.beta2, self.eps = learning_rate, beta1, beta2, eps
        self.m = [tf.Variable(tf.zeros_like(v)) for v in self.params]
        self.v = [tf.Variable(tf.zeros_like(v)) for v in self.params]
        self.t = tf.Variable(0.0, dtype=tf.float64)

    def minimize_step(self, gradients) -> None:
        """One descent step along -gradients (pass minus grad J to ascend J)."""
        if self.kind == "sgd":
            for variable, g in zip(self.params, gradients):
                variable.assign_sub(self.learning_rate * tf.cast(g, variable.dtype))
            return
        self.t.assign_add(1.0)
        correction = tf.sqrt(1.0 - self.beta2 ** self.t) / (1.0 - self.beta1 ** self.t)
        for variable, m, v, g in zip(self.params, self.m, self.v, gradients):
            g = tf.cast(g, variable.dtype)
            m.assign(self.beta1 * m + (1.0 - self.beta1) * g)
            v.assign(self.beta2 * v + (1.0 - self.beta2) * tf.square(g))
            step = tf.cast(self.learning_rate * correction, variable.dtype) * m / (tf.sqrt(v) + self.eps)
            variable.assign_sub(step)


class ValueBaseline(tf.Module):
    """V(s), an MLP fitted by regression to the Q-value targets of each batch.

    The whole fit (value_epochs passes over shuffled minibatches, Adam) is one tf.function
    call. Targets are standardized with the batch's mean and std, which keeps the learning
    rate meaningful whatever the scale of the returns; predictions are un-standardized with
    the statistics of the last fit.
    """

    def __init__(self, obs_dim: int, hidden_sizes, learning_rate: float, epochs: int, minibatch: int, seed: int):
        super().__init__()
        self.net = MLP(obs_dim, 1, hidden_sizes, seed=seed)
        self.optimizer = Optimizer(self.net.trainable_variables, learning_rate)
        self.epochs, self.minibatch = epochs, minibatch
        self.mean = tf.Variable(0.0)
        self.std = tf.Variable(1.0)
        self.rng = tf.random.Generator.from_seed(seed)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)])
    def __call__(self, observations):
        return self.mean + self.std * self.net(observations)[:, 0]

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32), tf.TensorSpec([None], tf.float32)])
    def fit(self, observations, targets):
        """Regress V(observations) on targets; returns the mean squared error before the fit."""
        n = tf.shape(targets)[0]
        mse_before = tf.reduce_mean(tf.square(self(observations) - targets))
        mean, std = tf.reduce_mean(targets), tf.math.reduce_std(targets) + 1e-6
        self.mean.assign(mean)
        self.std.assign(std)
        scaled = (targets - mean) / std
        batches = tf.maximum(n // self.minibatch, 1)
        for _ in tf.range(self.epochs):
            order = tf.random.experimental.stateless_shuffle(tf.range(n), self.rng.make_seeds(1)[:, 0])
            for b in tf.range(batches):
                index = order[b * self.minibatch: (b + 1) * self.minibatch]
                x, y = tf.gather(observations, index), tf.gather(scaled, index)
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(tf.square(self.net(x)[:, 0] - y))
                self.optimizer.minimize_step(tape.gradient(loss, self.net.trainable_variables))
        return mse_before


def log_probs_of(policy, observations, actions) -> tf.Tensor:
    return policy.distribution(observations).log_prob(actions)


def mean_kl_and_entropy(old_policy, policy, observations) -> tuple[float, float]:
    """Logging only (tensorflow-probability, not your code): mean KL(old || new) and entropy."""
    new = policy.distribution(observations)
    kl = tfp.distributions.kl_divergence(old_policy.distribution(observations), new)
    return float(tf.reduce_mean(kl)), float(tf.reduce_mean(new.entropy()))


# What tf.summary.scalar attaches to a scalar (TensorBoard's "scalars" plugin), built here
# so that the logs are written even where the tensorboard package is not installed.
_SCALAR = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
                                      data_class=summary_pb2.DATA_CLASS_SCALAR)


class Logger:
    """progress.csv (one row per iteration) and TensorBoard scalars, x axis = environment steps."""

    def __init__(self, run_dir: Path, settings: dict):
        if run_dir.exists():  # a rerun of the same experiment and seed replaces the old logs
            for stale in run_dir.glob("events.out.tfevents*"):
                stale.unlink()
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(settings, indent=2, default=str) + "\n")
        self.path = run_dir / "progress.csv"
        self.file = open(self.path, "w", newline="")
        self.writer = None
        self.summary = tf.summary.create_file_writer(str(run_dir))

    def log(self, row: dict) -> None:
        if self.writer is None:
            self.writer = csv.DictWriter(self.file, fieldnames=list(row), lineterminator="\n")
            self.writer.writeheader()
        self.writer.writerow(row)
        self.file.flush()
        with self.summary.as_default(step=int(row["env_steps"])):
            for key, value in row.items():
                if key not in ("iteration", "env_steps") and value is not None and np.isfinite(value):
                    # tf.summary.scalar, written without needing the tensorboard package
                    tf.summary.write(f"train/{key}", tf.constant(float(value), tf.float32), metadata=_SCALAR)

    def close(self) -> None:
        self.file.close()
        self.summary.close()


def explained_variance(predictions: np.ndarray, targets: np.ndarray) -> float:
    variance = np.var(targets)
    return float("nan") if variance == 0 else float(1.0 - np.var(targets - predictions) / variance)


# =======================================================================================
# 3. Training
# =======================================================================================

def train(config: dict) -> dict:
    """Run one training run as `config` (resolve_config's output) says; returns a summary."""
    start_time = time.perf_counter()
    algo, seed = config["algo"], config["seed"]
    pg, ng = load_implementation(config["impl"], algo)
    tf.random.set_seed(seed)  # the sampler, policy and value net also take `seed` explicitly

    # --- environments and policy ---------------------------------------------------------
    envs = make_vector_env(config["env"], config["num_envs"], seed=seed)
    policy = make_policy(config["env"], envs, config, seed)
    old_policy = make_policy(config["env"], envs, config, seed)  # theta_old, for KLs and ratios
    sampler = Sampler(envs, policy, seed=seed)
    obs_dim = envs.single_observation_space.shape[0]
    value = (ValueBaseline(obs_dim, config["hidden_sizes"], config["value_learning_rate"],
                           config["value_epochs"], config["value_minibatch"], seed + 1)
             if config["baseline"] else None)
    optimizer = Optimizer(policy.trainable_variables, config["learning_rate"], config["optimizer"])
    steps_per_env = math.ceil(config["batch_size"] / config["num_envs"])
    lq = None
    if config["env"].startswith("LinearQuadratic1D"):
        import hw.lq_env as lq  # the exact J(k, sigma) is logged along with the sampled returns

    run_dir = Path(config["runs_dir"]) / config["exp_name"] / f"seed{seed}"
    settings = {key: config[key] for key in (*RUN_KEYS, *used_settings(config, policy_kind(policy)))}
    logger = Logger(run_dir, settings)
    progress = tqdm(total=config["total_steps"], unit="step", unit_scale=True, dynamic_ncols=True,
                    disable=not config["progress"], desc=f"{algo} {config['env']} seed {seed}")
    iteration, solved, kl = 0, False, float("nan")
    try:
        while sampler.total_steps < config["total_steps"]:
            iteration += 1
            # --- 1. sample a batch of paths with the current policy -----------------------
            t0 = time.perf_counter()
            batch = sampler.sample(steps_per_env)
            sample_time = time.perf_counter() - t0
            observations = tf.constant(batch.observations)
            actions = tf.constant(batch.actions)

            # --- 2. Q-values from the per-path rewards (your estimate_q_values) ------------
            rewards_per_path = [r.astype(np.float64) for r in batch.rewards_per_path]
            if value is not None:
                values = value(observations).numpy()
                # Paths that did not terminate (time limit, or cut by the batch's end) go on
                # after their last step: add gamma * V(s_next) to their last reward, so that
                # reward-to-go sums r_t + ... + gamma^(T-t) V(s_T) (bootstrapping).
                open_paths = np.flatnonzero(~batch.terminated)
                if len(open_paths):
                    next_values = value(tf.constant(batch.bootstrap_observations[open_paths])).numpy()
                    for p, v in zip(open_paths, next_values):
                        rewards_per_path[p][-1] += config["gamma"] * v
            q_values = np.asarray(pg.estimate_q_values(rewards_per_path, config["gamma"], config["reward_to_go"]),
                                  dtype=np.float64)
            if q_values.shape != (len(batch),):
                raise TrainingError(f"estimate_q_values returned shape {q_values.shape}, expected ({len(batch)},): "
                                    "one Q-value per step of every path, concatenated in path order")

            # --- 3. advantages ------------------------------------------------------------
            advantages = q_values - values if value is not None else q_values.copy()
            if config["normalize_advantages"]:
                advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
            advantages_tf = tf.constant(advantages, dtype=tf.float32)

            # --- 4. policy update ---------------------------------------------------------
            t0 = time.perf_counter()
            copy_policy(policy, old_policy)
            grads = pg.policy_gradient(policy, observations, actions, advantages_tf)  # grad J (ascent)
            grad_norm = float(tf.linalg.norm(flatten(grads)))
            step_fraction = float("nan")  # trpo: the fraction of the full step the line search kept
            if algo == "pg":
                optimizer.minimize_step([-g for g in grads])  # ascend J = descend -J
            else:
                theta = get_flat_params(policy)
                g = tf.cast(flatten(grads), theta.dtype)
                full_step = tf.cast(ng.natural_step_cg(policy, observations, g, config["epsilon"],
                                                       iterations=config["cg_iterations"],
                                                       damping=config["damping"]), theta.dtype)
                if algo == "npg":
                    new_theta = theta + full_step
                else:  # trpo: backtrack until the surrogate improves within the KL radius
                    old_log_probs = log_probs_of(old_policy, observations, actions)

                    def surrogate(th):
                        set_flat_params(policy, th)
                        return -float(pg.importance_sampled_pseudo_loss(
                            log_probs_of(policy, observations, actions), old_log_probs, advantages_tf))

                    def kl_at(th):
                        set_flat_params(policy, th)
                        return float(ng.mean_kl(old_policy, policy, observations))

                    new_theta = ng.line_search(theta, full_step, surrogate, kl_at, config["epsilon"],
                                               backtrack_ratio=config["backtrack_ratio"],
                                               max_backtracks=config["max_backtracks"])
                    step_fraction = float(tf.linalg.norm(tf.cast(new_theta, theta.dtype) - theta)
                                          / (tf.linalg.norm(full_step) + 1e-30))
                set_flat_params(policy, new_theta)
            if ng is not None:
                kl = float(ng.mean_kl(old_policy, policy, observations))  # your mean_kl (Part 2)
                _, entropy = mean_kl_and_entropy(old_policy, policy, observations)
            else:
                kl, entropy = mean_kl_and_entropy(old_policy, policy, observations)
            update_time = time.perf_counter() - t0
            if not all(np.isfinite(v.numpy()).all() for v in policy.trainable_variables):
                raise TrainingError(f"the policy's parameters became nan or inf at iteration {iteration}: the step "
                                    "was too large (lower --learning-rate or --epsilon), or a function returned nan")

            # --- 5. value-baseline regression on the Q-value targets ------------------------
            value_mse = explained = float("nan")
            if value is not None:
                value_mse = float(value.fit(observations, tf.constant(q_values, tf.float32)))
                explained = explained_variance(values, q_values)

            # --- 6. log --------------------------------------------------------------------
            recent = sampler.recent_return()
            row = dict(
                iteration=iteration, env_steps=sampler.total_steps,
                time=round(time.perf_counter() - start_time, 3),
                return_mean=recent,  # the last EPISODE_WINDOW finished episodes
                q_value_mean=float(np.mean(q_values)),  # your estimate_q_values, averaged over the batch
                batch_return_mean=float(np.mean(batch.episode_returns)) if batch.episode_returns else float("nan"),
                episode_length_mean=float(np.mean(batch.episode_lengths)) if batch.episode_lengths else float("nan"),
                episodes=len(batch.episode_returns), kl=kl, entropy=entropy, grad_norm=grad_norm,
                step_fraction=step_fraction, value_mse=value_mse, explained_variance=explained,
                sample_time=round(sample_time, 4), update_time=round(update_time, 4),
            )
            if lq is not None:
                k, log_sigma = (float(v.numpy()[0]) for v in policy.trainable_variables)
                row.update(k=k, sigma=math.exp(log_sigma), exact_return=float(lq.expected_return(k, math.exp(log_sigma))))
            logger.log(row)
            progress.update(sampler.total_steps - progress.n)
            shown = f"exact J {row['exact_return']:.2f}" if lq is not None else f"return {recent:.1f}"
            progress.set_postfix_str(shown + (f" kl {kl:.4f}" if algo != "pg" else ""))
            if (config["target_return"] is not None and len(envs.return_queue) >= EPISODE_WINDOW
                    and recent >= config["target_return"]):
                solved = True
                progress.total = progress.n  # the bar ends at 100%: the run is complete
                progress.set_postfix_str(f"return {recent:.1f}: target {config['target_return']:g} reached")
                break
    finally:
        progress.close()
        logger.close()
        sampler.close()
    summary = dict(run_dir=str(run_dir), iterations=iteration, env_steps=sampler.total_steps,
                   wall_time=time.perf_counter() - start_time, return_mean=sampler.recent_return(),
                   solved=solved, kl=kl, params=get_flat_params(policy).numpy())
    if lq is not None and iteration:
        summary.update(k=row["k"], sigma=row["sigma"], exact_return=row["exact_return"])
    return summary


def main(argv: list[str] | None = None) -> dict:
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    except RuntimeError:  # TensorFlow already started in this process (e.g. a second run in tests)
        pass
    config = resolve_config(args, parser)
    try:
        summary = train(config)
    except NotImplementedError as error:
        raise TrainingError(f"a function you have not written yet was called:\n    {error}\n"
                            f"Fill it in, check it with `pytest hw/`, and train again.") from None
    except UnsupportedEnvironment as error:
        parser.error(str(error))
    if "exact_return" in summary:  # the 1-D example: the exact J of the final policy, not a noisy sample
        result = (f"exact J(k, sigma) = {summary['exact_return']:.3f} at k = {summary['k']:.3f}, "
                  f"sigma = {summary['sigma']:.3f}")
    else:
        result = f"mean return of the last {EPISODE_WINDOW} episodes {summary['return_mean']:.1f}"
    print(f"{config['exp_name']} seed {config['seed']}: {summary['env_steps']} steps, {summary['wall_time']:.1f} s, "
          + result + (" (target reached)" if summary["solved"] else "") + f"; logs in {summary['run_dir']}")
    return summary


if __name__ == "__main__":
    main()
