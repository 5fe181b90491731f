"""Public tests for Part 2, hw/natural_gradient.py (Lecture 9 part 4).

Run with `pytest hw/tests/test_part2_natural_gradient.py`. Each failure says what was
expected, what your code returned and, where the mistake is a common one, which mistake it
looks like. The references are computed here independently: explicit Hessians of
hand-written KL formulas, per-sample gradients taken one at a time, the exact Fisher of the
1-D example. Every input is a copy, and every expected value is computed before your
function is called, so a function that modifies its inputs cannot change what a message
calls "expected". The checks of one function come before the checks that combine several
(natural_step_cg, the 1-D example).

What the tests do not rely on (docs/contract.md): how many times conjugate_gradient calls
matvec (a textbook r0 = b - A x0 costs one call more), or whether a result is a NumPy
array or a tf.Tensor.
"""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from hw import lq_env
from hw.policies import CategoricalPolicy, GaussianPolicy, LinearGaussianPolicy
from hw.utils import flatten, get_flat_params, num_params, set_flat_params

INPUT_KINDS = [(np.float64, False), (np.float32, False), (np.float64, True), (np.float32, True)]
# theta in one dtype, the other inputs in the other (docs/contract.md: compute in theta's dtype)
MIXED_KINDS = INPUT_KINDS + [((np.float32, np.float64), False), ((np.float64, np.float32), True)]
MIXED_IDS = ["float64", "float32", "tensor-float64", "tensor-float32", "float32-theta-float64-others",
             "tensor-float64-theta-float32-others"]


def _dtypes(dtype):
    """(theta's dtype, the other inputs' dtype) of a MIXED_KINDS entry."""
    return dtype if isinstance(dtype, tuple) else (dtype, dtype)


def _as_input(x, dtype, as_tensor):
    x = np.array(x, dtype=dtype)  # a copy
    return tf.constant(x) if as_tensor else x


def _np(x, what="the result"):
    """A result as float64 NumPy; it must be there and finite."""
    assert x is not None, f"{what}: got None (a missing return?)"
    x = np.asarray(x, dtype=np.float64)
    assert np.all(np.isfinite(x)), f"{what}: got {x}: not finite (nan or inf)"
    return x


def _call(what, function, *args, hint="", **kwargs):
    """function(*args, **kwargs), turning a dtype error into a message that says what to cast."""
    try:
        return function(*args, **kwargs)
    except (tf.errors.InvalidArgumentError, TypeError, ValueError) as error:
        raise AssertionError(f"{what} raised {type(error).__name__}: {str(error).splitlines()[0]}. "
                             f"Inputs may mix float32 and float64 (docs/contract.md){hint}") from None


def _random_spd(n, rng, condition=50.0):
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return q @ np.diag(np.geomspace(1.0, condition, n)) @ q.T


def _show(x) -> str:
    return np.array2string(np.asarray(x, dtype=np.float64), precision=6, threshold=8, edgeitems=3)


def _parallel(a, b):
    """cos of the angle between two vectors."""
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# ------------------------------------------------------------------ vanilla_step


@pytest.mark.parametrize("dtype,as_tensor", MIXED_KINDS, ids=MIXED_IDS)
def test_vanilla_step_is_the_euclidean_trust_region_step(ng, dtype, as_tensor):
    rng = np.random.default_rng(0)
    theta, g, epsilon = rng.normal(size=7), rng.normal(size=7) * 3.0, 0.01
    theta_dtype, other_dtype = _dtypes(dtype)
    got = _np(_call(f"vanilla_step({np.dtype(theta_dtype).name} theta, {np.dtype(other_dtype).name} grad)",
                    ng.vanilla_step, _as_input(theta, theta_dtype, as_tensor), _as_input(g, other_dtype, as_tensor),
                    epsilon, hint=": cast grad to theta's dtype"), "vanilla_step")
    assert got.shape == (7,), f"vanilla_step: expected shape (7,), got {got.shape}"
    if abs(_parallel(got, g)) > 0.999 and abs(_parallel(got - theta, g)) < 0.99:
        pytest.fail("vanilla_step: the result is the step d itself; expected theta' = theta + d")
    d = got - theta
    tol = 1e-4 if np.float32 in (theta_dtype, other_dtype) else 1e-10
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
    got = _np(ng.score_matrix(policy, observations.copy(), actions.copy()), "score_matrix")
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
    got = _np(ng.fisher_matrix(_as_input(scores, dtype, as_tensor)), "fisher_matrix")
    hint = ""
    if got.shape == expected.shape and np.allclose(got, 9 * expected, rtol=1e-4):
        hint = " (a sum over the batch instead of the mean: missing 1/B)"
    elif got.shape == (9, 9):
        hint = " (S S^T instead of S^T S)"
    assert got.shape == (4, 4), f"fisher_matrix: expected shape [n, n] = (4, 4), got {got.shape}{hint}"
    np.testing.assert_allclose(got, expected, rtol=1e-5, err_msg=f"fisher_matrix: expected (1/B) S^T S{hint}")


# ------------------------------------------------------------------ natural_gradient_step


@pytest.mark.parametrize("dtype,as_tensor", MIXED_KINDS, ids=MIXED_IDS)
def test_natural_gradient_step_meets_the_kl_model_and_points_along_f_inverse_g(ng, dtype, as_tensor):
    rng = np.random.default_rng(3)
    n, epsilon = 6, 0.01
    fisher, theta, g = _random_spd(n, rng), rng.normal(size=n), rng.normal(size=n)
    theta_dtype, other_dtype = _dtypes(dtype)
    natural = np.linalg.solve(fisher, g)
    inputs = (_as_input(theta, theta_dtype, as_tensor), _as_input(g, other_dtype, as_tensor),
              _as_input(fisher, other_dtype, as_tensor))
    got = _np(_call(f"natural_gradient_step({np.dtype(theta_dtype).name} theta, {np.dtype(other_dtype).name} grad "
                    "and fisher)", ng.natural_gradient_step, *inputs, epsilon,
                    hint=": cast grad and fisher to theta's dtype"), "natural_gradient_step")
    assert got.shape == (n,), f"natural_gradient_step: expected shape ({n},), got {got.shape}"
    if abs(_parallel(got, natural)) > 0.999 and np.isclose(0.5 * got @ fisher @ got, epsilon, rtol=1e-2):
        pytest.fail("natural_gradient_step: the result is the step d = alpha F^-1 g itself; expected "
                    "theta' = theta + d (natural_step_cg returns d, natural_gradient_step returns theta + d)")
    d = got - theta
    tol = 1e-3 if np.float32 in (theta_dtype, other_dtype) else 1e-9
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
    v = rng.normal(size=hessian.shape[0])
    first, second = (_np(ng.fisher_vector_product(policy, observations.copy(), v.copy()), "fisher_vector_product")
                     for _ in range(2))
    if first.shape == second.shape and not np.allclose(first, second, rtol=1e-9, atol=1e-12):
        pytest.fail(
            "fisher_vector_product: two calls with the same policy, observations and v returned different results "
            f"({_show(first)} then {_show(second)}): it depends on sampled actions (dist.sample(), or a score "
            "grad log pi(a|s) of a sampled a). Only the states are samples: the KL's Hessian is exact, because "
            "KL(pi_old(.|s) || pi_theta(.|s)) is computed over all actions in closed form (tfd.kl_divergence), "
            "and its Hessian at theta_old is the Fisher matrix with the expectation over actions already taken")
    for _ in range(3):
        v = rng.normal(size=hessian.shape[0])
        expected = hessian @ v
        got = _np(ng.fisher_vector_product(policy, observations.copy(), v.copy()), "fisher_vector_product")
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
    undamped = _np(ng.fisher_vector_product(policy, observations.copy(), v.copy()), "fisher_vector_product")
    damped = _np(ng.fisher_vector_product(policy, observations.copy(), v.copy(), damping=0.25),
                 "fisher_vector_product(damping=0.25)")
    if np.allclose(undamped, 0.0):
        pytest.fail("fisher_vector_product: F v is zero for a random v; expected the Hessian of the mean KL times v")
    difference = damped - undamped
    if np.allclose(difference, 0.0):
        pytest.fail("fisher_vector_product: damping=0.25 changed nothing: damping left out (expected F v + damping v)")
    np.testing.assert_allclose(difference, 0.25 * v, rtol=1e-9, atol=1e-12,
                               err_msg="fisher_vector_product(v, damping) - fisher_vector_product(v) "
                                       "should be exactly damping * v")


@pytest.mark.parametrize("policy_dtype, input_dtype", [(tf.float64, np.float32), (tf.float32, np.float64)],
                         ids=["float64-policy-float32-inputs", "float32-policy-float64-inputs"])
def test_fisher_vector_product_computes_in_the_policy_s_dtype(ng, policy_dtype, input_dtype):
    # The training loop's policies are float32; a vector may come from NumPy in float64.
    policy = CategoricalPolicy(3, 3, (4,), seed=4, dtype=policy_dtype)
    rng = np.random.default_rng(8)
    observations = rng.normal(size=(4, 3)).astype(input_dtype)
    v = rng.normal(size=num_params(policy)).astype(input_dtype)
    expected = _kl_hessian(policy, observations) @ v + 1e-3 * v
    got = _np(_call(f"fisher_vector_product with a {policy_dtype.name} policy and a {np.dtype(input_dtype).name} "
                    "vector", ng.fisher_vector_product, policy, observations.copy(), v.copy(), damping=1e-3,
                    hint=": cast the vector to the policy's dtype (policy.trainable_variables[0].dtype), "
                         "not to a fixed one"), "fisher_vector_product")
    assert got.shape == expected.shape, f"fisher_vector_product: expected shape {expected.shape}, got {got.shape}"
    rtol = 1e-4 if tf.float32 in (policy_dtype,) else 1e-6  # float32 through two backward passes
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * np.max(np.abs(expected)),
                               err_msg="fisher_vector_product: expected H v + damping v")


# ------------------------------------------------------------------ conjugate_gradient


class Matvec:
    """x -> A x for a fixed matrix A (float64), as conjugate_gradient receives it."""

    def __init__(self, matrix):
        self.matrix = matrix

    def __call__(self, v):
        return tf.linalg.matvec(tf.constant(self.matrix), tf.cast(v, tf.float64))


def _krylov_minimiser(matrix, b, k):
    """What k CG steps from x = 0 return: the minimiser of the A-norm error over span{b, A b, ..., A^(k-1) b}."""
    krylov = np.stack([np.linalg.matrix_power(matrix, j) @ b for j in range(k)], axis=1)
    return krylov @ np.linalg.solve(krylov.T @ matrix @ krylov, krylov.T @ b)


def test_conjugate_gradient_solves_a_small_spd_system(ng):
    rng = np.random.default_rng(9)
    matrix, b = _random_spd(6, rng, condition=20.0), rng.normal(size=6)
    got = _np(ng.conjugate_gradient(Matvec(matrix), b.copy(), iterations=6, tolerance=1e-20), "conjugate_gradient")
    np.testing.assert_allclose(matrix @ got, b, rtol=1e-7, atol=1e-9,
                               err_msg="conjugate_gradient: 6 iterations on a 6 x 6 SPD system should solve "
                                       "it exactly (in exact arithmetic); A x != b")


def test_conjugate_gradient_iterates_are_the_krylov_minimisers(ng):
    # After k steps from x = 0, CG's x minimises the A-norm error over span{b, A b, ..., A^(k-1) b}:
    # this checks alpha, the updates of x, r and p, and that `iterations` steps are taken, no more.
    rng = np.random.default_rng(10)
    matrix, b = _random_spd(8, rng), rng.normal(size=8)
    for k in (1, 3):
        expected = _krylov_minimiser(matrix, b, k)
        got = _np(ng.conjugate_gradient(Matvec(matrix), b.copy(), iterations=k, tolerance=1e-20),
                  f"conjugate_gradient(iterations={k})")
        hint = ""
        if np.allclose(got, _krylov_minimiser(matrix, b, k + 1), rtol=1e-7, atol=1e-10):
            hint = f" (that is {k + 1} steps: one iteration too many)"
        elif k > 1 and np.allclose(got, _krylov_minimiser(matrix, b, k - 1), rtol=1e-7, atol=1e-10):
            hint = f" (that is {k - 1} steps: one iteration too few)"
        np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-10,
                                   err_msg=f"conjugate_gradient: after {k} step(s) from x = 0, x should minimise "
                                           f"the A-norm error over the Krylov space (check alpha and the update "
                                           f"of p){hint}")


def test_conjugate_gradient_stops_once_the_residual_is_below_its_tolerance(ng):
    # With this tolerance, r^T r falls below it after exactly 2 steps: CG must stop there and
    # return the 2-step iterate, not go on to the exact solution (4 steps on a 4 x 4 system).
    matrix = np.diag([1.0, 2.0, 4.0, 8.0])
    b = np.array([1.0, 1.0, 1.0, 1.0])
    residuals = [float(np.sum((b - matrix @ _krylov_minimiser(matrix, b, k)) ** 2)) if k else float(b @ b)
                 for k in range(4)]
    tolerance = float(np.sqrt(residuals[1] * residuals[2]))  # between the residuals after 1 and 2 steps
    assert min(residuals[:2]) > tolerance > residuals[2]
    expected = _krylov_minimiser(matrix, b, 2)
    got = _np(ng.conjugate_gradient(Matvec(matrix), b.copy(), iterations=10, tolerance=tolerance),
              "conjugate_gradient")
    hint = ""
    if np.allclose(got, np.linalg.solve(matrix, b), rtol=1e-6):
        hint = (f" (that is the exact solution, after 4 steps: the loop does not stop on its tolerance, "
                f"r^T r = {residuals[2]:.3g} < tolerance = {tolerance:.3g} after 2 steps)")
    elif np.allclose(got, _krylov_minimiser(matrix, b, 1), rtol=1e-6):
        hint = " (that is the 1-step iterate: it stopped one step early)"
    np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-10,
                               err_msg="conjugate_gradient: expected the iterate after 2 steps, where r^T r first "
                                       f"falls below the tolerance{hint}")


@pytest.mark.parametrize("scale", [0.0, 1e-7], ids=["zero-b", "tiny-b"])
def test_conjugate_gradient_returns_zero_when_b_is_within_tolerance(ng, scale):
    # r^T r is checked before every iteration, the first included: for b^T b < tolerance the
    # answer is x = 0 (for b = 0 the first alpha would be 0 / 0 = nan).
    matrix = np.diag([1.0, 2.0, 4.0, 8.0])
    b = scale * np.array([1.0, -1.0, 2.0, 0.5])
    got = ng.conjugate_gradient(Matvec(matrix), b.copy(), iterations=10, tolerance=1e-10)
    assert got is not None, "conjugate_gradient: got None (a missing return?)"
    got = np.asarray(got, dtype=np.float64)
    assert np.all(np.isfinite(got)), (
        f"conjugate_gradient(b = {_show(b)}, tolerance = 1e-10): expected x = 0, got {_show(got)}: not finite. "
        "b^T b = 0 is below the tolerance, but the first iteration ran anyway (alpha = r^T r / p^T A p = 0 / 0): "
        "the tolerance is not checked before the first iteration. Check r^T r < tolerance before every "
        "iteration, the first included")
    assert np.array_equal(got, np.zeros(4)), (
        f"conjugate_gradient(b = {_show(b)}, tolerance = 1e-10): expected x = 0, got {_show(got)}. "
        f"b^T b = {float(b @ b):.3g} is below the tolerance before the first iteration, so no step is taken, "
        "but a step was: the tolerance is not checked before the first iteration. Check r^T r < tolerance "
        "before every iteration, the first included")
    # Just above the tolerance, a step is taken, and it reduces the A-norm error (CG's every step does).
    b = 2e-5 * np.array([1.0, -1.0, 2.0, 0.5])  # b^T b = 2.5e-9 > 1e-10
    solution = np.linalg.solve(matrix, b)
    got = _np(ng.conjugate_gradient(Matvec(matrix), b.copy(), iterations=10, tolerance=1e-10), "conjugate_gradient")
    error = float((got - solution) @ matrix @ (got - solution))
    assert error < 0.5 * float(solution @ matrix @ solution), (
        f"conjugate_gradient(b = {_show(b)}, tolerance = 1e-10): b^T b = {float(b @ b):.3g} is above the tolerance, "
        f"so steps are taken towards A^-1 b = {_show(solution)}; got {_show(got)}")


# ------------------------------------------------------------------ mean_kl


def test_mean_kl_matches_the_gaussian_formula(ng):
    s = np.linspace(-2.0, 2.0, 9)[:, None]
    old, new = LinearGaussianPolicy(-1.0, 0.5), LinearGaussianPolicy(-0.7, 0.8)

    def kl(k0, s0, k1, s1):  # mean_s KL(N(k0 s, s0^2) || N(k1 s, s1^2))
        return np.mean(np.log(s1 / s0) + (s0**2 + (k0 - k1) ** 2 * s[:, 0] ** 2) / (2 * s1**2) - 0.5)

    expected, reversed_ = kl(-1.0, 0.5, -0.7, 0.8), kl(-0.7, 0.8, -1.0, 0.5)
    got = float(_np(ng.mean_kl(old, new, s.copy()), "mean_kl"))
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
    got = float(_np(ng.mean_kl(old, new, observations.copy()), "mean_kl"))
    assert got == pytest.approx(expected, rel=1e-4), \
        f"mean_kl: expected mean_s sum_a p_old (log p_old - log p_new) = {expected:.6g}, got {got:.6g}"


# ------------------------------------------------------------------ true KL of the steps


def _true_kl(old_policy, new_policy, observations) -> float:
    """The mean KL(pi_old || pi_new) over the observations, by tensorflow-probability (not your mean_kl)."""
    kl = tfp.distributions.kl_divergence(old_policy.distribution(observations), new_policy.distribution(observations))
    return float(tf.reduce_mean(kl))


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
    g = flatten(tape.gradient(pseudo_objective, policy.trainable_variables)).numpy().astype(np.float64)
    theta = get_flat_params(policy).numpy()
    d = _np(_call(f"natural_step_cg with a {dtype.name} policy and a float64 grad", ng.natural_step_cg, policy,
                  observations.copy(), g.copy(), epsilon, hint=": compute in the policy's dtype (cast grad to it)"),
            "natural_step_cg")
    assert d.shape == (num_params(policy),), f"natural_step_cg: expected the step d of shape ({num_params(policy)},), got {d.shape}"
    assert np.any(d != 0), "natural_step_cg: returned d = 0; expected a step with 1/2 d^T F d = epsilon"
    set_flat_params(stepped, d)
    if abs(_true_kl(policy, stepped, observations) / epsilon - 1.0) < 0.1:
        pytest.fail("natural_step_cg: the result is theta + d; natural_step_cg returns the step d itself "
                    "(the caller adds it: theta' = theta + d, or a line search along d)")
    if d @ g < 0:
        pytest.fail("natural_step_cg: g^T d < 0, the step goes downhill: sign flipped")
    set_flat_params(stepped, theta + d)
    ratio = _true_kl(policy, stepped, observations) / epsilon
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
    d = _np(ng.natural_step_cg(policy, observations.copy(), g.copy(), 1e-3), "natural_step_cg")
    cos = _parallel(d, np.linalg.solve(fisher, g))
    if abs(_parallel(d, fisher @ g)) > 0.999:
        pytest.fail("natural_step_cg: the step points along F g: F instead of F^-1")
    assert cos > 1 - 1e-6, f"natural_step_cg: expected a step along (F + damping I)^-1 g, got cos(angle) = {cos:.8f}"
    model_kl = 0.5 * float(d @ fisher @ d)
    assert model_kl == pytest.approx(1e-3, rel=1e-6), \
        f"natural_step_cg: expected 1/2 d^T (F + damping I) d = epsilon = 0.001, got {model_kl:.6g}"


def test_on_the_1d_example_the_natural_step_meets_its_kl_and_the_vanilla_step_does_not(ng):
    """The lecture's point: ||d||^2 <= eps says nothing about how much the policy changes.

    The policy a ~ N(k s, sigma^2), in LinearGaussianPolicy's flat coordinates
    theta = (k, log sigma): there the Fisher is F = diag(E[s^2] / sigma^2, 2) (in the
    coordinates (k, sigma) of hw/plot_natural_gradient.py it is diag(E[s^2] / sigma^2,
    2 / sigma^2); docs/one_d_example.md). A k-step moves the policy 1/sigma^2 times more
    than a log sigma step of the same length. Gradients are the exact grad J of hw.lq_env.
    """
    k, sigma, epsilon = -1.8, 0.2, 1e-3
    observations = np.random.default_rng(16).normal(size=(500, 1))
    fisher = np.diag([np.mean(observations**2) / sigma**2, 2.0])
    g = lq_env.theta_gradient(k, sigma)
    policy, stepped = LinearGaussianPolicy(k, sigma), LinearGaussianPolicy(k, sigma)
    theta = get_flat_params(policy).numpy()
    natural = np.linalg.solve(fisher, g)

    got = _np(ng.natural_gradient_step(theta.copy(), g.copy(), fisher.copy(), epsilon), "natural_gradient_step")
    cos = _parallel(got - theta, natural)
    hint = " (that is g's direction, the vanilla one: F^-1 g is missing)" if _parallel(got - theta, g) > 0.999 else ""
    assert cos > 1 - 1e-9, \
        f"natural_gradient_step on the 1-D example: expected a step along F^-1 g, got cos(angle) = {cos:.6f}{hint}"
    set_flat_params(stepped, got)
    natural_ratio = _true_kl(policy, stepped, observations) / epsilon
    hint = " (about half: missing factor 2)" if 0.45 < natural_ratio < 0.55 else ""
    assert 0.9 < natural_ratio < 1.1, \
        f"natural_gradient_step on the 1-D example: expected true KL / eps in (0.9, 1.1), got {natural_ratio:.4g}{hint}"

    got = _np(ng.vanilla_step(theta.copy(), g.copy(), epsilon), "vanilla_step")
    assert float((got - theta) @ (got - theta)) == pytest.approx(epsilon, rel=1e-9), \
        f"vanilla_step on the 1-D example: expected ||theta' - theta||^2 = eps, got {float((got - theta) @ (got - theta)):.6g}"
    set_flat_params(stepped, got)
    vanilla_ratio = _true_kl(policy, stepped, observations) / epsilon
    assert vanilla_ratio > 5.0, \
        f"vanilla_step on the 1-D example: expected a true KL over 5 eps (F_kk = {fisher[0, 0]:.1f}), " \
        f"got {vanilla_ratio:.4g} eps"


# ------------------------------------------------------------------ line_search


class Recorder:
    """A function of theta that remembers its arguments."""

    def __init__(self, function):
        self.function, self.arguments = function, []

    def __call__(self, theta):
        theta = np.array(theta, dtype=np.float64)  # a copy
        self.arguments.append(theta)
        return self.function(theta)


THETA, FULL_STEP, EPSILON = np.array([1.0, -2.0, 0.5]), np.array([0.3, 0.1, -0.2]), 0.01


def _fraction(x):
    """t such that x = THETA + t FULL_STEP."""
    return float(FULL_STEP @ (x - THETA) / (FULL_STEP @ FULL_STEP))


def _kl(kl_of_full_step):
    """kl(theta + t d) = t^2 kl(theta + d), a quadratic KL."""
    return Recorder(lambda x: kl_of_full_step * _fraction(x) ** 2)


def _line_search(ng, surrogate, kl, **kwargs):
    """ng.line_search on copies of THETA and FULL_STEP."""
    return _np(ng.line_search(THETA.copy(), FULL_STEP.copy(), surrogate, kl, EPSILON, **kwargs), "line_search")


def _what_mistakes_return(surrogate, kl, max_backtracks=10):
    """{description: the theta' a common mistake returns} for one line-search problem."""
    def search(baseline, fractions, fallback, check_kl=True):
        for t in fractions:
            x = THETA + t * FULL_STEP
            if (not check_kl or kl.function(x) <= EPSILON) and surrogate.function(x) > baseline:
                return x
        return fallback

    fractions = [0.5**j for j in range(max_backtracks)]
    right = surrogate.function(THETA)
    return {
        f"the surrogate compared with 0 instead of surrogate(theta) = {right:.4g}: a step must improve on "
        "theta's own surrogate, which need not be 0": search(0.0, fractions, THETA),
        "the last allowed step 0.5^(max_backtracks - 1) d was never tried (range(max_backtracks) gives "
        "j = 0, ..., max_backtracks - 1)": search(right, fractions[:-1], THETA),
        "gave up with its last candidate theta + 0.5^(max_backtracks - 1) d: when no step is acceptable, "
        "line_search returns theta itself": search(right, fractions, THETA + fractions[-1] * FULL_STEP),
        "the KL ignored: a step is acceptable only if kl(.) <= epsilon": search(right, fractions, THETA, False),
    }


def _check_line_search(got, expected, what, surrogate, kl, max_backtracks=10):
    if np.allclose(got, expected, rtol=1e-12, atol=1e-12):
        return
    names = [name for name, wrong in _what_mistakes_return(surrogate, kl, max_backtracks).items()
             if not np.allclose(wrong, expected, rtol=1e-12, atol=1e-12) and np.allclose(got, wrong, rtol=1e-12)]
    raise AssertionError(f"line_search: {what}: expected theta + {_fraction(expected):g} d = {_show(expected)}, got "
                         f"theta + {_fraction(got):.6g} d = {_show(got)}"
                         + (". Likely mistake: " + " -- or -- ".join(names) if names else ""))


def test_line_search_returns_the_first_acceptable_step(ng):
    # kl(theta + 0.5^j d) = 0.05 * 0.25^j: 0.05, 0.0125, 0.003125 -> j = 2 is the first within eps = 0.01
    kl, surrogate = _kl(0.05), Recorder(lambda x: _fraction(x))  # 5 eps at the full step; improves along d
    got = _line_search(ng, surrogate, kl)
    _check_line_search(got, THETA + 0.25 * FULL_STEP, "the first step with kl <= epsilon (here 0.5^2 d)", surrogate, kl)


@pytest.mark.parametrize("offset", [0.0, 1.0, -1.0], ids=["surrogate0", "surrogate+1", "surrogate-1"])
def test_line_search_needs_an_improvement_of_the_surrogate(ng, offset):
    # surrogate = offset - (t - 0.2)^2 at theta + t d: offset - 0.04 at theta, worse at t = 1
    # and 0.5, better at 0.25. Only the comparison with surrogate(theta) gives t = 0.25 whatever the offset.
    kl = _kl(0.001)  # every step within eps
    surrogate = Recorder(lambda x: offset - (_fraction(x) - 0.2) ** 2)
    got = _line_search(ng, surrogate, kl)
    _check_line_search(got, THETA + 0.25 * FULL_STEP,
                       f"the first step whose surrogate exceeds surrogate(theta) = {offset - 0.04:g}", surrogate, kl)


def test_line_search_tries_the_last_allowed_step(ng):
    # kl(theta + t d) = 512 eps t^2: only t = 0.5^5 = 1/32 (KL eps / 2) is within eps among j = 0..5.
    kl, surrogate = _kl(512 * EPSILON), Recorder(lambda x: _fraction(x))
    got = _line_search(ng, surrogate, kl, max_backtracks=6)
    _check_line_search(got, THETA + FULL_STEP / 32, "max_backtracks=6, only the last allowed step 0.5^5 d is within "
                       "the KL", surrogate, kl, max_backtracks=6)


@pytest.mark.parametrize("reason", ["kl", "surrogate"])
def test_line_search_returns_theta_exactly_when_no_step_is_acceptable(ng, reason):
    kl, surrogate = _kl(0.001), Recorder(lambda x: _fraction(x))
    if reason == "kl":
        kl = Recorder(lambda x: 1.0)  # never within epsilon, always improving
    else:
        surrogate = Recorder(lambda x: -_fraction(x))  # never improving
    got = _line_search(ng, surrogate, kl, max_backtracks=6)
    which = "kl(.) > epsilon for every step" if reason == "kl" else "the surrogate never improves"
    if not np.array_equal(got, THETA):
        _check_line_search(got, THETA, f"{which}: expected theta itself", surrogate, kl, max_backtracks=6)
        raise AssertionError(f"line_search: {which}: expected theta itself {THETA}, got {got}")
    tried = [x for x in kl.arguments + surrogate.arguments if not np.array_equal(x, THETA)]
    fractions = sorted({round(_fraction(x), 12) for x in tried})
    np.testing.assert_allclose(fractions, sorted(0.5**j for j in range(6)), rtol=1e-9,
                               err_msg="line_search(max_backtracks=6): expected to try the steps 0.5^j d, j = 0..5")
