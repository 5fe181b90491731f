"""Submissions for the grader's own tests: mutants (one plausible student mistake in one
function each), correct variants, and hostile submissions.

Each case says which hidden tests must fail (`catches`), which may fail besides
(`may_fail`: tests that call the broken function through another one), and which words
the failure message of the first caught test must contain (`says`). Everything else must
pass: a mutant loses only what needs the broken function.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from grader.stubs import ROOT, solution_source
from tests.support import make_implementation

PG, NG = "policy_gradient", "natural_gradient"
PART1 = {"test_discounted_return", "test_reward_to_go", "test_estimate_q_values", "test_discrete_pseudo_loss_value",
         "test_discrete_pseudo_loss_gradient", "test_gaussian_pseudo_loss_value", "test_gaussian_pseudo_loss_gradient",
         "test_policy_gradient_exact_tabular",
         "test_policy_gradient_exact_linear_quadratic", "test_policy_gradient_matches_reference",
         "test_importance_sampled_pseudo_loss"}
PART2 = {"test_vanilla_step", "test_score_matrix", "test_fisher_matrix", "test_natural_gradient_step_constraint",
         "test_natural_step_true_kl", "test_fisher_vector_product", "test_conjugate_gradient", "test_natural_step_cg",
         "test_mean_kl", "test_line_search"}
POLICY_GRADIENT_TESTS = {"test_policy_gradient_exact_tabular", "test_policy_gradient_exact_linear_quadratic",
                         "test_policy_gradient_matches_reference"}


@dataclass
class Case:
    description: str
    mutations: dict = field(default_factory=dict)  # module -> [(old, new)], applied to the solution
    sources: dict = field(default_factory=dict)  # module -> full text (instead of the solution)
    catches: set = field(default_factory=set)
    may_fail: set = field(default_factory=set)
    says: tuple = ()  # substrings of the message of each caught test (all of them)
    omit: tuple = ()  # modules left out of the submission
    layout: str = "top"  # "top", "hw" (files under hw/), "zip" (a .zip with hw/ and extras)


MUTANTS = {
    "pg_sign": Case(
        "policy_gradient returns the gradient of the loss (no minus)",
        {PG: [("return [-tf.convert_to_tensor(gradient)", "return [tf.convert_to_tensor(gradient)")]},
        catches=POLICY_GRADIENT_TESTS, says=("sign",)),
    "rtg_from_start": Case(
        "reward_to_go discounts from the path start",
        {PG: [("        future = rewards[t] + gamma * future\n",
               "        future = gamma ** t * rewards[t] + future\n")]},
        catches={"test_reward_to_go"}, may_fail={"test_estimate_q_values", "test_policy_gradient_exact_tabular"},
        says=("from the path start",)),
    "discounted_no_discount": Case(
        "discounted_return ignores gamma",
        {PG: [("    discounts = gamma ** np.arange(len(rewards))", "    discounts = 1.0 ** np.arange(len(rewards))")]},
        catches={"test_discounted_return"}, may_fail={"test_estimate_q_values"}, says=("no discount",)),
    "discrete_sum": Case(
        "discrete_pseudo_loss sums over the batch instead of the mean",
        {PG: [("    return tf.reduce_mean(weighted_negative_likelihoods)  # 1/B sum_i, a scalar",
               "    return tf.reduce_sum(weighted_negative_likelihoods)")]},
        catches={"test_discrete_pseudo_loss_value", "test_discrete_pseudo_loss_gradient"},
        may_fail={"test_policy_gradient_exact_tabular", "test_policy_gradient_matches_reference"},
        says=("sum",)),
    "q_broadcast": Case(
        "discrete_pseudo_loss multiplies [B] by q_values[:, None] (a [B, B] product)",
        {PG: [("    weighted_negative_likelihoods = tf.multiply(negative_likelihoods, q_values)  # [B] * [B]",
               "    weighted_negative_likelihoods = tf.multiply(negative_likelihoods, q_values[:, None])")]},
        catches={"test_discrete_pseudo_loss_value", "test_discrete_pseudo_loss_gradient"},
        may_fail={"test_policy_gradient_exact_tabular", "test_policy_gradient_matches_reference"},
        says=("[B, 1]",)),
    "gaussian_no_log_sigma": Case(
        "gaussian_pseudo_loss is a squared error without the log-sigma term",
        {PG: [("                            + tf.reduce_sum(log_std)  # + sum_j log sigma_j\n", "")]},
        catches={"test_gaussian_pseudo_loss_value", "test_gaussian_pseudo_loss_gradient",
                 "test_policy_gradient_exact_linear_quadratic"},
        may_fail={"test_policy_gradient_matches_reference"}, says=("log-sigma",)),
    "is_inverted_ratio": Case(
        "importance_sampled_pseudo_loss uses pi_old / pi_theta",
        {PG: [("    ratios = tf.exp(log_probs - old_log_probs)", "    ratios = tf.exp(old_log_probs - log_probs)")]},
        catches={"test_importance_sampled_pseudo_loss"}, says=("inverted ratio",)),
    "vanilla_no_sqrt": Case(
        "vanilla_step uses eps / ||g||^2 without the square root",
        {NG: [("    alpha = tf.sqrt(epsilon / tf.reduce_sum(g * g))", "    alpha = epsilon / tf.reduce_sum(g * g)")]},
        catches={"test_vanilla_step"}, says=("||theta' - theta||^2 should be",)),
    "fisher_sum": Case(
        "fisher_matrix forgets the 1/B",
        {NG: [("    return tf.matmul(scores, scores, transpose_a=True) / batch_size",
               "    return tf.matmul(scores, scores, transpose_a=True)")]},
        catches={"test_fisher_matrix"}, says=("sum over the batch",)),
    "natural_no_factor_2": Case(
        "natural_gradient_step uses alpha = sqrt(eps / g^T F^-1 g) (missing factor 2)",
        {NG: [("    alpha = tf.sqrt(2.0 * epsilon / tf.reduce_sum(g * x))", "    alpha = tf.sqrt(epsilon / tf.reduce_sum(g * x))")]},
        catches={"test_natural_gradient_step_constraint", "test_natural_step_true_kl"}, says=("factor",)),
    "natural_F_not_inverse": Case(
        "natural_gradient_step multiplies by F instead of solving",
        {NG: [("    x = tf.linalg.solve(fisher, g[:, None])[:, 0]", "    x = tf.linalg.matvec(fisher, g)")]},
        catches={"test_natural_gradient_step_constraint", "test_natural_step_true_kl"}, says=("F^-1",)),
    "fvp_no_damping": Case(
        "fisher_vector_product drops the damping term",
        {NG: [("    return fv + damping * v ", "    return fv ")]},
        catches={"test_fisher_vector_product", "test_natural_step_cg"}, says=()),
    "cg_no_tolerance": Case(
        "conjugate_gradient ignores the tolerance",
        {NG: [("        if rr < tolerance:\n            break\n", "")]},
        catches={"test_conjugate_gradient"}, may_fail={"test_natural_step_cg"}, says=("tolerance",)),
    "mean_kl_reversed": Case(
        "mean_kl computes KL(new || old)",
        {NG: [("tfd.kl_divergence(old_policy.distribution(observations),\n"
               "                                            new_policy.distribution(observations))",
               "tfd.kl_divergence(new_policy.distribution(observations),\n"
               "                                            old_policy.distribution(observations))")]},
        catches={"test_mean_kl"}, says=("reversed",)),
    "line_search_kl_only": Case(
        "line_search checks the KL but not the surrogate",
        {NG: [("        if kl(candidate) <= epsilon and surrogate(candidate) > baseline:",
               "        if kl(candidate) <= epsilon:")]},
        catches={"test_line_search"}, says=("expected theta",)),
    # The mistakes students make (named in the hidden tests as in the public ones).
    "gaussian_variance_for_std": Case(
        "gaussian_pseudo_loss puts the variance where the standard deviation belongs",
        {PG: [("z = (actions - means) / tf.exp(log_std)", "z = (actions - means) / tf.exp(2.0 * log_std)"),
              ("+ tf.reduce_sum(log_std)  # + sum_j log sigma_j", "+ 2.0 * tf.reduce_sum(log_std)  # + sum_j log sigma_j")]},
        catches={"test_gaussian_pseudo_loss_value"},
        may_fail={"test_gaussian_pseudo_loss_gradient", "test_policy_gradient_exact_linear_quadratic",
                  "test_policy_gradient_matches_reference"}, says=("the variance exp(2 log_std)",)),
    "gather_without_batch_dims": Case(
        "discrete_pseudo_loss gathers with tf.gather(..., axis=1) and no batch_dims (a [B, B] table)",
        {PG: [("    one_hot_actions = tf.one_hot(actions, depth=tf.shape(logits)[-1], dtype=logits.dtype)  # [B, A]\n"
               "    negative_likelihoods = tf.nn.softmax_cross_entropy_with_logits(labels=one_hot_actions, logits=logits)\n",
               "    negative_likelihoods = -tf.gather(tf.nn.log_softmax(logits), actions, axis=1)\n")]},
        catches={"test_discrete_pseudo_loss_value"},
        may_fail={"test_discrete_pseudo_loss_gradient", "test_policy_gradient_exact_tabular",
                  "test_policy_gradient_matches_reference"}, says=("without batch_dims=1",)),
    "rtg_from_end": Case(
        "reward_to_go discounts from the path's end",
        {PG: [("future = rewards[t] + gamma * future", "future = gamma ** (len(rewards) - 1 - t) * rewards[t] + future")]},
        catches={"test_reward_to_go"}, may_fail={"test_estimate_q_values", "test_policy_gradient_exact_tabular"},
        says=("from the path's end",)),
    "natural_returns_d": Case(
        "natural_gradient_step returns the step d instead of theta + d",
        {NG: [("return theta + alpha * x ", "return alpha * x ")]},
        catches={"test_natural_gradient_step_constraint"}, may_fail={"test_natural_step_true_kl"},
        says=("the step d instead of theta + d",)),
    "cg_step_returns_theta_plus_d": Case(
        "natural_step_cg returns theta + d",
        {NG: [("return tf.sqrt(2.0 * epsilon / tf.reduce_sum(x * fvp(x))) * x",
               "return flatten(policy.trainable_variables) + tf.sqrt(2.0 * epsilon / tf.reduce_sum(x * fvp(x))) * x")]},
        catches={"test_natural_step_cg"}, says=("theta + d (the new parameters)",)),
    "fvp_sampled_actions": Case(
        "fisher_vector_product differentiates a sampled log-likelihood instead of the KL",
        {NG: [("            old = tf.nest.map_structure(tf.stop_gradient, new, expand_composites=True)  # pi_old: held fixed\n"
               "            kl = tf.reduce_mean(tfd.kl_divergence(old, new))         # mean_s KL(pi_old || pi_theta)\n",
               "            kl = -tf.reduce_mean(new.log_prob(tf.stop_gradient(new.sample())))\n")]},
        catches={"test_fisher_vector_product"}, may_fail={"test_natural_step_cg"}, says=("sampled actions",)),
    "line_search_last_candidate": Case(
        "line_search returns its last candidate when no step passes",
        {NG: [("            return candidate\n    return theta\n", "            return candidate\n    return candidate\n")]},
        catches={"test_line_search"}, says=("gives up with its last candidate",)),
    # Blind spots: wrong code that the inputs of a test suite may never reach.
    "q_values_not_cast": Case(
        "discrete_pseudo_loss does not cast q_values to the logits' dtype (float32 policy, float64 Q-values)",
        {PG: [("q_values = tf.stop_gradient(tf.cast(q_values, logits.dtype))  # [B]",
               "q_values = tf.stop_gradient(tf.convert_to_tensor(q_values))  # [B]")]},
        catches={"test_discrete_pseudo_loss_value"},
        may_fail={"test_discrete_pseudo_loss_gradient", "test_policy_gradient_matches_reference"},
        says=("float64 q_values",)),
    "fvp_cast_float64": Case(
        "fisher_vector_product casts the vector to float64 (crashes on a float32 policy)",
        {NG: [("v = _vector(vector, _parameter_dtype(policy))", "v = _vector(vector, tf.float64)")]},
        catches={"test_fisher_vector_product"}, may_fail={"test_natural_step_cg"}, says=("float32",)),
    "natural_no_casts": Case(
        "natural_gradient_step does not cast grad and fisher to theta's dtype",
        {NG: [("g = _vector(grad, theta.dtype)\n    fisher = _vector(fisher, theta.dtype)",
               "g = _vector(grad)\n    fisher = _vector(fisher)")]},
        catches={"test_natural_gradient_step_constraint"}, says=("float32 theta",)),
    "cg_tolerance_at_the_end": Case(
        "conjugate_gradient checks its tolerance at the end of the loop (NaN for b = 0)",
        {NG: [("        if rr < tolerance:\n            break\n        ap = ", "        ap = "),
              ("        rr = rr_new\n", "        rr = rr_new\n        if rr < tolerance:\n            break\n")]},
        catches={"test_conjugate_gradient"}, says=("before the first iteration",)),
    "line_search_compares_with_0": Case(
        "line_search compares the surrogate with 0 instead of surrogate(theta)",
        {NG: [("baseline = surrogate(theta)", "baseline = 0.0")]},
        catches={"test_line_search"}, says=("comparing the surrogate with 0",)),
    "line_search_skips_last_step": Case(
        "line_search never tries the last allowed step",
        {NG: [("for j in range(max_backtracks):", "for j in range(max_backtracks - 1):")]},
        catches={"test_line_search"}, says=("only the last allowed step",)),
    "rtg_divided_by_gamma_t": Case(
        "reward_to_go as a reversed cumulative sum of gamma^t r divided by gamma^t (NaN on long paths)",
        {PG: [("    q_values = np.zeros_like(rewards)\n",
               "    discounts = gamma ** np.arange(len(rewards))\n"
               "    return np.cumsum((discounts * rewards)[::-1])[::-1] / discounts\n")]},
        catches={"test_reward_to_go"}, may_fail={"test_estimate_q_values", "test_policy_gradient_exact_tabular"},
        says=("dividing by gamma^t",)),
    "log_of_softmax": Case(
        "discrete_pseudo_loss takes the log of a softmax (inf once a logit gap reaches about 120 in float32)",
        {PG: [("negative_likelihoods = tf.nn.softmax_cross_entropy_with_logits(labels=one_hot_actions, logits=logits)",
               "negative_likelihoods = -tf.math.log(tf.reduce_sum(one_hot_actions * tf.nn.softmax(logits), axis=-1))")]},
        catches={"test_discrete_pseudo_loss_value"},
        may_fail={"test_discrete_pseudo_loss_gradient", "test_policy_gradient_exact_tabular",
                  "test_policy_gradient_matches_reference"}, says=("not log(softmax)",)),
    "rtg_writes_its_input": Case(
        "reward_to_go doubles the caller's rewards in place (and returns twice the Q-values)",
        {PG: [("    q_values = np.zeros_like(rewards)\n",
               "    rewards *= 2.0  # the caller's array, when it is float64\n    q_values = np.zeros_like(rewards)\n")]},
        catches={"test_reward_to_go"}, may_fail={"test_estimate_q_values", "test_policy_gradient_exact_tabular"},
        says=("off by a constant factor 2",)),
    "vanilla_no_cast": Case(
        "vanilla_step does not cast grad to theta's dtype",
        {NG: [("    g = _vector(grad, theta.dtype)\n    # BEGIN SOLUTION: the Euclidean",
               "    g = _vector(grad)\n    # BEGIN SOLUTION: the Euclidean")]},
        catches={"test_vanilla_step"}, says=("float32 theta with a float64 grad",)),
    "natural_step_cg_no_cast": Case(
        "natural_step_cg does not cast grad to the policy's dtype",
        {NG: [("g = _vector(grad, _parameter_dtype(policy))", "g = _vector(grad)")]},
        catches={"test_natural_step_cg"}, says=("float32)",)),
    "natural_along_g": Case(
        "natural_gradient_step steps along g, scaled so that 1/2 d^T F d = epsilon",
        {NG: [("x = tf.linalg.solve(fisher, g[:, None])[:, 0]", "x = g")]},
        catches={"test_natural_gradient_step_constraint", "test_natural_step_true_kl"}, says=("vanilla direction",)),
}



_MONKEYPATCH_CODE = (
    "import numpy, os, json, glob\n"
    "numpy.allclose = lambda *a, **k: True\nnumpy.isclose = lambda *a, **k: True\n"
    "try:\n    import pytest\n    pytest.main = lambda *a, **k: 0\nexcept Exception:\n    pass\n"
    "try:\n    import grader\n    grader.results.build_results = None\nexcept Exception:\n    pass\n"
    "_fake = {'score': 100.0, 'tests': []}\n"
    "for _cmd in glob.glob('/proc/*/cmdline'):\n"
    "    try:\n        _args = open(_cmd, 'rb').read().split(b'\\0')\n"
    "        if b'--out' in _args:\n"
    "            _out = _args[_args.index(b'--out') + 1].decode()\n"
    "            for _name in ('results.json', 'gradebook.csv'):\n"
    "                try:\n                    open(os.path.join(_out, _name), 'w').write(json.dumps(_fake))\n"
    "                except Exception:\n                    pass\n"
    "    except Exception:\n        pass\n")


def _append(module: str, code: str) -> dict:
    """The solution with code appended: it runs when the module is imported."""
    return {module: solution_source(module) + "\n" + code}


def _body(module, function_line, code):
    """Insert code at the start of a function's body (after its signature line)."""
    return {module: [(function_line, function_line + code)]}


SOLUTION_FILE = ROOT / "solutions" / "policy_gradient.py"
ESCAPEE_MARKER = "GRADER_TEST_ESCAPEE"  # in the environment of the process the setsid case leaves behind

HOSTILE = {
    "exit_at_import": Case(
        "sys.exit at the import of policy_gradient.py",
        sources=_append(PG, "import sys\nsys.exit(3)\n"), catches=PART1, says=("could not be imported", "SystemExit")),
    "os_exit_at_import": Case(
        "os._exit at the import of natural_gradient.py",
        sources=_append(NG, "import os\nos._exit(0)\n"), catches=PART2, says=("could not be imported", "ended the process")),
    "exit_in_function": Case(
        "sys.exit inside reward_to_go",
        _body(PG, "def reward_to_go(rewards, gamma: float) -> np.ndarray:\n", "    import sys; sys.exit(0)\n"),
        catches={"test_reward_to_go"}, may_fail={"test_estimate_q_values"}, says=("sys.exit",)),
    "os_exit_in_function": Case(
        "os._exit inside discounted_return",
        _body(PG, "def discounted_return(rewards, gamma: float) -> np.ndarray:\n", "    import os; os._exit(1)\n"),
        catches={"test_discounted_return"}, may_fail={"test_estimate_q_values"}, says=("ended the process",)),
    "segfault": Case(
        "a segmentation fault (ctypes) inside fisher_matrix",
        _body(NG, "def fisher_matrix(scores) -> tf.Tensor:\n", "    import ctypes; ctypes.string_at(0)\n"),
        catches={"test_fisher_matrix"}, says=("SIGSEGV",)),
    "infinite_loop": Case(
        "an endless loop in conjugate_gradient",
        _body(NG, "def conjugate_gradient(matvec, b, iterations: int = 10, tolerance: float = 1e-10) -> tf.Tensor:\n",
              "    while True:\n        pass\n"),
        catches={"test_conjugate_gradient", "test_natural_step_cg"}, says=("did not finish",)),
    "eq_always_true": Case(
        "mean_kl returns an object whose == is always True",
        _body(NG, "def mean_kl(old_policy, new_policy, observations) -> tf.Tensor:\n",
              "    class Liar(float):\n        def __eq__(self, other): return True\n"
              "        def __ne__(self, other): return False\n        def __array__(self, *a, **k):\n"
              "            import numpy; return numpy.array([self], dtype=object)\n"
              "    return Liar(0.0)\n"),
        catches={"test_mean_kl"}, says=()),
    "monkeypatch": Case(
        "patches numpy.allclose, pytest and the grader, and writes results.json wherever a --out points, "
        "with a wrong reward_to_go",
        {PG: [("        future = rewards[t] + gamma * future\n", "        future = rewards[t] + 0.5 * future\n")]},
        sources=_append(PG, _MONKEYPATCH_CODE),
        catches={"test_reward_to_go"}, may_fail={"test_estimate_q_values", "test_policy_gradient_exact_tabular"}),
    "read_solutions": Case(
        "reward_to_go reads and runs the reference solution",
        _body(PG, "def reward_to_go(rewards, gamma: float) -> np.ndarray:\n",
              "    try:\n        import solutions.policy_gradient as s\n        return s.reward_to_go(rewards, gamma)\n"
              "    except ImportError:\n        pass\n"
              f"    namespace = {{}}\n    exec(open({str(SOLUTION_FILE)!r}).read(), namespace)\n"
              "    return namespace['reward_to_go'](rewards, gamma)\n"),
        catches={"test_reward_to_go"}, may_fail={"test_estimate_q_values", "test_policy_gradient_exact_tabular"},
        says=("Error",)),
    "huge_output": Case(
        "discounted_return prints 20 MB (and is right)",
        _body(PG, "def discounted_return(rewards, gamma: float) -> np.ndarray:\n",
              "    import sys\n    for _ in range(200):\n        sys.stdout.write('x' * 100_000 + '\\n')\n"),
        catches=set()),
    "syntax_error": Case(
        "a syntax error in natural_gradient.py",
        sources=_append(NG, "def broken(:\n    pass\n"), catches=PART2, says=("SyntaxError",)),
    "missing_function": Case(
        "policy_gradient.py without importance_sampled_pseudo_loss",
        {PG: [("def importance_sampled_pseudo_loss(", "def renamed_importance_sampled_pseudo_loss(")]},
        catches={"test_importance_sampled_pseudo_loss"}, says=("has no function",)),
    "missing_file": Case(
        "a submission without natural_gradient.py", omit=(NG,), catches=PART2, says=("no natural_gradient.py",)),
    "setsid_loop": Case(
        "vanilla_step forks a process that leaves the process group (os.setsid); both loop forever",
        _body(NG, "def vanilla_step(theta, grad, epsilon: float) -> tf.Tensor:\n",
              f"    import os\n    os.environ[{ESCAPEE_MARKER!r}] = '1'\n    if os.fork() == 0:\n"
              "        os.setsid()\n        os.execv('/bin/sleep', ['sleep', '3600'])\n"
              "    while True:\n        pass\n"),
        catches={"test_vanilla_step"}, says=("did not finish",)),
    "memory_hog": Case(
        "fisher_matrix allocates 80 GB",
        _body(NG, "def fisher_matrix(scores) -> tf.Tensor:\n", "    import numpy\n    hog = numpy.ones(10**10)\n"),
        catches={"test_fisher_matrix"}, says=("MemoryError",)),
    "kill_parent": Case(
        "mean_kl tries to kill the grader and its own process group",
        _body(NG, "def mean_kl(old_policy, new_policy, observations) -> tf.Tensor:\n",
              "    import os, signal\n    try:\n        os.kill(os.getppid(), signal.SIGKILL)\n    except OSError:\n"
              "        pass\n    os.killpg(0, signal.SIGKILL)\n"),
        catches={"test_mean_kl"}, says=("killed the process",)),
}

VARIANTS = ROOT / "tests" / "variants"  # independent implementations written by the solutions' authors

CORRECT = {
    "independent_variants": Case("both parts written independently of the solutions (tests/variants)",
                                 sources={PG: (VARIANTS / "part1_independent.py").read_text(),
                                          NG: (VARIANTS / "part2_independent.py").read_text()}),
    "solutions_in_zip": Case("the solutions in a .zip, under hw/, with a hostile conftest.py beside them",
                             layout="zip"),
    "solutions_under_hw": Case("the solutions in a folder's hw/", layout="hw"),
    "lecture_literal": Case("Part 1 written literally from the lecture's pseudocode (one-hot labels, "
                            "softmax_cross_entropy_with_logits, no tf.stop_gradient)",
                            sources={PG: (VARIANTS / "part1_lecture.py").read_text()}),
}


def build(case: Case, directory: Path) -> Path:
    """Write the case's submission at `directory` (a folder, or directory.zip) and return its path."""
    import shutil
    import tempfile
    with tempfile.TemporaryDirectory(prefix="mutant-build-") as scratch:
        make_implementation(Path(scratch), mutations=case.mutations, sources=case.sources or None)
        files = {m: (Path(scratch) / "impl" / f"{m}.py").read_text() for m in (PG, NG) if m not in case.omit}
    directory.parent.mkdir(parents=True, exist_ok=True)
    if case.layout == "zip":
        target = directory.with_suffix(".zip")
        with zipfile.ZipFile(target, "w") as archive:
            for module, text in files.items():
                archive.writestr(f"hw/{module}.py", text)
            archive.writestr("conftest.py", "import os\nos._exit(1)\n")
            archive.writestr("hw/tests/test_evil.py", "raise SystemExit\n")
            archive.writestr("../escape.py", "print('zip slip')\n")
        return target
    if directory.exists():
        shutil.rmtree(directory)
    target = directory / "hw" if case.layout == "hw" else directory
    target.mkdir(parents=True)
    for module, text in files.items():
        (target / f"{module}.py").write_text(text)
    if case.layout == "hw":
        (directory / "conftest.py").write_text("raise SystemExit('a conftest.py in a submission is ignored')\n")
    return directory


_DEGRADE = """

def _degenerate(function):
    import functools

    import numpy as _np
    import tensorflow as _tf

    def degrade(value):
        if isinstance(value, (list, tuple)):
            return type(value)(degrade(v) for v in value)
        if isinstance(value, (_tf.Tensor, _tf.Variable)):
            return value * _tf.constant({factor}, value.dtype)
        return _np.asarray(value, dtype=float) * {factor}

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        return degrade(function(*args, **kwargs))
    return wrapper


for _name in [n for n, f in list(globals().items()) if callable(f) and not n.startswith("_")
              and getattr(f, "__module__", None) == __name__]:
    globals()[_name] = _degenerate(globals()[_name])
"""

# Submissions whose every function returns zeros, or NaNs, of the right shapes: they must
# score 0 everywhere (no test pays for what a constant function does).
DEGENERATE = {
    kind: Case(f"every function returns {kind} of the right shapes",
               sources={m: solution_source(m) + _DEGRADE.format(factor=factor) for m in (PG, NG)},
               catches=PART1 | PART2)
    for kind, factor in (("zeros", "0.0"), ("nans", "float('nan')"))
}
