"""What the case builders share: the registry of builders and each test's own random stream."""
from __future__ import annotations

import zlib

import numpy as np

from ..wire import Policy, Tensor

BUILDERS: dict = {}  # {hidden test name: builder(rng, seed) -> list of cases}


def builds(test: str):
    """Register a builder of the cases of one hidden test."""
    def register(function):
        BUILDERS[test] = function
        return function
    return register


def test_rng(seed: int, test: str) -> np.random.Generator:
    """The random stream of one test of one instance: the same for the same seed and test."""
    return np.random.default_rng([seed, zlib.crc32(test.encode())])


def test_seed(seed: int, test: str) -> int:
    """An integer seed for the policies of one test of one instance."""
    return (seed * 1_000_003 + zlib.crc32(test.encode())) % (2 ** 31 - 100)


def send(array, as_tensor: bool):
    """An argument sent as a tf.Tensor or as a NumPy array."""
    return Tensor(array) if as_tensor else np.asarray(array)


def policy_spec(policy, kind: str, seed: int = 0, **sizes) -> Policy:
    """The wire description of a policy of hw.policies with its current parameters."""
    from hw.utils import get_flat_params
    dtype = policy.trainable_variables[0].dtype.name
    return Policy(kind, get_flat_params(policy).numpy().astype(np.float64), dtype=dtype, seed=seed,
                  **{k: list(v) if k == "hidden_sizes" else v for k, v in sizes.items()})


def shapes(policy) -> list:
    """The shapes of a policy's trainable variables, in order."""
    return [list(v.shape) for v in policy.trainable_variables]
