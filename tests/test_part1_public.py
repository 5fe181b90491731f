"""The Part 1 public tests (hw/tests/test_policy_gradient.py) judged against known answers.

First, the exact J of hw/tabular_mdp.py, which the public and hidden tests trust, is
checked against dynamic programming.

They must pass against the reference solutions and against an independent correct
implementation (tests/variants/part1_independent.py), fail everywhere against the
untouched stubs with the TODO message, and catch each common mistake, applied to the
solution as a text mutation, with a message that names it.

Each run is a pytest subprocess (a fresh TensorFlow import, ~6-8 s). To keep the total
short the mutants run in groups, one subprocess per group. That is sound because the
mutants of a group change different functions (checked below), and each mutant's
expected test exercises only its own function(s): its failure section must name the
mistake, whatever else the other mutants of the group break.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tests.support import (assert_each_mutant_named, check_mutant_groups, make_implementation, output,
                           run_public_tests)

PUBLIC_TESTS = "hw/tests/test_policy_gradient.py"
VARIANT = Path(__file__).parent / "variants" / "part1_independent.py"
# The Part 1 public tests never use natural_gradient; a placeholder keeps these runs
# independent of the state of Part 2.
NOT_UNDER_TEST = '"""Part 2 is not under test in these runs."""\n'

# (name, function mutated, [(old, new) replacements], expected failing test, phrase in its message)
MUTANTS = [
    ("policy_gradient returns the loss gradient", "policy_gradient",
     [("return [-tf.convert_to_tensor(gradient)", "return [tf.convert_to_tensor(gradient)")],
     "test_policy_gradient_matches_finite_differences_of_exact_J", "flipped sign"),
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
# that another mutant of its group changes: estimate_q_values calls reward_to_go and
# discounted_return; policy_gradient's expected test (a categorical policy) calls
# discrete_pseudo_loss.
GROUPS = [
    ["policy_gradient returns the loss gradient", "reward-to-go without discount",
     "discounted return without discount", "importance ratio upside down", "Gaussian without the log-sigma term"],
    ["pseudo-loss summed instead of averaged", "reward-to-go discounted from the path's start",
     "Gaussian without the 1/2 log(2 pi) constant", "importance-sampled loss with a flipped sign"],
    ["q_values reshaped to [B, 1]", "Gaussian as plain squared error", "use_reward_to_go read the wrong way round"],
]
CALLS = {"estimate_q_values": {"reward_to_go", "discounted_return"}, "policy_gradient": {"discrete_pseudo_loss"}}


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


def test_public_tests_pass_against_the_solutions():
    result = run_public_tests("solutions", PUBLIC_TESTS)
    assert result.returncode == 0, output(result)[-5000:]
    assert re.search(r"\b\d+ passed\b", result.stdout) and " failed" not in result.stdout, result.stdout[-2000:]


def test_every_public_test_fails_against_the_stubs_with_the_todo_message():
    result = run_public_tests("hw", PUBLIC_TESTS)
    text = output(result)
    assert result.returncode == 1, text[-5000:]
    assert not re.search(r"\b\d+ passed\b", text), f"some public tests pass against the untouched stubs:\n{text[-3000:]}"
    assert "NotImplementedError: discounted_return: TODO, " in text
    assert "NotImplementedError: discrete_pseudo_loss: TODO, step 2 of the lecture's pseudocode" in text
    assert "(hw/policy_gradient.py)" in text


def test_public_tests_pass_against_an_independent_implementation(tmp_path):
    package = make_implementation(tmp_path, sources={"policy_gradient": VARIANT.read_text(),
                                                     "natural_gradient": NOT_UNDER_TEST})
    result = run_public_tests("impl", PUBLIC_TESTS, pythonpath=package)
    assert result.returncode == 0, output(result)[-5000:]


def test_mutant_groups_are_sound():
    check_mutant_groups(MUTANTS, GROUPS, "policy_gradient",
                        uses=lambda mutant: {mutant[1]} | CALLS.get(mutant[1], set()))


@pytest.mark.parametrize("group", GROUPS, ids=[f"group{i}" for i in range(1, len(GROUPS) + 1)])
def test_each_common_mistake_fails_a_public_test_that_names_it(tmp_path, group):
    mutants = [mutant for mutant in MUTANTS if mutant[0] in group]
    replacements = [replacement for mutant in mutants for replacement in mutant[2]]
    package = make_implementation(tmp_path, mutations={"policy_gradient": replacements},
                                  sources={"natural_gradient": NOT_UNDER_TEST})
    result = run_public_tests("impl", PUBLIC_TESTS, pythonpath=package)
    assert_each_mutant_named(result, mutants)
