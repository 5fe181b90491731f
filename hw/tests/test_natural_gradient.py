"""Public tests for Part 2, hw/natural_gradient.py (Lecture 9 part 4).

Run with `pytest hw/tests/test_natural_gradient.py`. Each failure says what was expected,
what your code returned and, where the mistake is a common one, which mistake it looks
like. The references are computed here independently: explicit Hessians of hand-written
KL formulas, per-sample gradients taken one at a time, the exact Fisher of the 1-D example.
"""
import numpy as np
import pytest
import tensorflow as tf

from hw import lq_env
from hw.policies import CategoricalPolicy, GaussianPolicy, LinearGaussianPolicy
from hw.utils import flatten, get_flat_params, num_params, set_flat_params

INPUT_KINDS = [(np.float64, False), (np.float32, False), (np.float64, True), (np.float32, True)]


def _as_input(x, dtype, as_tensor):
    x = np.asarray(x, dtype=dtype)
    return tf.constant(x) if as_tensor else x


def _np(x):
    return np.asarray(x, dtype=np.float64)


def _random_spd(n, rng, condition=50.0):
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return q @ np.diag(np.geomspace(1.0, condition, n)) @ q.T


def _parallel(a, b):
    """cos of the angle between two vectors."""
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# ------------------------------------------------------------------ vanilla_step


@pytest.mark.parametrize("dtype,as_tensor", INPUT_KINDS)
def test_vanilla_step_is_the_euclidean_trust_region_step(ng, dtype, as_tensor):
    rng = np.random.default_rng(0)
    theta, g, epsilon = rng.normal(size=7), rng.normal(size=7) * 3.0, 0.01
    got = _np(ng.vanilla_step(_as_input(theta, dtype, as_tensor), _as_input(g, dtype, as_tensor), epsilon))
    assert got.shape == (7,), f"vanilla_step: expected shape (7,), got {got.shape}"
    d = got - theta
    tol = 1e-4 if dtype == np.float32 else 1e-10
    cos = _parallel(d, g)
    assert cos > -0.99, "vanilla_step: the step points along -g: sign flipped (g is the ascent direction, grad J)"
    assert cos > 1 - tol, f"vanilla_step: the step should point along g, got cos(angle) = {cos:.6f}"
    squared = float(d @ d)
    hint = ""
    if np.isclose(squared, epsilon**2 / float(g @ g), rtol=1e-3):
        hint = " (looks like alpha = eps / ||g||^2: the square root is missing)"
    assert squared == pytest.approx(epsilon, rel=max(tol, 1e-6)), \
        f"vanilla_step: expected ||theta' - theta||^2 = epsilon = {epsilon}, got {squared:.6g}{hint}"


# ------------------------------------------------------------------ score_matrix and fisher_matrix


def _scores_one_by_one(policy, observations, actions):
    rows = []
    for s, a in zip(observations, actions):
        with tf.GradientTape() as tape:
            log_prob = policy.distribution(s[None]).log_prob(a[None])[0]
        rows.append(flatten(tape.gradient(log_prob, policy.trainable_variables)).numpy())
    return np.stack(rows)


@pytest.mark.parametrize("discrete", [True, False])
def test_score_matrix_rows_are_per_sample_gradients(ng, discrete):
    rng = np.random.default_rng(1)
    observations = rng.normal(size=(6, 3))
    if discrete:
        policy = CategoricalPolicy(3, 4, (5,), seed=1, dtype=tf.float64)
        actions = rng.integers(0, 4, size=6)
    else:
        policy = GaussianPolicy(3, 2, (5,), seed=1, dtype=tf.float64)
        actions = rng.normal(size=(6, 2))
    expected = _scores_one_by_one(policy, observations, actions)
    got = _np(ng.score_matrix(policy, observations, actions))
    assert got.shape == expected.shape, f"score_matrix: expected shape [B, n] = {expected.shape}, got {got.shape}"
    hint = ""
    if np.allclose(got, expected.mean(axis=0), atol=1e-8):
        hint = " (every row is the batch mean: one gradient of the mean, not one per sample)"
    elif np.allclose(got, -expected, atol=1e-8):
        hint = " (sign flipped: rows are grad of -log pi)"
    np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-10,
                               err_msg=f"score_matrix: row i should be grad_theta log pi(a_i|s_i){hint}")


@pytest.mark.parametrize("dtype,as_tensor", INPUT_KINDS)
def test_fisher_matrix_is_mean_outer_product(ng, dtype, as_tensor):
    scores = np.random.default_rng(2).normal(size=(9, 4))
    expected = scores.T @ scores / 9
    got = _np(ng.fisher_matrix(_as_input(scores, dtype, as_tensor)))
    hint = ""
    if got.shape == expected.shape and np.allclose(got, 9 * expected, rtol=1e-4):
        hint = " (a sum over the batch instead of the mean: missing 1/B)"
    elif got.shape == (9, 9):
        hint = " (S S^T instead of S^T S)"
    assert got.shape == (4, 4), f"fisher_matrix: expected shape [n, n] = (4, 4), got {got.shape}{hint}"
    np.testing.assert_allclose(got, expected, rtol=1e-5, err_msg=f"fisher_matrix: expected (1/B) S^T S{hint}")


# ------------------------------------------------------------------ natural_gradient_step


@pytest.mark.parametrize("dtype,as_tensor", INPUT_KINDS)
def test_natural_gradient_step_meets_the_kl_model_and_points_along_f_inverse_g(ng, dtype, as_tensor):
    rng = np.random.default_rng(3)
    n, epsilon = 6, 0.01
    fisher, theta, g = _random_spd(n, rng), rng.normal(size=n), rng.normal(size=n)
    got = _np(ng.natural_gradient_step(*(_as_input(x, dtype, as_tensor) for x in (theta, g, fisher)), epsilon))
    assert got.shape == (n,), f"natural_gradient_step: expected shape ({n},), got {got.shape}"
    d = got - theta
    tol = 1e-3 if dtype == np.float32 else 1e-9
    natural = np.linalg.solve(fisher, g)
    cos = _parallel(d, natural)
    if cos < -0.99:
        pytest.fail("natural_gradient_step: the step points along -F^-1 g: sign flipped")
    if abs(_parallel(d, fisher @ g)) > 0.999:
        pytest.fail("natural_gradient_step: the step points along F g: F instead of F^-1 (solve F x = g)")
    if abs(_parallel(d, g)) > 0.999:
        pytest.fail("natural_gradient_step: the step points along g, not F^-1 g: that is the vanilla direction")
    assert cos > 1 - tol, f"natural_gradient_step: expected a step along F^-1 g, got cos(angle) = {cos:.6f}"
    model_kl = 0.5 * float(d @ fisher @ d)
    ratio = model_kl / epsilon
    hint = ""
    if np.isclose(ratio, 0.5, rtol=1e-3):
        hint = " (half of it: alpha = sqrt(eps / g^T F^-1 g) is off by sqrt 2: missing factor 2)"
    elif np.isclose(ratio, 2.0, rtol=1e-3):
        hint = " (twice it: alpha is sqrt 2 too large: a factor 2 too many)"
    assert ratio == pytest.approx(1.0, rel=max(tol, 1e-6)), \
        f"natural_gradient_step: expected 1/2 d^T F d = epsilon = {epsilon}, got {model_kl:.6g}{hint}"


# ------------------------------------------------------------------ fisher_vector_product


def _kl_hessian(policy, observations):
    """The explicit [n, n] Hessian at theta of the mean KL(pi_old || pi_theta), pi_old a constant,
    from a hand-written KL formula (not tfp's)."""
    if policy.discrete:
        old_log_p = tf.nn.log_softmax(policy.predictions(observations)).numpy()

        def kl():
            log_p = tf.nn.log_softmax(policy.predictions(observations))
            return tf.reduce_mean(tf.reduce_sum(np.exp(old_log_p) * (old_log_p - log_p), axis=1))
    else:
        old_mean, old_log_std = policy.predictions(observations).numpy(), policy.log_std.numpy()

        def kl():  # KL(N(m0, s0^2) || N(m, s^2)) = log s/s0 + (s0^2 + (m0 - m)^2) / (2 s^2) - 1/2
            mean, log_std = policy.predictions(observations), policy.log_std
            per_dim = (log_std - old_log_std
                       + (np.exp(2 * old_log_std) + (old_mean - mean) ** 2) / (2 * tf.exp(2 * log_std)) - 0.5)
            return tf.reduce_mean(tf.reduce_sum(per_dim, axis=1))

    variables = policy.trainable_variables
    with tf.GradientTape(persistent=True) as outer:
        with tf.GradientTape() as inner:
            value = kl()
        gradient = flatten(inner.gradient(value, variables))
    jacobians = outer.jacobian(gradient, variables, experimental_use_pfor=False)
    return np.concatenate([tf.reshape(j, [gradient.shape[0], -1]).numpy() for j in jacobians], axis=1)


def _small_policy(discrete):
    if discrete:
        return CategoricalPolicy(3, 3, (4,), seed=4, dtype=tf.float64)
    policy = GaussianPolicy(3, 2, (4,), seed=4, dtype=tf.float64)
    for variable in policy.trainable_variables:  # move away from the near-zero output layer
        variable.assign(variable + 0.3 * np.random.default_rng(5).normal(size=variable.shape))
    return policy


@pytest.mark.parametrize("discrete", [True, False])
def test_fisher_vector_product_is_the_hessian_of_the_mean_kl(ng, discrete):
    policy = _small_policy(discrete)
    rng = np.random.default_rng(6)
    observations = rng.normal(size=(8, 3))
    hessian = _kl_hessian(policy, observations)
    for _ in range(3):
        v = rng.normal(size=hessian.shape[0])
        expected = hessian @ v
        got = _np(ng.fisher_vector_product(policy, observations, v))
        assert got.shape == expected.shape, f"fisher_vector_product: expected shape {expected.shape}, got {got.shape}"
        hint = ""
        if np.allclose(got, 0.0, atol=1e-12):
            hint = (" (it is zero: the KL's old side is not held fixed, so KL(pi_theta || pi_theta) = 0"
                    " for every theta; put the old distribution's parameters behind tf.stop_gradient)")
        elif np.allclose(got, -expected, rtol=1e-6):
            hint = " (sign flipped)"
        elif np.allclose(got, 8 * expected, rtol=1e-6):
            hint = " (8x too large: a sum of the KL over the batch instead of its mean)"
        np.testing.assert_allclose(
            got, expected, rtol=1e-7, atol=1e-10,
            err_msg=f"fisher_vector_product: expected H v, H the explicit Hessian of the mean KL{hint}")


def test_fisher_vector_product_adds_exactly_damping_times_v(ng):
    policy = _small_policy(False)
    rng = np.random.default_rng(7)
    observations, v = rng.normal(size=(8, 3)), rng.normal(size=num_params(policy))
    undamped = _np(ng.fisher_vector_product(policy, observations, v))
    damped = _np(ng.fisher_vector_product(policy, observations, v, damping=0.25))
    difference = damped - undamped
    if np.allclose(difference, 0.0):
        pytest.fail("fisher_vector_product: damping=0.25 changed nothing: damping left out (expected F v + damping v)")
    np.testing.assert_allclose(difference, 0.25 * v, rtol=1e-9, atol=1e-12,
                               err_msg="fisher_vector_product(v, damping) - fisher_vector_product(v) "
                                       "should be exactly damping * v")


def test_fisher_vector_product_accepts_float32_numpy_for_a_float64_policy(ng):
    policy = _small_policy(True)
    observations = np.random.default_rng(8).normal(size=(4, 3)).astype(np.float32)
    v = np.ones(num_params(policy), dtype=np.float32)
    got = _np(ng.fisher_vector_product(policy, observations, v, damping=1e-3))
    assert got.shape == (num_params(policy),) and np.all(np.isfinite(got)), \
        f"fisher_vector_product: expected a finite vector of shape ({num_params(policy)},), got {got}"


# ------------------------------------------------------------------ conjugate_gradient


class CountingMatvec:
    def __init__(self, matrix):
        self.matrix, self.calls = matrix, 0

    def __call__(self, v):
        self.calls += 1
        return tf.linalg.matvec(tf.constant(self.matrix), tf.cast(v, tf.float64))


def test_conjugate_gradient_solves_a_small_spd_system(ng):
    rng = np.random.default_rng(9)
    matrix, b = _random_spd(6, rng, condition=20.0), rng.normal(size=6)
    got = _np(ng.conjugate_gradient(CountingMatvec(matrix), b, iterations=6, tolerance=1e-20))
    np.testing.assert_allclose(matrix @ got, b, rtol=1e-7, atol=1e-9,
                               err_msg="conjugate_gradient: 6 iterations on a 6 x 6 SPD system should solve "
                                       "it exactly (in exact arithmetic); A x != b")


def test_conjugate_gradient_iterates_are_the_krylov_minimisers(ng):
    # After k steps from x = 0, CG's x minimises the A-norm error over span{b, A b, ..., A^(k-1) b}.
    rng = np.random.default_rng(10)
    matrix, b = _random_spd(8, rng), rng.normal(size=8)
    for k in (1, 3):
        krylov = np.stack([np.linalg.matrix_power(matrix, j) @ b for j in range(k)], axis=1)
        expected = krylov @ np.linalg.solve(krylov.T @ matrix @ krylov, krylov.T @ b)
        matvec = CountingMatvec(matrix)
        got = _np(ng.conjugate_gradient(matvec, b, iterations=k, tolerance=1e-20))
        assert matvec.calls == k, f"conjugate_gradient(iterations={k}): expected {k} matvec calls, got {matvec.calls}"
        np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-10,
                                   err_msg=f"conjugate_gradient: after {k} step(s) from x = 0, x should minimise "
                                           f"the A-norm error over the Krylov space (check alpha and the update of p)")


def test_conjugate_gradient_stops_early_on_its_tolerance(ng):
    # b lies in a 2-D eigenspace of A: CG converges after 2 products and must stop there.
    matrix = np.diag([1.0, 2.0, 3.0, 4.0, 5.0])
    b = np.array([1.0, 0.0, 0.0, 2.0, 0.0])
    matvec = CountingMatvec(matrix)
    got = _np(ng.conjugate_gradient(matvec, b, iterations=10, tolerance=1e-10))
    np.testing.assert_allclose(got, b / np.diag(matrix), rtol=1e-9, atol=1e-12,
                               err_msg="conjugate_gradient: wrong solution of diag(1..5) x = b")
    assert matvec.calls == 2, (f"conjugate_gradient: expected to stop after 2 matvec calls, once r^T r < tolerance, "
                               f"got {matvec.calls} calls: the loop does not stop on its tolerance")


# ------------------------------------------------------------------ mean_kl


def test_mean_kl_matches_the_gaussian_formula(ng):
    s = np.linspace(-2.0, 2.0, 9)[:, None]
    old, new = LinearGaussianPolicy(-1.0, 0.5), LinearGaussianPolicy(-0.7, 0.8)

    def kl(k0, s0, k1, s1):  # mean_s KL(N(k0 s, s0^2) || N(k1 s, s1^2))
        return np.mean(np.log(s1 / s0) + (s0**2 + (k0 - k1) ** 2 * s[:, 0] ** 2) / (2 * s1**2) - 0.5)

    expected, reversed_ = kl(-1.0, 0.5, -0.7, 0.8), kl(-0.7, 0.8, -1.0, 0.5)
    got = float(_np(ng.mean_kl(old, new, s)))
    hint = " (that is KL(pi_new || pi_old): direction reversed)" if np.isclose(got, reversed_, rtol=1e-6) else ""
    assert got == pytest.approx(expected, rel=1e-9), \
        f"mean_kl: expected mean_s KL(pi_old || pi_new) = {expected:.10g}, got {got:.10g}{hint}"


def test_mean_kl_matches_the_categorical_formula(ng):
    observations = np.random.default_rng(11).normal(size=(5, 3))
    old, new = CategoricalPolicy(3, 4, (5,), seed=1), CategoricalPolicy(3, 4, (5,), seed=2)
    set_flat_params(new, get_flat_params(new) * 30.0)  # far from uniform
    log_p, log_q = (tf.nn.log_softmax(policy.predictions(observations)).numpy().astype(np.float64)
                    for policy in (old, new))
    expected = np.mean(np.sum(np.exp(log_p) * (log_p - log_q), axis=1))
    got = float(_np(ng.mean_kl(old, new, observations)))
    assert got == pytest.approx(expected, rel=1e-4), \
        f"mean_kl: expected mean_s sum_a p_old (log p_old - log p_new) = {expected:.6g}, got {got:.6g}"


# ------------------------------------------------------------------ true KL of the steps


def _linear_policy(discrete, dtype):
    if discrete:
        return CategoricalPolicy(3, 3, (), seed=12, dtype=dtype)
    return GaussianPolicy(3, 2, (), seed=12, dtype=dtype)


@pytest.mark.parametrize("discrete", [True, False])
@pytest.mark.parametrize("dtype", [tf.float64, tf.float32])
def test_natural_step_cg_lands_near_the_kl_target(ng, discrete, dtype):
    """The true mean KL after the CG step is epsilon within 10%.

    Why a band: the step solves the quadratic model exactly, 1/2 d^T (F + damping I) d = eps,
    but the true KL is 1/2 d^T F d + O(||d||^3). Here damping * ||d||^2 / 2 < 0.5% of eps and
    the third-order term is about 1% at eps = 1e-3 (it shrinks like sqrt(eps)); 10% covers
    both with room, and still catches a missing factor 2 (KL = eps / 2).
    """
    epsilon = 1e-3
    policy, stepped = _linear_policy(discrete, dtype), _linear_policy(discrete, dtype)
    rng = np.random.default_rng(13)
    observations = rng.normal(size=(200, 3))
    actions = policy.distribution(observations).sample(seed=14)
    advantages = np.tanh(observations[:, 0]) + 0.3 * rng.normal(size=200)
    with tf.GradientTape() as tape:                          # a policy gradient, via the pseudo-loss
        pseudo_objective = tf.reduce_mean(policy.distribution(observations).log_prob(actions)
                                          * tf.cast(advantages, dtype))
    g = flatten(tape.gradient(pseudo_objective, policy.trainable_variables)).numpy()
    d = _np(ng.natural_step_cg(policy, observations, g, epsilon))
    assert d.shape == (num_params(policy),), f"natural_step_cg: expected the step d of shape ({num_params(policy)},), got {d.shape}"
    if d @ g < 0:
        pytest.fail("natural_step_cg: g^T d < 0, the step goes downhill: sign flipped")
    set_flat_params(stepped, get_flat_params(policy) + d)
    ratio = float(_np(ng.mean_kl(policy, stepped, observations))) / epsilon
    hint = ""
    if 0.45 < ratio < 0.55:
        hint = " (about half: alpha = sqrt(eps / x^T F x) is off by sqrt 2: missing factor 2)"
    elif ratio > 1e3:
        hint = " (far too large: is the Fisher-vector product zero or tiny? then CG's x blows up)"
    assert 0.9 < ratio < 1.1, f"natural_step_cg: expected the true mean KL / epsilon in (0.9, 1.1), got {ratio:.4g}{hint}"


def test_natural_step_cg_points_along_f_inverse_g(ng):
    # n = 10 parameters: 10 CG iterations solve F x = g, so d must be parallel to F^-1 g.
    policy = _linear_policy(False, tf.float64)
    rng = np.random.default_rng(15)
    observations, g = rng.normal(size=(50, 3)), rng.normal(size=num_params(policy))
    fisher = _kl_hessian(policy, observations) + 1e-3 * np.eye(num_params(policy))  # the damped operator
    d = _np(ng.natural_step_cg(policy, observations, g, 1e-3))
    cos = _parallel(d, np.linalg.solve(fisher, g))
    if abs(_parallel(d, fisher @ g)) > 0.999:
        pytest.fail("natural_step_cg: the step points along F g: F instead of F^-1")
    assert cos > 1 - 1e-6, f"natural_step_cg: expected a step along (F + damping I)^-1 g, got cos(angle) = {cos:.8f}"
    model_kl = 0.5 * float(d @ fisher @ d)
    assert model_kl == pytest.approx(1e-3, rel=1e-6), \
        f"natural_step_cg: expected 1/2 d^T (F + damping I) d = epsilon = 0.001, got {model_kl:.6g}"


def test_on_the_1d_example_the_natural_step_meets_its_kl_and_the_vanilla_step_does_not(ng):
    """The lecture's point: ||d||^2 <= eps says nothing about how much the policy changes.

    theta = (k, log sigma) of a ~ N(k s, sigma^2); the exact Fisher in these coordinates is
    diag(mean s^2 / sigma^2, 2), so a k-step moves the policy 1/sigma^2 times more than a
    log sigma step of the same length. Gradients are the exact grad J of hw.lq_env.
    """
    k, sigma, epsilon = -1.8, 0.2, 1e-3
    observations = np.random.default_rng(16).normal(size=(500, 1))
    fisher = np.diag([np.mean(observations**2) / sigma**2, 2.0])
    g = lq_env.theta_gradient(k, sigma)
    policy, stepped = LinearGaussianPolicy(k, sigma), LinearGaussianPolicy(k, sigma)
    theta = get_flat_params(policy).numpy()

    set_flat_params(stepped, _np(ng.natural_gradient_step(theta, g, fisher, epsilon)))
    natural_ratio = float(_np(ng.mean_kl(policy, stepped, observations))) / epsilon
    hint = " (about half: missing factor 2)" if 0.45 < natural_ratio < 0.55 else ""
    assert 0.9 < natural_ratio < 1.1, \
        f"natural_gradient_step on the 1-D example: expected true KL / eps in (0.9, 1.1), got {natural_ratio:.4g}{hint}"

    set_flat_params(stepped, _np(ng.vanilla_step(theta, g, epsilon)))
    vanilla_ratio = float(_np(ng.mean_kl(policy, stepped, observations))) / epsilon
    assert vanilla_ratio > 5.0, \
        f"vanilla_step on the 1-D example: expected a true KL over 5 eps (F_kk = {fisher[0, 0]:.1f}), " \
        f"got {vanilla_ratio:.4g} eps"


# ------------------------------------------------------------------ line_search


class Recorder:
    """A function of theta that remembers its arguments."""

    def __init__(self, function):
        self.function, self.arguments = function, []

    def __call__(self, theta):
        theta = _np(theta)
        self.arguments.append(theta)
        return self.function(theta)


def _line_search_problem(kl_of_full_step):
    theta, full_step, epsilon = np.array([1.0, -2.0, 0.5]), np.array([0.3, 0.1, -0.2]), 0.01
    scale = kl_of_full_step / float(full_step @ full_step)
    kl = Recorder(lambda x: scale * float((x - theta) @ (x - theta)))   # kl(theta + t d) = t^2 kl(theta + d)
    surrogate = Recorder(lambda x: float(full_step @ (x - theta)))         # improves along d
    return theta, full_step, epsilon, kl, surrogate


def test_line_search_returns_the_first_acceptable_step(ng):
    theta, full_step, epsilon, kl, surrogate = _line_search_problem(kl_of_full_step=0.05)  # 5 eps
    got = _np(ng.line_search(theta, full_step, surrogate, kl, epsilon))
    # kl(theta + 0.5^j d) = 0.05 * 0.25^j: 0.05, 0.0125, 0.003125 -> j = 2 is the first within eps = 0.01
    expected = theta + 0.25 * full_step
    hint = ""
    if np.allclose(got, theta + full_step):
        hint = " (returned the full step although its KL is 5 eps)"
    elif np.allclose(got, theta + 0.5 * full_step):
        hint = " (returned theta + 0.5 d, whose KL is 1.25 eps > eps)"
    np.testing.assert_allclose(got, expected, rtol=1e-12,
                               err_msg=f"line_search: expected theta + 0.5^2 d, the first step with KL <= eps{hint}")


def test_line_search_needs_an_improvement_of_the_surrogate(ng):
    theta, full_step, epsilon, kl, _ = _line_search_problem(kl_of_full_step=0.001)  # every step within eps
    # surrogate = -(t - 0.2)^2 at theta + t d: -0.04 at theta, worse at t = 1 and 0.5, better at 0.25.
    surrogate = Recorder(lambda x: -(float(full_step @ (x - theta)) / float(full_step @ full_step) - 0.2) ** 2)
    got = _np(ng.line_search(theta, full_step, surrogate, kl, epsilon))
    np.testing.assert_allclose(got, theta + 0.25 * full_step, rtol=1e-12,
                               err_msg="line_search: expected theta + 0.25 d, the first step whose surrogate "
                                       "exceeds surrogate(theta)")


@pytest.mark.parametrize("reason", ["kl", "surrogate"])
def test_line_search_returns_theta_exactly_when_no_step_is_acceptable(ng, reason):
    theta, full_step, epsilon, kl, surrogate = _line_search_problem(kl_of_full_step=0.001)
    if reason == "kl":
        kl = Recorder(lambda x: 1.0)                       # never within epsilon, always improving
    else:
        surrogate = Recorder(lambda x: -float(full_step @ (x - theta)))  # never improving
    got = _np(ng.line_search(theta, full_step, surrogate, kl, epsilon, max_backtracks=6))
    which = "kl(.) > epsilon for every step" if reason == "kl" else "the surrogate never improves"
    hint = ""
    if reason == "kl" and not np.array_equal(got, theta):
        hint = " (accepted a step whose KL exceeds epsilon)"
    assert np.array_equal(got, theta), f"line_search: {which}, expected theta itself {theta}, got {got}{hint}"
    tried = [x for x in kl.arguments + surrogate.arguments if not np.array_equal(x, theta)]
    fractions = sorted({round(float(full_step @ (x - theta) / (full_step @ full_step)), 12) for x in tried})
    expected = sorted(0.5**j for j in range(6))
    np.testing.assert_allclose(fractions, expected, rtol=1e-9,
                               err_msg="line_search(max_backtracks=6): expected to try the steps 0.5^j d, j = 0..5")
