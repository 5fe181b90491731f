"""Hidden tests of Part 2 (hw/natural_gradient.py), Lecture 9 part 4.

Each test takes its cases from the hidden instance (grader/instances/part2.py) and checks,
here, in NumPy: the natural step's constraint exactly on the quadratic model
(1/2 d^T F d = epsilon) and on the true mean KL of the lecture's 1-D Gaussian policy;
Fisher-vector products against the explicit Hessian of the mean KL; conjugate gradient,
the CG natural step, mean_kl and the line search against the reference and exact answers.
"""
from __future__ import annotations

import numpy as np

from grader.checks import (MIXED_DTYPES, as_array, direction_hint, expect, expect_close, expect_scalar, fmt, in_case,
                           ratio_hint)
from grader.wire import Tensor


def _plain(value) -> np.ndarray:
    """An input as float64, whether it was sent as an array or a tf.Tensor."""
    return np.asarray(value.array if isinstance(value, Tensor) else value, dtype=np.float64)


def _gaussian_1d_kl(k_old, s_old, k_new, s_new, states):
    """KL(N(k_old s, s_old^2) || N(k_new s, s_new^2)), averaged over states (exact)."""
    return float(np.mean(np.log(s_new / s_old) + (s_old ** 2 + (k_old - k_new) ** 2 * states ** 2) / (2 * s_new ** 2)
                         - 0.5))


# ----------------------------------------------------------------------------- vanilla, scores, Fisher

def test_vanilla_step(ng, cases):
    """vanilla_step: theta + sqrt(eps / ||g||^2) g, so that ||theta' - theta||^2 = eps"""
    for case in cases:
        n, epsilon, description = case["n"], case["epsilon"], case["description"]
        t64, g64 = _plain(case["theta"]), _plain(case["g"])
        expected_step = np.sqrt(epsilon / (g64 @ g64)) * g64
        with in_case(description, MIXED_DTYPES if case["mixed"] else ""):
            got = as_array(ng.vanilla_step(case["theta"], case["g"], epsilon), "vanilla_step")
        expect(got.shape == (n,), f"{description}: expected shape ({n},), got {got.shape}")
        rtol = 1e-4 if case["float32"] else 1e-6
        expect_close(got - t64, expected_step, f"{description}, the step theta' - theta", rtol=rtol, atol=1e-6,
                     mistakes=[("theta + epsilon g (no normalisation)", epsilon * g64),
                               ("theta + sqrt(epsilon) g (g not normalised)", np.sqrt(epsilon) * g64),
                               ("a step of length epsilon instead of sqrt(epsilon)", epsilon * g64 / np.linalg.norm(g64)),
                               ("returning the step instead of theta + step", -t64 + expected_step)],
                     hint=f"(||theta' - theta||^2 should be {epsilon}, yours is {float(np.sum((got - t64) ** 2)):.4g}.)")


def test_score_matrix(ng, cases):
    """score_matrix: row i = grad log pi(a_i|s_i), flattened (categorical, Gaussian, 1-D LQ)"""
    for case in cases:
        expected = case["expected"]
        got = ng.score_matrix(case["policy"], case["observations"], case["actions"])
        expect_close(got, expected, case["description"], **case["tolerance"], mistakes=[
            ("the mean gradient repeated in every row", np.tile(expected.mean(axis=0), (len(expected), 1))),
        ], hint="(Row i is grad_theta log pi(a_i | s_i) in the order of policy.trainable_variables.)")


def test_fisher_matrix(ng, cases):
    """fisher_matrix: (1/B) S^T S"""
    for case in cases:
        s64 = _plain(case["scores"])
        batch, n = s64.shape
        got = ng.fisher_matrix(case["scores"])
        mistakes = [("the centred covariance (the mean score subtracted)", np.cov(s64.T, bias=True).reshape(n, n))]
        if batch > 1:
            mistakes.append(("dividing by B - 1", s64.T @ s64 / (batch - 1)))
        expect_close(got, s64.T @ s64 / batch, case["description"], rtol=1e-5 if case["dtype"] == "float64" else 1e-4,
                     atol=1e-6, batch_size=batch, mistakes=mistakes, hint="(S S^T would be [B, B]; F is [n, n].)")


# ----------------------------------------------------------------------------- natural step

def test_natural_gradient_step_constraint(ng, cases):
    """natural_gradient_step: along F^-1 g with 1/2 d^T F d = eps exactly (quadratic model, mixed dtypes)"""
    for case in cases:
        n, epsilon, description = case["n"], case["epsilon"], case["description"]
        t64, g64, f64 = (_plain(case[k]) for k in ("theta", "g", "fisher"))
        with in_case(description, MIXED_DTYPES if case["float32"] else ""):
            got = as_array(ng.natural_gradient_step(case["theta"], case["g"], case["fisher"], epsilon),
                           "natural_gradient_step")
        expect(got.shape == (n,), f"{description}: expected shape ({n},), got {got.shape}")
        x = np.linalg.solve(f64, g64)
        expected_step = np.sqrt(2 * epsilon / (g64 @ x)) * x
        step = got - t64
        model = 0.5 * step @ f64 @ step
        fg = f64 @ g64
        mistakes = [
            ("returning the step d instead of theta + d", expected_step - t64),
            ("F instead of F^-1 (d along F g)", np.sqrt(2 * epsilon / (g64 @ x)) * fg),
            ("F instead of F^-1 (d along F g, scaled to the constraint)", np.sqrt(2 * epsilon / (fg @ f64 @ fg)) * fg),
            ("the vanilla direction g", np.sqrt(2 * epsilon / (g64 @ f64 @ g64)) * g64),
            ("alpha = sqrt(2 eps / g^T F g)", np.sqrt(2 * epsilon / (g64 @ f64 @ g64)) * x),
            ("F instead of F^-1 (d along F g)", np.sqrt(2 * epsilon / (g64 @ f64 @ g64)) * fg),
        ]
        rtol = 2e-3 if case["float32"] else 1e-5
        hint = direction_hint(step, [("F g (F instead of F^-1)", fg), ("g (the vanilla direction)", g64),
                                     ("F^-1 g", x)]) + ratio_hint(model / epsilon)
        expect_close(step, expected_step, f"{description}, the step d = theta' - theta", rtol=rtol, atol=1e-7,
                     mistakes=mistakes, hint=f"(1/2 d^T F d should be epsilon = {epsilon}; yours is {model:.4g}.){hint}")
        expect(abs(model - epsilon) <= rtol * 10 * epsilon,
               f"{description}: 1/2 d^T F d = {model:.6g}, expected epsilon = {epsilon}")


def test_natural_step_true_kl(ng, cases):
    """natural_gradient_step: along F^-1 g, true mean KL ~ eps for a small eps (1-D Gaussian policy)"""
    for case in cases:
        k, sigma, epsilon, states = case["k"], case["sigma"], case["epsilon"], case["states"]
        theta, fisher, g = case["theta"], case["fisher"], case["g"]
        got = as_array(ng.natural_gradient_step(theta, g, fisher, epsilon), "natural_gradient_step")
        expect(got.shape == (2,), f"natural_gradient_step: expected shape (2,), got {got.shape}")
        natural = np.linalg.solve(fisher, g)
        what = (f"natural_gradient_step on a ~ N(k s, sigma^2) with k={k}, sigma={sigma}, theta = (k, log sigma) "
                f"and epsilon={epsilon}")
        step = got - theta
        hint = direction_hint(step, [("F g (F instead of F^-1)", fisher @ g), ("g (the vanilla direction)", g)])
        cosine = float(step @ natural / (np.linalg.norm(step) * np.linalg.norm(natural))) \
            if np.all(np.isfinite(step)) and np.linalg.norm(step) > 0 else float("nan")
        expect(cosine > 1 - 1e-6, f"{what}: the step {fmt(step)} does not point along the natural gradient "
                                  f"F^-1 g = {fmt(natural)} (cosine {cosine:.6g}).{hint}")
        kl = _gaussian_1d_kl(k, sigma, got[0], np.exp(got[1]), states)
        # The vanilla step of the same size epsilon (Euclidean) is far from the KL budget:
        vanilla = theta + np.sqrt(epsilon / (g @ g)) * g
        vanilla_kl = _gaussian_1d_kl(k, sigma, vanilla[0], np.exp(vanilla[1]), states)
        expect(0.8 <= kl / epsilon <= 1.25,
               f"{what}: the true mean KL between the old and new policies is {kl:.4g}, expected close to epsilon "
               f"(within [0.8, 1.25] eps; the vanilla step of the same epsilon gives {vanilla_kl:.4g})."
               f"{ratio_hint(kl / epsilon)}")


def test_fisher_vector_product(ng, cases):
    """fisher_vector_product: (F + damping I) v vs the explicit Hessian of the mean KL, the same on every call"""
    for case in cases:
        hessian, v, damping = case["hessian"], case["v"], case["damping"]
        expected = hessian @ v + damping * v
        kwargs = {"damping": damping} if damping else {}
        with in_case(case["description"], MIXED_DTYPES if case["float32"] else ""):
            got = ng.fisher_vector_product(case["policy"], case["observations"], v, **kwargs)
            again = ng.fisher_vector_product(case["policy"], case["observations"], v, **kwargs)
        first, second = as_array(got, case["description"]), as_array(again, case["description"])
        expect(first.shape != second.shape or not np.all(np.isfinite(first))
               or np.allclose(first, second, rtol=1e-6, atol=1e-9),
               f"{case['description']}: two calls with the same inputs gave different results ({fmt(first)}, then "
               f"{fmt(second)}). A Fisher-vector product built from sampled actions (an estimate of "
               "E[grad log pi grad log pi^T] v) changes with every sample; the Hessian of the mean KL is exact: "
               "KL(pi_old || pi_theta) between two distributions is computed in closed form, no sampling.")
        rtol, atol = (1e-3, 1e-5) if case["float32"] else (1e-5, 1e-8)
        mistakes = [("the gradient of the KL (zero at theta_old) instead of its Hessian-vector product, or a KL "
                     "whose old side is not held fixed (KL(pi_theta || pi_theta) = 0)", damping * v),
                    ("F v without the damping term", hessian @ v)]
        expect_close(first, expected, case["description"], rtol=rtol, atol=atol, mistakes=mistakes,
                     hint="(F is the Hessian of the mean KL(pi_old || pi_theta) at theta_old.)")


def test_conjugate_gradient(ng, cases):
    """conjugate_gradient: solves A x = b; exact iteration count, early stop, b = 0"""
    for case in cases:
        matvec, matrix, b, n, steps = case["matrix"], case["A"], case["b"], case["n"], case["steps"]
        exact = np.linalg.solve(matrix, b)
        got = ng.conjugate_gradient(matvec, b, iterations=n)
        expect_close(got, exact, f"conjugate_gradient(A {n}x{n} SPD, iterations={n}) vs A^-1 b", rtol=1e-6,
                     atol=1e-8, mistakes=[("A b (the product, not the solution)", matrix @ b)])
        got = ng.conjugate_gradient(matvec, Tensor(b.astype(np.float32)), iterations=20, tolerance=1e-8)
        expect_close(got, exact, "conjugate_gradient(tf.Tensor float32 b, iterations=20) vs A^-1 b", rtol=2e-3,
                     atol=1e-3)
        for iterations in (1, 2, 3):
            got = ng.conjugate_gradient(matvec, b, iterations=iterations)
            expect_close(got, steps[iterations], f"conjugate_gradient after exactly iterations={iterations} step(s) "
                         "from x = 0", rtol=1e-6, atol=1e-9,
                         mistakes=[(f"{j} iteration(s) instead of {iterations}", steps[j])
                                   for j in (iterations - 1, iterations + 1)])
        got = ng.conjugate_gradient(matvec, b, iterations=n, tolerance=case["tolerance"])
        expect_close(got, case["stopped"], f"conjugate_gradient(iterations={n}, tolerance={case['tolerance']:.3g}): "
                     "r^T r falls below the tolerance after 2 steps, so it must stop there", rtol=1e-6, atol=1e-9,
                     mistakes=[("ignoring the tolerance (running all the iterations)", exact)])
        for name, rhs in [("b = 0", np.zeros(n)), (f"b^T b = {case['tiny_b'] @ case['tiny_b']:.2g} below the default "
                                                   "tolerance 1e-10", case["tiny_b"])]:
            got = ng.conjugate_gradient(matvec, rhs, iterations=n)
            expect_close(got, np.zeros(n), f"conjugate_gradient with {name}: r^T r is checked against the tolerance "
                         "before the first iteration, so x stays 0", rtol=0, atol=1e-12,
                         hint="(Checking the tolerance only after an iteration divides 0 by 0 when b = 0.)")
        got = ng.conjugate_gradient(case["two_identity"], np.array([1.0, -2.0, 4.0]))
        expect_close(got, np.array([0.5, -1.0, 2.0]), "conjugate_gradient(2 I, b) with default arguments", rtol=1e-8,
                     atol=1e-10)


def test_natural_step_cg(ng, cases):
    """natural_step_cg: the TRPO step d = sqrt(2 eps / x^T F x) x, x from CG on F x = g"""
    for case in cases:
        epsilon, g, hessian, expected = case["epsilon"], case["g"], case["damped_fisher"], case["expected"]
        n = len(g)
        fg = hessian @ g
        with in_case(case["description"], MIXED_DTYPES if case["float32"] else ""):
            got = ng.natural_step_cg(case["policy"], case["observations"], g, epsilon, iterations=case["iterations"],
                                     damping=case["damping"])
        got_array = as_array(got, case["description"])
        model = 0.5 * got_array @ hessian @ got_array if got_array.shape == (n,) else float("nan")
        hint = ratio_hint(model / epsilon) + direction_hint(got_array, [
            ("F g (F instead of F^-1)", fg), ("g (the vanilla direction)", g)])
        rtol, atol = (2e-3, 1e-5) if case["float32"] else (1e-4, 1e-7)
        expect_close(got, expected, case["description"], rtol=rtol, atol=atol, mistakes=[
            ("theta + d (the new parameters) instead of the step d", case["policy"].params + expected),
            ("F instead of F^-1 (d along F g)", np.sqrt(2 * epsilon / (fg @ hessian @ fg)) * fg),
            ("the vanilla direction g", np.sqrt(2 * epsilon / (g @ hessian @ g)) * g),
        ], hint=f"(1/2 d^T F d should be epsilon = {epsilon} for the damped F; yours is {model:.4g}. "
                f"The step d, not theta + d.){hint}")


def test_mean_kl(ng, cases):
    """mean_kl: mean over observations of KL(pi_old || pi_new) (categorical, Gaussian, 1-D)"""
    for case in cases:
        got = ng.mean_kl(case["old"], case["new"], case["observations"])
        expect_scalar(got, case["expected"], case["description"], rtol=1e-6, atol=1e-9,
                      batch_size=len(case["observations"]),
                      mistakes=[("the reversed KL(pi_new || pi_old)", float(np.mean(case["reverse"]))),
                                ("the sum over observations instead of the mean", float(np.sum(case["forward"])))])


def test_line_search(ng, cases):
    """line_search: the first theta + r^j d with kl <= eps and a surrogate above surrogate(theta), else theta"""
    for case in cases:
        theta, direction, ratio, max_backtracks, j = (case[k] for k in ("theta", "direction", "ratio",
                                                                         "max_backtracks", "j"))
        n = len(theta)
        got = as_array(ng.line_search(theta, direction, case["surrogate"], case["kl"], case["epsilon"],
                                      backtrack_ratio=ratio, max_backtracks=max_backtracks), "line_search")
        took = next((f"theta + {ratio}^{i} d" for i in range(-1, max_backtracks + 2)
                     if got.shape == (n,) and np.allclose(got, theta + ratio ** i * direction, rtol=1e-8, atol=1e-10)),
                    None)
        if got.shape == (n,) and np.allclose(got, theta, rtol=1e-8, atol=1e-10):
            took = "theta (no step)"
        wanted = "theta (no step)" if j is None else f"theta + {ratio}^{j} d"
        message = (f"line_search ({case['description']}; epsilon={case['epsilon']:.4g}, backtrack_ratio={ratio}, "
                   f"max_backtracks={max_backtracks}): expected {wanted}" + (f", got {took}" if took else
                                                                             f", got {fmt(got)}"))
        mistakes = []
        if j is None:
            mistakes.append(("a line search that gives up with its last candidate (when no step passes, it must "
                             "return theta)", theta + ratio ** (max_backtracks - 1) * direction))
        if case["surrogate"].offset != 0:
            mistakes.append(("comparing the surrogate with 0 instead of with surrogate(theta)",
                             next((theta + ratio ** i * direction for i in range(max_backtracks)
                                   if case["kl"](theta + ratio ** i * direction) <= case["epsilon"]
                                   and case["surrogate"](theta + ratio ** i * direction) > 0), theta)))
        expect_close(got, case["expected"], message, rtol=1e-8, atol=1e-10, mistakes=mistakes)
