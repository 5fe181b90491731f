"""Policies (provided, no TODOs).

Every policy is a tf.Module with
    predictions(observations [B, obs_dim]) -> logits [B, A] (discrete) or means [B, D] (Gaussian)
    discrete                                -> bool
    log_std                                 -> tf.Variable [D]            (Gaussian policies only)
    distribution(observations [B, obs_dim]) -> tfp distribution, batch shape [B]
    trainable_variables                     -> the network's weights and biases, layer by layer,
                                               then log_std (Gaussian policies)
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


class MLP(tf.Module):
    """A fully connected network: tanh hidden layers, linear output.

    The output layer starts 100x smaller than Glorot's scale, so that a new policy is close
    to uniform (discrete) or centred on zero (Gaussian), as in most PG implementations.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden_sizes=(64, 64), *, seed: int = 0,
                 dtype=tf.float32, name: str | None = None):
        super().__init__(name=name)
        rng = np.random.default_rng(seed)
        sizes = [in_dim, *hidden_sizes, out_dim]
        self.layers = []
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            limit = np.sqrt(6.0 / (fan_in + fan_out)) * (0.01 if i == len(sizes) - 2 else 1.0)
            kernel = tf.Variable(rng.uniform(-limit, limit, (fan_in, fan_out)), dtype=dtype, name=f"kernel_{i}")
            bias = tf.Variable(np.zeros(fan_out), dtype=dtype, name=f"bias_{i}")
            self.layers.append((kernel, bias))

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        for i, (kernel, bias) in enumerate(self.layers):
            x = tf.matmul(x, kernel) + bias
            if i < len(self.layers) - 1:
                x = tf.tanh(x)
        return x

    @property
    def trainable_variables(self):
        return tuple(v for layer in self.layers for v in layer)


class _Policy(tf.Module):
    """What every policy shares: the dtype its observations are cast to."""

    discrete: bool

    def __init__(self, dtype, name):
        super().__init__(name=name)
        self.dtype = tf.as_dtype(dtype)

    def _observations(self, observations) -> tf.Tensor:
        observations = tf.convert_to_tensor(observations)
        if observations.dtype != self.dtype:
            observations = tf.cast(observations, self.dtype)
        return observations


class CategoricalPolicy(_Policy):
    """pi(a | s) = softmax(logits(s))[a] for a in {0, ..., n_actions - 1}."""

    discrete = True

    def __init__(self, obs_dim: int, n_actions: int, hidden_sizes=(64, 64), *, seed: int = 0,
                 dtype=tf.float32, name: str | None = None):
        super().__init__(dtype, name)
        self.obs_dim, self.n_actions = obs_dim, n_actions
        self.logits_net = MLP(obs_dim, n_actions, hidden_sizes, seed=seed, dtype=self.dtype)

    def predictions(self, observations) -> tf.Tensor:
        """observations [B, obs_dim] -> logits [B, n_actions]."""
        return self.logits_net(self._observations(observations))

    def distribution(self, observations) -> tfd.Categorical:
        return tfd.Categorical(logits=self.predictions(observations))

    @property
    def trainable_variables(self):
        return self.logits_net.trainable_variables


class GaussianPolicy(_Policy):
    """pi(a | s) = N(a; mu(s), diag(exp(log_std))^2), mu an MLP, log_std state-independent."""

    discrete = False

    def __init__(self, obs_dim: int, act_dim: int, hidden_sizes=(64, 64), *, log_std: float = -0.5,
                 seed: int = 0, dtype=tf.float32, name: str | None = None):
        super().__init__(dtype, name)
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.mean_net = MLP(obs_dim, act_dim, hidden_sizes, seed=seed, dtype=self.dtype)
        self.log_std = tf.Variable(np.full(act_dim, log_std), dtype=self.dtype, name="log_std")

    def predictions(self, observations) -> tf.Tensor:
        """observations [B, obs_dim] -> action means [B, act_dim]."""
        return self.mean_net(self._observations(observations))

    def distribution(self, observations) -> tfd.MultivariateNormalDiag:
        return tfd.MultivariateNormalDiag(loc=self.predictions(observations), scale_diag=tf.exp(self.log_std))

    @property
    def trainable_variables(self):
        return (*self.mean_net.trainable_variables, self.log_std)


class LinearGaussianPolicy(_Policy):
    """The lecture's 1-D example: a ~ N(k s, sigma^2).

    Two parameters, in this order: k (variable `k`, shape [1]) and log sigma (`log_std`,
    shape [1]). Observations are [B, 1], means [B, 1].
    """

    discrete = False
    obs_dim = act_dim = 1

    def __init__(self, k: float = 0.0, sigma: float = 1.0, *, dtype=tf.float64, name: str | None = None):
        super().__init__(dtype, name)
        if not sigma > 0:
            raise ValueError(f"LinearGaussianPolicy: sigma must be positive, got {sigma}")
        self.k = tf.Variable([k], dtype=self.dtype, name="k")
        self.log_std = tf.Variable([np.log(sigma)], dtype=self.dtype, name="log_std")

    def predictions(self, observations) -> tf.Tensor:
        """observations [B, 1] -> means k * s, [B, 1]."""
        return self._observations(observations) * self.k

    def distribution(self, observations) -> tfd.MultivariateNormalDiag:
        return tfd.MultivariateNormalDiag(loc=self.predictions(observations), scale_diag=tf.exp(self.log_std))

    @property
    def trainable_variables(self):
        return (self.k, self.log_std)
