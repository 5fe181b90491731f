"""Flat parameter vectors (provided, no TODOs).

A flat vector lists the entries of `policy.trainable_variables` in order, each variable
flattened in row-major order, as docs/contract.md fixes for every Part 2 function.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf


def flatten(tensors) -> tf.Tensor:
    """Concatenate tensors (e.g. gradients, one per variable) into one flat vector [n]."""
    return tf.concat([tf.reshape(t, [-1]) for t in tensors], axis=0)


def unflatten(vector, like) -> list[tf.Tensor]:
    """Split a flat vector [n] into tensors shaped like `like` (variables or tensors)."""
    vector = tf.convert_to_tensor(vector)
    sizes = [int(np.prod(v.shape)) for v in like]
    if int(vector.shape[0]) != sum(sizes):
        raise ValueError(f"unflatten: vector has {vector.shape[0]} entries, the variables hold {sum(sizes)}")
    pieces = tf.split(vector, sizes)
    return [tf.reshape(tf.cast(p, v.dtype), v.shape) for p, v in zip(pieces, like)]


def get_flat_params(policy) -> tf.Tensor:
    """theta: the policy's trainable variables as one flat vector [n]."""
    return flatten(policy.trainable_variables)


def set_flat_params(policy, theta) -> None:
    """Assign a flat vector [n] to the policy's trainable variables."""
    for variable, value in zip(policy.trainable_variables, unflatten(theta, policy.trainable_variables)):
        variable.assign(value)


def num_params(policy) -> int:
    """n: the number of scalar parameters in the policy."""
    return sum(int(np.prod(v.shape)) for v in policy.trainable_variables)
