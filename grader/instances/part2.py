"""Cases of the Part 2 hidden tests (hw/natural_gradient.py): inputs, reference answers from
the solutions, and the explicit Hessian of the mean KL (nested tapes, independent of any
Fisher-vector product). Runs in the trusted pre-pass only."""
from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

import solutions.natural_gradient as ref
from hw import lq_env
from hw.policies import CategoricalPolicy, GaussianPolicy, LinearGaussianPolicy
from hw.utils import get_flat_params, set_flat_params

from ..wire import MatVec, Policy, Quadratic
from .common import builds, send

tfd = tfp.distributions


def _spd(rng, n, condition=50.0):
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    eigenvalues = np.geomspace(1.0, condition, n) * rng.uniform(0.5, 2.0)
    return (q * eigenvalues) @ q.T


def _new_policy(kind, seed, dtype=tf.float64):
    if kind == "categorical":
        return CategoricalPolicy(3, 3, (4,), seed=seed, dtype=dtype), dict(obs_dim=3, n_actions=3, hidden_sizes=[4])
    if kind == "gaussian":
        return GaussianPolicy(2, 2, (3,), seed=seed, dtype=dtype), dict(obs_dim=2, act_dim=2, hidden_sizes=[3])
    return LinearGaussianPolicy(-0.4, 0.8, dtype=dtype), {}


def _make_policy(kind, seed, rng, dtype="float64"):
    """(float64 policy with perturbed parameters, its wire description in `dtype`, obs_dim)."""
    policy, sizes = _new_policy(kind, seed)
    theta = get_flat_params(policy).numpy() + rng.normal(scale=0.4, size=get_flat_params(policy).shape[0])
    if dtype == "float32":
        theta = theta.astype(np.float32).astype(np.float64)  # the same parameters on both sides
    set_flat_params(policy, theta)
    return policy, Policy(kind, theta, dtype=dtype, seed=seed, **sizes), sizes.get("obs_dim", 1)


def _kl_hessian(policy, kind, seed, observations) -> np.ndarray:
    """The explicit Hessian at theta_old of mean_s KL(pi_old(.|s) || pi_theta(.|s)) [n, n]."""
    old, _ = _new_policy(kind, seed)
    set_flat_params(old, get_flat_params(policy))
    variables = policy.trainable_variables
    sizes = [int(np.prod(v.shape)) for v in variables]
    flat = tf.Variable(get_flat_params(policy).numpy())

    def kl_of(flat_vector):
        pieces = [tf.reshape(p, v.shape) for p, v in zip(tf.split(flat_vector, sizes), variables)]
        replacements = {id(v): p for v, p in zip(variables, pieces)}
        return tf.reduce_mean(tfd.kl_divergence(old.distribution(observations),
                                                _forward(policy, kind, replacements, observations)))

    with tf.GradientTape(persistent=True) as outer:
        with tf.GradientTape() as inner:
            value = kl_of(flat)
        entries = tf.unstack(inner.gradient(value, flat))
    # row by row (eager tape.jacobian's vectorisation costs more than it saves at this size)
    hessian = np.stack([outer.gradient(entry, flat).numpy() for entry in entries])
    return 0.5 * (hessian + hessian.T)


def _forward(policy, kind, replacements, observations):
    """The policy's distribution with its variables replaced by tensors (for the Hessian)."""
    x = tf.convert_to_tensor(observations, tf.float64)
    if kind == "linear_gaussian":
        k, log_std = (replacements[id(v)] for v in policy.trainable_variables)
        return tfd.MultivariateNormalDiag(loc=x * k, scale_diag=tf.exp(log_std))
    net = policy.logits_net if kind == "categorical" else policy.mean_net
    for i, (kernel, bias) in enumerate(net.layers):
        x = tf.matmul(x, replacements[id(kernel)]) + replacements[id(bias)]
        if i < len(net.layers) - 1:
            x = tf.tanh(x)
    if kind == "categorical":
        return tfd.Categorical(logits=x)
    return tfd.MultivariateNormalDiag(loc=x, scale_diag=tf.exp(replacements[id(policy.log_std)]))


# ----------------------------------------------------------------------------- vanilla, scores, Fisher

@builds("test_vanilla_step")
def vanilla_step(rng, seed):
    cases = []
    for n, epsilon, dtype, g_dtype, as_tensor in [(5, 0.01, np.float64, np.float64, False),
                                                  (3, 0.5, np.float32, np.float32, True),
                                                  (1, 2.0, np.float64, np.float64, True),
                                                  (4, 0.1, np.float32, np.float64, False)]:  # float64 grad
        theta = rng.normal(size=n).astype(dtype)
        g = (rng.normal(size=n) * 3).astype(g_dtype)
        dtypes = np.dtype(dtype).name if dtype == g_dtype else \
            f"{np.dtype(dtype).name} theta with a {np.dtype(g_dtype).name} grad"
        cases.append({"n": n, "epsilon": epsilon, "theta": send(theta, as_tensor), "g": send(g, as_tensor),
                      "float32": np.float32 in (dtype, g_dtype), "mixed": dtype != g_dtype,
                      "description": f"vanilla_step(n={n}, epsilon={epsilon}, {dtypes}, "
                                     f"{'tf.Tensor' if as_tensor else 'NumPy'} input)"})
    return cases


@builds("test_score_matrix")
def score_matrix(rng, seed):
    cases = []
    for i, (kind, batch, dtype) in enumerate([("categorical", 6, "float64"), ("gaussian", 5, "float32"),
                                              ("linear_gaussian", 4, "float64"), ("categorical", 1, "float32")]):
        policy, spec, obs_dim = _make_policy(kind, seed + i, rng, dtype)
        observations = rng.normal(size=(batch, obs_dim)).astype(dtype)
        if kind == "categorical":
            actions = rng.integers(0, 3, size=batch)
        else:
            means = np.asarray(policy.predictions(observations.astype(np.float64)), np.float64)
            std = np.exp(np.asarray(policy.log_std, np.float64))
            actions = (means + std * rng.normal(size=means.shape)).astype(dtype)
        expected = np.asarray(ref.score_matrix(policy, observations.astype(np.float64), actions), np.float64)
        tolerance = dict(rtol=1e-6, atol=1e-8) if dtype == "float64" else dict(rtol=1e-3, atol=1e-5)
        cases.append({"description": f"score_matrix ({kind} policy, B={batch}, n={spec.params.size}, {dtype})",
                      "policy": spec, "observations": observations, "actions": actions, "expected": expected,
                      "tolerance": tolerance})
    return cases


@builds("test_fisher_matrix")
def fisher_matrix(rng, seed):
    cases = []
    for batch, n, dtype, as_tensor in [(7, 4, np.float64, False), (1, 3, np.float64, True), (9, 5, np.float32, True)]:
        scores = rng.normal(size=(batch, n)).astype(dtype)
        cases.append({"description": f"fisher_matrix(S of shape [{batch}, {n}], {np.dtype(dtype).name})",
                      "scores": send(scores, as_tensor), "dtype": np.dtype(dtype).name})
    return cases


# ----------------------------------------------------------------------------- natural step

@builds("test_natural_gradient_step_constraint")
def natural_gradient_step_constraint(rng, seed):
    cases = []
    for n, epsilon, theta_dtype, other_dtype, as_tensor in [
            (4, 0.01, "float64", "float64", False), (6, 0.2, "float64", "float64", True),
            (3, 0.05, "float32", "float32", True), (1, 0.1, "float64", "float64", False),
            (5, 0.03, "float32", "float64", False)]:  # a float32 theta with a float64 gradient and Fisher
        fisher = _spd(rng, n).astype(other_dtype)
        theta = rng.normal(size=n).astype(theta_dtype)
        g = (rng.normal(size=n) * 2).astype(other_dtype)
        dtypes = theta_dtype if theta_dtype == other_dtype else f"{theta_dtype} theta, {other_dtype} grad and fisher"
        cases.append({"description": f"natural_gradient_step(n={n}, epsilon={epsilon}, {dtypes})", "n": n,
                      "epsilon": epsilon, "theta": send(theta, as_tensor), "g": send(g, as_tensor),
                      "fisher": send(fisher, as_tensor), "float32": "float32" in (theta_dtype, other_dtype)})
    return cases


@builds("test_natural_step_true_kl")
def natural_step_true_kl(rng, seed):
    cases = []
    for k, sigma, spread, epsilon in [(-0.3, 0.7, 3.0, 1e-3), (-0.8, 1.3, 0.5, 2e-3)]:
        states = rng.normal(scale=spread, size=64)
        cases.append({"k": k, "sigma": sigma, "epsilon": epsilon, "states": states,
                      "theta": np.array([k, np.log(sigma)]),
                      "fisher": np.diag([np.mean(states ** 2) / sigma ** 2, 2.0]),  # exact, in (k, log sigma)
                      "g": np.asarray(lq_env.theta_gradient(k, sigma), np.float64)})
    return cases


@builds("test_fisher_vector_product")
def fisher_vector_product(rng, seed):
    cases = []
    for i, (kind, damping, batch, dtype) in enumerate([
            ("categorical", 0.0, 6, "float64"), ("gaussian", 0.0, 5, "float64"), ("linear_gaussian", 0.0, 8, "float64"),
            ("categorical", 0.1, 4, "float64"), ("gaussian", 0.05, 1, "float64"),
            ("gaussian", 0.0, 6, "float32")]):  # a float32 policy with a float64 vector and observations
        policy, spec, obs_dim = _make_policy(kind, seed + i, rng, dtype)
        observations = rng.normal(size=(batch, obs_dim))
        hessian = _kl_hessian(policy, kind, seed + i, observations)
        if kind == "linear_gaussian":  # the closed form of the lecture's example
            sigma = float(np.exp(spec.params[1]))
            assert np.allclose(hessian, np.diag([np.mean(observations ** 2) / sigma ** 2, 2.0]), rtol=1e-8, atol=1e-10)
        cases.append({"description": f"fisher_vector_product ({kind} policy, n={spec.params.size}, B={batch}, "
                                     f"damping={damping}, {dtype})",
                      "policy": spec, "observations": observations, "hessian": hessian, "damping": damping,
                      "v": rng.normal(size=spec.params.size), "float32": dtype == "float32"})
    return cases


def _cg(matrix, b, iterations, tolerance=1e-10):
    return np.asarray(ref.conjugate_gradient(lambda x: tf.linalg.matvec(tf.constant(matrix), x), b,
                                             iterations=iterations, tolerance=tolerance), np.float64)


@builds("test_conjugate_gradient")
def conjugate_gradient(rng, seed):
    n = 6
    matrix = _spd(rng, n, condition=30.0)
    b = rng.normal(size=n)
    steps = {j: _cg(matrix, b, j) for j in range(0, 5)}
    # a tolerance between the squared residuals after steps 1 and 2: CG stops after step 2
    residuals = [float(np.sum((b - matrix @ steps[j]) ** 2)) for j in (1, 2)]
    tolerance = float(np.sqrt(residuals[0] * residuals[1]))
    return [{"matrix": MatVec(matrix), "A": matrix, "b": b, "n": n, "steps": [steps[j] for j in sorted(steps)],
             "tolerance": tolerance, "stopped": _cg(matrix, b, n, tolerance),
             "tiny_b": b * 1e-7,  # b^T b about 1e-13, below the default tolerance: x = 0
             "two_identity": MatVec(2.0 * np.eye(3))}]


def _numpy_cg(matrix, b, iterations, tolerance=1e-10):
    """Conjugate gradient on an explicit matrix, as the contract states it (from x = 0, the
    tolerance on r^T r checked before every iteration): the TRPO step's reference."""
    x, r = np.zeros_like(b), b.copy()
    p, rr = r.copy(), r @ r
    for _ in range(iterations):
        if rr < tolerance:
            break
        ap = matrix @ p
        alpha = rr / (p @ ap)
        x, r = x + alpha * p, r - alpha * ap
        rr, previous = r @ r, rr
        p = r + (rr / previous) * p
    return x


@builds("test_natural_step_cg")
def natural_step_cg(rng, seed):
    cases = []
    for i, (kind, epsilon, iterations, damping, batch, dtype) in enumerate([
            ("categorical", 0.01, 10, 1e-3, 8, "float64"), ("gaussian", 0.05, 5, 1e-2, 6, "float64"),
            ("linear_gaussian", 0.02, 4, 1e-3, 16, "float64"),
            ("gaussian", 0.03, 6, 1e-2, 6, "float32")]):  # a float32 policy with a float64 gradient
        policy, spec, obs_dim = _make_policy(kind, seed + 10 + i, rng, dtype)
        observations = rng.normal(size=(batch, obs_dim))
        n = spec.params.size
        g = rng.normal(size=n)
        damped = _kl_hessian(policy, kind, seed + 10 + i, observations) + damping * np.eye(n)
        x = _numpy_cg(damped, g, iterations)
        expected = np.sqrt(2 * epsilon / (x @ damped @ x)) * x
        cases.append({"description": f"natural_step_cg ({kind} policy, n={n}, epsilon={epsilon}, "
                                     f"iterations={iterations}, damping={damping}, {dtype})", "float32": dtype == "float32",
                      "policy": spec, "observations": observations, "g": g, "epsilon": epsilon,
                      "iterations": iterations, "damping": damping, "expected": expected,
                      "damped_fisher": damped})
    return cases


@builds("test_mean_kl")
def mean_kl(rng, seed):
    cases = []
    for i, (kind, batch) in enumerate([("categorical", 7), ("gaussian", 5), ("linear_gaussian", 9), ("categorical", 1)]):
        old, old_spec, obs_dim = _make_policy(kind, seed + i, rng)
        new, new_spec, _ = _make_policy(kind, seed + i, rng)
        observations = rng.normal(size=(batch, obs_dim))
        forward = tfd.kl_divergence(old.distribution(observations), new.distribution(observations)).numpy()
        reverse = tfd.kl_divergence(new.distribution(observations), old.distribution(observations)).numpy()
        cases.append({"description": f"mean_kl ({kind} policies, B={batch})", "old": old_spec, "new": new_spec,
                      "observations": observations, "expected": float(ref.mean_kl(old, new, observations)),
                      "forward": forward, "reverse": reverse})
    return cases


@builds("test_line_search")
def line_search(rng, seed):
    """Quadratic surrogates and KLs along a direction d: kl(theta + s d) = s^2 unit_kl and
    surrogate(theta + s d) = offset + s a - 1/2 s^2 c a (a = 1: it improves for 0 < s < 2 / c)."""
    n = 3
    theta = rng.normal(size=n)
    direction = rng.normal(size=n)
    fisher = _spd(rng, n, condition=5.0)
    unit_kl = 0.5 * direction @ fisher @ direction
    offset = float(rng.uniform(2.0, 5.0))  # surrogate(theta) is not 0: improving means exceeding it
    cases = []
    for description, c, budget, ratio, max_backtracks, j, base in [
            ("the full step is accepted", 0.1, 2.0, 0.5, 10, 0, 0.0),
            ("the KL forces two backtracks", 0.1, 0.2, 0.5, 10, 2, 0.0),
            ("the surrogate does not improve at the full step", 2.5, 2.0, 0.5, 10, 1, 0.0),
            ("no step is acceptable (the surrogate never improves)", -1.0, 2.0, 0.5, 10, None, 0.0),
            ("only j = max_backtracks would pass", 0.1, 0.8 ** 6 + 1e-3, 0.8, 3, None, 0.0),
            ("several steps pass: the first one is taken, not the best (0.5 d improves more)", 1.8, 2.0, 0.5, 10, 0,
             0.0),
            ("backtrack_ratio 0.8, three backtracks", 0.1, 0.8 ** 6 + 1e-3, 0.8, 10, 3, 0.0),
            ("only the last allowed step, j = max_backtracks - 1, passes", 0.1, 0.5 ** 8 + 1e-4, 0.5, 5, 4, 0.0),
            (f"surrogate(theta) = {offset:.3g}, not 0: the full step's surrogate is positive but lower", 2.5, 2.0,
             0.5, 10, 1, offset),
            (f"surrogate(theta) = {-offset:.3g}: every step's surrogate is negative, and the first is higher", 0.1,
             2.0, 0.5, 10, 0, -offset)]:
        epsilon = budget * unit_kl
        if c < 0:  # the surrogate decreases along d
            linear = -direction @ fisher
            curvature = np.zeros((n, n))
        else:
            linear = direction @ fisher / (direction @ fisher @ direction)
            curvature = c * np.outer(linear, linear)
        surrogate = Quadratic(theta, linear, -curvature, base)
        kl = Quadratic(theta, np.zeros(n), fisher, 0.0)
        expected = theta if j is None else theta + ratio ** j * direction
        # the case checks itself against the rule, stated once more
        first = next((theta + ratio ** i * direction for i in range(max_backtracks)
                      if kl(theta + ratio ** i * direction) <= epsilon
                      and surrogate(theta + ratio ** i * direction) > surrogate(theta)), theta)
        assert np.allclose(first, expected), description
        if base > 0:  # the surrogate at the full step must be positive, so that comparing with 0 errs
            assert surrogate(theta + direction) > 0
        cases.append({"description": description, "theta": theta, "direction": direction, "surrogate": surrogate,
                      "kl": kl, "epsilon": epsilon, "ratio": ratio, "max_backtracks": max_backtracks, "j": j,
                      "expected": expected})
    return cases
