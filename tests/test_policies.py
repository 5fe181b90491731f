"""The provided policies and flat-parameter helpers keep the interface of docs/contract.md."""
import hw  # noqa: F401
import numpy as np
import pytest
import tensorflow as tf

from hw.policies import CategoricalPolicy, GaussianPolicy, LinearGaussianPolicy
from hw.utils import flatten, get_flat_params, num_params, set_flat_params, unflatten


def test_categorical_policy_interface():
    policy = CategoricalPolicy(3, 4, (5,), dtype=tf.float64)
    observations = np.random.default_rng(0).normal(size=(7, 3))
    logits = policy.predictions(observations)
    assert logits.shape == (7, 4) and logits.dtype == tf.float64 and policy.discrete
    distribution = policy.distribution(observations)
    assert distribution.batch_shape == (7,)
    np.testing.assert_allclose(distribution.log_prob([0] * 7), tf.nn.log_softmax(logits)[:, 0], rtol=1e-12)
    assert [v.shape for v in policy.trainable_variables] == [(3, 5), (5,), (5, 4), (4,)]


def test_gaussian_policy_interface():
    policy = GaussianPolicy(3, 2, (6,), log_std=-0.3, seed=1)
    observations = tf.ones([4, 3])
    means = policy.predictions(observations)
    assert means.shape == (4, 2) and not policy.discrete
    assert policy.log_std.shape == (2,) and policy.trainable_variables[-1] is policy.log_std
    distribution = policy.distribution(observations)
    assert distribution.batch_shape == (4,) and distribution.event_shape == (2,)
    np.testing.assert_allclose(distribution.stddev()[0], np.exp([-0.3, -0.3]), rtol=1e-6)


def test_linear_gaussian_policy_is_the_lectures_two_parameter_policy():
    policy = LinearGaussianPolicy(k=-0.5, sigma=0.8)
    np.testing.assert_allclose(policy.predictions([[2.0]]), [[-1.0]])
    np.testing.assert_allclose(get_flat_params(policy), [-0.5, np.log(0.8)])
    a = 0.3
    expected = -0.5 * ((a + 1.0) / 0.8) ** 2 - np.log(0.8) - 0.5 * np.log(2 * np.pi)
    np.testing.assert_allclose(policy.distribution([[2.0]]).log_prob([[a]]), [expected], rtol=1e-12)
    with pytest.raises(ValueError, match="sigma must be positive"):
        LinearGaussianPolicy(0.0, 0.0)


def test_seeds_make_policies_repeatable_and_distinct():
    a, b, c = (GaussianPolicy(3, 2, (4,), seed=s) for s in (0, 0, 1))
    np.testing.assert_array_equal(get_flat_params(a), get_flat_params(b))
    assert not np.allclose(get_flat_params(a), get_flat_params(c))


def test_flat_parameters_round_trip_in_row_major_order():
    policy = GaussianPolicy(2, 2, (3,), dtype=tf.float64)
    n = num_params(policy)
    assert n == 2 * 3 + 3 + 3 * 2 + 2 + 2
    theta = np.arange(n, dtype=np.float64)
    set_flat_params(policy, theta)
    np.testing.assert_array_equal(policy.trainable_variables[0], theta[:6].reshape(2, 3))
    np.testing.assert_array_equal(get_flat_params(policy), theta)
    pieces = unflatten(theta, policy.trainable_variables)
    np.testing.assert_array_equal(flatten(pieces), theta)
    with pytest.raises(ValueError, match="vector has 3 entries"):
        unflatten(np.zeros(3), policy.trainable_variables)
