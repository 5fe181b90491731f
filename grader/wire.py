"""The wire vocabulary: the plain data that crosses between the grader, the hidden-instance
files and the student's process. NumPy only (the grading process never imports TensorFlow),
and never pickle.

A message is a 4-byte big-endian length, a JSON header {"body": ..., "blobs": [sizes]},
then the blobs: arrays in NumPy's .npy format (loaded with allow_pickle=False). In the
body, JSON values stand for themselves and a dict with the key "__kind__" for one of:

    array      {"__kind__": "array", "blob": i}: blob i
    tensor     Tensor(array): given to the student's function as a tf.Tensor (a plain array
               arrives as a NumPy array)
    policy     Policy(kind, params, sizes, dtype): a policy of hw.policies built in the
               student's process with these flat parameters
    matvec     MatVec(matrix): the function v -> matrix @ v
    quadratic  Quadratic(center, linear, matrix, offset): the function
               theta -> offset + linear . x + 1/2 x^T matrix x with x = theta - center

Each reader says which kinds it accepts: the grader takes only arrays from the student's
process; the student's process builds TensorFlow objects from the others (see
grader/sandbox/child.py).
"""
from __future__ import annotations

import io
import json
import struct
import time
from dataclasses import dataclass, field, fields

import numpy as np

KIND = "__kind__"


class WireError(ValueError):
    """A message that breaks the format or a limit."""


@dataclass
class Tensor:
    array: np.ndarray

    def __post_init__(self):
        self.array = np.asarray(self.array)


@dataclass
class Policy:
    kind: str  # "categorical", "gaussian" or "linear_gaussian"
    params: np.ndarray  # flat, in the order of policy.trainable_variables
    obs_dim: int = 1
    n_actions: int = 2
    act_dim: int = 1
    hidden_sizes: list = field(default_factory=list)
    dtype: str = "float64"
    seed: int = 0


@dataclass
class MatVec:
    matrix: np.ndarray


@dataclass
class Quadratic:
    center: np.ndarray
    linear: np.ndarray
    matrix: np.ndarray
    offset: float = 0.0

    def __call__(self, theta) -> float:
        """Its value, in float64 (the grader states the line-search cases with it)."""
        x = np.asarray(theta, dtype=np.float64).reshape(-1) - self.center
        return float(self.offset + self.linear @ x + 0.5 * x @ self.matrix @ x)


KINDS = {"tensor": Tensor, "policy": Policy, "matvec": MatVec, "quadratic": Quadratic}
NAMES = {cls: name for name, cls in KINDS.items()}
PLAIN_KINDS = {name: (lambda cls: lambda spec: cls(**spec))(cls) for name, cls in KINDS.items()}


@dataclass(frozen=True)
class Limits:
    """What a reader accepts; the grader's reader of student answers is the strict one."""

    header_bytes: int = 1 << 30
    total_bytes: int = 1 << 34
    arrays: int = 1 << 30


TRUSTED = Limits()
STUDENT_ANSWER = Limits(header_bytes=1 << 20, total_bytes=64 << 20, arrays=10_000)


# ----------------------------------------------------------------------------- writing

def _encode(value, blobs: list[bytes]):
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError("cannot send an array of Python objects")
        buffer = io.BytesIO()
        np.save(buffer, value, allow_pickle=False)
        blobs.append(buffer.getvalue())
        return {KIND: "array", "blob": len(blobs) - 1}
    if type(value) in NAMES:
        return {KIND: NAMES[type(value)], **{f.name: _encode(getattr(value, f.name), blobs) for f in fields(value)}}
    if isinstance(value, dict):
        if KIND in value:
            raise TypeError(f"a dictionary may not hold the key {KIND!r}")
        return {str(k): _encode(v, blobs) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v, blobs) for v in value]
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return _encode(np.asarray(value), blobs)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot send an object of type {type(value).__name__}")


def encode(value) -> bytes:
    """One message holding `value`."""
    blobs: list[bytes] = []
    body = _encode(value, blobs)
    header = json.dumps({"body": body, "blobs": [len(b) for b in blobs]}).encode()
    return b"".join([struct.pack(">I", len(header)), header, *blobs])


# ----------------------------------------------------------------------------- reading

class MessageReader:
    """Incremental reader: feed() bytes as they arrive, message() once one is complete.
    Every limit is checked as soon as the bytes that could break it have arrived."""

    def __init__(self, limits: Limits = TRUSTED):
        self.limits = limits
        self.buffer = bytearray()
        self._header = None  # the current message's parsed header, once its bytes are in

    def feed(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > self.limits.total_bytes + 4 + self.limits.header_bytes:
            raise WireError(f"an answer larger than {self.limits.total_bytes >> 20} MB")

    def pending(self) -> bool:
        """Whether bytes beyond the messages taken so far have arrived."""
        return bool(self.buffer)

    def _parse_header(self):
        """The header of the message at the front of the buffer, or None if not all in yet."""
        if self._header is not None:
            return self._header
        if len(self.buffer) < 4:
            return None
        (length,) = struct.unpack(">I", bytes(self.buffer[:4]))
        if length > self.limits.header_bytes:
            raise WireError(f"an answer whose description takes {length} bytes (at most "
                            f"{self.limits.header_bytes} allowed): nested too deeply or too many values")
        if 4 + length > len(self.buffer):
            return None
        try:
            header = json.loads(bytes(self.buffer[4:4 + length]).decode())
        except (ValueError, RecursionError) as exc:
            raise WireError(f"an unreadable answer ({type(exc).__name__})") from None
        sizes = header.get("blobs") if isinstance(header, dict) else None
        if not isinstance(sizes, list) or not all(type(s) is int and s >= 0 for s in sizes):
            raise WireError("a malformed list of arrays")
        if len(sizes) > self.limits.arrays:
            raise WireError(f"an answer with {len(sizes)} arrays (at most {self.limits.arrays} allowed)")
        if sum(sizes) > self.limits.total_bytes:
            raise WireError(f"an answer larger than {self.limits.total_bytes >> 20} MB")
        self._header = (4 + length, header)
        return self._header

    def message(self):
        """The next complete message as (body, blobs), or None if more bytes are needed."""
        parsed = self._parse_header()
        if parsed is None:
            return None
        offset, header = parsed
        sizes = header["blobs"]
        end = offset + sum(sizes)
        if end > len(self.buffer):
            return None
        blobs = []
        with memoryview(self.buffer) as view:
            for size in sizes:
                blobs.append(view[offset:offset + size].tobytes())
                offset += size
        del self.buffer[:end]
        self._header = None
        return header.get("body"), blobs


def load_array(blob: bytes) -> np.ndarray:
    try:
        return np.load(io.BytesIO(blob), allow_pickle=False)
    except Exception as exc:  # noqa: BLE001  (a malformed .npy blob)
        raise WireError(f"an unreadable array ({type(exc).__name__}: {exc})") from None


def decode(body, blobs: list[bytes], kinds: dict | None = None, deadline: float | None = None):
    """The value of a message body: arrays always; the other kinds only those in `kinds`
    ({name: constructor taking the decoded fields as a dict}), anything else a WireError.
    Each array is referenced once at most (a message cannot make one blob into many
    arrays), and decoding stops with a WireError at `deadline` (time.monotonic())."""
    kinds = kinds or {}
    used: set[int] = set()
    steps = [0]

    def walk(value, depth):
        if depth > 64:
            raise WireError("a value nested more than 64 levels deep")
        steps[0] += 1
        if deadline is not None and steps[0] % 1024 == 0 and time.monotonic() > deadline:
            raise WireError("an answer that took too long to decode")
        if isinstance(value, list):
            return [walk(v, depth + 1) for v in value]
        if not isinstance(value, dict):
            return value
        if KIND not in value:
            return {k: walk(v, depth + 1) for k, v in value.items()}
        kind = value[KIND]
        if kind == "array":
            index = value.get("blob")
            if type(index) is not int or not 0 <= index < len(blobs):
                raise WireError("a reference to a missing array")
            if index in used:
                raise WireError("an array referenced twice")
            used.add(index)
            return load_array(blobs[index])
        if not isinstance(kind, str) or kind not in kinds:
            raise WireError(f"an object of kind {str(kind)[:40]!r} where only arrays and numbers are accepted")
        spec = {k: walk(v, depth + 1) for k, v in value.items() if k != KIND}
        return kinds[kind](spec)

    try:
        return walk(body, 0)
    except RecursionError:
        raise WireError("a value nested too deeply") from None


def read_file(path) -> object:
    """A trusted file written with write_file (a hidden instance)."""
    reader = MessageReader(TRUSTED)
    with open(path, "rb") as handle:
        reader.feed(handle.read())
    got = reader.message()
    if got is None:
        raise WireError(f"{path}: truncated")
    return decode(*got, kinds=PLAIN_KINDS)


def write_file(path, value) -> None:
    with open(path, "wb") as handle:
        handle.write(encode(value))
