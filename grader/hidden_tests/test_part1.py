"""Hidden tests of Part 1 (hw/policy_gradient.py), Lecture 5 part 5.

Each test takes its cases from the hidden instance (inputs and reference answers computed
by the trusted pre-pass, grader/instances/part1.py), calls the student's function in the
sandbox, and checks the plain arrays that come back, here, in NumPy: against the exact
gradient of J (finite differences of an enumerable tabular MDP, of the closed-form 1-D
linear-quadratic problem) and against the reference solutions, naming common mistakes.
"""
from __future__ import annotations

import numpy as np

from grader.checks import MIXED_DTYPES, as_array, as_list, expect, expect_close, expect_scalar, in_case
from grader.wire import Tensor


def _rtg(rewards, gamma):
    out, running = np.zeros(len(rewards)), 0.0
    for t in reversed(range(len(rewards))):
        running = rewards[t] + gamma * running
        out[t] = running
    return out


def _rtg_from_start(rewards, gamma):
    """Reward-to-go discounted from the path's start: sum_{t'>=t} gamma^t' r_t'."""
    return np.cumsum((gamma ** np.arange(len(rewards)) * rewards)[::-1])[::-1]


def _rtg_from_end(rewards, gamma):
    """Reward-to-go discounted from the path's end: sum_{t'>=t} gamma^(T-1-t') r_t'."""
    return np.cumsum((gamma ** np.arange(len(rewards))[::-1] * rewards)[::-1])[::-1]


def _whole(rewards, gamma):
    return np.full(len(rewards), np.sum(gamma ** np.arange(len(rewards)) * rewards))


def _tol(values):
    return dict(rtol=1e-4, atol=1e-5 * max(1.0, float(np.max(np.abs(values))) if np.size(values) else 1.0))


def _log_softmax(logits):
    logits = logits - logits.max(axis=1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))


def _flat(arrays):
    return np.concatenate([np.asarray(a, dtype=np.float64).reshape(-1) for a in arrays])


def _send(array, as_tensor):
    return Tensor(array) if as_tensor else array


# ----------------------------------------------------------------------------- Q-values

def test_discounted_return(pg, cases):
    """discounted_return: the whole discounted return at every step (edge cases, dtypes, long paths)"""
    for case in cases:
        rewards, gamma = case["rewards"], case["gamma"]
        got = pg.discounted_return(case["sent"], gamma)
        expect_close(got, case["expected"], f"discounted_return({case['description']})", **_tol(case["expected"]),
                     mistakes=[
                         ("the reward-to-go (this function gives every step the whole return)", _rtg(rewards, gamma)),
                         ("no discount (gamma ignored)", _whole(rewards, 1.0)),
                         ("discounting by gamma^(t+1) instead of gamma^t", gamma * case["expected"]),
                     ])


def test_reward_to_go(pg, cases):
    """reward_to_go: sum_{t'>=t} gamma^(t'-t) r_t' (length-1 paths, gamma 0 and 1, dtypes, long paths)"""
    for case in cases:
        rewards, gamma = case["rewards"], case["gamma"]
        got = pg.reward_to_go(case["sent"], gamma)
        hint = ""
        if not np.all(np.isfinite(as_array(got, "reward_to_go"))):
            hint = ("(dividing by gamma^t divides by zero when gamma = 0 and overflows on long paths: accumulate "
                    "backwards, Q_t = r_t + gamma Q_{t+1}.)")
        expect_close(got, case["expected"], f"reward_to_go({case['description']})", **_tol(case["expected"]),
                     hint=hint, mistakes=[
                         ("discounting from the path start (gamma^t' instead of gamma^(t'-t))",
                          _rtg_from_start(rewards, gamma)),
                         ("discounting from the path's end (gamma^(T-1-t') instead of gamma^(t'-t))",
                          _rtg_from_end(rewards, gamma)),
                         ("the whole return at every step (no causality)", _whole(rewards, gamma)),
                         ("no discount (gamma ignored)", _rtg(rewards, 1.0)),
                         ("a forward cumulative sum (the rewards before t, not after)",
                          np.array([np.sum(gamma ** (t - np.arange(t + 1)) * rewards[:t + 1])
                                    for t in range(len(rewards))]) if len(rewards) < 100 else np.zeros(0)),
                     ])


def test_estimate_q_values(pg, cases):
    """estimate_q_values: per-path Q-values concatenated in path order (both estimators)"""
    for case in cases:
        paths, gamma, use_rtg = case["paths"], case["gamma"], case["use_reward_to_go"]
        got = pg.estimate_q_values(paths, gamma, use_rtg)
        estimator, other = (_rtg, _whole) if use_rtg else (_whole, _rtg)
        expect_close(got, case["expected"], f"estimate_q_values(paths of lengths {case['lengths']}, gamma={gamma}, "
                     f"use_reward_to_go={use_rtg})", **_tol(case["expected"]), mistakes=[
                         ("the other estimator (use_reward_to_go read the wrong way round)",
                          np.concatenate([other(p, gamma) for p in paths])),
                         ("one long path (the paths concatenated before computing Q, so the sums run "
                          "across path boundaries)", estimator(np.concatenate(paths), gamma)),
                     ])


# ----------------------------------------------------------------------------- pseudo-losses

def _discrete_mistakes(logits, actions, q):
    logp = _log_softmax(np.asarray(logits, np.float64))
    nll = -logp[np.arange(len(actions)), actions]
    q = np.asarray(q, np.float64)
    return [
        ("q_values of shape [B, 1] broadcast against [B] (a [B, B] product)", np.mean(nll) * np.mean(q)),
        ("tf.gather(log_probs, actions, axis=1) without batch_dims=1 (a [B, B] table of every row's "
         "log-probabilities at every action)", np.mean(-logp[:, actions] * q)),
        ("tf.gather(log_probs, actions, axis=1) without batch_dims=1 (a [B, B] table of every row's "
         "log-probabilities at every action)", np.mean(-logp[:, actions] * q[:, None])),
        ("probabilities instead of log-probabilities", np.mean(-np.exp(-nll) * q)),
        ("the sum over the batch instead of the mean", np.sum(nll * q)),
    ]


def test_discrete_pseudo_loss_value(pg, cases):
    """discrete_pseudo_loss: mean over the batch of -log pi(a|s) q (dtypes, batch of one, logit gaps of 100+)"""
    for case in cases:
        logits, actions, q, as_tensor = case["logits"], case["actions"], case["q"], case["as_tensor"]
        with in_case(f"discrete_pseudo_loss ({case['description']})", MIXED_DTYPES if logits.dtype != q.dtype else ""):
            got = pg.discrete_pseudo_loss(_send(logits, as_tensor), _send(actions, as_tensor), _send(q, as_tensor))
        rtol = 1e-4 if logits.dtype == np.float64 else 2e-4
        hint = ""
        if np.ptp(logits) > 50:
            hint = ("(With logit gaps this large, softmax underflows to 0 in float32 and log(0) = -inf: take "
                    "log-probabilities with tf.nn.log_softmax or the cross-entropy, not log(softmax).)")
        expect_scalar(got, case["expected"], f"discrete_pseudo_loss ({case['description']})", rtol=rtol, atol=1e-5,
                      mistakes=_discrete_mistakes(logits, actions, q), batch_size=len(actions), hint=hint)


def test_discrete_pseudo_loss_gradient(pg, cases):
    """discrete_pseudo_loss: its gradient with respect to the logits (autodiff through TF ops)"""
    for case in cases:
        logits, actions, q, as_tensor = case["logits"], case["actions"], case["q"], case["as_tensor"]
        expected = case["expected"]
        with in_case(f"discrete_pseudo_loss ({case['description']})", MIXED_DTYPES if logits.dtype != q.dtype else ""):
            result = pg.discrete_pseudo_loss(Tensor(logits), _send(actions, as_tensor), _send(q, as_tensor),
                                             grad_wrt=[0])
        expect(result["grads"][0] is not None,
               f"discrete_pseudo_loss ({case['description']}): no gradient reaches the logits. Compute the loss "
               "with TensorFlow operations on the logits (no NumPy conversion of the logits, no .numpy()).")
        softmax = np.exp(_log_softmax(logits.astype(np.float64)))
        onehot = np.eye(logits.shape[1])[actions]
        expect_close(result["grads"][0], expected, f"d loss / d logits ({case['description']})", rtol=2e-4,
                     atol=1e-6, batch_size=len(actions), mistakes=[
                         ("the sum over the batch instead of the mean", expected * len(actions)),
                         ("the gradient of +log pi (a flipped sign)", -expected),
                         ("softmax minus one-hot without the Q weights", (softmax - onehot) / len(actions)),
                         ("q_values of shape [B, 1] broadcast against [B] (a [B, B] product)",
                          (softmax - onehot) / len(actions) * float(np.mean(q.astype(np.float64)))),
                     ])


def _gaussian_mistakes(means, log_std, actions, q):
    means, log_std, actions, q = (np.asarray(x, np.float64) for x in (means, log_std, actions, q))
    z = (actions - means) / np.exp(log_std)
    dim = means.shape[1]
    square = 0.5 * np.sum(z ** 2, axis=1)
    const = 0.5 * dim * np.log(2 * np.pi)
    nll = square + np.sum(log_std) + const
    as_variance = 0.5 * np.sum((actions - means) ** 2 / np.exp(log_std), axis=1) + 0.5 * np.sum(log_std) + const
    variance_as_std = 0.5 * np.sum((actions - means) ** 2 / np.exp(4 * log_std), axis=1) + 2 * np.sum(log_std) + const
    return [
        ("a squared-error loss without the log-sigma term", np.mean((square + const) * q)),
        ("a squared-error loss without the log-sigma term", np.mean(square * q)),
        ("the log-density without its constant D/2 log(2 pi)", np.mean((square + np.sum(log_std)) * q)),
        ("a mean over the action dimensions instead of a sum", np.mean(nll / dim * q)),
        ("exp(log_std) taken as the variance instead of the standard deviation", np.mean(as_variance * q)),
        ("the variance exp(2 log_std) where the standard deviation belongs (e.g. scale=exp(log_std)**2)",
         np.mean(variance_as_std * q)),
        ("q_values of shape [B, 1] broadcast against [B] (a [B, B] product)", np.mean(nll) * np.mean(q)),
        ("the sum over the batch instead of the mean", np.sum(nll * q)),
    ]


def test_gaussian_pseudo_loss_value(pg, cases):
    """gaussian_pseudo_loss: the full Gaussian negative log-density times q, batch mean"""
    for case in cases:
        inputs = [case[k] for k in ("means", "log_std", "actions", "q")]
        mixed = case["means"].dtype != case["q"].dtype
        with in_case(f"gaussian_pseudo_loss ({case['description']})", MIXED_DTYPES if mixed else ""):
            got = pg.gaussian_pseudo_loss(*(_send(x, case["as_tensor"]) for x in inputs))
        rtol = 1e-4 if case["means"].dtype == np.float64 else 3e-4
        expect_scalar(got, case["expected"], f"gaussian_pseudo_loss ({case['description']})", rtol=rtol, atol=1e-5,
                      mistakes=_gaussian_mistakes(*inputs), batch_size=len(case["q"]))


def test_gaussian_pseudo_loss_gradient(pg, cases):
    """gaussian_pseudo_loss: its gradients with respect to the means and log_std"""
    for case in cases:
        as_tensor = case["as_tensor"]
        mixed = case["means"].dtype != case["q"].dtype
        with in_case(f"gaussian_pseudo_loss ({case['description']})", MIXED_DTYPES if mixed else ""):
            result = pg.gaussian_pseudo_loss(Tensor(case["means"]), Tensor(case["log_std"]),
                                             _send(case["actions"], as_tensor), _send(case["q"], as_tensor),
                                             grad_wrt=[0, 1])
        for name, got, expected in [("means", result["grads"][0], case["d_means"]),
                                    ("log_std", result["grads"][1], case["d_log_std"])]:
            expect(got is not None, f"gaussian_pseudo_loss ({case['description']}): no gradient reaches {name}. "
                                    "Compute the loss with TensorFlow operations (no NumPy conversion, no .numpy()).")
            mistakes = []
            if name == "log_std":
                # without the sum of log sigma, d/dlog_std loses mean(q) per dimension
                mistakes.append(("a squared-error loss without the log-sigma term",
                                 expected - np.mean(case["q"].astype(np.float64))))
            expect_close(got, expected, f"d loss / d {name} ({case['description']})", rtol=3e-4, atol=1e-5,
                         batch_size=len(case["q"]), mistakes=mistakes)


# ----------------------------------------------------------------------------- policy gradient

def _check_gradient(got, shapes, expected_flat, what, *, rtol, atol, hint=""):
    grads = as_list(got, what, len(shapes))
    for i, (g, shape) in enumerate(zip(grads, shapes)):
        expect(g.shape == tuple(shape), f"{what}: entry {i} has shape {g.shape}, its variable has shape "
                                        f"{tuple(shape)}")
    expect_close(_flat(grads), expected_flat, what, rtol=rtol, atol=atol, hint=hint)


def test_policy_gradient_exact_tabular(pg, cases):
    """policy_gradient: equals the finite differences of the exact J of a random tabular MDP"""
    for case in cases:
        got = pg.policy_gradient(case["policy"], case["observations"], case["actions"], case["q_values"])
        _check_gradient(got, case["shapes"], case["expected"], "policy_gradient on the enumerated trajectories of a "
                        f"tabular MDP ({case['description']}) vs finite differences of the exact J",
                        rtol=1e-5, atol=1e-6,
                        hint="(grad J is the ascent direction: minus the gradient of the pseudo-loss.)")


def test_policy_gradient_exact_linear_quadratic(pg, cases):
    """policy_gradient: the 1-D LQ example's exact grad J (closed form, Gauss-Hermite batch)"""
    for case in cases:
        got = pg.policy_gradient(case["policy"], case["observations"], case["actions"], case["q_values"])
        _check_gradient(got, case["shapes"], case["expected"],
                        f"policy_gradient for a ~ N(k s, sigma^2), k={case['k']}, sigma={case['sigma']}, "
                        f"T={case['horizon']}, vs finite differences of the closed-form J in theta = (k, log sigma)",
                        rtol=1e-5, atol=1e-6,
                        hint="(The Gaussian log-density needs its log-sigma term for the sigma component.)")


def test_policy_gradient_matches_reference(pg, cases):
    """policy_gradient: agrees with the reference for MLP policies (float32/64, mixed dtypes, batch of one)"""
    for case in cases:
        with in_case(f"policy_gradient ({case['description']})",
                     MIXED_DTYPES if "float32 policy with float64" in case["description"] else ""):
            got = pg.policy_gradient(case["policy"], case["observations"], case["actions"], case["q_values"])
        _check_gradient(got, case["shapes"], case["expected"], f"policy_gradient ({case['description']})",
                        **case["tolerance"])


# ----------------------------------------------------------------------------- importance sampling

def test_importance_sampled_pseudo_loss(pg, cases):
    """importance_sampled_pseudo_loss: value, and gradient at theta_old = pseudo-loss gradient"""
    for case in cases:
        new, old, adv, as_tensor = case["new"], case["old"], case["advantages"], case["as_tensor"]
        n64, o64, a64 = (x.astype(np.float64) for x in (new, old, adv))
        batch = len(adv)
        got = pg.importance_sampled_pseudo_loss(_send(new, as_tensor), _send(old, as_tensor), _send(adv, as_tensor))
        rtol = 1e-4 if new.dtype == np.float64 else 3e-4
        expect_scalar(got, case["expected"], f"importance_sampled_pseudo_loss ({case['description']})", rtol=rtol,
                      atol=1e-6, batch_size=batch, mistakes=[
                          ("the inverted ratio pi_old / pi_theta", -np.mean(np.exp(o64 - n64) * a64)),
                          ("the log-ratio instead of the ratio", -np.mean((n64 - o64) * a64)),
                          ("the sum over the batch instead of the mean", -np.sum(np.exp(n64 - o64) * a64)),
                      ])
        # At theta = theta_old the gradient with respect to log pi is -A / B, as the pseudo-loss's.
        result = pg.importance_sampled_pseudo_loss(Tensor(o64), Tensor(o64), Tensor(a64), grad_wrt=[0])
        expect(result["grads"][0] is not None,
               f"importance_sampled_pseudo_loss ({case['description']}): no gradient reaches log_probs; use "
               "TensorFlow operations on log_probs.")
        expect_close(result["grads"][0], -a64 / batch, f"d loss / d log_probs at theta = theta_old "
                     f"({case['description']})", rtol=1e-5, atol=1e-7, batch_size=batch)

