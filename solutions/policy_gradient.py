"""Part 1: policy gradients through a pseudo-loss (CS 285, Lecture 5 part 5).

The policy gradient, estimated from N sampled trajectories of T steps each,

    grad J(theta) ~ 1/N sum_i sum_t grad log pi_theta(a_it | s_it) Q_it,                  (1)

is the gradient of the "pseudo-loss" objective

    J~(theta) = 1/N sum_i sum_t log pi_theta(a_it | s_it) Q_it,                            (2)

where the Q_it are numbers computed from the rewards and held fixed: only log pi depends
on theta. With causality (a decision cannot change the rewards that came before it) the
Q-value of step t is the reward-to-go

    Q_it = sum_{t'=t}^{T-1} gamma^(t'-t) r_it'.                                            (3)

Automatic differentiation minimizes losses, so we hand it loss = -J~. The lecture writes
it in TensorFlow with maximum likelihood's cross-entropy (a negative log-likelihood):

    logits = policy.predictions(states)                     # [N*T, Da]
    negative_likelihoods = tf.nn.softmax_cross_entropy_with_logits(labels=actions, logits=logits)
    weighted_negative_likelihoods = tf.multiply(negative_likelihoods, q_values)
    loss = tf.reduce_mean(weighted_negative_likelihoods)
    gradients = tape.gradient(loss, variables)

reduce_mean divides by the number of steps N*T rather than by N, a constant factor that
the learning rate absorbs. Every function below works with NumPy arrays or tf.Tensors,
float32 or float64, mixed in one call (a float32 policy gets float64 Q-values from NumPy:
compute in the dtype of the logits or means). Q-values are computed in NumPy; the
pseudo-losses return scalar tf.Tensors; `policy_gradient` returns the ascent direction
grad J, i.e. minus the gradient of the loss. docs/contract.md has the whole contract.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf


# ---------------------------------------------------------------------------------------
# Q-value estimates, one trajectory at a time (NumPy)
# ---------------------------------------------------------------------------------------

def discounted_return(rewards, gamma: float) -> np.ndarray:
    """The whole trajectory's discounted return, given to every one of its steps.

        Q_t = sum_{t'=0}^{T-1} gamma^t' r_t'        for every t (no causality)

    Args:
        rewards: [T] float32 or float64 (NumPy array or tf.Tensor), the rewards r_0, ..., r_{T-1}
            of one trajectory.
        gamma: float in [0, 1], the discount factor.

    Returns:
        [T] float64 np.ndarray, every entry the same number sum_t gamma^t r_t.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    # BEGIN SOLUTION: the whole return sum_t gamma^t r_t, repeated for each of the T steps
    discounts = gamma ** np.arange(len(rewards))  # gamma^0, gamma^1, ..., gamma^(T-1)
    return np.full(len(rewards), np.sum(discounts * rewards))
    # END SOLUTION


def reward_to_go(rewards, gamma: float) -> np.ndarray:
    """Equation (3): the discounted sum of the rewards from step t on.

        Q_t = sum_{t'=t}^{T-1} gamma^(t'-t) r_t' = r_t + gamma Q_{t+1}

    The discount is counted from t, not from the start of the trajectory.

    Args:
        rewards: [T] float32 or float64 (NumPy array or tf.Tensor), one trajectory's rewards.
        gamma: float in [0, 1], the discount factor.

    Returns:
        [T] float64 np.ndarray: entry t is the reward-to-go Q_t. It must stay accurate on
        paths of 1,000 steps with any gamma, 0 included: compute it backwards, never by
        dividing by gamma^t (which underflows to 0).
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    # BEGIN SOLUTION: equation (3), the reward-to-go Q_t = r_t + gamma Q_{t+1}, computed backwards from the last step
    q_values = np.zeros_like(rewards)
    future = 0.0  # Q_{t+1}, zero after the last step
    for t in reversed(range(len(rewards))):
        future = rewards[t] + gamma * future
        q_values[t] = future
    return q_values
    # END SOLUTION


def estimate_q_values(rewards_per_path, gamma: float, use_reward_to_go: bool) -> np.ndarray:
    """The Q-value of every step of every trajectory, in the order the steps were sampled.

    Args:
        rewards_per_path: a list of N arrays, the i-th of shape [T_i] (float32 or float64,
            NumPy or tf.Tensor): the rewards of trajectory i. Lengths may differ.
        gamma: float in [0, 1], the discount factor.
        use_reward_to_go: True for `reward_to_go` (equation (3)), False for `discounted_return`.

    Returns:
        [sum_i T_i] float64 np.ndarray: the per-trajectory Q-values concatenated in path
        order, so that entry k matches the k-th row of the batch of observations and actions.
    """
    # BEGIN SOLUTION: each path's Q-values (use_reward_to_go picks the estimator), concatenated in path order
    estimator = reward_to_go if use_reward_to_go else discounted_return
    return np.concatenate([estimator(rewards, gamma) for rewards in rewards_per_path])
    # END SOLUTION


# ---------------------------------------------------------------------------------------
# Pseudo-losses: loss = -J~ of equation (2), whose gradient is -grad J (TensorFlow)
# ---------------------------------------------------------------------------------------

def discrete_pseudo_loss(logits, actions, q_values) -> tf.Tensor:
    """The lecture's pseudo-loss for a softmax (categorical) policy.

        loss = 1/B sum_i -log pi(a_i | s_i) q_i,    pi(. | s_i) = softmax(logits_i)

    Args:
        logits: [B, A] float32 or float64, the policy's logits (step 1 of the lecture's
            pseudocode, policy.predictions(states)); B = N*T is the number of steps.
        actions: [B] integer, the index in {0, ..., A-1} of the action taken at each step.
            (The lecture's `actions` are one-hot [B, A]; ours are indices.)
        q_values: [B] float32 or float64, the Q-value estimate of each step.

    Returns:
        A scalar tf.Tensor of the logits' dtype, finite even when a logit gap reaches 100 or
        more (compute log pi without forming pi, whose entries underflow to 0). q_values
        are numbers, not functions of theta: nothing differentiates with respect to them
        (the provided line's tf.stop_gradient is good practice, not a requirement).
    """
    logits = tf.convert_to_tensor(logits)
    actions = tf.cast(actions, tf.int32)
    # The Q-values are numbers, not functions of theta: no gradient may flow into them.
    q_values = tf.stop_gradient(tf.cast(q_values, logits.dtype))  # [B]
    # Lecture, step 2:
    #   negative_likelihoods = tf.nn.softmax_cross_entropy_with_logits(labels=actions, logits=logits)
    # BEGIN SOLUTION: step 2 of the lecture's pseudocode: negative_likelihoods [B], -log pi(a_i|s_i) of each action
    one_hot_actions = tf.one_hot(actions, depth=tf.shape(logits)[-1], dtype=logits.dtype)  # [B, A]
    negative_likelihoods = tf.nn.softmax_cross_entropy_with_logits(labels=one_hot_actions, logits=logits)
    # END SOLUTION
    # Lecture, steps 3 and 4:
    #   weighted_negative_likelihoods = tf.multiply(negative_likelihoods, q_values)   # [B]
    #   loss = tf.reduce_mean(weighted_negative_likelihoods)                          # scalar
    # BEGIN SOLUTION: steps 3-4 of the lecture's pseudocode: weight each negative likelihood by its q_i, then the mean
    weighted_negative_likelihoods = tf.multiply(negative_likelihoods, q_values)  # [B] * [B]
    return tf.reduce_mean(weighted_negative_likelihoods)  # 1/B sum_i, a scalar
    # END SOLUTION


def gaussian_pseudo_loss(means, log_std, actions, q_values) -> tf.Tensor:
    """The pseudo-loss for a diagonal Gaussian policy pi(a | s) = N(a; mu(s), diag(sigma)^2).

    The discrete policy's cross-entropy becomes the Gaussian negative log-density, summed
    over the D action dimensions, with sigma = exp(log_std) and z_j = (a_j - mu_j) / sigma_j:

        -log N(a; mu, diag(sigma)^2) = 1/2 sum_j z_j^2 + sum_j log sigma_j + D/2 log(2 pi)

    The first term alone is the squared error of regression. The second one is what lets
    the policy learn sigma: without it, sigma -> infinity would make the loss vanish.

        loss = 1/B sum_i -log N(a_i; mu_i, diag(sigma)^2) q_i

    Args:
        means: [B, D] float32 or float64, the action means mu(s_i) (policy.predictions(states)).
        log_std: [D] the log standard deviations, state-independent (policy.log_std).
        actions: [B, D] the actions taken.
        q_values: [B] the Q-value estimate of each step.

    Returns:
        A scalar tf.Tensor of the means' dtype. q_values are numbers (see discrete_pseudo_loss).
    """
    means = tf.convert_to_tensor(means)
    log_std = tf.cast(log_std, means.dtype)  # [D]
    actions = tf.cast(actions, means.dtype)  # [B, D]
    q_values = tf.stop_gradient(tf.cast(q_values, means.dtype))  # [B], constants
    action_dim = tf.cast(tf.shape(means)[-1], means.dtype)  # D
    # BEGIN SOLUTION: step 2 for continuous actions: negative_likelihoods [B], the docstring's full -log N(a_i; mu_i, sigma^2)
    z = (actions - means) / tf.exp(log_std)  # [B, D], (a_j - mu_j) / sigma_j
    negative_likelihoods = (0.5 * tf.reduce_sum(tf.square(z), axis=-1)  # 1/2 sum_j z_j^2, [B]
                            + tf.reduce_sum(log_std)  # + sum_j log sigma_j
                            + 0.5 * action_dim * np.log(2.0 * np.pi))  # + D/2 log(2 pi)
    # END SOLUTION
    # Lecture, steps 3 and 4, as for the discrete policy:
    #   weighted_negative_likelihoods = tf.multiply(negative_likelihoods, q_values)   # [B]
    #   loss = tf.reduce_mean(weighted_negative_likelihoods)                          # scalar
    # BEGIN SOLUTION: steps 3-4 of the lecture's pseudocode: weight each negative likelihood by its q_i, then the mean
    return tf.reduce_mean(tf.multiply(negative_likelihoods, q_values))  # 1/B sum_i -log N_i q_i
    # END SOLUTION


# ---------------------------------------------------------------------------------------
# The policy gradient
# ---------------------------------------------------------------------------------------

def policy_gradient(policy, observations, actions, q_values) -> list[tf.Tensor]:
    """Equation (1), grad J, by automatic differentiation of the pseudo-loss.

    Args:
        policy: a policy of hw/policies.py (policy.discrete tells which kind).
        observations: [B, obs_dim] float32 or float64, the states s_i of all steps of all paths.
        actions: [B] integer indices (discrete policy) or [B, D] floats (Gaussian policy).
        q_values: [B] float32 or float64, the Q-value estimates (e.g. `estimate_q_values`).

    Returns:
        A list of dense tf.Tensors, one per variable of `policy.trainable_variables`, each
        of its variable's shape: the ascent direction grad J = -grad(loss). A gradient
        ascent step is theta <- theta + learning_rate * grad J.
    """
    variables = policy.trainable_variables
    with tf.GradientTape() as tape:
        predictions = policy.predictions(observations)  # step 1: logits [N*T, Da], or means [N*T, D]
        # BEGIN SOLUTION: steps 2-4 of the lecture's pseudocode: loss, the pseudo-loss for this policy (discrete or Gaussian)
        if policy.discrete:
            loss = discrete_pseudo_loss(predictions, actions, q_values)
        else:
            loss = gaussian_pseudo_loss(predictions, policy.log_std, actions, q_values)
        # END SOLUTION
    # Step 5: gradients = tape.gradient(loss, variables), the gradient of the *loss* -J~.
    gradients = tape.gradient(loss, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    # BEGIN SOLUTION: the ascent direction grad J from the loss gradients (mind the sign), dense tf.Tensors
    return [-tf.convert_to_tensor(gradient) for gradient in gradients]  # dense even if IndexedSlices
    # END SOLUTION


def importance_sampled_pseudo_loss(log_probs, old_log_probs, advantages) -> tf.Tensor:
    """The per-step importance-weighted surrogate, for steps sampled by an older policy.

        loss = -1/B sum_i  pi_theta(a_i | s_i) / pi_theta_old(a_i | s_i)  A_i
             = -1/B sum_i  exp(log pi_theta(a_i | s_i) - log pi_theta_old(a_i | s_i))  A_i

    At theta = theta_old the ratio is 1 and its gradient is grad log pi_theta, so this
    loss has the same gradient as the pseudo-loss 1/B sum_i -log pi_theta(a_i | s_i) A_i.

    Args:
        log_probs: [B] float32 or float64, log pi_theta(a_i | s_i) under the current policy
            (differentiable with respect to theta).
        old_log_probs: [B] log pi_theta_old(a_i | s_i) under the policy that sampled the
            steps: constants.
        advantages: [B] the advantage (or Q-value) estimate of each step: constants.

    Returns:
        A scalar tf.Tensor of the log_probs' dtype. old_log_probs and advantages are
        numbers: nothing differentiates with respect to them.
    """
    log_probs = tf.convert_to_tensor(log_probs)
    old_log_probs = tf.stop_gradient(tf.cast(old_log_probs, log_probs.dtype))  # [B], constants
    advantages = tf.stop_gradient(tf.cast(advantages, log_probs.dtype))  # [B], constants
    # BEGIN SOLUTION: the importance-weighted surrogate loss of the docstring, a scalar
    ratios = tf.exp(log_probs - old_log_probs)  # pi_theta / pi_theta_old, [B]
    return -tf.reduce_mean(ratios * advantages)
    # END SOLUTION
