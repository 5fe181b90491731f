"""Natural policy gradient (CS 285 Lecture 9 part 4).

Every function works on flat parameter vectors theta, g, d of shape [n], n the number of
policy parameters, in the order of `policy.trainable_variables` (hw.utils.flatten). Inputs
may be NumPy arrays or tf.Tensors, float32 or float64; the results are tf.Tensors in the
dtype of theta (or of the policy's variables).

The lecture's argument, step by step:

1. Gradient ascent theta' = theta + alpha g solves a trust-region problem with the wrong
   constraint: max_d g^T d subject to ||d||^2 <= eps (Euclidean distance in parameter
   space), whose solution is d = sqrt(eps / ||g||^2) g.                   -> vanilla_step
2. Some parameters change the policy much more than others, so the constraint should be on
   the policy: KL(pi_theta || pi_theta') <= eps. Its second-order expansion is
   KL ~ 1/2 d^T F d with the Fisher information matrix
   F = E[grad log pi(a|s) grad log pi(a|s)^T].                  -> score_matrix, fisher_matrix
3. max_d g^T d subject to 1/2 d^T F d <= eps gives the natural gradient step
   d = alpha F^-1 g, alpha = sqrt(2 eps / (g^T F^-1 g)).               -> natural_gradient_step
4. F is [n, n]: impossible to form for a large network. F is also the Hessian of the mean
   KL(pi_old || pi_theta) at theta = theta_old, so F v is a Hessian-vector product (two
   backward passes), and conjugate gradient solves F x = g with products alone (TRPO).
                              -> fisher_vector_product, conjugate_gradient, natural_step_cg
5. The quadratic model is only a model: TRPO checks the true KL and the improvement of the
   surrogate on a backtracking line search.                              -> mean_kl, line_search
"""
from __future__ import annotations

import tensorflow as tf
import tensorflow_probability as tfp

from hw.utils import flatten

tfd = tfp.distributions


def _vector(x, dtype=None) -> tf.Tensor:
    """A NumPy array or tf.Tensor as a tf.Tensor (cast to `dtype` if given)."""
    x = tf.convert_to_tensor(x)
    return x if dtype is None or x.dtype == dtype else tf.cast(x, dtype)


def _parameter_dtype(policy) -> tf.DType:
    return policy.trainable_variables[0].dtype


def vanilla_step(theta, grad, epsilon: float) -> tf.Tensor:
    """Gradient ascent as a Euclidean trust region: max_d g^T d s.t. ||d||^2 <= epsilon.

    theta [n], grad [n] (g = grad J, the ascent direction), epsilon > 0.
    Returns theta' = theta + alpha g [n] with alpha = sqrt(epsilon / ||g||^2), so that
    ||theta' - theta||^2 = epsilon.
    """
    theta = _vector(theta)
    g = _vector(grad, theta.dtype)
    # TODO: the Euclidean trust-region step: alpha = sqrt(eps / ||g||^2), theta + alpha g
    raise NotImplementedError('vanilla_step: TODO, the Euclidean trust-region step: alpha = sqrt(eps / ||g||^2), theta + alpha g (hw/natural_gradient.py)')


def score_matrix(policy, observations, actions) -> tf.Tensor:
    """Per-sample scores, the expensive way the lecture warns about: one gradient per sample.

    observations [B, obs_dim]; actions [B] integer indices (discrete policy) or [B, act_dim]
    (Gaussian policy). Returns S [B, n] in the policy's dtype, row i = grad_theta
    log pi_theta(a_i | s_i), flattened in the order of policy.trainable_variables.
    (Hint: tf.vectorized_map(f, (observations, actions)), with f returning one sample's
    flat gradient, runs the B backward passes as one batched computation. tape.jacobian of
    the [B] log-probabilities also works but costs O(B^2) memory: every row's backward
    pass runs through the whole batch.)
    """
    dtype = _parameter_dtype(policy)
    actions = _vector(actions, tf.int32 if policy.discrete else dtype)
    variables = policy.trainable_variables
    # TODO: one gradient per sample: row i = grad_theta log pi(a_i | s_i)
    raise NotImplementedError('score_matrix: TODO, one gradient per sample: row i = grad_theta log pi(a_i | s_i) (hw/natural_gradient.py)')


def fisher_matrix(scores) -> tf.Tensor:
    """The sampled Fisher information F = E[grad log pi grad log pi^T] = (1/B) S^T S.

    scores S [B, n] (from score_matrix). Returns F [n, n], symmetric positive semi-definite.
    """
    scores = _vector(scores)
    # TODO: F = (1/B) S^T S, the sample mean of the outer products of the scores
    raise NotImplementedError('fisher_matrix: TODO, F = (1/B) S^T S, the sample mean of the outer products of the scores (hw/natural_gradient.py)')


def natural_gradient_step(theta, grad, fisher, epsilon: float) -> tf.Tensor:
    """The natural gradient step: max_d g^T d s.t. 1/2 d^T F d <= epsilon.

    theta [n], grad g [n], fisher F [n, n] (symmetric positive definite), epsilon > 0.
    Returns theta' = theta + alpha F^-1 g [n] (not the step d itself) with
    alpha = sqrt(2 epsilon / (g^T F^-1 g)), so that 1/2 d^T F d = epsilon for d = theta' - theta.
    grad and fisher may come in another dtype than theta: compute in theta's dtype.
    """
    theta = _vector(theta)
    g = _vector(grad, theta.dtype)
    fisher = _vector(fisher, theta.dtype)
    # TODO: x = F^-1 g (solve, don't invert), alpha = sqrt(2 eps / (g^T F^-1 g)), theta + alpha x
    raise NotImplementedError("natural_gradient_step: TODO, x = F^-1 g (solve, don't invert), alpha = sqrt(2 eps / (g^T F^-1 g)), theta + alpha x (hw/natural_gradient.py)")


def fisher_vector_product(policy, observations, vector, damping: float = 0.0) -> tf.Tensor:
    """F v + damping v without forming F: a Hessian-vector product of the mean KL.

    F is the Hessian at theta of KL(theta) = mean_s KL(pi_old(.|s) || pi_theta(.|s)), where
    pi_old is the policy at its current parameters held fixed (its distribution parameters
    behind tf.stop_gradient). So F v = grad_theta (grad_theta KL . v): two nested tapes,
    O(n) memory, about the cost of two gradients.
    (Hint: tf.nest.map_structure(tf.stop_gradient, dist, expand_composites=True) is the
    distribution `dist` with its parameters held fixed; tfd.kl_divergence(p, q) is KL(p || q).)

    observations [B, obs_dim]; vector v [n] (in any dtype: compute in the policy's);
    damping >= 0 (adds damping * I to F, which keeps conjugate gradient well-posed when F
    is singular). Returns [n], the policy's dtype. The result is exact, the same at every
    call: the KL is computed over all actions in closed form; no action is sampled.
    """
    variables = policy.trainable_variables
    v = _vector(vector, _parameter_dtype(policy))
    # TODO: KL(pi_old || pi_theta) with the old side held fixed, then grad of (grad KL . v), plus damping * v
    raise NotImplementedError('fisher_vector_product: TODO, KL(pi_old || pi_theta) with the old side held fixed, then grad of (grad KL . v), plus damping * v (hw/natural_gradient.py)')


def conjugate_gradient(matvec, b, iterations: int = 10, tolerance: float = 1e-10) -> tf.Tensor:
    """Solve A x = b for a symmetric positive-definite A given only as x -> A x.

    matvec: [n] -> [n]; b [n]. Starts from x = 0 and runs at most `iterations` steps,
    checking the squared residual r^T r against `tolerance` before every step, the first
    included: it stops as soon as r^T r < tolerance (so for b = 0, or any b^T b below the
    tolerance, it returns x = 0, never nan). Returns x [n] in b's dtype. In exact
    arithmetic conjugate gradient solves an n x n system in n steps; a few steps already
    give a good step direction. (How many times you call matvec is up to you.)
    """
    b = _vector(b)
    x = tf.zeros_like(b)
    r = b                                      # residual r = b - A x, x = 0
    p = r                                      # search direction
    rr = tf.reduce_sum(r * r)
    # TODO: the conjugate gradient iterations (alpha = r^T r / p^T A p, x += alpha p, r -= alpha A p, new conjugate direction)
    raise NotImplementedError('conjugate_gradient: TODO, the conjugate gradient iterations (alpha = r^T r / p^T A p, x += alpha p, r -= alpha A p, new conjugate direction) (hw/natural_gradient.py)')


def natural_step_cg(policy, observations, grad, epsilon: float, iterations: int = 10,
                    damping: float = 1e-3) -> tf.Tensor:
    """The TRPO natural gradient step: F^-1 g by conjugate gradient on Fisher-vector products.

    observations [B, obs_dim] (the states at which the mean KL is measured); grad g [n];
    epsilon > 0. Let Fv = fisher_vector_product(policy, observations, v, damping) (the
    damped Fisher, used in both places below). Solve F x = g with `iterations` steps of
    conjugate_gradient, then scale so that the quadratic KL model 1/2 d^T F d = epsilon:

        d = sqrt(2 epsilon / (x^T F x)) x                 (x^T F x ~ g^T F^-1 g)

    grad may come in another dtype than the policy's (float64 for a float32 policy): compute
    in the policy's dtype. Returns the full step d [n] (not theta + d), in the policy's dtype.
    """
    g = _vector(grad, _parameter_dtype(policy))
    # TODO: x from conjugate_gradient on the damped Fisher-vector product, then d = sqrt(2 eps / (x^T F x)) x
    raise NotImplementedError('natural_step_cg: TODO, x from conjugate_gradient on the damped Fisher-vector product, then d = sqrt(2 eps / (x^T F x)) x (hw/natural_gradient.py)')


def mean_kl(old_policy, new_policy, observations) -> tf.Tensor:
    """The true mean KL(pi_old(.|s) || pi_new(.|s)) over observations [B, obs_dim]: a scalar.

    Use tfd.kl_divergence between the two policies' distributions.
    """
    # TODO: the mean over observations of tfd.kl_divergence(pi_old(.|s), pi_new(.|s))
    raise NotImplementedError('mean_kl: TODO, the mean over observations of tfd.kl_divergence(pi_old(.|s), pi_new(.|s)) (hw/natural_gradient.py)')


def line_search(theta, full_step, surrogate, kl, epsilon: float, backtrack_ratio: float = 0.5,
                max_backtracks: int = 10) -> tf.Tensor:
    """TRPO's backtracking line search on the step the quadratic model proposed.

    theta [n], full_step d [n]; surrogate and kl take a flat vector [n] and return scalars
    (the surrogate objective, to increase; the mean KL from theta, to keep <= epsilon).
    Tries theta + backtrack_ratio^j d for j = 0, 1, ..., max_backtracks - 1 (the last one
    included) and returns the first with kl(.) <= epsilon and surrogate(.) > surrogate(theta)
    (which need not be 0); theta itself if none, never the last candidate.
    """
    theta = _vector(theta)
    full_step = _vector(full_step, theta.dtype)
    # TODO: try theta + ratio^j d in turn; the first with kl <= eps and an improved surrogate wins, else theta
    raise NotImplementedError('line_search: TODO, try theta + ratio^j d in turn; the first with kl <= eps and an improved surrogate wins, else theta (hw/natural_gradient.py)')
