"""Cases of the Part 1 hidden tests (hw/policy_gradient.py): inputs, and reference answers
from the solutions and from the exact J (finite differences of an enumerable tabular MDP
and of the closed-form 1-D linear-quadratic problem). Runs in the trusted pre-pass only."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

import solutions.policy_gradient as ref
from hw import lq_env
from hw.policies import CategoricalPolicy, GaussianPolicy, LinearGaussianPolicy
from hw.tabular_mdp import TabularMDP
from hw.utils import get_flat_params, set_flat_params

from ..wire import Policy, Tensor
from .common import builds, policy_spec, send, shapes


def _central_differences(function, theta: np.ndarray, h: float) -> np.ndarray:
    """grad f(theta) by central differences, in float64."""
    gradient = np.zeros_like(theta)
    for i in range(theta.size):
        step = np.zeros_like(theta)
        step[i] = h
        gradient[i] = (function(theta + step) - function(theta - step)) / (2 * h)
    return gradient


def _flat(arrays) -> np.ndarray:
    return np.concatenate([np.asarray(a, dtype=np.float64).reshape(-1) for a in arrays])


# ----------------------------------------------------------------------------- Q-values

def _reward_cases(rng) -> list[dict]:
    """Rewards as sent (edge cases, dtypes, a 1,000-step path with a small gamma) and in float64."""
    cases = []
    for length, gamma, kind in [(1, 0.9, "numpy64"), (6, 0.0, "numpy64"), (6, 1.0, "numpy32"),
                                (9, 0.95, "tensor64"), (5, 0.5, "tensor32"), (2, 0.99, "list"),
                                (1000, 0.3, "numpy64"), (1000, 0.999, "numpy32")]:
        rewards = rng.normal(size=length).round(3)
        if kind.endswith("32") or kind == "list":
            rewards = rewards.astype(np.float32)  # the reference sees the same rounding
        sent = Tensor(rewards) if kind.startswith("tensor") else [float(r) for r in rewards] if kind == "list" \
            else rewards
        shown = f"rewards={np.array2string(rewards, precision=4, threshold=10, edgeitems=3, separator=', ')}"
        cases.append({"description": f"{shown.replace(chr(10), ' ')} ({kind}, T={length}), gamma={gamma}",
                      "sent": sent, "rewards": rewards.astype(np.float64), "gamma": gamma})
    return cases


def _with_expected(cases: list[dict], reference) -> list[dict]:
    for case in cases:
        case["expected"] = np.asarray(reference(case["rewards"], case["gamma"]), np.float64)
    return cases


@builds("test_discounted_return")
def discounted_return(rng, seed):
    return _with_expected(_reward_cases(rng), ref.discounted_return)


@builds("test_reward_to_go")
def reward_to_go(rng, seed):
    return _with_expected(_reward_cases(rng), ref.reward_to_go)


@builds("test_estimate_q_values")
def estimate_q_values(rng, seed):
    cases = []
    for lengths in ([3, 1, 4], [1], [5, 5], [2, 1, 1, 6]):
        paths = [rng.normal(size=n).round(3) for n in lengths]
        for gamma in (0.9, 1.0):
            for use_rtg in (True, False):
                cases.append({"lengths": lengths, "paths": paths, "gamma": gamma, "use_reward_to_go": use_rtg,
                              "expected": np.asarray(ref.estimate_q_values(paths, gamma, use_rtg), np.float64)})
    return cases


# ----------------------------------------------------------------------------- pseudo-losses

def _discrete_cases(rng) -> list[dict]:
    cases = []
    for batch, n_actions, dtype, q_dtype, as_tensor, gap in [
            (7, 3, np.float64, np.float64, False, 0), (1, 4, np.float64, np.float64, True, 0),
            (12, 2, np.float32, np.float32, True, 0), (5, 5, np.float32, np.float32, False, 0),
            (6, 3, np.float32, np.float64, False, 0),  # a float32 policy, float64 Q-values (the training loop)
            (4, 3, np.float32, np.float32, True, 130.0)]:  # a nearly deterministic policy
        logits = rng.normal(size=(batch, n_actions))
        actions = rng.integers(0, n_actions, size=batch)
        if gap:  # the action taken is the unlikely one, `gap` below the likeliest
            logits[np.arange(batch), (actions + 1) % n_actions] += gap
        logits = logits.astype(dtype)
        q = (rng.normal(size=batch) * 2 + 0.5).astype(q_dtype)
        dtypes = np.dtype(dtype).name if dtype == q_dtype else \
            f"{np.dtype(dtype).name} logits with {np.dtype(q_dtype).name} q_values"
        description = f"B={batch}, A={n_actions}, {dtypes}, {'tf.Tensor' if as_tensor else 'NumPy'} input" + \
            (f", logit gaps of {gap:g}" if gap else "")
        cases.append({"description": description, "logits": logits, "actions": actions, "q": q,
                      "as_tensor": as_tensor})
    return cases


@builds("test_discrete_pseudo_loss_value")
def discrete_pseudo_loss_value(rng, seed):
    cases = _discrete_cases(rng)
    for case in cases:
        case["expected"] = float(ref.discrete_pseudo_loss(case["logits"].astype(np.float64), case["actions"],
                                                          case["q"].astype(np.float64)))
    return cases


@builds("test_discrete_pseudo_loss_gradient")
def discrete_pseudo_loss_gradient(rng, seed):
    cases = _discrete_cases(rng)
    for case in cases:
        logits = tf.Variable(case["logits"].astype(np.float64))
        with tf.GradientTape() as tape:
            loss = ref.discrete_pseudo_loss(logits, case["actions"], case["q"].astype(np.float64))
        case["expected"] = tape.gradient(loss, logits).numpy()
    return cases


def _gaussian_cases(rng) -> list[dict]:
    cases = []
    for batch, dim, dtype, q_dtype, as_tensor in [(6, 2, np.float64, np.float64, False),
                                                  (1, 3, np.float64, np.float64, True),
                                                  (10, 1, np.float32, np.float32, True),
                                                  (8, 4, np.float32, np.float32, False),
                                                  (5, 2, np.float32, np.float64, False)]:
        means = rng.normal(size=(batch, dim)).astype(dtype)
        log_std = rng.normal(scale=0.5, size=dim).astype(dtype)
        actions = (means + np.exp(log_std) * rng.normal(size=(batch, dim))).astype(q_dtype)
        q = (rng.normal(size=batch) * 2 + 0.5).astype(q_dtype)
        dtypes = np.dtype(dtype).name if dtype == q_dtype else \
            f"{np.dtype(dtype).name} means and log_std with {np.dtype(q_dtype).name} actions and q_values"
        cases.append({"description": f"B={batch}, D={dim}, {dtypes}, {'tf.Tensor' if as_tensor else 'NumPy'} input",
                      "means": means, "log_std": log_std, "actions": actions, "q": q, "as_tensor": as_tensor})
    return cases


@builds("test_gaussian_pseudo_loss_value")
def gaussian_pseudo_loss_value(rng, seed):
    cases = _gaussian_cases(rng)
    for case in cases:
        case["expected"] = float(ref.gaussian_pseudo_loss(*(case[k].astype(np.float64)
                                                            for k in ("means", "log_std", "actions", "q"))))
    return cases


@builds("test_gaussian_pseudo_loss_gradient")
def gaussian_pseudo_loss_gradient(rng, seed):
    cases = _gaussian_cases(rng)
    for case in cases:
        means, log_std = (tf.Variable(case[k].astype(np.float64)) for k in ("means", "log_std"))
        with tf.GradientTape() as tape:
            loss = ref.gaussian_pseudo_loss(means, log_std, case["actions"].astype(np.float64),
                                            case["q"].astype(np.float64))
        case["d_means"], case["d_log_std"] = (g.numpy() for g in tape.gradient(loss, [means, log_std]))
    return cases


# ----------------------------------------------------------------------------- policy gradient

@builds("test_policy_gradient_exact_tabular")
def policy_gradient_exact_tabular(rng, seed):
    cases = []
    for i, (description, hidden, gamma, use_rtg, as_tensor) in enumerate([
            ("linear-softmax policy, reward-to-go, gamma=0.9", (), 0.9, True, False),
            ("one tanh hidden layer, whole return, gamma=1", (4,), 1.0, False, False),
            ("linear-softmax policy, reward-to-go, gamma=1, tf.Tensor input", (), 1.0, True, True)]):
        mdp = TabularMDP.random(n_states=3, n_actions=2, horizon=3, gamma=gamma, seed=seed + i)
        policy = CategoricalPolicy(mdp.n_states, mdp.n_actions, hidden, seed=seed + i, dtype=tf.float64)
        theta = rng.normal(scale=0.7, size=get_flat_params(policy).shape[0])
        set_flat_params(policy, theta)
        batch = mdp.trajectories(policy)
        # Each step's Q weighted by B P(tau): the pseudo-loss gradient is then exactly grad J.
        q_values = batch.weights(use_rtg) * np.asarray(ref.estimate_q_values(batch.rewards_per_path, gamma, use_rtg))

        def J(flat):
            set_flat_params(policy, flat)
            return mdp.expected_return(policy)
        expected = _central_differences(J, theta, h=1e-6)
        set_flat_params(policy, theta)
        cases.append({"description": description, "shapes": shapes(policy), "expected": expected,
                      "policy": policy_spec(policy, "categorical", seed + i, obs_dim=mdp.n_states,
                                            n_actions=mdp.n_actions, hidden_sizes=hidden),
                      "observations": send(batch.observations, as_tensor), "actions": send(batch.actions, as_tensor),
                      "q_values": send(q_values, as_tensor)})
    return cases


def _lq_quadrature(k, sigma, horizon, nodes=3):
    """Every 'trajectory' of a Gauss-Hermite rule on (s_0, eps_0, ..., eps_{T-1}): exact for
    the degree-4 polynomials of the LQ policy gradient. Returns observations [B, 1],
    actions [B, 1], q_values [B] (B P(tau) times the reward-to-go)."""
    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / np.sqrt(2 * np.pi)
    grids = np.meshgrid(*([x] * (horizon + 1)), indexing="ij")
    weights = np.prod(np.meshgrid(*([w] * (horizon + 1)), indexing="ij"), axis=0).reshape(-1)
    s = grids[0].reshape(-1) * lq_env.START_STD
    eps = [g.reshape(-1) for g in grids[1:]]
    n = len(weights)
    states, actions, rewards = np.zeros((n, horizon)), np.zeros((n, horizon)), np.zeros((n, horizon))
    for t in range(horizon):
        a = k * s + sigma * eps[t]
        states[:, t], actions[:, t], rewards[:, t] = s, a, -s ** 2 - a ** 2
        s = s + a
    rtg = np.cumsum(rewards[:, ::-1], axis=1)[:, ::-1]
    q_values = (n * horizon * weights[:, None] * rtg).reshape(-1)
    return states.reshape(-1, 1), actions.reshape(-1, 1), q_values


@builds("test_policy_gradient_exact_linear_quadratic")
def policy_gradient_exact_linear_quadratic(rng, seed):
    horizon = 3
    cases = []
    for k, sigma in [(-0.3, 0.8), (round(float(rng.uniform(-1.2, 0.2)), 3), round(float(rng.uniform(0.3, 1.5)), 3))]:
        observations, actions, q_values = _lq_quadrature(k, sigma, horizon)
        theta = np.array([k, np.log(sigma)])
        expected = _central_differences(
            lambda p: float(lq_env.expected_return(p[0], np.exp(p[1]), horizon=horizon)), theta, h=1e-6)
        cases.append({"k": k, "sigma": sigma, "horizon": horizon, "shapes": shapes(LinearGaussianPolicy(k, sigma)),
                      "expected": expected,
                      "policy": Policy("linear_gaussian", theta), "observations": observations, "actions": actions,
                      "q_values": q_values})
    return cases


@builds("test_policy_gradient_matches_reference")
def policy_gradient_matches_reference(rng, seed):
    cases = []
    for i, (description, kind, dtype, batch, as_tensor, q_dtype) in enumerate([
            ("categorical MLP, float32, NumPy input", "categorical", tf.float32, 16, False, np.float32),
            ("categorical MLP, float64, batch of one, tf.Tensor input", "categorical", tf.float64, 1, True, np.float64),
            ("Gaussian MLP, float32, tf.Tensor input", "gaussian", tf.float32, 12, True, np.float32),
            ("Gaussian MLP, float64, batch of one", "gaussian", tf.float64, 1, False, np.float64),
            ("categorical MLP, float32 policy with float64 observations and q_values (as the training loop "
             "sends them)", "categorical", tf.float32, 10, False, np.float64),
            ("Gaussian MLP, float32 policy with float64 actions and q_values", "gaussian", tf.float32, 8, True,
             np.float64)]):
        obs_dim = 3
        if kind == "categorical":
            policy = CategoricalPolicy(obs_dim, 3, (5,), seed=seed + i, dtype=dtype)
            actions = rng.integers(0, 3, size=batch)
            sizes = dict(obs_dim=obs_dim, n_actions=3, hidden_sizes=(5,))
        else:
            policy = GaussianPolicy(obs_dim, 2, (5,), seed=seed + i, dtype=dtype)
            actions = rng.normal(size=(batch, 2)).astype(q_dtype)
            sizes = dict(obs_dim=obs_dim, act_dim=2, hidden_sizes=(5,))
        theta = get_flat_params(policy).numpy() + rng.normal(scale=0.3, size=get_flat_params(policy).shape[0])
        set_flat_params(policy, theta)
        observations = rng.normal(size=(batch, obs_dim)).astype(q_dtype)
        q_values = (rng.normal(size=batch) * 3).astype(q_dtype)
        own = dtype.as_numpy_dtype  # the reference computes in the policy's dtype, as the contract asks
        expected = _flat(ref.policy_gradient(policy, observations.astype(own),
                                             actions if kind == "categorical" else actions.astype(own),
                                             q_values.astype(own)))
        tolerance = dict(rtol=1e-5, atol=1e-7) if dtype == tf.float64 else dict(rtol=2e-3, atol=2e-5)
        cases.append({"description": description, "shapes": shapes(policy), "expected": expected,
                      "tolerance": tolerance, "policy": policy_spec(policy, kind, seed + i, **sizes),
                      "observations": send(observations, as_tensor), "actions": send(actions, as_tensor),
                      "q_values": send(q_values, as_tensor)})
    return cases


# ----------------------------------------------------------------------------- importance sampling

@builds("test_importance_sampled_pseudo_loss")
def importance_sampled_pseudo_loss(rng, seed):
    cases = []
    for batch, dtype, as_tensor in [(8, np.float64, False), (1, np.float64, True), (6, np.float32, True)]:
        old = rng.normal(size=batch).astype(dtype) - 1.0
        new = (old + rng.normal(scale=0.3, size=batch)).astype(dtype)
        advantages = (rng.normal(size=batch) * 2).astype(dtype)
        n64, o64, a64 = (x.astype(np.float64) for x in (new, old, advantages))
        cases.append({"description": f"B={batch}, {np.dtype(dtype).name}, {'tf.Tensor' if as_tensor else 'NumPy'} "
                                     "input", "new": new, "old": old, "advantages": advantages,
                      "as_tensor": as_tensor, "expected": float(ref.importance_sampled_pseudo_loss(n64, o64, a64))})
    return cases
