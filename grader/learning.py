"""The optional end-to-end learning check ([training] in points.toml; `--train` turns it on):
does the student's own Part 1 code learn?

In the student's process, the provided training loop (hw/train.py) trains a policy on
CartPole-v1 with the student's estimate_q_values and policy_gradient, within a step budget
and a time budget. The process returns the final policy's parameters and its own training
curve, and is closed. Then this process, which trusts nothing the student's process said,
evaluates those parameters itself: a NumPy forward pass of the policy network, gymnasium's
CartPole-v1, actions sampled with its own random seed. Only that evaluation is scored; the
training curve is shown (a text sparkline, and a PNG beside results.json), never believed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import TRAINING_TEST, Training

SPARKS = "▁▂▃▄▅▆▇█"
TEST_KEY = TRAINING_TEST
TITLE = "learning check: your policy gradient trains CartPole-v1 (evaluated by the grader)"


@dataclass
class Evaluation:
    returns: list  # one per evaluation episode
    curve: list  # the training curve the student's process reported (mean return per iteration)
    steps: int  # environment steps it reported
    passed: bool
    message: str


def logits(params: np.ndarray, sizes: list[int], observations: np.ndarray) -> np.ndarray:
    """The categorical policy network of hw.policies (tanh hidden layers, linear output) in
    NumPy, from its flat parameters in the order of policy.trainable_variables:
    kernel_0 [in, h1], bias_0 [h1], ..., kernel_L [h_L, A], bias_L [A]."""
    x, offset = np.asarray(observations, np.float64), 0
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        kernel = params[offset:offset + fan_in * fan_out].reshape(fan_in, fan_out)
        offset += fan_in * fan_out
        bias = params[offset:offset + fan_out]
        offset += fan_out
        x = x @ kernel + bias
        if i < len(sizes) - 2:
            x = np.tanh(x)
    if offset != params.size:
        raise ValueError(f"{params.size} parameters for layer sizes {sizes} (expected {offset})")
    return x


def evaluate(params: np.ndarray, settings: Training, seed: int) -> list[float]:
    """Returns of `settings.episodes` CartPole-v1 episodes, actions sampled from the policy."""
    import gymnasium
    env = gymnasium.make(settings.env)
    sizes = [env.observation_space.shape[0], *settings.hidden_sizes, env.action_space.n]
    rng = np.random.default_rng(seed)
    returns = []
    for episode in range(settings.episodes):
        observation, _ = env.reset(seed=int(rng.integers(2 ** 31)))
        total, done = 0.0, False
        while not done:
            z = logits(params, sizes, observation[None])[0]
            p = np.exp(z - z.max())
            action = int(rng.choice(len(p), p=p / p.sum()))
            observation, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return returns


def sparkline(values, width: int = 60) -> str:
    values = [float(v) for v in values if np.isfinite(v)]
    if not values:
        return "(no curve)"
    if len(values) > width:
        values = [float(np.mean(chunk)) for chunk in np.array_split(np.asarray(values), width)]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(SPARKS[min(len(SPARKS) - 1, int((v - low) / span * len(SPARKS)))] for v in values) + \
        f"  ({low:.0f} to {high:.0f})"


def plot(curve: list, evaluation: list, settings: Training, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axis = plt.subplots(figsize=(6, 3.5))
    axis.plot(range(1, len(curve) + 1), curve, label="training (reported by your process)")
    axis.axhline(settings.threshold, color="gray", linestyle="--", label=f"threshold {settings.threshold:g}")
    if evaluation:
        axis.axhline(float(np.mean(evaluation)), color="C2", label=f"grader's evaluation {np.mean(evaluation):.0f}")
    axis.set_xlabel("iteration")
    axis.set_ylabel("mean episode return")
    axis.set_title(f"{settings.algo} on {settings.env}")
    axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def judge(report, settings: Training, seed: int) -> Evaluation:
    """Score what the student's process handed back: {"params", "curve", "steps"}."""
    if not isinstance(report, dict) or not isinstance(report.get("params"), np.ndarray):
        return Evaluation([], [], 0, False, "the training run returned no policy parameters")
    curve = [float(v) for v in np.asarray(report.get("curve", []), np.float64).reshape(-1)]
    steps = int(np.asarray(report.get("steps", 0)).reshape(()))
    params = np.asarray(report["params"], np.float64).reshape(-1)
    if not np.all(np.isfinite(params)):
        return Evaluation([], curve, steps, False, "the trained policy has non-finite parameters (NaN or infinity)")
    try:
        returns = evaluate(params, settings, seed)
    except ValueError as exc:
        return Evaluation([], curve, steps, False, f"the trained policy could not be evaluated: {exc}")
    mean = float(np.mean(returns))
    passed = mean >= settings.threshold
    message = (f"{settings.algo} on {settings.env}: the grader's evaluation of your final policy: mean return "
               f"{mean:.1f} over {len(returns)} episodes (threshold {settings.threshold:g}) "
               f"{'reached' if passed else 'not reached'}\n"
               f"Expected: a mean return of at least {settings.threshold:g} after at most {settings.steps} "
               f"environment steps\nGot: {mean:.1f} (episodes: {', '.join(f'{r:.0f}' for r in returns)}), after "
               f"{steps} steps of training\nTraining curve (as your process reported it): {sparkline(curve)}")
    return Evaluation(returns, curve, steps, passed, message)
