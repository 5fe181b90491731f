"""Hidden tests of Part 2 (hw/natural_gradient.py), Lecture 9 part 4.

The natural step's constraint is checked exactly on the quadratic model (1/2 d^T F d =
epsilon) and on the true mean KL of the lecture's 1-D Gaussian policy; Fisher-vector
products against the explicit Hessian of the mean KL (computed here with nested tapes);
conjugate gradient, the CG natural step, mean_kl and the line search against the
reference and against exact answers.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from grader.checks import as_array, direction_hint, expect, expect_close, expect_scalar, fmt, memo, ratio_hint
from grader.sandbox import MatVec, PolicySpec, Quadratic, Tensor
from hw.policies import CategoricalPolicy, GaussianPolicy, LinearGaussianPolicy
from hw.utils import get_flat_params, num_params, set_flat_params

tfd = tfp.distributions


# ----------------------------------------------------------------------------- helpers

def _send(array, as_tensor):
    return Tensor(array) if as_tensor else array


def _spd(rng, n, condition=50.0):
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    eigenvalues = np.geomspace(1.0, condition, n) * rng.uniform(0.5, 2.0)
    return (q * eigenvalues) @ q.T


def _make_policy(kind, seed, rng, dtype=tf.float64):
    """(policy, spec, observations sampler) for a kind of policy with perturbed parameters."""
    if kind == "categorical":
        policy = CategoricalPolicy(3, 3, (4,), seed=seed, dtype=dtype)
        sizes = dict(obs_dim=3, n_actions=3, hidden_sizes=(4,))
    elif kind == "gaussian":
        policy = GaussianPolicy(2, 2, (3,), seed=seed, dtype=dtype)
        sizes = dict(obs_dim=2, act_dim=2, hidden_sizes=(3,))
    else:
        policy = LinearGaussianPolicy(-0.4, 0.8, dtype=dtype)
        sizes = {}
    theta = get_flat_params(policy).numpy().astype(np.float64)
    theta = theta + rng.normal(scale=0.4, size=theta.shape)
    set_flat_params(policy, theta)
    spec = PolicySpec(kind, theta, dtype=dtype.name, seed=seed, **sizes)
    obs_dim = sizes.get("obs_dim", 1)
    return policy, spec, obs_dim


def _clone(policy, kind, seed, dtype=tf.float64):
    if kind == "categorical":
        other = CategoricalPolicy(3, 3, (4,), seed=seed, dtype=dtype)
    elif kind == "gaussian":
        other = GaussianPolicy(2, 2, (3,), seed=seed, dtype=dtype)
    else:
        other = LinearGaussianPolicy(0.0, 1.0, dtype=dtype)
    set_flat_params(other, get_flat_params(policy))
    return other


def _kl_hessian(policy, kind, seed, observations) -> np.ndarray:
    """The explicit Hessian at theta_old of mean_s KL(pi_old(.|s) || pi_theta(.|s)) [n, n],
    by nested tapes on a flat parameter vector (independent of any Fisher-vector product)."""
    key = ("kl_hessian", kind, seed, get_flat_params(policy).numpy().tobytes(), np.asarray(observations).tobytes())
    return memo(key, lambda: _compute_kl_hessian(policy, kind, seed, observations))


def _compute_kl_hessian(policy, kind, seed, observations) -> np.ndarray:
    old = _clone(policy, kind, seed)
    variables = policy.trainable_variables
    sizes = [int(np.prod(v.shape)) for v in variables]
    flat = tf.Variable(get_flat_params(policy).numpy())

    def kl_of(flat_vector):
        pieces = [tf.reshape(p, v.shape) for p, v in zip(tf.split(flat_vector, sizes), variables)]
        replacements = {id(v): p for v, p in zip(variables, pieces)}
        return tf.reduce_mean(tfd.kl_divergence(old.distribution(observations),
                                                _forward(policy, kind, replacements, observations)))

    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            value = kl_of(flat)
        gradient = inner.gradient(value, flat)
    hessian = outer.jacobian(gradient, flat).numpy()
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


def _gaussian_1d_kl(k_old, s_old, k_new, s_new, states):
    """KL(N(k_old s, s_old^2) || N(k_new s, s_new^2)), averaged over states (exact)."""
    return float(np.mean(np.log(s_new / s_old) + (s_old ** 2 + (k_old - k_new) ** 2 * states ** 2) / (2 * s_new ** 2)
                         - 0.5))


# ----------------------------------------------------------------------------- vanilla, scores, Fisher

def test_vanilla_step(ng, ref_ng, rng):
    """vanilla_step: theta + sqrt(eps / ||g||^2) g, so that ||theta' - theta||^2 = eps"""
    for n, epsilon, dtype, as_tensor in [(5, 0.01, np.float64, False), (3, 0.5, np.float32, True),
                                         (1, 2.0, np.float64, True)]:
        theta = rng.normal(size=n).astype(dtype)
        g = (rng.normal(size=n) * 3).astype(dtype)
        t64, g64 = theta.astype(np.float64), g.astype(np.float64)
        expected_step = np.sqrt(epsilon / (g64 @ g64)) * g64
        got = as_array(ng.vanilla_step(_send(theta, as_tensor), _send(g, as_tensor), epsilon), "vanilla_step")
        description = f"vanilla_step(n={n}, epsilon={epsilon}, {np.dtype(dtype).name}, " \
                      f"{'tf.Tensor' if as_tensor else 'NumPy'} input)"
        expect(got.shape == (n,), f"{description}: expected shape ({n},), got {got.shape}")
        rtol = 1e-6 if dtype == np.float64 else 1e-4
        expect_close(got - t64, expected_step, f"{description}, the step theta' - theta", rtol=rtol, atol=1e-6,
                     mistakes=[("theta + epsilon g (no normalisation)", epsilon * g64),
                               ("theta + sqrt(epsilon) g (g not normalised)", np.sqrt(epsilon) * g64),
                               ("a step of length epsilon instead of sqrt(epsilon)", epsilon * g64 / np.linalg.norm(g64)),
                               ("returning the step instead of theta + step", -t64 + expected_step)],
                     hint=f"(||theta' - theta||^2 should be {epsilon}, yours is "
                          f"{float(np.sum((got - t64) ** 2)):.4g}.)")


def test_score_matrix(ng, ref_ng, seed, rng):
    """score_matrix: row i = grad log pi(a_i|s_i), flattened (categorical, Gaussian, 1-D LQ)"""
    for i, (kind, batch, dtype) in enumerate([("categorical", 6, tf.float64), ("gaussian", 5, tf.float32),
                                              ("linear_gaussian", 4, tf.float64), ("categorical", 1, tf.float32)]):
        policy, spec, obs_dim = _make_policy(kind, seed + i, rng, dtype)
        observations = rng.normal(size=(batch, obs_dim)).astype(dtype.as_numpy_dtype)
        if kind == "categorical":
            actions = rng.integers(0, 3, size=batch)
        else:
            means = np.asarray(policy.predictions(observations), np.float64)
            std = np.exp(np.asarray(policy.log_std, np.float64))
            actions = (means + std * rng.normal(size=means.shape)).astype(dtype.as_numpy_dtype)
        expected = memo(("score_matrix", seed, i, observations.tobytes(), np.asarray(actions).tobytes()),
                        lambda: np.asarray(ref_ng.score_matrix(policy, observations, actions), np.float64))
        got = ng.score_matrix(spec, observations, actions)
        description = f"score_matrix ({kind} policy, B={batch}, n={num_params(policy)}, {dtype.name})"
        tolerance = dict(rtol=1e-6, atol=1e-8) if dtype == tf.float64 else dict(rtol=1e-3, atol=1e-5)
        expect_close(got, expected, description, **tolerance, mistakes=[
            ("the mean gradient repeated in every row", np.tile(expected.mean(axis=0), (batch, 1))),
        ], hint="(Row i is grad_theta log pi(a_i | s_i) in the order of policy.trainable_variables.)")


def test_fisher_matrix(ng, rng):
    """fisher_matrix: (1/B) S^T S"""
    for batch, n, dtype, as_tensor in [(7, 4, np.float64, False), (1, 3, np.float64, True), (9, 5, np.float32, True)]:
        scores = rng.normal(size=(batch, n)).astype(dtype)
        s64 = scores.astype(np.float64)
        expected = s64.T @ s64 / batch
        got = ng.fisher_matrix(_send(scores, as_tensor))
        description = f"fisher_matrix(S of shape [{batch}, {n}], {np.dtype(dtype).name})"
        mistakes = [("the centred covariance (the mean score subtracted)", np.cov(s64.T, bias=True).reshape(n, n))]
        if batch > 1:
            mistakes.append(("dividing by B - 1", s64.T @ s64 / (batch - 1)))
        expect_close(got, expected, description, rtol=1e-5 if dtype == np.float64 else 1e-4, atol=1e-6,
                     batch_size=batch, mistakes=mistakes,
                     hint="(S S^T would be [B, B]; F is [n, n].)")


# ----------------------------------------------------------------------------- natural step

def test_natural_gradient_step_constraint(ng, rng):
    """natural_gradient_step: along F^-1 g with 1/2 d^T F d = eps exactly (quadratic model)"""
    for n, epsilon, dtype, as_tensor in [(4, 0.01, np.float64, False), (6, 0.2, np.float64, True),
                                         (3, 0.05, np.float32, True), (1, 0.1, np.float64, False)]:
        fisher = _spd(rng, n)
        theta, g = rng.normal(size=n), rng.normal(size=n) * 2
        x = np.linalg.solve(fisher, g)
        expected_step = np.sqrt(2 * epsilon / (g @ x)) * x
        sent = [a.astype(dtype) for a in (theta, g, fisher)]
        t64, g64, f64 = (a.astype(np.float64) for a in sent)
        got = as_array(ng.natural_gradient_step(*(_send(a, as_tensor) for a in sent), epsilon), "natural_gradient_step")
        description = f"natural_gradient_step(n={n}, epsilon={epsilon}, {np.dtype(dtype).name})"
        expect(got.shape == (n,), f"{description}: expected shape ({n},), got {got.shape}")
        step = got - t64
        model = 0.5 * step @ f64 @ step
        fg = f64 @ g64
        mistakes = [
            ("F instead of F^-1 (d along F g)", np.sqrt(2 * epsilon / (g64 @ np.linalg.solve(f64, g64))) * fg),
            ("F instead of F^-1 (d along F g, scaled to the constraint)", np.sqrt(2 * epsilon / (fg @ f64 @ fg)) * fg),
            ("the vanilla direction g", np.sqrt(2 * epsilon / (g64 @ f64 @ g64)) * g64),
            ("alpha = sqrt(2 eps / g^T F g)", np.sqrt(2 * epsilon / (g64 @ f64 @ g64)) * np.linalg.solve(f64, g64)),
            ("F instead of F^-1 (d along F g)", np.sqrt(2 * epsilon / (g64 @ f64 @ g64)) * fg),
        ]
        rtol = 1e-5 if dtype == np.float64 else 2e-3
        hint = direction_hint(step, [("F g (F instead of F^-1)", fg), ("g (the vanilla direction)", g64),
                                     ("F^-1 g", np.linalg.solve(f64, g64))])
        hint += ratio_hint(model / epsilon)
        expect_close(step, np.sqrt(2 * epsilon / (g64 @ np.linalg.solve(f64, g64))) * np.linalg.solve(f64, g64),
                     f"{description}, the step d = theta' - theta", rtol=rtol, atol=1e-7, mistakes=mistakes,
                     hint=f"(1/2 d^T F d should be epsilon = {epsilon}; yours is {model:.4g}.){hint}")
        expect(abs(model - epsilon) <= rtol * 10 * epsilon,
               f"{description}: 1/2 d^T F d = {model:.6g}, expected epsilon = {epsilon}")
        del expected_step


def test_natural_step_true_kl(ng, rng):
    """natural_gradient_step: true mean KL ~ eps for a small eps on the 1-D Gaussian policy"""
    from hw import lq_env
    for k, sigma, spread, epsilon in [(-0.3, 0.7, 3.0, 1e-3), (-0.8, 1.3, 0.5, 2e-3)]:
        states = rng.normal(scale=spread, size=64)
        theta = np.array([k, np.log(sigma)])
        fisher = np.diag([np.mean(states ** 2) / sigma ** 2, 2.0])  # exact, in (k, log sigma)
        g = lq_env.theta_gradient(k, sigma)
        got = as_array(ng.natural_gradient_step(theta, g, fisher, epsilon), "natural_gradient_step")
        expect(got.shape == (2,), f"natural_gradient_step: expected shape (2,), got {got.shape}")
        kl = _gaussian_1d_kl(k, sigma, got[0], np.exp(got[1]), states)
        # The vanilla step of the same size epsilon (Euclidean) is far from the KL budget:
        vanilla = theta + np.sqrt(epsilon / (g @ g)) * g
        vanilla_kl = _gaussian_1d_kl(k, sigma, vanilla[0], np.exp(vanilla[1]), states)
        hint = ratio_hint(kl / epsilon) + direction_hint(got - theta, [
            ("F g (F instead of F^-1)", fisher @ g), ("g (the vanilla direction)", g),
            ("F^-1 g", np.linalg.solve(fisher, g))])
        expect(0.8 <= kl / epsilon <= 1.25,
               f"natural_gradient_step on a ~ N(k s, sigma^2) with k={k}, sigma={sigma} and epsilon={epsilon}: the "
               f"true mean KL between the old and new policies is {kl:.4g}, expected close to epsilon "
               f"(within [0.8, 1.25] eps; the vanilla step of the same epsilon gives {vanilla_kl:.4g}).{hint}")


def test_fisher_vector_product(ng, ref_ng, seed, rng):
    """fisher_vector_product: (F + damping I) v vs the explicit Hessian of the mean KL"""
    cases = [("categorical", 0.0, 6), ("gaussian", 0.0, 5), ("linear_gaussian", 0.0, 8), ("categorical", 0.1, 4),
             ("gaussian", 0.05, 1)]
    for i, (kind, damping, batch) in enumerate(cases):
        policy, spec, obs_dim = _make_policy(kind, seed + i, rng)
        observations = rng.normal(size=(batch, obs_dim))
        hessian = _kl_hessian(policy, kind, seed + i, observations)
        if kind == "linear_gaussian":  # the closed form of the lecture's example
            sigma = float(np.exp(spec.params[1]))
            closed = np.diag([np.mean(observations ** 2) / sigma ** 2, 2.0])
            assert np.allclose(hessian, closed, rtol=1e-8, atol=1e-10)
        v = rng.normal(size=num_params(policy))
        expected = hessian @ v + damping * v
        kwargs = {"damping": damping} if damping else {}
        got = ng.fisher_vector_product(spec, observations, v, **kwargs)
        description = f"fisher_vector_product ({kind} policy, n={num_params(policy)}, B={batch}, damping={damping})"
        mistakes = [("the gradient of the KL (zero at theta_old) instead of its Hessian-vector product, or a KL "
                     "whose old side is not held fixed (KL(pi_theta || pi_theta) = 0)", damping * v),
                    ("F v without the damping term", hessian @ v)]
        expect_close(got, expected, description, rtol=1e-5, atol=1e-8, mistakes=mistakes,
                     hint="(F is the Hessian of the mean KL(pi_old || pi_theta) at theta_old.)")


def test_conjugate_gradient(ng, ref_ng, rng):
    """conjugate_gradient: solves A x = b; exact iteration count and early stop"""
    n = 6
    matrix = _spd(rng, n, condition=30.0)
    b = rng.normal(size=n)
    exact = np.linalg.solve(matrix, b)
    got = ng.conjugate_gradient(MatVec(matrix), b, iterations=n)
    expect_close(got, exact, f"conjugate_gradient(A {n}x{n} SPD, iterations={n}) vs A^-1 b", rtol=1e-6, atol=1e-8,
                 mistakes=[("A b (the product, not the solution)", matrix @ b)])
    got = ng.conjugate_gradient(MatVec(matrix), Tensor(b.astype(np.float32)), iterations=20, tolerance=1e-8)
    expect_close(got, exact, "conjugate_gradient(tf.Tensor float32 b, iterations=20) vs A^-1 b", rtol=2e-3, atol=1e-3)
    for iterations in (1, 2, 3):
        expected = np.asarray(ref_ng.conjugate_gradient(lambda x: tf.linalg.matvec(tf.constant(matrix), x), b,
                                                        iterations=iterations), np.float64)
        wrong = [(f"{j} iteration(s) instead of {iterations}",
                  np.asarray(ref_ng.conjugate_gradient(lambda x: tf.linalg.matvec(tf.constant(matrix), x), b,
                                                       iterations=j), np.float64))
                 for j in (iterations - 1, iterations + 1) if j >= 0]
        got = ng.conjugate_gradient(MatVec(matrix), b, iterations=iterations)
        expect_close(got, expected, f"conjugate_gradient after exactly iterations={iterations} step(s) from x = 0",
                     rtol=1e-6, atol=1e-9, mistakes=wrong)
    # Early stop: a tolerance between the squared residuals after steps 1 and 2 stops after step 2.
    residuals = []
    for iterations in (1, 2):
        x = np.asarray(ref_ng.conjugate_gradient(lambda v: tf.linalg.matvec(tf.constant(matrix), v), b,
                                                 iterations=iterations), np.float64)
        residuals.append(float(np.sum((b - matrix @ x) ** 2)))
    tolerance = float(np.sqrt(residuals[0] * residuals[1]))
    expected = np.asarray(ref_ng.conjugate_gradient(lambda v: tf.linalg.matvec(tf.constant(matrix), v), b,
                                                    iterations=n, tolerance=tolerance), np.float64)
    got = ng.conjugate_gradient(MatVec(matrix), b, iterations=n, tolerance=tolerance)
    expect_close(got, expected, f"conjugate_gradient(iterations={n}, tolerance={tolerance:.3g}): r^T r falls below "
                 "the tolerance after 2 steps, so it must stop there", rtol=1e-6, atol=1e-9,
                 mistakes=[("ignoring the tolerance (running all the iterations)", exact)])
    # Well-conditioned system, default arguments.
    identity_like = np.eye(3) * 2.0
    got = ng.conjugate_gradient(MatVec(identity_like), np.array([1.0, -2.0, 4.0]))
    expect_close(got, np.array([0.5, -1.0, 2.0]), "conjugate_gradient(2 I, b) with default arguments", rtol=1e-8,
                 atol=1e-10)


def test_natural_step_cg(ng, ref_ng, seed, rng):
    """natural_step_cg: the TRPO step d = sqrt(2 eps / x^T F x) x, x from CG on F x = g"""
    cases = [("categorical", 0.01, 10, 1e-3, 8), ("gaussian", 0.05, 5, 1e-2, 6), ("linear_gaussian", 0.02, 4, 1e-3, 16)]
    for i, (kind, epsilon, iterations, damping, batch) in enumerate(cases):
        policy, spec, obs_dim = _make_policy(kind, seed + 10 + i, rng)
        observations = rng.normal(size=(batch, obs_dim))
        n = num_params(policy)
        g = rng.normal(size=n)
        expected = memo(("natural_step_cg", seed, i, observations.tobytes(), g.tobytes()),
                        lambda: np.asarray(ref_ng.natural_step_cg(policy, observations, g, epsilon, iterations,
                                                                  damping), np.float64))
        hessian = _kl_hessian(policy, kind, seed + 10 + i, observations) + damping * np.eye(n)
        fg = hessian @ g
        got = ng.natural_step_cg(spec, observations, g, epsilon, iterations=iterations, damping=damping)
        description = (f"natural_step_cg ({kind} policy, n={n}, epsilon={epsilon}, iterations={iterations}, "
                       f"damping={damping})")
        got_array = as_array(got, description)
        model = 0.5 * got_array @ hessian @ got_array if got_array.shape == (n,) else float("nan")
        hint = ratio_hint(model / epsilon) + direction_hint(got_array, [
            ("F g (F instead of F^-1)", fg), ("g (the vanilla direction)", g)])
        expect_close(got, expected, description, rtol=1e-4, atol=1e-7, mistakes=[
            ("F instead of F^-1 (d along F g)", np.sqrt(2 * epsilon / (fg @ hessian @ fg)) * fg),
            ("the vanilla direction g", np.sqrt(2 * epsilon / (g @ hessian @ g)) * g),
        ], hint=f"(1/2 d^T F d should be epsilon = {epsilon} for the damped F; yours is {model:.4g}. "
                f"The step d, not theta + d.){hint}")


def test_mean_kl(ng, ref_ng, seed, rng):
    """mean_kl: mean over observations of KL(pi_old || pi_new) (categorical, Gaussian, 1-D)"""
    for i, (kind, batch) in enumerate([("categorical", 7), ("gaussian", 5), ("linear_gaussian", 9),
                                       ("categorical", 1)]):
        old, old_spec, obs_dim = _make_policy(kind, seed + i, rng)
        new, new_spec, _ = _make_policy(kind, seed + i, rng)
        observations = rng.normal(size=(batch, obs_dim))
        expected = float(ref_ng.mean_kl(old, new, observations))
        forward = tfd.kl_divergence(old.distribution(observations), new.distribution(observations)).numpy()
        reverse = tfd.kl_divergence(new.distribution(observations), old.distribution(observations)).numpy()
        got = ng.mean_kl(old_spec, new_spec, observations)
        expect_scalar(got, expected, f"mean_kl ({kind} policies, B={batch})", rtol=1e-6, atol=1e-9, batch_size=batch,
                      mistakes=[("the reversed KL(pi_new || pi_old)", float(np.mean(reverse))),
                                ("the sum over observations instead of the mean", float(np.sum(forward)))])


def test_line_search(ng, ref_ng, rng):
    """line_search: the first theta + r^j d with kl <= eps and a better surrogate, else theta"""
    n = 3
    theta = rng.normal(size=n)
    direction = rng.normal(size=n)
    fisher = _spd(rng, n, condition=5.0)
    unit_kl = 0.5 * direction @ fisher @ direction  # kl(theta + s d) = s^2 unit_kl
    # surrogate(theta + s d) = s a - 1/2 s^2 c  (a > 0: improves for 0 < s < 2 a / c)
    a = 1.0
    cases = [
        # (description, c, epsilon / unit_kl, ratio, max_backtracks, expected j or None)
        ("the full step is accepted", 0.1, 2.0, 0.5, 10, 0),
        ("the KL forces two backtracks", 0.1, 0.2, 0.5, 10, 2),
        ("the surrogate does not improve at the full step", 2.5, 2.0, 0.5, 10, 1),
        ("no step is acceptable (the surrogate never improves)", -1.0, 2.0, 0.5, 10, None),
        ("only j = max_backtracks would pass", 0.1, 0.8 ** 6 + 1e-3, 0.8, 3, None),
        ("several steps pass: the first one is taken, not the best (0.5 d improves more)", 1.8, 2.0, 0.5, 10, 0),
        ("backtrack_ratio 0.8, three backtracks", 0.1, 0.8 ** 6 + 1e-3, 0.8, 10, 3),
    ]
    for description, c, budget, ratio, max_backtracks, j in cases:
        epsilon = budget * unit_kl
        if c < 0:  # surrogate decreases along d
            linear = -direction @ fisher
        else:
            linear = a * direction @ fisher / (direction @ fisher @ direction) * 1.0
        curvature = c * np.outer(linear, linear) / max(a, 1e-12) if c > 0 else np.zeros((n, n))
        surrogate = Quadratic(center=theta, linear=linear, matrix=-curvature)
        kl = Quadratic(center=theta, matrix=fisher)

        def value(q, x):
            y = x - theta
            linear = np.zeros(n) if q.linear is None else q.linear
            matrix = np.zeros((n, n)) if q.matrix is None else q.matrix
            return float(linear @ y + 0.5 * y @ matrix @ y)
        expected = theta if j is None else theta + ratio ** j * direction
        # the grader's own statement of the rule, as a check of the case itself
        first = next((theta + ratio ** i * direction for i in range(max_backtracks)
                      if value(kl, theta + ratio ** i * direction) <= epsilon
                      and value(surrogate, theta + ratio ** i * direction) > 0.0), theta)
        assert np.allclose(first, expected), description
        got = as_array(ng.line_search(theta, direction, surrogate, kl, epsilon, backtrack_ratio=ratio,
                                      max_backtracks=max_backtracks), "line_search")
        took = next((f"theta + {ratio}^{i} d" for i in range(-1, max_backtracks + 2)
                     if got.shape == (n,) and np.allclose(got, theta + ratio ** i * direction, rtol=1e-8, atol=1e-10)),
                    None)
        if got.shape == (n,) and np.allclose(got, theta, rtol=1e-8, atol=1e-10):
            took = "theta (no step)"
        wanted = "theta (no step)" if j is None else f"theta + {ratio}^{j} d"
        message = (f"line_search ({description}; epsilon={epsilon:.4g}, backtrack_ratio={ratio}, "
                   f"max_backtracks={max_backtracks}): expected {wanted}"
                   + (f", got {took}." if took else f", got {fmt(got)}."))
        expect_close(got, expected, message.rstrip("."), rtol=1e-8, atol=1e-10)
