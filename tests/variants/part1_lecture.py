"""Part 1 written literally from the lecture's pseudocode, as a student might on a first try.

One-hot labels and tf.nn.softmax_cross_entropy_with_logits, tf.multiply and
tf.reduce_mean, then gradients = tape.gradient(loss, variables) with their sign flipped;
a Gaussian through tensorflow-probability's Normal; Q-values computed in float32; and
nowhere a tf.stop_gradient: Q-values, old log-probabilities and advantages are plain
numbers, so nothing differentiates with respect to them. The public tests must pass
against it: the contract (docs/contract.md) asks for none of what it leaves out.
"""
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp


def discounted_return(rewards, gamma):
    rewards = tf.cast(tf.reshape(rewards, [-1]), tf.float32)
    discounts = tf.pow(tf.cast(gamma, tf.float32), tf.range(tf.size(rewards), dtype=tf.float32))
    return tf.fill(tf.shape(rewards), tf.reduce_sum(discounts * rewards))


def reward_to_go(rewards, gamma):
    rewards = np.asarray(rewards, dtype=np.float32)
    q_values, running = np.zeros_like(rewards), np.float32(0.0)
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + np.float32(gamma) * running
        q_values[t] = running
    return q_values


def estimate_q_values(rewards_per_path, gamma, use_reward_to_go):
    estimator = reward_to_go if use_reward_to_go else discounted_return
    return tf.concat([tf.cast(estimator(rewards, gamma), tf.float32) for rewards in rewards_per_path], axis=0)


def discrete_pseudo_loss(logits, actions, q_values):
    logits = tf.convert_to_tensor(logits)
    actions = tf.one_hot(actions, depth=logits.shape[-1], dtype=logits.dtype)  # the lecture's one-hot actions
    q_values = tf.cast(q_values, logits.dtype)
    negative_likelihoods = tf.nn.softmax_cross_entropy_with_logits(labels=actions, logits=logits)
    weighted_negative_likelihoods = tf.multiply(negative_likelihoods, q_values)
    return tf.reduce_mean(weighted_negative_likelihoods)


def gaussian_pseudo_loss(means, log_std, actions, q_values):
    means = tf.convert_to_tensor(means)
    normal = tfp.distributions.Normal(loc=means, scale=tf.exp(tf.cast(log_std, means.dtype)))
    negative_likelihoods = -tf.reduce_sum(normal.log_prob(tf.cast(actions, means.dtype)), axis=-1)
    weighted_negative_likelihoods = tf.multiply(negative_likelihoods, tf.cast(q_values, means.dtype))
    return tf.reduce_mean(weighted_negative_likelihoods)


def policy_gradient(policy, observations, actions, q_values):
    variables = policy.trainable_variables
    with tf.GradientTape() as tape:
        predictions = policy.predictions(observations)
        if policy.discrete:
            loss = discrete_pseudo_loss(predictions, actions, q_values)
        else:
            loss = gaussian_pseudo_loss(predictions, policy.log_std, actions, q_values)
    gradients = tape.gradient(loss, variables)
    return [-gradient for gradient in gradients]


def importance_sampled_pseudo_loss(log_probs, old_log_probs, advantages):
    log_probs = tf.convert_to_tensor(log_probs)
    ratios = tf.exp(log_probs - tf.cast(old_log_probs, log_probs.dtype))
    return -tf.reduce_mean(ratios * tf.cast(advantages, log_probs.dtype))
