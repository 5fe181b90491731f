"""Hidden tests of Part 1 (hw/policy_gradient.py), Lecture 5 part 5.

Each test calls the student's function in the sandbox on plain inputs and checks the
plain arrays that come back, here, against exact answers (finite differences of the exact
J of an enumerable tabular MDP and of the closed-form 1-D linear-quadratic problem) and
against the reference solutions on randomized inputs and edge cases.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from grader.checks import (as_array, as_list, central_differences, expect, expect_close,
                           expect_scalar, fmt)
from grader.sandbox import PolicySpec, Tensor
from hw import lq_env
from hw.policies import CategoricalPolicy, GaussianPolicy, LinearGaussianPolicy
from hw.tabular_mdp import TabularMDP
from hw.utils import get_flat_params, set_flat_params


# ----------------------------------------------------------------------------- helpers

def _rtg_from_start(rewards, gamma):
    """A common mistake: reward-to-go discounted from the path start, sum_{t'>=t} gamma^t' r_t'."""
    discounts = gamma ** np.arange(len(rewards))
    return np.cumsum((discounts * rewards)[::-1])[::-1]


def _rtg(rewards, gamma):
    out, running = np.zeros(len(rewards)), 0.0
    for t in reversed(range(len(rewards))):
        running = rewards[t] + gamma * running
        out[t] = running
    return out


def _whole(rewards, gamma):
    return np.full(len(rewards), np.sum(gamma ** np.arange(len(rewards)) * rewards))


def _reward_cases(rng):
    """(description, rewards as sent, rewards float64, gamma)."""
    cases = []
    for length, gamma, kind in [(1, 0.9, "numpy64"), (6, 0.0, "numpy64"), (6, 1.0, "numpy32"),
                                (9, 0.95, "tensor64"), (5, 0.5, "tensor32"), (2, 0.99, "list")]:
        rewards = rng.normal(size=length).round(3)
        if kind == "numpy64":
            sent = rewards
        elif kind == "numpy32":
            sent = rewards.astype(np.float32)
        elif kind == "tensor64":
            sent = Tensor(rewards)
        elif kind == "tensor32":
            sent = Tensor(rewards.astype(np.float32))
        else:
            sent = rewards.astype(np.float32)  # float32: the reference sees the same rounding
        value = np.asarray(sent.array if isinstance(sent, Tensor) else sent, dtype=np.float64)
        cases.append((f"rewards={fmt(value)} ({kind}), gamma={gamma}", sent, value, gamma))
    return cases


def _tol(values):
    return dict(rtol=1e-4, atol=1e-5 * max(1.0, float(np.max(np.abs(values))) if np.size(values) else 1.0))


def _policy_spec(policy, kind, **sizes) -> PolicySpec:
    dtype = policy.trainable_variables[0].dtype.name
    return PolicySpec(kind, get_flat_params(policy).numpy().astype(np.float64), dtype=dtype, **sizes)


def _flat(arrays):
    return np.concatenate([np.asarray(a, dtype=np.float64).reshape(-1) for a in arrays])


def _log_softmax(logits):
    logits = logits - logits.max(axis=1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))


# ----------------------------------------------------------------------------- Q-values

def test_discounted_return(pg, ref_pg, rng):
    """discounted_return: the whole discounted return at every step (edge cases, dtypes)"""
    for description, sent, rewards, gamma in _reward_cases(rng):
        expected = np.asarray(ref_pg.discounted_return(rewards, gamma), np.float64)
        got = pg.discounted_return(sent, gamma)
        expect_close(got, expected, f"discounted_return({description})", **_tol(expected), mistakes=[
            ("the reward-to-go (this function gives every step the whole return)", _rtg(rewards, gamma)),
            ("no discount (gamma ignored)", _whole(rewards, 1.0)),
            ("discounting by gamma^(t+1) instead of gamma^t", gamma * expected),
        ])


def test_reward_to_go(pg, ref_pg, rng):
    """reward_to_go: sum_{t'>=t} gamma^(t'-t) r_t' (length-1 paths, gamma 0 and 1, dtypes)"""
    for description, sent, rewards, gamma in _reward_cases(rng):
        expected = np.asarray(ref_pg.reward_to_go(rewards, gamma), np.float64)
        got = pg.reward_to_go(sent, gamma)
        expect_close(got, expected, f"reward_to_go({description})", **_tol(expected), mistakes=[
            ("discounting from the path start (gamma^t' instead of gamma^(t'-t))", _rtg_from_start(rewards, gamma)),
            ("the whole return at every step (no causality)", _whole(rewards, gamma)),
            ("no discount (gamma ignored)", _rtg(rewards, 1.0)),
            ("a forward cumulative sum (the rewards before t, not after)",
             np.array([sum(gamma ** (t - u) * rewards[u] for u in range(t + 1)) for t in range(len(rewards))])),
        ])


def test_estimate_q_values(pg, ref_pg, rng):
    """estimate_q_values: per-path Q-values concatenated in path order (both estimators)"""
    lengths_cases = [[3, 1, 4], [1], [5, 5], [2, 1, 1, 6]]
    for lengths in lengths_cases:
        paths = [rng.normal(size=n).round(3) for n in lengths]
        for gamma in (0.9, 1.0):
            for use_rtg in (True, False):
                expected = np.asarray(ref_pg.estimate_q_values(paths, gamma, use_rtg), np.float64)
                got = pg.estimate_q_values(paths, gamma, use_rtg)
                joined = np.concatenate(paths)
                estimator = _rtg if use_rtg else _whole
                other = _whole if use_rtg else _rtg
                expect_close(got, expected, f"estimate_q_values(paths of lengths {lengths}, gamma={gamma}, "
                             f"use_reward_to_go={use_rtg})", **_tol(expected), mistakes=[
                                 ("the other estimator (use_reward_to_go read the wrong way round)",
                                  np.concatenate([other(p, gamma) for p in paths])),
                                 ("one long path (the paths concatenated before computing Q, so the sums run "
                                  "across path boundaries)", estimator(joined, gamma)),
                             ])


# ----------------------------------------------------------------------------- pseudo-losses

def _discrete_cases(rng):
    cases = []
    for batch, actions_n, dtype, as_tensor in [(7, 3, np.float64, False), (1, 4, np.float64, True),
                                               (12, 2, np.float32, True), (5, 5, np.float32, False)]:
        logits = rng.normal(size=(batch, actions_n)).astype(dtype)
        actions = rng.integers(0, actions_n, size=batch)
        q = rng.normal(size=batch).astype(dtype) * 2 + 0.5
        cases.append((f"B={batch}, A={actions_n}, {np.dtype(dtype).name}, {'tf.Tensor' if as_tensor else 'NumPy'} input",
                      logits, actions, q, as_tensor))
    return cases


def _send(array, as_tensor):
    return Tensor(array) if as_tensor else array


def _discrete_mistakes(logits, actions, q):
    logp = _log_softmax(np.asarray(logits, np.float64))
    nll = -logp[np.arange(len(actions)), actions]
    q = np.asarray(q, np.float64)
    return [
        ("q_values of shape [B, 1] broadcast against [B] (a [B, B] product)", np.mean(nll) * np.mean(q)),
        ("probabilities instead of log-probabilities", np.mean(-np.exp(-nll) * q)),
        ("the sum over the batch instead of the mean", np.sum(nll * q)),
    ]


def test_discrete_pseudo_loss_value(pg, ref_pg, rng):
    """discrete_pseudo_loss: mean over the batch of -log pi(a|s) q (dtypes, batch of one)"""
    for description, logits, actions, q, as_tensor in _discrete_cases(rng):
        expected = float(ref_pg.discrete_pseudo_loss(logits.astype(np.float64), actions, q.astype(np.float64)))
        got = pg.discrete_pseudo_loss(_send(logits, as_tensor), _send(actions, as_tensor), _send(q, as_tensor))
        rtol = 1e-4 if logits.dtype == np.float64 else 2e-4
        expect_scalar(got, expected, f"discrete_pseudo_loss ({description})", rtol=rtol, atol=1e-5,
                      mistakes=_discrete_mistakes(logits, actions, q), batch_size=len(actions))


def test_discrete_pseudo_loss_gradient(pg, ref_pg, rng):
    """discrete_pseudo_loss: its gradient with respect to the logits (autodiff through TF ops)"""
    for description, logits, actions, q, as_tensor in _discrete_cases(rng):
        logits64 = tf.Variable(logits.astype(np.float64))
        with tf.GradientTape() as tape:
            loss = ref_pg.discrete_pseudo_loss(logits64, actions, q.astype(np.float64))
        expected = tape.gradient(loss, logits64).numpy()
        result = pg.discrete_pseudo_loss(Tensor(logits), _send(actions, as_tensor), _send(q, as_tensor), grad_wrt=[0])
        expect(result["grads"][0] is not None,
               f"discrete_pseudo_loss ({description}): no gradient reaches the logits. Compute the loss with "
               "TensorFlow operations on the logits (no NumPy conversion of the logits, no .numpy()).")
        softmax = np.exp(_log_softmax(logits.astype(np.float64)))
        onehot = np.eye(logits.shape[1])[actions]
        expect_close(result["grads"][0], expected, f"d loss / d logits ({description})", rtol=2e-4, atol=1e-6,
                     batch_size=len(actions), mistakes=[
                         ("the sum over the batch instead of the mean", expected * len(actions)),
                         ("the gradient of +log pi (a flipped sign)", -expected),
                         ("softmax minus one-hot without the Q weights", (softmax - onehot) / len(actions)),
                         ("q_values of shape [B, 1] broadcast against [B] (a [B, B] product)",
                          (softmax - onehot) / len(actions) * float(np.mean(q.astype(np.float64)))),
                     ])


def _gaussian_cases(rng):
    cases = []
    for batch, dim, dtype, as_tensor in [(6, 2, np.float64, False), (1, 3, np.float64, True),
                                         (10, 1, np.float32, True), (8, 4, np.float32, False)]:
        means = rng.normal(size=(batch, dim)).astype(dtype)
        log_std = rng.normal(scale=0.5, size=dim).astype(dtype)
        actions = (means + np.exp(log_std) * rng.normal(size=(batch, dim))).astype(dtype)
        q = (rng.normal(size=batch) * 2 + 0.5).astype(dtype)
        cases.append((f"B={batch}, D={dim}, {np.dtype(dtype).name}, {'tf.Tensor' if as_tensor else 'NumPy'} input",
                      means, log_std, actions, q, as_tensor))
    return cases


def _gaussian_mistakes(means, log_std, actions, q):
    means, log_std, actions, q = (np.asarray(x, np.float64) for x in (means, log_std, actions, q))
    z = (actions - means) / np.exp(log_std)
    dim = means.shape[1]
    square = 0.5 * np.sum(z ** 2, axis=1)
    const = 0.5 * dim * np.log(2 * np.pi)
    nll = square + np.sum(log_std) + const
    return [
        ("a squared-error loss without the log-sigma term", np.mean((square + const) * q)),
        ("a squared-error loss without the log-sigma term", np.mean(square * q)),
        ("the log-density without its constant D/2 log(2 pi)", np.mean((square + np.sum(log_std)) * q)),
        ("a mean over the action dimensions instead of a sum", np.mean(nll / dim * q)),
        ("exp(log_std) taken as the variance instead of the standard deviation",
         np.mean((0.5 * np.sum((actions - means) ** 2 / np.exp(log_std), axis=1) + 0.5 * np.sum(log_std) + const) * q)),
        ("q_values of shape [B, 1] broadcast against [B] (a [B, B] product)", np.mean(nll) * np.mean(q)),
        ("the sum over the batch instead of the mean", np.sum(nll * q)),
    ]


def test_gaussian_pseudo_loss_value(pg, ref_pg, rng):
    """gaussian_pseudo_loss: the full Gaussian negative log-density times q, batch mean"""
    for description, means, log_std, actions, q, as_tensor in _gaussian_cases(rng):
        expected = float(ref_pg.gaussian_pseudo_loss(*(x.astype(np.float64) for x in (means, log_std, actions, q))))
        got = pg.gaussian_pseudo_loss(*(_send(x, as_tensor) for x in (means, log_std, actions, q)))
        rtol = 1e-4 if means.dtype == np.float64 else 3e-4
        expect_scalar(got, expected, f"gaussian_pseudo_loss ({description})", rtol=rtol, atol=1e-5,
                      mistakes=_gaussian_mistakes(means, log_std, actions, q), batch_size=len(q))


def test_gaussian_pseudo_loss_gradient(pg, ref_pg, rng):
    """gaussian_pseudo_loss: its gradients with respect to the means and log_std"""
    for description, means, log_std, actions, q, as_tensor in _gaussian_cases(rng):
        m64, s64 = tf.Variable(means.astype(np.float64)), tf.Variable(log_std.astype(np.float64))
        with tf.GradientTape() as tape:
            loss = ref_pg.gaussian_pseudo_loss(m64, s64, actions.astype(np.float64), q.astype(np.float64))
        d_means, d_log_std = (g.numpy() for g in tape.gradient(loss, [m64, s64]))
        result = pg.gaussian_pseudo_loss(Tensor(means), Tensor(log_std), _send(actions, as_tensor),
                                         _send(q, as_tensor), grad_wrt=[0, 1])
        for name, got, expected in [("means", result["grads"][0], d_means), ("log_std", result["grads"][1], d_log_std)]:
            expect(got is not None, f"gaussian_pseudo_loss ({description}): no gradient reaches {name}. Compute the "
                                    "loss with TensorFlow operations (no NumPy conversion, no .numpy()).")
            mistakes = []
            if name == "log_std":
                # without the sum of log sigma, d/dlog_std loses mean(q) per dimension
                mistakes.append(("a squared-error loss without the log-sigma term",
                                 expected - np.mean(q.astype(np.float64))))
            expect_close(got, expected, f"d loss / d {name} ({description})", rtol=3e-4, atol=1e-5,
                         batch_size=len(q), mistakes=mistakes)


def _expect_no_gradient(grad, function, name):
    if grad is None:
        return
    grad = as_array(grad, f"d loss / d {name}")
    expect(np.allclose(grad, 0.0), f"{function}: a gradient flows into {name} ({fmt(grad)}); hold it constant "
                                   "with tf.stop_gradient (or compute it in NumPy), as the SPEC requires.")


def test_pseudo_losses_hold_q_values_constant(pg, rng):
    """Pseudo-losses: no gradient flows into q_values (they are numbers, not functions of theta)"""
    logits = rng.normal(size=(5, 3))
    actions = rng.integers(0, 3, size=5)
    q = rng.normal(size=5)
    result = pg.discrete_pseudo_loss(Tensor(logits), actions, Tensor(q), grad_wrt=[2])
    _expect_no_gradient(result["grads"][0], "discrete_pseudo_loss", "q_values")
    means, log_std = rng.normal(size=(5, 2)), rng.normal(size=2) * 0.3
    actions = rng.normal(size=(5, 2))
    result = pg.gaussian_pseudo_loss(Tensor(means), Tensor(log_std), Tensor(actions), Tensor(q), grad_wrt=[3])
    _expect_no_gradient(result["grads"][0], "gaussian_pseudo_loss", "q_values")


# ----------------------------------------------------------------------------- policy gradient

def _check_gradient(got, policy, expected_flat, what, *, rtol=1e-5, atol=1e-7, hint=""):
    variables = policy.trainable_variables
    grads = as_list(got, what, len(variables))
    for i, (g, v) in enumerate(zip(grads, variables)):
        expect(g.shape == tuple(v.shape), f"{what}: entry {i} has shape {g.shape}, its variable "
                                          f"{v.name} has shape {tuple(v.shape)}")
    expect_close(_flat(grads), expected_flat, what, rtol=rtol, atol=atol, hint=hint)


def test_policy_gradient_exact_tabular(pg, ref_pg, seed, rng):
    """policy_gradient: equals the finite differences of the exact J of a random tabular MDP"""
    cases = [
        ("linear-softmax policy, reward-to-go, gamma=0.9", (), 0.9, True),
        ("one tanh hidden layer, whole return, gamma=1", (4,), 1.0, False),
        ("linear-softmax policy, reward-to-go, gamma=1, tf.Tensor input", (), 1.0, True),
    ]
    for i, (description, hidden, gamma, use_rtg) in enumerate(cases):
        mdp = TabularMDP.random(n_states=3, n_actions=2, horizon=3, gamma=gamma, seed=seed + i)
        policy = CategoricalPolicy(mdp.n_states, mdp.n_actions, hidden, seed=seed + i, dtype=tf.float64)
        theta = rng.normal(scale=0.7, size=get_flat_params(policy).shape[0])
        set_flat_params(policy, theta)
        batch = mdp.trajectories(policy)
        q_values = batch.weights(use_rtg) * np.asarray(ref_pg.estimate_q_values(batch.rewards_per_path, gamma, use_rtg))

        def J(flat):
            set_flat_params(policy, flat)
            return mdp.expected_return(policy)
        expected = central_differences(J, theta, h=1e-6)
        set_flat_params(policy, theta)
        as_tensor = "tf.Tensor" in description
        got = pg.policy_gradient(_policy_spec(policy, "categorical", obs_dim=mdp.n_states, n_actions=mdp.n_actions,
                                              hidden_sizes=hidden),
                                 _send(batch.observations, as_tensor), _send(batch.actions, as_tensor),
                                 _send(q_values, as_tensor))
        _check_gradient(got, policy, expected, f"policy_gradient on the enumerated trajectories of a tabular MDP "
                        f"({description}) vs finite differences of the exact J", rtol=1e-5, atol=1e-6,
                        hint="(grad J is the ascent direction: minus the gradient of the pseudo-loss.)")


def _lq_quadrature(k, sigma, horizon, nodes=3):
    """Every 'trajectory' of a Gauss-Hermite rule on (s_0, eps_0, ..., eps_{T-1}): exact for
    the degree-4 polynomials of the LQ policy gradient. Returns observations [B, 1],
    actions [B, 1], q_values [B] (B P(tau) times the reward-to-go)."""
    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / np.sqrt(2 * np.pi)
    grids = np.meshgrid(*([x] * (horizon + 1)), indexing="ij")
    weights = np.prod(np.meshgrid(*([w] * (horizon + 1)), indexing="ij"), axis=0).reshape(-1)
    xi = grids[0].reshape(-1) * lq_env.START_STD
    eps = [g.reshape(-1) for g in grids[1:]]
    n = len(weights)
    states, actions, rewards = np.zeros((n, horizon)), np.zeros((n, horizon)), np.zeros((n, horizon))
    s = xi
    for t in range(horizon):
        a = k * s + sigma * eps[t]
        states[:, t], actions[:, t], rewards[:, t] = s, a, -s ** 2 - a ** 2
        s = s + a
    rtg = np.cumsum(rewards[:, ::-1], axis=1)[:, ::-1]
    batch = n * horizon
    q_values = (batch * weights[:, None] * rtg).reshape(-1)
    return states.reshape(-1, 1), actions.reshape(-1, 1), q_values


def test_policy_gradient_exact_linear_quadratic(pg, rng):
    """policy_gradient: the 1-D LQ example's exact grad J (closed form, Gauss-Hermite batch)"""
    horizon = 3
    for k, sigma in [(-0.3, 0.8), (round(float(rng.uniform(-1.2, 0.2)), 3), round(float(rng.uniform(0.3, 1.5)), 3))]:
        observations, actions, q_values = _lq_quadrature(k, sigma, horizon)
        policy = LinearGaussianPolicy(k, sigma)
        theta = np.array([k, np.log(sigma)])
        expected = central_differences(
            lambda p: float(lq_env.expected_return(p[0], np.exp(p[1]), horizon=horizon)), theta, h=1e-6)
        got = pg.policy_gradient(PolicySpec("linear_gaussian", theta), observations, actions, q_values)
        _check_gradient(got, policy, expected, f"policy_gradient for a ~ N(k s, sigma^2), k={k}, sigma={sigma}, "
                        f"T={horizon}, vs finite differences of the closed-form J in (k, log sigma)",
                        rtol=1e-5, atol=1e-6,
                        hint="(The Gaussian log-density needs its log-sigma term for the sigma component.)")


def test_policy_gradient_matches_reference(pg, ref_pg, seed, rng):
    """policy_gradient: agrees with the reference for MLP policies (float32/64, batch of one)"""
    cases = [
        ("categorical MLP, float32, NumPy input", "categorical", tf.float32, 16, False),
        ("categorical MLP, float64, batch of one, tf.Tensor input", "categorical", tf.float64, 1, True),
        ("Gaussian MLP, float32, tf.Tensor input", "gaussian", tf.float32, 12, True),
        ("Gaussian MLP, float64, batch of one", "gaussian", tf.float64, 1, False),
    ]
    for i, (description, kind, dtype, batch, as_tensor) in enumerate(cases):
        obs_dim = 3
        if kind == "categorical":
            policy = CategoricalPolicy(obs_dim, 3, (5,), seed=seed + i, dtype=dtype)
            actions = rng.integers(0, 3, size=batch)
            sizes = dict(obs_dim=obs_dim, n_actions=3, hidden_sizes=(5,))
        else:
            policy = GaussianPolicy(obs_dim, 2, (5,), seed=seed + i, dtype=dtype)
            actions = rng.normal(size=(batch, 2)).astype(dtype.as_numpy_dtype)
            sizes = dict(obs_dim=obs_dim, act_dim=2, hidden_sizes=(5,))
        theta = get_flat_params(policy).numpy() + rng.normal(scale=0.3, size=get_flat_params(policy).shape[0])
        set_flat_params(policy, theta)
        observations = rng.normal(size=(batch, obs_dim)).astype(dtype.as_numpy_dtype)
        q_values = (rng.normal(size=batch) * 3).astype(dtype.as_numpy_dtype)
        expected = _flat(ref_pg.policy_gradient(policy, observations, actions, q_values))
        got = pg.policy_gradient(_policy_spec(policy, kind, **sizes), _send(observations, as_tensor),
                                 _send(actions, as_tensor), _send(q_values, as_tensor))
        tolerance = dict(rtol=1e-5, atol=1e-7) if dtype == tf.float64 else dict(rtol=2e-3, atol=2e-5)
        _check_gradient(got, policy, expected, f"policy_gradient ({description})", **tolerance)


# ----------------------------------------------------------------------------- importance sampling

def test_importance_sampled_pseudo_loss(pg, ref_pg, rng):
    """importance_sampled_pseudo_loss: value, and gradient at theta_old = pseudo-loss gradient"""
    for batch, dtype, as_tensor in [(8, np.float64, False), (1, np.float64, True), (6, np.float32, True)]:
        old = rng.normal(size=batch).astype(dtype) - 1.0
        new = (old + rng.normal(scale=0.3, size=batch)).astype(dtype)
        adv = (rng.normal(size=batch) * 2).astype(dtype)
        description = f"B={batch}, {np.dtype(dtype).name}, {'tf.Tensor' if as_tensor else 'NumPy'} input"
        n64, o64, a64 = (x.astype(np.float64) for x in (new, old, adv))
        expected = float(ref_pg.importance_sampled_pseudo_loss(n64, o64, a64))
        ratio = np.exp(n64 - o64)
        got = pg.importance_sampled_pseudo_loss(_send(new, as_tensor), _send(old, as_tensor), _send(adv, as_tensor))
        rtol = 1e-4 if dtype == np.float64 else 3e-4
        expect_scalar(got, expected, f"importance_sampled_pseudo_loss ({description})", rtol=rtol, atol=1e-6,
                      batch_size=batch, mistakes=[
                          ("the inverted ratio pi_old / pi_theta", -np.mean(np.exp(o64 - n64) * a64)),
                          ("the log-ratio instead of the ratio", -np.mean((n64 - o64) * a64)),
                          ("the sum over the batch instead of the mean", -np.sum(ratio * a64)),
                      ])
        # At theta = theta_old the gradient with respect to log pi is -A / B, as the pseudo-loss's.
        result = pg.importance_sampled_pseudo_loss(Tensor(o64), Tensor(o64), Tensor(a64), grad_wrt=[0])
        expect(result["grads"][0] is not None,
               f"importance_sampled_pseudo_loss ({description}): no gradient reaches log_probs; use TensorFlow "
               "operations on log_probs.")
        expect_close(result["grads"][0], -a64 / batch, f"d loss / d log_probs at theta = theta_old ({description})",
                     rtol=1e-5, atol=1e-7, batch_size=batch)
