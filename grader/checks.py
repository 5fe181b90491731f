"""Comparisons for the hidden tests, with failure messages that say what was expected, what
came back, by how much, and name the mistake when it is a common one.

Everything here runs in the trusted grading process on plain NumPy arrays received from
the sandbox, converted with np.asarray(..., dtype=np.float64) before any comparison.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from .sandbox.messages import StudentError

MIXED_DTYPES = ("this case mixes dtypes as the training loop does (a float32 policy or theta with float64 "
                "data): compute in the dtype of the policy's variables or of theta, casting the other inputs "
                "with tf.cast.")


class CheckFailed(AssertionError):
    """A failed check (its message is what the student reads)."""


def fmt(x, precision: int = 4) -> str:
    x = np.asarray(x)
    if x.ndim == 0:
        return f"{float(x):.{precision}g}"
    return np.array2string(x, precision=precision, threshold=10, edgeitems=3, max_line_width=100,
                           separator=", ").replace("\n", " ")


def as_array(value, what: str, *, dtype=np.float64) -> np.ndarray:
    """The student's value as a float64 array (a CheckFailed if it is not one)."""
    if value is None:
        raise CheckFailed(f"{what}: returned None (did you forget a return statement?)")
    if isinstance(value, dict):
        raise CheckFailed(f"{what}: returned a dictionary, expected an array")
    try:
        array = np.asarray(value, dtype=dtype)
    except (ValueError, TypeError) as exc:
        raise CheckFailed(f"{what}: returned something that is not an array of numbers ({exc})") from None
    return array


def as_list(value, what: str, count: int) -> list[np.ndarray]:
    if not isinstance(value, list):
        shape = np.shape(value) if isinstance(value, np.ndarray) else type(value).__name__
        raise CheckFailed(f"{what}: expected a list of {count} tensors (one per trainable variable), "
                          f"got {shape}")
    if len(value) != count:
        raise CheckFailed(f"{what}: expected a list of {count} tensors (one per trainable variable), "
                          f"got a list of {len(value)}")
    return [as_array(v, f"{what}[{i}]") for i, v in enumerate(value)]


def _close(got, expected, rtol, atol) -> bool:
    return got.shape == expected.shape and bool(np.all(np.isfinite(got))) and \
        bool(np.allclose(got, expected, rtol=rtol, atol=atol))


def diagnose(got: np.ndarray, expected: np.ndarray, mistakes=(), *, rtol=1e-4, atol=1e-6,
             batch_size: int | None = None) -> str:
    """Name the mistake that explains `got`, if one does ('' otherwise)."""
    for label, alternative in mistakes:
        alternative = np.asarray(alternative, dtype=np.float64)
        if alternative.shape == got.shape and _close(got, alternative, rtol * 10, atol * 10):
            return f"this is what {label} gives."
    if got.shape != expected.shape or not np.all(np.isfinite(got)):
        return ""
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    if scale == 0.0 or not np.any(np.abs(got) > atol):
        return ""
    if _close(got, -expected, rtol * 10, atol * 10):
        return "the sign is flipped (the gradient of the loss instead of the ascent direction grad J?)."
    flat_e, flat_g = expected.reshape(-1), got.reshape(-1)
    ratio = float(flat_g @ flat_e / (flat_e @ flat_e))
    if ratio != 0 and _close(got, ratio * expected, rtol * 10, atol * 10):
        named = [(2.0, "a factor 2 too large"), (0.5, "a missing factor 2"), (np.sqrt(2), "a factor sqrt(2) too large"),
                 (1 / np.sqrt(2), "a missing factor sqrt(2) (epsilon instead of 2 epsilon?)")]
        if batch_size and batch_size > 1:
            named += [(float(batch_size), "a sum over the batch instead of a mean"),
                      (1.0 / batch_size, "dividing by the batch size twice")]
        for factor, label in named:
            if abs(ratio / factor - 1) < 1e-3:
                return f"off by a constant factor {ratio:.4g}: {label}."
        if ratio < 0:
            return f"it points the opposite way, scaled by {ratio:.4g} (a flipped sign?)."
        return f"off by a constant factor {ratio:.4g}: the direction is right, the scale is not."
    return ""


def failure(what: str, problem: str, *, expected: str, got: str, mistake: str = "", hint: str = "") -> CheckFailed:
    """A failed check as the student reads it: what was checked and what went wrong on the
    first line (the report's table shows it), then what was expected, what came back, the
    likely mistake and a hint, one labelled line each."""
    lines = [f"{what}: {problem}", f"Expected: {expected}", f"Got: {got}"]
    if mistake:
        lines.append(f"Likely mistake: {mistake}")
    if hint:
        lines.append(f"Hint: {hint.strip()}")
    return CheckFailed("\n".join(lines))


def expect_close(got, expected, what: str, *, rtol: float = 1e-4, atol: float = 1e-6, mistakes=(),
                 batch_size: int | None = None, hint: str = "") -> np.ndarray:
    """The student's `got` must equal `expected` (shape and values)."""
    expected = np.asarray(expected, dtype=np.float64)
    got = as_array(got, what)
    if got.shape != expected.shape:
        if got.size == expected.size:
            shape_hint = "the same numbers in another shape?"
        elif got.ndim == 2 and expected.ndim == 1 and got.shape == (expected.shape[0],) * 2:
            shape_hint = "[B] times [B, 1] broadcasts to [B, B]: keep q_values one-dimensional."
        elif expected.ndim == 0 and got.ndim == 1:
            shape_hint = "expected a scalar: take the mean over the batch."
        else:
            shape_hint = ""
        mistake = diagnose(got, expected, mistakes, rtol=rtol, atol=atol, batch_size=batch_size) or shape_hint
        raise failure(what, "wrong shape", expected=f"shape {expected.shape}", got=f"shape {got.shape}",
                      mistake=mistake, hint=hint)
    if not np.all(np.isfinite(got)):
        raise failure(what, "non-finite values (NaN or infinity)", expected=fmt(expected), got=fmt(got), hint=hint)
    if not np.allclose(got, expected, rtol=rtol, atol=atol):
        error = float(np.max(np.abs(got - expected)))
        relative = error / max(float(np.max(np.abs(expected))), 1e-300)
        raise failure(what, "wrong values", expected=fmt(expected),
                      got=f"{fmt(got)} (largest difference {error:.3g}, {relative:.3g} relative; tolerance "
                          f"rtol={rtol:g}, atol={atol:g})",
                      mistake=diagnose(got, expected, mistakes, rtol=rtol, atol=atol, batch_size=batch_size),
                      hint=hint)
    return got


def expect_scalar(got, expected, what: str, **kwargs) -> float:
    got = as_array(got, what)
    if got.shape not in ((), (1,)):
        raise failure(what, "not a scalar", expected="a scalar", got=f"an array of shape {got.shape}",
                      mistake="no mean over the batch (tf.reduce_mean turns the [B] losses into one number)."
                      if got.ndim == 1 else "")
    return float(expect_close(got.reshape(()), np.asarray(expected, np.float64).reshape(()), what, **kwargs))


@contextmanager
def in_case(description: str, hint: str = ""):
    """An error raised by the student's code names the case it happened in (and a hint)."""
    try:
        yield
    except StudentError as exc:
        if exc.kind not in ("exception", "type"):
            raise
        raise StudentError(f"{description}: {exc.message}" + (f"\nHint: {hint}" if hint else ""), exc.kind) from None


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def direction_hint(step, candidates) -> str:
    """Name the direction a step points along, if it is one of the candidates (any scale)."""
    step = np.asarray(step, dtype=np.float64).reshape(-1)
    norm = np.linalg.norm(step)
    if not np.all(np.isfinite(step)) or norm == 0:
        return ""
    for label, vector in candidates:
        vector = np.asarray(vector, dtype=np.float64).reshape(-1)
        if vector.shape == step.shape and np.linalg.norm(vector) > 0:
            cosine = float(step @ vector / (norm * np.linalg.norm(vector)))
            if cosine > 1 - 1e-6:
                return f" Your step points along {label}."
    return ""


def ratio_hint(ratio: float) -> str:
    """Name a KL (or quadratic-model) value that is off from epsilon by a telling factor."""
    for factor, label in [(0.5, "half of epsilon: a missing factor 2 (sqrt(eps / ...) instead of sqrt(2 eps / ...))"),
                          (2.0, "twice epsilon: a factor 2 too many"),
                          (0.25, "a quarter of epsilon"), (4.0, "four times epsilon")]:
        if abs(ratio / factor - 1) < 0.1:
            return f" That is about {label}."
    return ""
