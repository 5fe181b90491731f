"""Public tests for Part 1, hw/policy_gradient.py. Run them with

    pytest hw/                      # everything, Part 1 first
    pytest hw/ -k reward_to_go      # only the tests whose name contains reward_to_go

`pg` (a fixture of conftest.py) is your hw/policy_gradient.py.

When a result is wrong, the message says what was expected, what came back, and, when
the wrong result is exactly what a common mistake produces (a flipped sign, a sum for a
mean, q_values broadcast to [B, B], a Gaussian without its log-sigma term, a missing
discount...), which mistake that is. Within this file the checks of one function's values
come first, the checks that combine several functions (policy_gradient on an MDP) last.

Tolerances (docs/contract.md, "Precision"). Q-values are compared to 1e-5 of the path's
total absolute reward sum_t |r_t|: float32 arithmetic (rounding ~6e-8 per operation) stays
below 1e-6 of it even on paths of 1,000 steps, so a float32 computation passes, and every
mistake named below is off by order 1. Pseudo-losses computed in float64 (float64 inputs)
are compared at rtol 1e-9: a handful of operations round at ~1e-16 each. float32 ones at
rtol 1e-5. Finite differences of the exact J are compared at 1e-6 of the gradient's
largest entry; central differences with h = 1e-6 in float64 are accurate to ~1e-9 of it
(round-off eps/h ~ 1e-10, truncation h^2 ~ 1e-12).
"""
import numpy as np
import pytest
import tensorflow as tf

from hw.policies import CategoricalPolicy, GaussianPolicy
from hw.tabular_mdp import TabularMDP
from hw.utils import flatten, get_flat_params, set_flat_params

F64 = dict(rtol=1e-9, atol=1e-12)
F32 = dict(rtol=1e-5, atol=1e-6)


def q_tolerance(*paths):
    """The Q-value tolerance: 1e-5 of the largest total absolute reward of the paths."""
    scale = max([float(np.sum(np.abs(np.asarray(path, np.float64)))) for path in paths] + [1.0])
    return dict(rtol=0.0, atol=1e-5 * scale)


FLIPPED_SIGN = ("flipped sign: the result is minus the expected one (the gradient of the loss instead "
                "of grad J = -grad(loss), or log pi where -log pi belongs)")
SUM_FOR_MEAN = "sum instead of mean: the result is B times the expected one (tf.reduce_sum where tf.reduce_mean belongs)"
BROADCAST = ("q_values broadcast to [B, B]: a [B, 1] shape (keepdims=True, a reshape, q_values[:, None]) times "
             "q_values [B] makes a [B, B] matrix, whose mean is mean(-log pi) * mean(q) instead of mean(-log pi * q)")
NO_DISCOUNT = "no discount: this is the result for gamma = 1 (gamma was ignored)"
DISCOUNT_FROM_START = ("discount counted from the path's start instead of from t: this is "
                       "sum_{t'>=t} gamma^t' r_t' instead of sum_{t'>=t} gamma^(t'-t) r_t'")
DISCOUNT_FROM_END = ("discount counted from the path's end instead of from t: this is "
                     "sum_{t'>=t} gamma^(T-1-t') r_t' (the last reward undiscounted, e.g. a cumulative sum of the "
                     "reversed rewards times gamma^t) instead of sum_{t'>=t} gamma^(t'-t) r_t'")
UNDERFLOW = ("gamma^t underflows: a reversed cumulative sum of gamma^t r_t divided by gamma^t turns into 0 / 0 = nan "
             "(or inf) once gamma^t < 1e-308 (t > 308 for gamma = 0.1, any t > 0 for gamma = 0); compute the "
             "recursion Q_t = r_t + gamma Q_{t+1} backwards from the last step instead")
NO_LOG_SIGMA = ("squared error without the log-sigma term: -log N(a; mu, sigma^2) is 1/2 sum_j z_j^2 "
                "+ sum_j log sigma_j + D/2 log(2 pi); the sum_j log_std_j term is missing")
NO_LOG_2PI = ("-log N without the 1/2 log(2 pi) constant: the value is off by D/2 log(2 pi) mean(q) "
              "(the gradient is right, but the contract, docs/contract.md, asks for the full log-density)")
VARIANCE_FOR_STD = ("the variance where the standard deviation belongs: sigma = exp(log_std) is the standard "
                    "deviation (tfd.Normal(loc, scale=sigma), z = (a - mu) / sigma); exp(2 log_std) or "
                    "sigma^2 is the variance")
GATHER_TABLE = ("tf.gather(log_probs, actions, axis=1) without batch_dims=1: that gathers, for every row i, "
                "all B actions, a [B, B] table log pi(a_j | s_i), whose mean weights each q_j by "
                "mean_i log pi(a_j | s_i); use tf.gather(log_probs, actions, axis=1, batch_dims=1) (one entry per "
                "row), or one-hot labels with tf.nn.softmax_cross_entropy_with_logits")
LOG_OF_SOFTMAX = ("the log of a softmax: softmax(logits) underflows to 0 in float32 once a logit gap exceeds "
                  "~100, and log(0) = -inf (a nan gradient); tf.nn.log_softmax and "
                  "tf.nn.softmax_cross_entropy_with_logits compute log pi without forming pi")
NOT_CAST = ("q_values not cast to the policy's dtype: a float32 policy gets float64 Q-values (NumPy's default) "
            "in training; tf.cast(q_values, logits.dtype) (or means.dtype) before multiplying")
PLAIN_SQUARED_ERROR = ("plain squared error: 1/2 ||a - mu||^2 (or ||a - mu||^2) is regression's loss; "
                       "-log N divides by sigma^2 and adds sum_j log sigma_j + D/2 log(2 pi)")


# ---------------------------------------------------------------------------------------
# Helpers: comparisons that name the mistake, and definitions straight from the equations
# ---------------------------------------------------------------------------------------

def _show(x) -> str:
    return np.array2string(np.asarray(x, dtype=np.float64), precision=6, threshold=12, edgeitems=3)


def assert_close(actual, expected, what, *, rtol, atol, mistakes=()):
    """Assert actual ~ expected, finite. `mistakes`: (description, what that mistake returns) pairs;
    (description, None) names the mistake when the result is not finite."""
    assert actual is not None, f"{what}: expected {_show(expected)}, got None (a missing return?)"
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert np.all(np.isfinite(expected)), f"{what}: the test's own expected value is not finite"
    assert actual.shape == expected.shape, (
        f"{what}: expected shape {expected.shape}, got shape {actual.shape}"
        + (" (no mean over the batch? a pseudo-loss is a scalar)" if expected.shape == () else "")
        + (" (a [B, B] matrix: q_values broadcast against a [B, 1] shape?)" if actual.ndim == 2
           and actual.shape[0] == actual.shape[1] and expected.ndim == 1 else ""))
    if np.all(np.isfinite(actual)) and np.allclose(actual, expected, rtol=rtol, atol=atol):
        return
    matches = [description for description, wrong in mistakes
               if wrong is not None and np.shape(wrong) == actual.shape and np.all(np.isfinite(actual))
               and np.allclose(actual, wrong, rtol=rtol, atol=atol)]
    if not np.all(np.isfinite(actual)):
        message = f"{what}: expected {_show(expected)}, got {_show(actual)}: not finite (nan or inf)."
        matches += [description for description, wrong in mistakes if wrong is None]  # (description, None): nan
    else:
        error = np.max(np.abs(actual - expected))
        message = (f"{what}: expected {_show(expected)}, got {_show(actual)} (largest difference {error:.3g}; "
                   f"tolerance {atol:g} + {rtol:g} * |expected|).")
    if matches:
        message += " Likely mistake: " + " -- or -- ".join(matches)
    raise AssertionError(message)


def reward_to_go_by_definition(rewards, gamma):
    """Equation (3) as a double sum: Q_t = sum_{t'=t}^{T-1} gamma^(t'-t) r_t'."""
    return np.array([sum(gamma ** (u - t) * rewards[u] for u in range(t, len(rewards)))
                     for t in range(len(rewards))], dtype=np.float64)


def return_by_definition(rewards, gamma):
    """sum_t gamma^t r_t, repeated T times."""
    total = sum(gamma ** t * r for t, r in enumerate(rewards))
    return np.full(len(rewards), total, dtype=np.float64)


def reward_to_go_mistakes(rewards, gamma):
    """What the common mistakes in reward_to_go return."""
    T = len(rewards)
    return [
        (NO_DISCOUNT, reward_to_go_by_definition(rewards, 1.0)),
        (DISCOUNT_FROM_START, [sum(gamma ** u * rewards[u] for u in range(t, T)) for t in range(T)]),
        (DISCOUNT_FROM_END, [sum(gamma ** (T - 1 - u) * rewards[u] for u in range(t, T)) for t in range(T)]),
        ("the whole return for every step: that is discounted_return, not the reward-to-go",
         return_by_definition(rewards, gamma)),
        ("the past summed instead of the future: Q_t must add r_t, r_{t+1}, ..., r_{T-1}",
         [sum(gamma ** (t - u) * rewards[u] for u in range(t + 1)) for t in range(T)]),
        ("r_t left out: Q_t = r_t + gamma r_{t+1} + ... starts with r_t itself",
         [sum(gamma ** (u - t) * rewards[u] for u in range(t + 1, T)) for t in range(T)]),
    ]


def negative_log_softmax(logits, actions):
    """-log pi(a_i | s_i) [B] for a softmax policy, in NumPy float64."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_pi = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_pi[np.arange(len(actions)), actions]


def gaussian_terms(means, log_std, actions):
    """The three terms of -log N(a_i; mu_i, diag(exp(log_std))^2), each [B], NumPy float64."""
    z = (np.asarray(actions, np.float64) - means) / np.exp(log_std)
    batch, action_dim = z.shape
    return (0.5 * np.sum(z ** 2, axis=1), np.full(batch, np.sum(log_std)),
            np.full(batch, 0.5 * action_dim * np.log(2 * np.pi)))


def discrete_problem(seed=0, batch=6, n_actions=3):
    """Random logits [B, A] float64, actions [B] int64 and q_values [B] of both signs."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(batch, n_actions))
    actions = rng.integers(n_actions, size=batch)
    q_values = rng.normal(1.0, 2.0, size=batch)
    return logits, actions, q_values


def gaussian_problem(seed=0, batch=5):
    """means [B, 2], log_std [2] (with a nonzero sum), actions [B, 2], q_values [B], float64."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(batch, 2))
    log_std = np.array([-0.7, 0.2])
    actions = means + np.exp(log_std) * rng.normal(size=(batch, 2))
    q_values = rng.normal(1.0, 2.0, size=batch)
    return means, log_std, actions, q_values


# ---------------------------------------------------------------------------------------
# Q-values: discounted_return, reward_to_go, estimate_q_values
# ---------------------------------------------------------------------------------------

RETURN_CASES = [  # (rewards, gamma, the whole return sum_t gamma^t r_t, computed by hand)
    ([1.0, 2.0, 3.0], 0.5, 2.75),  # 1 + 0.5 * 2 + 0.25 * 3
    ([1.0, 2.0, 3.0], 0.0, 1.0),  # only r_0 counts (gamma^0 = 1)
    ([1.0, 2.0, 3.0], 1.0, 6.0),  # the plain sum
    ([-1.0, 0.0, 2.0, 1.0], 0.5, -0.375),  # -1 + 0 + 0.25 * 2 + 0.125 * 1
    ([5.0], 0.9, 5.0),  # a path of length 1
]


@pytest.mark.parametrize("rewards, gamma, total", RETURN_CASES, ids=lambda x: str(x).replace(" ", ""))
def test_discounted_return_by_hand(pg, rewards, gamma, total):
    expected = np.full(len(rewards), total)
    assert_close(pg.discounted_return(np.array(rewards), gamma), expected,
                 f"discounted_return({rewards}, gamma={gamma})", **q_tolerance(rewards), mistakes=[
                     (NO_DISCOUNT, return_by_definition(rewards, 1.0)),
                     ("the reward-to-go instead of the whole return (that is reward_to_go's job)",
                      reward_to_go_by_definition(rewards, gamma)),
                     ("discount starting at gamma^1: the first reward counts with gamma^0 = 1", gamma * expected),
                 ])


REWARD_TO_GO_CASES = [  # (rewards, gamma, reward-to-go, computed by hand from the last step back)
    ([1.0, 2.0, 3.0], 0.5, [2.75, 3.5, 3.0]),  # Q_2 = 3, Q_1 = 2 + 0.5 * 3, Q_0 = 1 + 0.5 * 3.5
    ([1.0, 2.0, 3.0], 0.0, [1.0, 2.0, 3.0]),  # gamma = 0: Q_t = r_t
    ([1.0, 2.0, 3.0], 1.0, [6.0, 5.0, 3.0]),  # gamma = 1: plain sums of the future
    ([-1.0, 0.0, 2.0, 1.0], 0.5, [-0.375, 1.25, 2.5, 1.0]),
    ([5.0], 0.9, [5.0]),  # a path of length 1
]


@pytest.mark.parametrize("rewards, gamma, expected", REWARD_TO_GO_CASES, ids=lambda x: str(x).replace(" ", ""))
def test_reward_to_go_by_hand(pg, rewards, gamma, expected):
    mistakes = reward_to_go_mistakes(rewards, gamma)
    assert_close(pg.reward_to_go(np.array(rewards), gamma), expected,
                 f"reward_to_go({rewards}, gamma={gamma})", **q_tolerance(rewards), mistakes=mistakes)


def test_reward_to_go_random_paths_match_the_definition(pg):
    rng = np.random.default_rng(0)
    for length, gamma in [(1, 0.3), (2, 0.0), (7, 0.99), (12, 0.9), (30, 1.0)]:
        rewards = rng.normal(size=length)
        expected, mistakes = reward_to_go_by_definition(rewards, gamma), reward_to_go_mistakes(rewards, gamma)
        assert_close(pg.reward_to_go(rewards.copy(), gamma), expected,
                     f"reward_to_go of a random path of length {length}, gamma={gamma}", **q_tolerance(rewards),
                     mistakes=mistakes)


@pytest.mark.parametrize("gamma", [0.0, 0.1, 0.5, 0.99, 1.0])
def test_reward_to_go_is_accurate_on_1000_step_paths(pg, gamma):
    # Training produces paths of up to 1,000 steps (InvertedPendulum-v5's time limit), with any gamma.
    rewards = np.random.default_rng(1).normal(1.0, 1.0, size=1000)
    expected = np.zeros(1000)
    future = 0.0
    for t in reversed(range(1000)):  # Q_t = r_t + gamma Q_{t+1}, from the last step back
        future = rewards[t] + gamma * future
        expected[t] = future
    assert_close(pg.reward_to_go(rewards.copy(), gamma), expected,
                 f"reward_to_go of a 1,000-step path, gamma={gamma}", **q_tolerance(rewards),
                 mistakes=[(UNDERFLOW, None)])


PATHS = [[1.0, 2.0, 3.0], [4.0], [0.5, -1.0]]  # three paths of lengths 3, 1, 2


@pytest.mark.parametrize("use_reward_to_go, expected", [
    (True, [2.75, 3.5, 3.0, 4.0, 0.0, -1.0]),  # reward-to-go within each path
    (False, [2.75, 2.75, 2.75, 4.0, 0.0, 0.0]),  # each path's whole return, T_i times
], ids=["to_go", "whole_return"])
def test_estimate_q_values_concatenates_in_path_order(pg, use_reward_to_go, expected):
    gamma = 0.5
    paths = [np.array(path) for path in PATHS]

    def concatenate(estimator, paths):
        return np.concatenate([estimator(path, gamma) for path in paths])

    chosen, other = ((reward_to_go_by_definition, return_by_definition) if use_reward_to_go
                     else (return_by_definition, reward_to_go_by_definition))
    mistakes = [
        ("use_reward_to_go read the wrong way round", concatenate(other, paths)),
        ("paths concatenated in reverse order", concatenate(chosen, paths[::-1])),
        ("all paths treated as one long path: rewards leak across path boundaries",
         chosen(np.concatenate(paths), gamma)),
    ]
    assert_close(pg.estimate_q_values([path.copy() for path in paths], gamma, use_reward_to_go), expected,
                 f"estimate_q_values({PATHS}, gamma={gamma}, use_reward_to_go={use_reward_to_go})",
                 **q_tolerance(*paths), mistakes=mistakes)


@pytest.mark.parametrize("make_input", [
    lambda x: np.asarray(x, np.float32), lambda x: tf.constant(x, tf.float32), lambda x: tf.constant(x, tf.float64),
], ids=["numpy-float32", "tensor-float32", "tensor-float64"])
def test_q_values_accept_float32_and_tensors(pg, make_input):
    rewards, gamma = [-1.0, 0.0, 2.0, 1.0], 0.5  # exact in float32
    expected = [-0.375, 1.25, 2.5, 1.0]
    assert_close(pg.reward_to_go(make_input(rewards), gamma), expected, "reward_to_go", **q_tolerance(rewards))
    assert_close(pg.discounted_return(make_input(rewards), gamma), [-0.375] * 4, "discounted_return",
                 **q_tolerance(rewards))
    paths = [make_input(path) for path in PATHS]
    assert_close(pg.estimate_q_values(paths, 0.5, True), [2.75, 3.5, 3.0, 4.0, 0.0, -1.0], "estimate_q_values",
                 **q_tolerance(*PATHS))


# ---------------------------------------------------------------------------------------
# The discrete pseudo-loss
# ---------------------------------------------------------------------------------------

def test_discrete_pseudo_loss_value(pg):
    logits, actions, q_values = discrete_problem()
    nll = negative_log_softmax(logits, actions)
    expected = np.mean(nll * q_values)
    table = np.stack([negative_log_softmax(logits, np.full_like(actions, a)) for a in actions], axis=1)  # [B, B]
    assert_close(pg.discrete_pseudo_loss(logits.copy(), actions.copy(), q_values.copy()), expected,
                 "discrete_pseudo_loss = mean(-log pi(a_i|s_i) q_i)", **F64, mistakes=[
                     (FLIPPED_SIGN, -expected), (SUM_FOR_MEAN, len(q_values) * expected),
                     (BROADCAST, np.mean(nll) * np.mean(q_values)),
                     (GATHER_TABLE, np.mean(table * q_values)),  # entry (i, j): -log pi(a_j | s_i) q_j
                     ("q_values ignored: the -log pi(a_i|s_i) must be multiplied by q_i", np.mean(nll)),
                 ])


def test_discrete_pseudo_loss_gradient_wrt_logits(pg):
    logits, actions, q_values = discrete_problem(seed=1)
    logits_variable = tf.Variable(logits)
    with tf.GradientTape() as tape:
        loss = pg.discrete_pseudo_loss(logits_variable, actions, q_values)
    gradient = tape.gradient(loss, logits_variable)
    assert gradient is not None, "discrete_pseudo_loss: no gradient reaches the logits (computed outside TensorFlow?)"
    # d/dlogits_i of 1/B sum_i -log softmax(logits_i)[a_i] q_i = q_i (softmax(logits_i) - onehot(a_i)) / B
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    difference = softmax - np.eye(logits.shape[1])[actions]
    expected = q_values[:, None] * difference / len(q_values)
    assert_close(tf.convert_to_tensor(gradient), expected, "gradient of discrete_pseudo_loss w.r.t. the logits",
                 **F64, mistakes=[(FLIPPED_SIGN, -expected), (SUM_FOR_MEAN, len(q_values) * expected),
                                  (BROADCAST, np.mean(q_values) * difference / len(q_values))])


@pytest.mark.parametrize("dtype, gap", [(np.float32, 150.0), (np.float64, 1000.0)], ids=["float32", "float64"])
def test_discrete_pseudo_loss_stays_finite_for_large_logit_gaps(pg, dtype, gap):
    # A nearly deterministic policy (training reaches logit gaps of 100 and more), and
    # actions it almost never takes: -log pi(a|s) is about the gap, large but finite.
    logits = np.array([[0.0, gap, -20.0], [gap, 0.0, 1.0], [0.5, -0.5, 0.0]])
    actions, q_values = np.array([0, 1, 2]), np.array([1.0, -2.0, 0.5])
    nll = negative_log_softmax(logits, actions)  # float64: [gap, gap + ~0, ~1.1]
    expected = np.mean(nll * q_values)
    softmax = np.exp(logits - logits.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    expected_gradient = q_values[:, None] * (softmax - np.eye(3)[actions]) / 3
    logits_variable = tf.Variable(logits.astype(dtype))
    with tf.GradientTape() as tape:
        loss = pg.discrete_pseudo_loss(logits_variable, actions.copy(), q_values.astype(dtype))
    gradient = tape.gradient(loss, logits_variable)
    tolerance = F32 if dtype == np.float32 else F64
    assert_close(loss, expected, f"discrete_pseudo_loss of {np.dtype(dtype).name} logits with a gap of {gap:g}",
                 **tolerance, mistakes=[(LOG_OF_SOFTMAX, None)])
    assert gradient is not None, "discrete_pseudo_loss: no gradient reaches the logits (computed outside TensorFlow?)"
    assert_close(tf.convert_to_tensor(gradient), expected_gradient,
                 f"gradient of discrete_pseudo_loss w.r.t. {np.dtype(dtype).name} logits with a gap of {gap:g}",
                 **tolerance, mistakes=[(LOG_OF_SOFTMAX, None)])


# ---------------------------------------------------------------------------------------
# The Gaussian pseudo-loss
# ---------------------------------------------------------------------------------------

def test_gaussian_pseudo_loss_value(pg):
    means, log_std, actions, q_values = gaussian_problem()
    squares, log_sigma, log_2pi = gaussian_terms(means, log_std, actions)
    expected = np.mean((squares + log_sigma + log_2pi) * q_values)
    squared_error = np.sum((actions - means) ** 2, axis=1)
    variance_z2 = 0.5 * np.sum(((actions - means) / np.exp(2 * log_std)) ** 2, axis=1)  # z with sigma^2 for sigma
    assert_close(pg.gaussian_pseudo_loss(means.copy(), log_std.copy(), actions.copy(), q_values.copy()), expected,
                 "gaussian_pseudo_loss = mean(-log N(a_i; mu_i, diag(sigma)^2) q_i)", **F64, mistakes=[
                     (FLIPPED_SIGN, -expected), (SUM_FOR_MEAN, len(q_values) * expected),
                     (BROADCAST, np.mean(squares + log_sigma + log_2pi) * np.mean(q_values)),
                     (NO_LOG_SIGMA, np.mean((squares + log_2pi) * q_values)),
                     (NO_LOG_2PI, np.mean((squares + log_sigma) * q_values)),
                     (NO_LOG_SIGMA + "; the 1/2 log(2 pi) constant is missing too", np.mean(squares * q_values)),
                     (PLAIN_SQUARED_ERROR, np.mean(0.5 * squared_error * q_values)),
                     (PLAIN_SQUARED_ERROR, np.mean(squared_error * q_values)),
                     ("-log N averaged over the action dimensions instead of summed", expected / means.shape[1]),
                     (VARIANCE_FOR_STD, np.mean((variance_z2 + 2 * log_sigma + log_2pi) * q_values)),
                     (VARIANCE_FOR_STD, np.mean((variance_z2 + log_sigma + log_2pi) * q_values)),
                 ])


def test_gaussian_pseudo_loss_gradients_wrt_means_and_log_std(pg):
    means, log_std, actions, q_values = gaussian_problem(seed=1)
    means_variable, log_std_variable = tf.Variable(means), tf.Variable(log_std)
    with tf.GradientTape() as tape:
        loss = pg.gaussian_pseudo_loss(means_variable, log_std_variable, actions, q_values)
    mean_gradient, log_std_gradient = tape.gradient(loss, [means_variable, log_std_variable])
    B = len(q_values)
    z = (actions - means) / np.exp(log_std)
    # d/dmu_ij   = -q_i z_ij / sigma_j / B
    # d/dlog_std_j = sum_i q_i (1 - z_ij^2) / B   (the 1 comes from the log-sigma term)
    expected_means = -q_values[:, None] * z / np.exp(log_std) / B
    expected_log_std = np.sum(q_values[:, None] * (1.0 - z ** 2), axis=0) / B
    assert_close(mean_gradient, expected_means, "gradient of gaussian_pseudo_loss w.r.t. the means", **F64,
                 mistakes=[(FLIPPED_SIGN, -expected_means), (SUM_FOR_MEAN, B * expected_means),
                           (PLAIN_SQUARED_ERROR, -q_values[:, None] * (actions - means) / B),
                           (PLAIN_SQUARED_ERROR, -2.0 * q_values[:, None] * (actions - means) / B),
                           (VARIANCE_FOR_STD, -q_values[:, None] * (actions - means) / np.exp(4 * log_std) / B)])
    assert log_std_gradient is not None, (
        "gradient of gaussian_pseudo_loss w.r.t. log_std: got None, log_std does not enter the loss. "
        f"Likely mistake: {PLAIN_SQUARED_ERROR}")
    assert_close(log_std_gradient, expected_log_std, "gradient of gaussian_pseudo_loss w.r.t. log_std", **F64,
                 mistakes=[(FLIPPED_SIGN, -expected_log_std), (SUM_FOR_MEAN, B * expected_log_std),
                           (NO_LOG_SIGMA, np.sum(q_values[:, None] * -z ** 2, axis=0) / B),
                           (PLAIN_SQUARED_ERROR, np.zeros_like(expected_log_std))])


# ---------------------------------------------------------------------------------------
# Both pseudo-losses: each step weighted by its own Q-value
# ---------------------------------------------------------------------------------------

def test_pseudo_losses_weight_each_step_by_its_own_q_value(pg):
    # With q = B e_k (B at step k, 0 elsewhere) the mean over the batch is -log pi(a_k|s_k)
    # itself. Broadcasting q [B] against a [B, 1] shape gives mean(-log pi) for every k.
    logits, actions, _ = discrete_problem(seed=2, batch=4)
    means, log_std, gaussian_actions, _ = gaussian_problem(seed=2, batch=4)
    nll = negative_log_softmax(logits, actions)
    gaussian_nll = sum(gaussian_terms(means, log_std, gaussian_actions))
    for k in range(4):
        q_values = 4.0 * np.eye(4)[k]
        assert_close(pg.discrete_pseudo_loss(logits, actions, q_values), nll[k],
                     f"discrete_pseudo_loss with q = 4 e_{k} (must be -log pi(a_{k}|s_{k}))", **F64,
                     mistakes=[(BROADCAST, np.mean(nll))])
        assert_close(pg.gaussian_pseudo_loss(means, log_std, gaussian_actions, q_values), gaussian_nll[k],
                     f"gaussian_pseudo_loss with q = 4 e_{k} (must be -log N(a_{k}; mu_{k}, sigma^2))", **F64,
                     mistakes=[(BROADCAST, np.mean(gaussian_nll))])


def test_pseudo_losses_on_a_batch_of_one(pg):
    logits, actions, q_values = discrete_problem(seed=3, batch=1)
    assert_close(pg.discrete_pseudo_loss(logits, actions, q_values),
                 negative_log_softmax(logits, actions)[0] * q_values[0], "discrete_pseudo_loss, B = 1", **F64)
    means, log_std, gaussian_actions, q_values = gaussian_problem(seed=3, batch=1)
    assert_close(pg.gaussian_pseudo_loss(means, log_std, gaussian_actions, q_values),
                 sum(gaussian_terms(means, log_std, gaussian_actions))[0] * q_values[0],
                 "gaussian_pseudo_loss, B = 1", **F64)


# ---------------------------------------------------------------------------------------
# The importance-sampled pseudo-loss
# ---------------------------------------------------------------------------------------

def test_importance_sampled_pseudo_loss_value(pg):
    rng = np.random.default_rng(5)
    log_probs, old_log_probs = rng.normal(-1.0, 0.3, size=6), rng.normal(-1.0, 0.3, size=6)
    advantages = rng.normal(1.0, 2.0, size=6)
    expected = -np.mean(np.exp(log_probs - old_log_probs) * advantages)
    assert_close(pg.importance_sampled_pseudo_loss(log_probs.copy(), old_log_probs.copy(), advantages.copy()), expected,
                 "importance_sampled_pseudo_loss = -mean(exp(log_probs - old_log_probs) A)", **F64, mistakes=[
                     (FLIPPED_SIGN, -expected), (SUM_FOR_MEAN, 6 * expected),
                     ("ratio upside down: pi_theta / pi_theta_old is exp(log_probs - old_log_probs)",
                      -np.mean(np.exp(old_log_probs - log_probs) * advantages)),
                     ("log-ratio without exp: the weight is the ratio exp(log_probs - old_log_probs)",
                      -np.mean((log_probs - old_log_probs) * advantages)),
                 ])


def test_importance_sampled_gradient_at_theta_old_is_the_policy_gradient(pg):
    rng = np.random.default_rng(6)
    policy = CategoricalPolicy(3, 4, hidden_sizes=(8,), dtype=tf.float64, seed=6)
    observations, actions = rng.normal(size=(10, 3)), rng.integers(4, size=10)
    advantages = rng.normal(1.0, 2.0, size=10)
    old_log_probs = policy.distribution(observations).log_prob(actions).numpy()  # theta_old = theta
    with tf.GradientTape() as tape:
        log_probs = policy.distribution(observations).log_prob(actions)
        loss = pg.importance_sampled_pseudo_loss(log_probs, old_log_probs, advantages)
    gradients = tape.gradient(loss, policy.trainable_variables)
    assert all(g is not None for g in gradients), "importance_sampled_pseudo_loss: no gradient reaches the policy"
    expected = -_reference_gradient(policy, observations, actions, advantages)  # gradient of the pseudo-loss
    assert_close(flatten(gradients), expected,
                 "gradient of importance_sampled_pseudo_loss at theta = theta_old vs the pseudo-loss's", **F64,
                 mistakes=[(FLIPPED_SIGN + " (or the ratio upside down)", -expected),
                           (SUM_FOR_MEAN, 10 * expected)])


# ---------------------------------------------------------------------------------------
# policy_gradient: the ascent direction, checked against the exact J of a tabular MDP
# ---------------------------------------------------------------------------------------

def _tabular_problem(gamma, hidden_sizes, seed=0):
    """A random 3-state, 2-action, horizon-3 MDP and a float64 softmax policy on one-hot states."""
    mdp = TabularMDP.random(n_states=3, n_actions=2, horizon=3, gamma=gamma, seed=seed)
    policy = CategoricalPolicy(3, 2, hidden_sizes=hidden_sizes, dtype=tf.float64, seed=seed)
    theta = np.random.default_rng(seed + 1).normal(size=get_flat_params(policy).shape)
    set_flat_params(policy, theta)  # a policy far from uniform
    return mdp, policy


def _exact_q_values(mdp, policy, use_reward_to_go):
    """Every trajectory of the MDP with q_values that make the pseudo-loss gradient exactly grad J."""
    batch = mdp.trajectories(policy)
    estimator = reward_to_go_by_definition if use_reward_to_go else return_by_definition
    q_estimates = np.concatenate([estimator(rewards, mdp.gamma) for rewards in batch.rewards_per_path])
    return batch, batch.weights(use_reward_to_go) * q_estimates


def _finite_differences(mdp, policy, h=1e-6):
    """Central differences of the exact J(theta), float64."""
    theta = get_flat_params(policy).numpy()
    gradient = np.zeros_like(theta)
    for i in range(len(theta)):
        step = np.zeros_like(theta)
        step[i] = h
        set_flat_params(policy, theta + step)
        plus = mdp.expected_return(policy)
        set_flat_params(policy, theta - step)
        minus = mdp.expected_return(policy)
        gradient[i] = (plus - minus) / (2 * h)
    set_flat_params(policy, theta)
    return gradient


def _reference_gradient(policy, observations, actions, q_values, broadcast=False):
    """grad J = grad of mean(log pi(a_i|s_i) q_i) through tensorflow-probability's log_prob.

    With broadcast=True, what a [B, B] broadcast computes instead: grad of mean(log pi) mean(q).
    """
    with tf.GradientTape() as tape:
        log_pi = policy.distribution(observations).log_prob(actions)
        q = tf.constant(q_values, log_pi.dtype)
        objective = tf.reduce_mean(log_pi) * tf.reduce_mean(q) if broadcast else tf.reduce_mean(log_pi * q)
    return flatten(tape.gradient(objective, policy.trainable_variables)).numpy()


@pytest.mark.parametrize("gamma, use_reward_to_go, hidden_sizes", [
    (1.0, True, ()),  # linear-softmax policy, undiscounted finite horizon
    (0.8, True, (4,)),  # a hidden layer; gamma^t folded into the weights (see hw/tabular_mdp.py)
    (0.8, False, (4,)),  # the whole return for every step is unbiased too
], ids=["gamma1-to_go-linear", "gamma0.8-to_go-hidden", "gamma0.8-whole_return-hidden"])
def test_policy_gradient_matches_finite_differences_of_exact_J(pg, gamma, use_reward_to_go, hidden_sizes):
    # Every trajectory of a small MDP, each weighted by its probability: the pseudo-loss
    # gradient is then exactly grad J, with no sampling noise (hw/tabular_mdp.py explains).
    mdp, policy = _tabular_problem(gamma, hidden_sizes)
    batch, q_values = _exact_q_values(mdp, policy, use_reward_to_go)
    expected = _finite_differences(mdp, policy)
    broadcast = _reference_gradient(policy, batch.observations, batch.actions, q_values, True)
    gradients = pg.policy_gradient(policy, batch.observations.copy(), batch.actions.copy(), q_values.copy())
    assert gradients is not None and len(gradients) == len(policy.trainable_variables), (
        f"policy_gradient must return one gradient per trainable variable ({len(policy.trainable_variables)}), "
        f"got {None if gradients is None else len(gradients)}")
    assert all(g is not None for g in gradients), "policy_gradient returned None for some variable"
    scale = np.max(np.abs(expected))
    assert_close(flatten(gradients), expected,
                 f"policy_gradient vs finite differences of the exact J (flattened, B = {len(q_values)} steps)",
                 rtol=0.0, atol=1e-6 * scale, mistakes=[
                     (FLIPPED_SIGN, -expected), (SUM_FOR_MEAN, len(q_values) * expected),
                     (BROADCAST, broadcast),
                 ])


def test_policy_gradient_step_increases_exact_J(pg):
    mdp, policy = _tabular_problem(1.0, ())
    batch, q_values = _exact_q_values(mdp, policy, True)
    before = mdp.expected_return(policy)
    theta = get_flat_params(policy).numpy()
    direction = flatten(pg.policy_gradient(policy, batch.observations.copy(), batch.actions.copy(),
                                           q_values.copy())).numpy()
    assert np.all(np.isfinite(direction)) and np.any(direction != 0), (
        f"policy_gradient returned {_show(direction)} (flattened): expected a finite, nonzero grad J")
    set_flat_params(policy, theta + 0.05 * direction / np.linalg.norm(direction))
    after = mdp.expected_return(policy)
    # J(theta + a g) - J(theta) ~ a ||g|| > 0 for a small step a along the true gradient.
    assert after > before, (
        f"a small step along policy_gradient's result lowered the exact J from {before:.6f} to {after:.6f}: it "
        f"points downhill. Likely mistake: {FLIPPED_SIGN}")


@pytest.mark.parametrize("kind", ["categorical", "gaussian"])
def test_policy_gradient_returns_dense_tensors_of_the_variables_shapes(pg, kind):
    rng = np.random.default_rng(4)
    batch = 16
    observations = rng.normal(size=(batch, 3))  # float64 observations for a float32 policy
    if kind == "categorical":
        policy = CategoricalPolicy(3, 4, hidden_sizes=(8,), seed=4)
        actions = rng.integers(4, size=batch)
    else:
        policy = GaussianPolicy(3, 2, hidden_sizes=(8,), seed=4)
        actions = rng.normal(size=(batch, 2))
    q_values = rng.normal(1.0, 2.0, size=batch)
    reference_actions = actions if policy.discrete else np.asarray(actions, np.float32)  # tfp wants the policy's dtype
    expected = _reference_gradient(policy, observations, reference_actions, q_values)
    gradients = pg.policy_gradient(policy, observations.copy(), actions.copy(), q_values.copy())
    variables = policy.trainable_variables
    assert isinstance(gradients, (list, tuple)) and len(gradients) == len(variables), (
        f"policy_gradient must return a list with one tensor per trainable variable ({len(variables)}), "
        f"got {type(gradients).__name__} of length {len(gradients) if hasattr(gradients, '__len__') else '?'}")
    for gradient, variable in zip(gradients, variables):
        assert gradient is not None, f"policy_gradient: None for {variable.name}: it does not enter the loss"
        assert isinstance(gradient, tf.Tensor), (
            f"policy_gradient: {variable.name}'s gradient is a {type(gradient).__name__}, expected a dense tf.Tensor "
            "(tf.convert_to_tensor turns tf.IndexedSlices dense)")
        assert tuple(gradient.shape) == tuple(variable.shape), (
            f"policy_gradient: {variable.name}'s gradient has shape {tuple(gradient.shape)}, "
            f"the variable has shape {tuple(variable.shape)}")
    assert_close(flatten(gradients), expected, f"policy_gradient of a float32 {kind} policy (flattened)",
                 rtol=1e-4, atol=1e-6 * np.max(np.abs(expected)),  # float32 through a network: rtol 1e-4
                 mistakes=[(FLIPPED_SIGN, -expected), (SUM_FOR_MEAN, batch * expected)])


# ---------------------------------------------------------------------------------------
# Inputs: float32 / float64, NumPy / tf.Tensor, mixed in one call (docs/contract.md)
# ---------------------------------------------------------------------------------------

INPUT_KINDS = {
    "numpy-float32": (lambda x: np.array(x, np.float32), F32),  # np.array copies: the test keeps its inputs
    "numpy-float64": (lambda x: np.array(x, np.float64), F64),
    "tensor-float32": (lambda x: tf.constant(x, tf.float32), F32),
    "tensor-float64": (lambda x: tf.constant(x, tf.float64), F64),
}


@pytest.mark.parametrize("kind", INPUT_KINDS)
def test_pseudo_losses_accept_float32_float64_numpy_and_tensors(pg, kind):
    make, tolerance = INPUT_KINDS[kind]
    logits, actions, q_values = discrete_problem(seed=7)
    # Reference values from the inputs as they are rounded to the dtype under test.
    logits, q_values = np.asarray(make(logits), np.float64), np.asarray(make(q_values), np.float64)
    expected = np.mean(negative_log_softmax(logits, actions) * q_values)
    assert_close(pg.discrete_pseudo_loss(make(logits), tf.constant(actions), make(q_values)), expected,
                 f"discrete_pseudo_loss ({kind})", **tolerance)
    means, log_std, gaussian_actions, q_values = (np.asarray(make(x), np.float64) for x in gaussian_problem(seed=7))
    expected = np.mean(sum(gaussian_terms(means, log_std, gaussian_actions)) * q_values)
    assert_close(pg.gaussian_pseudo_loss(make(means), make(log_std), make(gaussian_actions), make(q_values)),
                 expected, f"gaussian_pseudo_loss ({kind})", **tolerance)
    log_probs, old_log_probs, advantages = (np.asarray(make(x), np.float64)
                                            for x in ([-0.5, -1.0, -2.0], [-0.7, -1.0, -1.5], [1.0, -2.0, 0.5]))
    expected = -np.mean(np.exp(log_probs - old_log_probs) * advantages)
    assert_close(pg.importance_sampled_pseudo_loss(make(log_probs), make(old_log_probs), make(advantages)),
                 expected, f"importance_sampled_pseudo_loss ({kind})", **tolerance)


@pytest.mark.parametrize("q_dtype", ["numpy-float64", "tensor-float64"])
def test_pseudo_losses_of_a_float32_policy_accept_float64_q_values(pg, q_dtype):
    # The training loop's own setup: a float32 policy, Q-values (or advantages and old
    # log-probabilities) from NumPy, float64. The result is computed in the policy's dtype, float32.
    make = (lambda x: np.asarray(x, np.float64)) if q_dtype == "numpy-float64" else (lambda x: tf.constant(x, tf.float64))
    logits, actions, q_values = discrete_problem(seed=9)
    logits32 = logits.astype(np.float32)
    calls = {
        "discrete_pseudo_loss": (lambda: pg.discrete_pseudo_loss(tf.constant(logits32), actions.copy(), make(q_values)),
                                 np.mean(negative_log_softmax(logits32, actions) * q_values)),
    }
    means, log_std, gaussian_actions, gaussian_q = gaussian_problem(seed=9)
    means32, log_std32 = means.astype(np.float32), log_std.astype(np.float32)
    calls["gaussian_pseudo_loss"] = (
        lambda: pg.gaussian_pseudo_loss(tf.constant(means32), tf.constant(log_std32), gaussian_actions.copy(),
                                        make(gaussian_q)),
        np.mean(sum(gaussian_terms(means32, log_std32, gaussian_actions)) * gaussian_q))
    log_probs, old_log_probs, advantages = np.array([-0.5, -1.0, -2.0]), np.array([-0.7, -1.0, -1.5]), np.array(
        [1.0, -2.0, 0.5])
    calls["importance_sampled_pseudo_loss"] = (
        lambda: pg.importance_sampled_pseudo_loss(tf.constant(log_probs, tf.float32), make(old_log_probs),
                                                  make(advantages)),
        -np.mean(np.exp(log_probs.astype(np.float32).astype(np.float64) - old_log_probs) * advantages))
    for name, (call, expected) in calls.items():
        try:
            loss = call()
        except (tf.errors.InvalidArgumentError, TypeError, ValueError) as error:
            raise AssertionError(f"{name} with float32 predictions (or log_probs) and {q_dtype} q_values raised "
                                 f"{type(error).__name__}: {str(error).splitlines()[0]}. Likely mistake: {NOT_CAST}") from None
        assert_close(loss, expected, f"{name} with float32 predictions and {q_dtype} q_values", **F32)
