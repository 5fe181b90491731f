"""The Part 2 public tests (hw/tests/test_part2_natural_gradient.py, hw/tests/test_part2_lq_env.py)
judged against known answers.

They must pass against the reference solutions and against an independent correct
implementation (tests/variants/part2_independent.py), fail against the untouched stubs
with the TODO message, and catch each common mistake, applied to the solution as a text
mutation, with a message that names it. The picture of docs/natural_gradient.png must
show what the README says it shows.

Each run is a pytest subprocess (a fresh TensorFlow import, 10-20 s on a loaded machine);
all of them, and the script drawing the README's picture, start together in a pool of three
(the `runs` fixture), so the module takes about a third of their sum. As in test_part1_public.py the mutants run in groups, one
subprocess per group: the mutants of a group change
different functions (checked below), and each mutant's expected test calls only
functions that no other mutant of its group changes (USES below), so its failure must
come from its own mistake.
"""
from __future__ import annotations

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from grader.stubs import ROOT
from tests.support import (assert_each_mutant_named, check_mutant_groups, make_implementation, output,
                           run_public_tests)

PUBLIC_TESTS = "hw/tests/test_part2_natural_gradient.py"
LQ_TESTS = "hw/tests/test_part2_lq_env.py"
VARIANT = Path(__file__).parent / "variants" / "part2_independent.py"
# The Part 2 public tests never use policy_gradient: a placeholder keeps these runs
# independent of the state of Part 1.
NOT_UNDER_TEST = '"""Part 1 is not under test in these runs."""\n'

# (name, function mutated, [(old, new) replacements], expected failing test, phrase in its message)
MUTANTS = [
    ("vanilla step with a flipped sign", "vanilla_step",
     [("return theta + alpha * g ", "return theta - alpha * g ")],
     "test_vanilla_step_is_the_euclidean_trust_region_step", "sign flipped"),
    ("vanilla step without the square root", "vanilla_step",
     [("alpha = tf.sqrt(epsilon / tf.reduce_sum(g * g))", "alpha = epsilon / tf.reduce_sum(g * g)")],
     "test_vanilla_step_is_the_euclidean_trust_region_step", "the square root is missing"),
    ("natural step without the factor 2", "natural_gradient_step",
     [("alpha = tf.sqrt(2.0 * epsilon / tf.reduce_sum(g * x))", "alpha = tf.sqrt(epsilon / tf.reduce_sum(g * x))")],
     "test_natural_gradient_step_meets_the_kl_model_and_points_along_f_inverse_g", "missing factor 2"),
    ("natural step with F instead of F^-1", "natural_gradient_step",
     [("x = tf.linalg.solve(fisher, g[:, None])[:, 0]", "x = tf.linalg.matvec(fisher, g)")],
     "test_natural_gradient_step_meets_the_kl_model_and_points_along_f_inverse_g", "F instead of F^-1"),
    ("natural step with a flipped sign", "natural_gradient_step",
     [("return theta + alpha * x ", "return theta - alpha * x ")],
     "test_natural_gradient_step_meets_the_kl_model_and_points_along_f_inverse_g", "sign flipped"),
    ("KL whose old side is not held fixed", "fisher_vector_product",
     [("old = tf.nest.map_structure(tf.stop_gradient, new, expand_composites=True)", "old = new")],
     "test_fisher_vector_product_is_the_hessian_of_the_mean_kl", "old side is not held fixed"),
    ("damping left out", "fisher_vector_product",
     [("return fv + damping * v ", "return fv ")],
     "test_fisher_vector_product_adds_exactly_damping_times_v", "damping left out"),
    ("conjugate gradient ignores its tolerance", "conjugate_gradient",
     [("        if rr < tolerance:\n            break\n", "")],
     "test_conjugate_gradient_stops_once_the_residual_is_below_its_tolerance", "does not stop on its tolerance"),
    ("CG step without the factor 2", "natural_step_cg",
     [("return tf.sqrt(2.0 * epsilon / tf.reduce_sum(x * fvp(x))) * x", "return tf.sqrt(epsilon / tf.reduce_sum(x * fvp(x))) * x")],
     "test_natural_step_cg_lands_near_the_kl_target", "missing factor 2"),
    ("KL direction reversed", "mean_kl",
     [("tfd.kl_divergence(old_policy.distribution(observations),\n"
       "                                            new_policy.distribution(observations))",
       "tfd.kl_divergence(new_policy.distribution(observations),\n"
       "                                            old_policy.distribution(observations))")],
     "test_mean_kl_matches_the_gaussian_formula", "direction reversed"),
    ("line search ignores the KL", "line_search",
     [("if kl(candidate) <= epsilon and surrogate(candidate) > baseline:", "if surrogate(candidate) > baseline:")],
     "test_line_search_returns_the_first_acceptable_step", "the KL ignored"),
    ("line search falls back to the last candidate, not theta", "line_search",
     [("            return candidate\n    return theta\n", "            return candidate\n    return candidate\n")],
     "test_line_search_returns_theta_exactly_when_no_step_is_acceptable", "gave up with its last candidate"),
    ("Fisher as a sum over the batch", "fisher_matrix",
     [("return tf.matmul(scores, scores, transpose_a=True) / batch_size", "return tf.matmul(scores, scores, transpose_a=True)")],
     "test_fisher_matrix_is_mean_outer_product", "missing 1/B"),
    ("natural step returns d instead of theta + d", "natural_gradient_step",
     [("return theta + alpha * x ", "return alpha * x ")],
     "test_natural_gradient_step_meets_the_kl_model_and_points_along_f_inverse_g", "the result is the step d"),
    ("natural step along g", "natural_gradient_step",
     [("x = tf.linalg.solve(fisher, g[:, None])[:, 0]", "x = g")],
     "test_natural_gradient_step_meets_the_kl_model_and_points_along_f_inverse_g", "that is the vanilla direction"),
    ("natural step without casts to theta's dtype", "natural_gradient_step",
     [("g = _vector(grad, theta.dtype)\n    fisher = _vector(fisher, theta.dtype)",
       "g = _vector(grad)\n    fisher = _vector(fisher)")],
     "test_natural_gradient_step_meets_the_kl_model_and_points_along_f_inverse_g", "cast grad and fisher to theta's dtype"),
    ("CG step returns theta + d", "natural_step_cg",
     [("return tf.sqrt(2.0 * epsilon / tf.reduce_sum(x * fvp(x))) * x",
       "return flatten(policy.trainable_variables) + tf.sqrt(2.0 * epsilon / tf.reduce_sum(x * fvp(x))) * x")],
     "test_natural_step_cg_lands_near_the_kl_target", "the result is theta + d"),
    ("Fisher-vector product from sampled actions", "fisher_vector_product",
     [("            old = tf.nest.map_structure(tf.stop_gradient, new, expand_composites=True)  # pi_old: held fixed\n"
       "            kl = tf.reduce_mean(tfd.kl_divergence(old, new))         # mean_s KL(pi_old || pi_theta)\n",
       "            kl = -tf.reduce_mean(new.log_prob(tf.stop_gradient(new.sample())))\n")],
     "test_fisher_vector_product_is_the_hessian_of_the_mean_kl", "it depends on sampled actions"),
    ("Fisher-vector product casts the vector to float64", "fisher_vector_product",
     [("v = _vector(vector, _parameter_dtype(policy))", "v = _vector(vector, tf.float64)")],
     "test_fisher_vector_product_computes_in_the_policy_s_dtype", "cast the vector to the policy's dtype"),
    ("conjugate gradient checks its tolerance at the end of the loop", "conjugate_gradient",
     [("        if rr < tolerance:\n            break\n        ap = ", "        ap = "),
      ("        rr = rr_new\n", "        rr = rr_new\n        if rr < tolerance:\n            break\n")],
     "test_conjugate_gradient_returns_zero_when_b_is_within_tolerance", "not checked before the first iteration"),
    ("line search compares with 0", "line_search",
     [("baseline = surrogate(theta)", "baseline = 0.0")],
     "test_line_search_needs_an_improvement_of_the_surrogate", "compared with 0 instead of surrogate(theta)"),
    ("line search never tries the last allowed step", "line_search",
     [("for j in range(max_backtracks):", "for j in range(max_backtracks - 1):")],
     "test_line_search_tries_the_last_allowed_step", "was never tried"),
    ("vanilla step without the cast of grad", "vanilla_step",
     [("    g = _vector(grad, theta.dtype)\n    # BEGIN SOLUTION: the Euclidean",
       "    g = _vector(grad)\n    # BEGIN SOLUTION: the Euclidean")],
     "test_vanilla_step_is_the_euclidean_trust_region_step", "cast grad to theta's dtype"),
    ("CG step without the cast of grad", "natural_step_cg",
     [("g = _vector(grad, _parameter_dtype(policy))", "g = _vector(grad)")],
     "test_natural_step_cg_lands_near_the_kl_target", "cast grad to it"),
]
GROUPS = [
    ["vanilla step with a flipped sign", "natural step without the factor 2", "KL whose old side is not held fixed",
     "KL direction reversed", "line search ignores the KL", "Fisher as a sum over the batch"],
    ["vanilla step without the square root", "natural step with F instead of F^-1", "damping left out",
     "conjugate gradient ignores its tolerance", "line search falls back to the last candidate, not theta"],
    ["natural step with a flipped sign", "CG step without the factor 2", "line search compares with 0"],
    ["natural step returns d instead of theta + d", "Fisher-vector product from sampled actions",
     "conjugate gradient checks its tolerance at the end of the loop", "line search never tries the last allowed step"],
    ["natural step without casts to theta's dtype", "CG step returns theta + d"],
    ["natural step along g", "Fisher-vector product casts the vector to float64"],
    ["vanilla step without the cast of grad", "CG step without the cast of grad"],
]
# The graded functions each expected test calls, besides the one it is named after.
USES = {"test_natural_step_cg_lands_near_the_kl_target": {"fisher_vector_product", "conjugate_gradient"}}


def _mutant_package(directory: Path, group: list[str]) -> Path:
    replacements = [replacement for mutant in MUTANTS if mutant[0] in group for replacement in mutant[2]]
    return make_implementation(directory, mutations={"natural_gradient": replacements},
                               sources={"policy_gradient": NOT_UNDER_TEST})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every pytest subprocess of this module, started at once: {key: Future of CompletedProcess}."""
    variant = make_implementation(tmp_path_factory.mktemp("variant"),
                                  sources={"natural_gradient": VARIANT.read_text(), "policy_gradient": NOT_UNDER_TEST})
    jobs = {"solutions": ("solutions", (PUBLIC_TESTS, LQ_TESTS), None),
            "stubs": ("hw", (PUBLIC_TESTS,), None),
            "variant": ("impl", (PUBLIC_TESTS,), variant)}
    for i, group in enumerate(GROUPS, start=1):
        jobs[f"group{i}"] = ("impl", (PUBLIC_TESTS,), _mutant_package(tmp_path_factory.mktemp(f"group{i}"), group))
    picture = tmp_path_factory.mktemp("picture") / "natural_gradient.png"
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {key: pool.submit(run_public_tests, package, *files, pythonpath=path)
                   for key, (package, files, path) in jobs.items()}
        futures["picture"] = pool.submit(
            subprocess.run, [sys.executable, "-m", "hw.plot_natural_gradient", "--implementation", "solutions",
                             "--out", str(picture)], cwd=ROOT, capture_output=True, text=True, timeout=600)
        yield futures


def test_public_tests_pass_against_the_solutions(runs):
    result = runs["solutions"].result()
    assert result.returncode == 0, output(result)[-5000:]
    assert re.search(r"\b\d+ passed\b", result.stdout) and " failed" not in result.stdout, result.stdout[-2000:]


def test_every_public_test_fails_against_the_stubs_with_the_todo_message(runs):
    result = runs["stubs"].result()
    text = output(result)
    assert result.returncode == 1, text[-5000:]
    assert not re.search(r"\b\d+ passed\b", text), f"some public tests pass against the untouched stubs:\n{text[-3000:]}"
    for function in ("vanilla_step", "score_matrix", "fisher_matrix", "natural_gradient_step", "fisher_vector_product",
                     "conjugate_gradient", "natural_step_cg", "mean_kl", "line_search"):
        assert f"NotImplementedError: {function}: TODO, " in text, f"no test reaches the TODO of {function}"
    assert "(hw/natural_gradient.py)" in text


def test_public_tests_pass_against_an_independent_implementation(runs):
    result = runs["variant"].result()
    assert result.returncode == 0, output(result)[-5000:]


def test_the_picture_shows_the_lecture_s_point(runs):
    """The README's picture: from the same start and with as many steps, the vanilla path
    ends near sigma = 0 far from k*, the natural one at k*."""
    result = runs["picture"].result()
    assert result.returncode == 0, result.stderr[-3000:]
    ends = {name: (float(k), float(sigma)) for name, k, sigma in
            re.findall(r"^(\w+): \d+ steps, .* to k = (\S+), sigma = (\S+)$", result.stdout, flags=re.M)}
    k_star = float(re.search(r"k\* = (\S+),", result.stdout)[1])
    assert set(ends) == {"vanilla", "natural"}, result.stdout
    assert abs(ends["natural"][0] - k_star) < 0.01, result.stdout
    assert abs(ends["vanilla"][0] - k_star) > 0.3 and ends["vanilla"][1] < 0.1, result.stdout
    assert Path(re.search(r"^wrote (.+)$", result.stdout, flags=re.M)[1]).stat().st_size > 20_000


def test_mutant_groups_are_sound():
    check_mutant_groups(MUTANTS, GROUPS, "natural_gradient",
                        uses=lambda mutant: {mutant[1]} | USES.get(mutant[3], set()))


@pytest.mark.parametrize("group", GROUPS, ids=[f"group{i}" for i in range(1, len(GROUPS) + 1)])
def test_each_common_mistake_fails_a_public_test_that_names_it(runs, group):
    assert_each_mutant_named(runs[f"group{GROUPS.index(group) + 1}"].result(),
                             [mutant for mutant in MUTANTS if mutant[0] in group])
