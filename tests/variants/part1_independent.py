"""Part 1 written independently of solutions/policy_gradient.py, as a student might.

Where the reference uses one-hot labels, a backward loop and the Gaussian formula by
hand, this one uses sparse labels, a matrix of discounts and tensorflow-probability's
log_prob, and policy_gradient goes through policy.distribution. The public tests must
pass against it: they check properties, not one way of writing the code.
"""
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp


def _discount_matrix(length, gamma):
    """[T, T] upper-triangular: entry (t, t') is gamma^(t' - t) for t' >= t, 0 below."""
    offsets = np.subtract.outer(np.arange(length), np.arange(length)).T  # t' - t
    return np.where(offsets >= 0, np.power(float(gamma), np.maximum(offsets, 0)), 0.0)


def discounted_return(rewards, gamma):
    rewards = np.array(rewards, dtype=np.float64).reshape(-1)
    total = _discount_matrix(len(rewards), gamma)[0] @ rewards  # row 0: gamma^t'
    return total * np.ones_like(rewards)


def reward_to_go(rewards, gamma):
    rewards = np.array(rewards, dtype=np.float64).reshape(-1)
    return _discount_matrix(len(rewards), gamma) @ rewards


def estimate_q_values(rewards_per_path, gamma, use_reward_to_go):
    pieces = []
    for rewards in rewards_per_path:
        pieces.append(reward_to_go(rewards, gamma) if use_reward_to_go else discounted_return(rewards, gamma))
    return np.hstack(pieces)


def discrete_pseudo_loss(logits, actions, q_values):
    logits = tf.convert_to_tensor(logits)
    labels = tf.convert_to_tensor(actions)
    negative_likelihoods = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    weights = tf.stop_gradient(tf.reshape(tf.cast(q_values, logits.dtype), [-1]))
    return tf.reduce_sum(negative_likelihoods * weights) / tf.cast(tf.size(weights), logits.dtype)


def gaussian_pseudo_loss(means, log_std, actions, q_values):
    means = tf.convert_to_tensor(means)
    distribution = tfp.distributions.MultivariateNormalDiag(
        loc=means, scale_diag=tf.exp(tf.cast(log_std, means.dtype)))
    log_likelihoods = distribution.log_prob(tf.cast(actions, means.dtype))
    weights = tf.stop_gradient(tf.cast(q_values, means.dtype))
    return -tf.reduce_mean(log_likelihoods * weights)


def policy_gradient(policy, observations, actions, q_values):
    variables = list(policy.trainable_variables)
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(variables)
        distribution = policy.distribution(observations)
        if not policy.discrete:  # float64 actions for a float32 policy: computed in the policy's dtype
            actions = tf.cast(actions, distribution.dtype)
        log_likelihoods = distribution.log_prob(actions)
        objective = tf.reduce_mean(log_likelihoods * tf.constant(np.asarray(q_values), log_likelihoods.dtype))
    ascent = tape.gradient(objective, variables)
    return [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g) for g, v in zip(ascent, variables)]


def importance_sampled_pseudo_loss(log_probs, old_log_probs, advantages):
    log_probs = tf.convert_to_tensor(log_probs)
    # No tf.stop_gradient: old_log_probs and advantages are numbers (docs/contract.md), left as they come.
    ratio = tf.exp(log_probs) / tf.exp(tf.cast(old_log_probs, log_probs.dtype))
    return -tf.reduce_mean(ratio * tf.cast(advantages, log_probs.dtype))
