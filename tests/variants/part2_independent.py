"""An independent correct implementation of hw/natural_gradient.py, written differently from
solutions/natural_gradient.py on purpose (forward-over-backward Hessian-vector products, a
Cholesky solve, per-sample gradients in a Python loop, a textbook conjugate gradient that
computes r0 = b - A x0 with one more matvec call and checks the residual at the end of each
iteration too), so that the public tests are seen to accept more than one way of doing it.
"""
import numpy as np
import tensorflow as tf

from hw.utils import flatten, unflatten


def _dtype(policy):
    return policy.trainable_variables[0].dtype


def vanilla_step(theta, grad, epsilon):
    theta = tf.convert_to_tensor(theta)
    direction = tf.math.l2_normalize(tf.cast(grad, theta.dtype))
    return theta + np.sqrt(epsilon) * direction


def score_matrix(policy, observations, actions):
    dtype = _dtype(policy)
    observations = tf.cast(observations, dtype)
    actions = tf.cast(actions, tf.int32) if policy.discrete else tf.cast(actions, dtype)
    rows = []
    for i in range(int(observations.shape[0])):
        with tf.GradientTape() as tape:
            log_prob = tf.reduce_sum(policy.distribution(observations[i:i + 1]).log_prob(actions[i:i + 1]))
        rows.append(flatten(tape.gradient(log_prob, policy.trainable_variables,
                                          unconnected_gradients="zero")))
    return tf.stack(rows)


def fisher_matrix(scores):
    scores = tf.convert_to_tensor(scores)
    return tf.einsum("bi,bj->ij", scores, scores) / scores.shape[0]


def natural_gradient_step(theta, grad, fisher, epsilon):
    theta = tf.convert_to_tensor(theta)
    g = tf.cast(grad, theta.dtype)
    chol = tf.linalg.cholesky(tf.cast(fisher, theta.dtype))
    x = tf.linalg.cholesky_solve(chol, tf.reshape(g, [-1, 1]))[:, 0]
    return theta + tf.sqrt(2 * epsilon / tf.tensordot(g, x, axes=1)) * x


def fisher_vector_product(policy, observations, vector, damping=0.0):
    variables = list(policy.trainable_variables)
    v = tf.cast(vector, _dtype(policy))
    old = policy.distribution(observations)       # computed outside every tape: a constant
    with tf.autodiff.ForwardAccumulator(variables, unflatten(v, variables)) as accumulator:
        with tf.GradientTape() as tape:
            kl = tf.reduce_mean(old.kl_divergence(policy.distribution(observations)))
        gradient = flatten(tape.gradient(kl, variables, unconnected_gradients="zero"))
    return accumulator.jvp(gradient) + damping * v


def conjugate_gradient(matvec, b, iterations=10, tolerance=1e-10):
    b = tf.convert_to_tensor(b)
    x = tf.zeros_like(b)
    r = b - tf.cast(matvec(x), b.dtype)  # the textbook's r0 = b - A x0: one matvec call more
    p, residual = tf.identity(r), float(tf.tensordot(r, r, 1))
    if residual < tolerance:
        return x
    for _ in range(iterations):
        z = tf.cast(matvec(p), b.dtype)
        step = residual / float(tf.tensordot(p, z, 1))
        x, r = x + step * p, r - step * z
        new_residual = float(tf.tensordot(r, r, 1))
        if new_residual < tolerance:
            break
        p, residual = r + (new_residual / residual) * p, new_residual
    return x


def natural_step_cg(policy, observations, grad, epsilon, iterations=10, damping=1e-3):
    g = tf.cast(grad, _dtype(policy))
    x = conjugate_gradient(lambda v: fisher_vector_product(policy, observations, v, damping), g, iterations)
    quadratic = tf.tensordot(x, fisher_vector_product(policy, observations, x, damping), 1)
    return x * tf.sqrt(2 * epsilon / quadratic)


def mean_kl(old_policy, new_policy, observations):
    return tf.reduce_mean(old_policy.distribution(observations).kl_divergence(new_policy.distribution(observations)))


def line_search(theta, full_step, surrogate, kl, epsilon, backtrack_ratio=0.5, max_backtracks=10):
    theta = tf.convert_to_tensor(theta)
    full_step = tf.cast(full_step, theta.dtype)
    reference, fraction = surrogate(theta), 1.0
    for _ in range(max_backtracks):
        candidate = theta + fraction * full_step
        if surrogate(candidate) > reference and kl(candidate) <= epsilon:
            return candidate
        fraction *= backtrack_ratio
    return theta
