"""The Part 1 public tests (hw/tests/test_part1_policy_gradient.py) judged against known answers.

First, the exact J of hw/tabular_mdp.py, which the public and hidden tests trust, is
checked against dynamic programming.

They must pass against the reference solutions and against two independent correct
implementations (tests/variants/part1_independent.py; tests/variants/part1_lecture.py,
the lecture's pseudocode taken literally, without tf.stop_gradient, with Q-values in
float32), fail everywhere against the untouched stubs with the TODO message, and catch
each common mistake, applied to the solution as a text mutation, with a message that
names it.

Each run is a pytest subprocess (a fresh TensorFlow import, ~6-8 s), two at a time (the
`runs` fixture). To keep the total short the mutants run in groups, one subprocess per
group. That is sound because the mutants of a group change different functions (checked
below), and each mutant's expected test calls no function that another mutant of its
group changes (USES below): its failure section must name the mistake, whatever else the
other mutants of the group break.
"""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tests.support import (assert_each_mutant_named, check_mutant_groups, make_implementation, output,
                           run_public_tests)

PUBLIC_TESTS = "hw/tests/test_part1_policy_gradient.py"
VARIANTS = {name: Path(__file__).parent / "variants" / f"{name}.py" for name in ("part1_independent", "part1_lecture")}
# The Part 1 public tests never use natural_gradient; a placeholder keeps these runs
# independent of the state of Part 2.
NOT_UNDER_TEST = '"""Part 2 is not under test in these runs."""\n'

# (name, function mutated, [(old, new) replacements], expected failing test, phrase in its message)
MUTANTS = [
    ("policy_gradient returns the loss gradient", "policy_gradient",
     [("return [-tf.convert_to_tensor(gradient)", "return [tf.convert_to_tensor(gradient)")],
     "test_policy_gradient_matches_finite_differences_of_exact_J", "flipped sign"),
    ("Gaussian with the variance for the standard deviation", "gaussian_pseudo_loss",
     [("z = (actions - means) / tf.exp(log_std)", "z = (actions - means) / tf.exp(2.0 * log_std)"),
      ("+ tf.reduce_sum(log_std)  # + sum_j log sigma_j", "+ 2.0 * tf.reduce_sum(log_std)  # + sum_j log sigma_j")],
     "test_gaussian_pseudo_loss_value", "the variance where the standard deviation belongs"),
    ("tf.gather without batch_dims", "discrete_pseudo_loss",
     [("    one_hot_actions = tf.one_hot(actions, depth=tf.shape(logits)[-1], dtype=logits.dtype)  # [B, A]\n"
       "    negative_likelihoods = tf.nn.softmax_cross_entropy_with_logits(labels=one_hot_actions, logits=logits)\n",
       "    negative_likelihoods = -tf.gather(tf.nn.log_softmax(logits), actions, axis=1)\n")],
     "test_discrete_pseudo_loss_value", "without batch_dims=1"),
    ("reward-to-go discounted from the path's end", "reward_to_go",
     [("future = rewards[t] + gamma * future", "future = gamma ** (len(rewards) - 1 - t) * rewards[t] + future")],
     "test_reward_to_go_by_hand", "discount counted from the path's end"),
    ("reward-to-go as a reversed cumulative sum divided by gamma^t", "reward_to_go",
     [("    q_values = np.zeros_like(rewards)\n",
       "    discounts = gamma ** np.arange(len(rewards))\n"
       "    return np.cumsum((discounts * rewards)[::-1])[::-1] / discounts\n")],
     "test_reward_to_go_is_accurate_on_1000_step_paths", "gamma^t underflows"),
    ("the log of a softmax", "discrete_pseudo_loss",
     [("negative_likelihoods = tf.nn.softmax_cross_entropy_with_logits(labels=one_hot_actions, logits=logits)",
       "negative_likelihoods = -tf.math.log(tf.reduce_sum(one_hot_actions * tf.nn.softmax(logits), axis=-1))")],
     "test_discrete_pseudo_loss_stays_finite_for_large_logit_gaps", "the log of a softmax"),
    ("q_values not cast to the logits' dtype", "discrete_pseudo_loss",
     [("q_values = tf.stop_gradient(tf.cast(q_values, logits.dtype))  # [B]",
       "q_values = tf.stop_gradient(tf.convert_to_tensor(q_values))  # [B]")],
     "test_pseudo_losses_of_a_float32_policy_accept_float64_q_values", "q_values not cast"),
    # Right values of its own input, which it doubles in place: a test that computed its
    # expected value after the call (from the doubled input) would pass it.
    ("reward-to-go writes into its input", "reward_to_go",
     [("    q_values = np.zeros_like(rewards)\n", "    rewards *= 2.0  # the caller's array, when it is float64\n"
                                                "    q_values = np.zeros_like(rewards)\n")],
     "test_reward_to_go_random_paths_match_the_definition", "reward_to_go of a random path"),
    ("pseudo-loss summed instead of averaged", "discrete_pseudo_loss",
     [("return tf.reduce_mean(weighted_negative_likelihoods)", "return tf.reduce_sum(weighted_negative_likelihoods)")],
     "test_discrete_pseudo_loss_value", "sum instead of mean"),
    ("q_values reshaped to [B, 1]", "discrete_pseudo_loss",
     [("tf.multiply(negative_likelihoods, q_values)  # [B] * [B]",
       "tf.multiply(negative_likelihoods, tf.reshape(q_values, [-1, 1]))")],
     "test_discrete_pseudo_loss_value", "q_values broadcast to [B, B]"),
    ("Gaussian without the log-sigma term", "gaussian_pseudo_loss",
     [("+ tf.reduce_sum(log_std)  # + sum_j log sigma_j\n", "\n")],
     "test_gaussian_pseudo_loss_value", "without the log-sigma term"),
    ("Gaussian without the 1/2 log(2 pi) constant", "gaussian_pseudo_loss",
     [("+ tf.reduce_sum(log_std)  # + sum_j log sigma_j\n"
       "                            + 0.5 * action_dim * np.log(2.0 * np.pi))", "+ tf.reduce_sum(log_std))")],
     "test_gaussian_pseudo_loss_value", "without the 1/2 log(2 pi) constant"),
    ("Gaussian as plain squared error", "gaussian_pseudo_loss",
     [("z = (actions - means) / tf.exp(log_std)", "z = actions - means"),
      ("+ tf.reduce_sum(log_std)  # + sum_j log sigma_j\n"
       "                            + 0.5 * action_dim * np.log(2.0 * np.pi))", ")")],
     "test_gaussian_pseudo_loss_gradients_wrt_means_and_log_std", "plain squared error"),
    ("reward-to-go without discount", "reward_to_go",
     [("future = rewards[t] + gamma * future", "future = rewards[t] + future")],
     "test_reward_to_go_by_hand", "no discount"),
    ("reward-to-go discounted from the path's start", "reward_to_go",
     [("future = rewards[t] + gamma * future", "future = gamma ** t * rewards[t] + future")],
     "test_reward_to_go_by_hand", "discount counted from the path's start"),
    ("discounted return without discount", "discounted_return",
     [("discounts = gamma ** np.arange(len(rewards))", "discounts = np.ones(len(rewards))")],
     "test_discounted_return_by_hand", "no discount"),
    ("use_reward_to_go read the wrong way round", "estimate_q_values",
     [("reward_to_go if use_reward_to_go else discounted_return",
       "discounted_return if use_reward_to_go else reward_to_go")],
     "test_estimate_q_values_concatenates_in_path_order", "wrong way round"),
    ("importance ratio upside down", "importance_sampled_pseudo_loss",
     [("tf.exp(log_probs - old_log_probs)  # pi_theta", "tf.exp(old_log_probs - log_probs)  # pi_theta")],
     "test_importance_sampled_pseudo_loss_value", "ratio upside down"),
    ("importance-sampled loss with a flipped sign", "importance_sampled_pseudo_loss",
     [("return -tf.reduce_mean(ratios * advantages)", "return tf.reduce_mean(ratios * advantages)")],
     "test_importance_sampled_pseudo_loss_value", "flipped sign"),
]
# Mutants of one group change different functions, and no expected test calls a function
# that another mutant of its group changes (USES).
GROUPS = [
    ["policy_gradient returns the loss gradient", "reward-to-go without discount",
     "discounted return without discount", "importance ratio upside down", "Gaussian without the log-sigma term"],
    ["pseudo-loss summed instead of averaged", "reward-to-go discounted from the path's start",
     "Gaussian without the 1/2 log(2 pi) constant", "importance-sampled loss with a flipped sign"],
    ["q_values reshaped to [B, 1]", "Gaussian as plain squared error", "use_reward_to_go read the wrong way round"],
    ["tf.gather without batch_dims", "reward-to-go discounted from the path's end",
     "Gaussian with the variance for the standard deviation"],
    ["the log of a softmax", "reward-to-go as a reversed cumulative sum divided by gamma^t"],
    ["q_values not cast to the logits' dtype", "reward-to-go writes into its input"],
]
# The graded functions each expected test calls, besides the one its mutant changes.
USES = {"test_estimate_q_values_concatenates_in_path_order": {"reward_to_go", "discounted_return"},
        "test_policy_gradient_matches_finite_differences_of_exact_J": {"discrete_pseudo_loss"},
        "test_pseudo_losses_of_a_float32_policy_accept_float64_q_values": {"gaussian_pseudo_loss",
                                                                           "importance_sampled_pseudo_loss"}}


@pytest.mark.parametrize("gamma", [1.0, 0.7])
def test_tabular_mdp_is_exact(gamma):
    from hw.tabular_mdp import TabularMDP

    mdp = TabularMDP.random(n_states=3, n_actions=2, horizon=4, gamma=gamma, seed=3)
    logits = np.random.default_rng(3).normal(size=(3, 2))
    pi = mdp.action_probabilities(logits)
    value = np.zeros(3)  # V_H = 0; V_t(s) = sum_a pi(a|s) (R[s, a] + gamma sum_s' P[s, a, s'] V_{t+1}(s'))
    for _ in range(mdp.horizon):
        value = np.sum(pi * (mdp.rewards + gamma * mdp.transitions @ value), axis=1)
    assert np.isclose(mdp.expected_return(logits), mdp.initial @ value, rtol=1e-12, atol=0)
    assert np.isclose(mdp.trajectory_probabilities(logits).sum(), 1.0, rtol=1e-12)
    batch = mdp.trajectories(logits)
    steps = (3 * 2) ** 4 * 4
    assert batch.observations.shape == (steps, 3) and batch.actions.shape == batch.time_steps.shape == (steps,)
    rewards = np.concatenate(batch.rewards_per_path)
    assert np.allclose(rewards, mdp.rewards[batch.observations.argmax(axis=1), batch.actions])
    assert np.isclose(np.sum(batch.weights(True) / steps * rewards), mdp.expected_return(logits), rtol=1e-12)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every pytest subprocess of this module, two at a time: {key: Future of CompletedProcess}."""
    jobs = {"solutions": ("solutions", None), "stubs": ("hw", None)}
    for name, path in VARIANTS.items():
        jobs[name] = ("impl", make_implementation(tmp_path_factory.mktemp(name), sources={
            "policy_gradient": path.read_text(), "natural_gradient": NOT_UNDER_TEST}))
    for i, group in enumerate(GROUPS, start=1):
        replacements = [replacement for mutant in MUTANTS if mutant[0] in group for replacement in mutant[2]]
        jobs[f"group{i}"] = ("impl", make_implementation(tmp_path_factory.mktemp(f"group{i}"), mutations={
            "policy_gradient": replacements}, sources={"natural_gradient": NOT_UNDER_TEST}))
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {key: pool.submit(run_public_tests, package, PUBLIC_TESTS, pythonpath=path)
               for key, (package, path) in jobs.items()}


def test_public_tests_pass_against_the_solutions(runs):
    result = runs["solutions"].result()
    assert result.returncode == 0, output(result)[-5000:]
    assert re.search(r"\b\d+ passed\b", result.stdout) and " failed" not in result.stdout, result.stdout[-2000:]


def test_every_public_test_fails_against_the_stubs_with_the_todo_message(runs):
    result = runs["stubs"].result()
    text = output(result)
    assert result.returncode == 1, text[-5000:]
    assert not re.search(r"\b\d+ passed\b", text), f"some public tests pass against the untouched stubs:\n{text[-3000:]}"
    assert "NotImplementedError: discounted_return: TODO, " in text
    assert "NotImplementedError: discrete_pseudo_loss: TODO, step 2 of the lecture's pseudocode" in text
    assert "(hw/policy_gradient.py)" in text


@pytest.mark.parametrize("variant", VARIANTS)
def test_public_tests_pass_against_an_independent_implementation(runs, variant):
    result = runs[variant].result()
    assert result.returncode == 0, output(result)[-5000:]


def test_mutant_groups_are_sound():
    check_mutant_groups(MUTANTS, GROUPS, "policy_gradient",
                        uses=lambda mutant: {mutant[1]} | USES.get(mutant[3], set()))


@pytest.mark.parametrize("group", GROUPS, ids=[f"group{i}" for i in range(1, len(GROUPS) + 1)])
def test_each_common_mistake_fails_a_public_test_that_names_it(runs, group):
    assert_each_mutant_named(runs[f"group{GROUPS.index(group) + 1}"].result(),
                             [mutant for mutant in MUTANTS if mutant[0] in group])
