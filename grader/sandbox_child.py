"""The child process that runs a student's code, and the wire format it shares with the parent.

This file is standalone (standard library and NumPy at import time): the grader copies it
into the submission's staging folder and runs it there as a script, so the child never
needs to import the grader package (which it cannot read). The parent imports the same
file as `grader.sandbox_child` for `write_message` / `read_message`, so both ends use one
definition of the format.

Wire format (no pickle anywhere): a message is

    4-byte big-endian length L | L bytes of UTF-8 JSON header | the blobs, back to back

where header["blobs"] lists the byte length of each blob. A blob is a NumPy array written
by np.save(..., allow_pickle=False). In the JSON tree a value {"__nd__": i} stands for
blob i as a NumPy array, {"__tensor__": i} for blob i as a tf.Tensor (requests only), and
{"__policy__": spec}, {"__matvec__": spec}, {"__fn__": spec} for objects the child builds
from plain specs (policies of hw.policies with given flat parameters, a matrix-vector
product, a quadratic surrogate or KL for line_search).

Requests: {"op": "import", "module": m}, {"op": "call", "module": m, "function": f,
"args": [...], "kwargs": {...}, "grad_wrt": [indices of args] or null}. Responses:
{"ok": value} or {"error": {"type", "message", "traceback"}}.
"""
from __future__ import annotations

import io
import json
import os
import struct
import sys
import traceback

import numpy as np

MAX_MESSAGE = 512 * 1024 * 1024
GRADED_MODULES = ("policy_gradient", "natural_gradient")
BLOCKED_PACKAGES = ("grader", "solutions", "tests")


# ----------------------------------------------------------------------------- wire format

def _encode(value, blobs: list[bytes]):
    if isinstance(value, np.ndarray):
        buffer = io.BytesIO()
        np.save(buffer, value, allow_pickle=False)
        blobs.append(buffer.getvalue())
        return {"__nd__": len(blobs) - 1}
    if isinstance(value, dict):
        return {str(k): _encode(v, blobs) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v, blobs) for v in value]
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return _encode(np.asarray(value), blobs)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot send an object of type {type(value).__name__}")


def encode_message(header: dict) -> bytes:
    blobs: list[bytes] = []
    body = _encode(header, blobs)
    data = json.dumps({"body": body, "blobs": [len(b) for b in blobs]}).encode()
    return b"".join([struct.pack(">I", len(data)), data, *blobs])


def write_message(fd: int, header: dict) -> None:
    view = memoryview(encode_message(header))
    while view:
        written = os.write(fd, view)
        view = view[written:]


class MessageReader:
    """Incremental decoder: feed() bytes as they arrive, message() once complete."""

    def __init__(self):
        self.buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > MAX_MESSAGE:
            raise ValueError("message too large")

    def message(self):
        """The next complete message as (body, blobs), or None if more bytes are needed."""
        if len(self.buffer) < 4:
            return None
        (length,) = struct.unpack(">I", bytes(self.buffer[:4]))
        if 4 + length > len(self.buffer):
            return None
        header = json.loads(bytes(self.buffer[4:4 + length]).decode())
        sizes = header["blobs"]
        if not isinstance(sizes, list) or not all(isinstance(s, int) and s >= 0 for s in sizes):
            raise ValueError("malformed blob list")
        end = 4 + length + sum(sizes)
        if end > len(self.buffer):
            if end > MAX_MESSAGE:
                raise ValueError("message too large")
            return None
        blobs, offset = [], 4 + length
        for size in sizes:
            blobs.append(bytes(self.buffer[offset:offset + size]))
            offset += size
        del self.buffer[:end]
        return header["body"], blobs


def load_array(blob: bytes) -> np.ndarray:
    return np.load(io.BytesIO(blob), allow_pickle=False)


def decode_plain(value, blobs):
    """Arrays and JSON only (what the parent accepts from the child)."""
    if isinstance(value, dict):
        if set(value) == {"__nd__"}:
            return load_array(blobs[int(value["__nd__"])])
        return {k: decode_plain(v, blobs) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_plain(v, blobs) for v in value]
    return value


def read_message(fd: int):
    reader = MessageReader()
    while True:
        got = reader.message()
        if got is not None:
            return got
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            raise EOFError("pipe closed")
        reader.feed(chunk)


# ----------------------------------------------------------------------------- child side

class _Blocker:
    """A meta-path finder that refuses the grader's own packages inside the child."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED_PACKAGES:
            raise ImportError(f"the package {name!r} is not available to submissions")
        return None


def _scrub_import_path(staging: str, hidden: list[str]) -> None:
    """Only the staging folder (trusted hw + the student's two files) and the Python
    installation stay importable: no repository root, no editable-install finder."""
    hidden = [os.path.realpath(h) for h in hidden if h]

    def visible(entry: str) -> bool:
        if not entry:
            return False
        real = os.path.realpath(entry)
        return not any(real == h or real.startswith(h + os.sep) for h in hidden)

    # staging first (the trusted hw package and the student's two files); staging/hw last, for
    # a submission that imports its sibling as a top-level module (`import policy_gradient`).
    hw_dir = os.path.join(staging, "hw")
    sys.path[:] = [staging] + [p for p in sys.path if p not in (staging, hw_dir) and visible(p)] + [hw_dir]
    sys.meta_path[:] = [f for f in sys.meta_path
                        if "editable" not in (getattr(f, "__module__", "") or type(f).__module__ or "")
                        and "editable" not in type(f).__name__.lower()]
    sys.meta_path.insert(0, _Blocker())
    for key in [k for k in sys.path_hooks if "editable" in repr(k).lower()]:
        sys.path_hooks.remove(key)
    sys.path_importer_cache.clear()
    for name in list(sys.modules):
        if name.split(".")[0] in BLOCKED_PACKAGES:
            del sys.modules[name]


def _child_main(argv: list[str]) -> None:
    request_fd, response_fd = int(argv[1]), int(argv[2])
    try:  # die with the grading process (PR_SET_PDEATHSIG = 1, SIGKILL)
        import ctypes
        ctypes.CDLL(None).prctl(1, 9)
    except Exception:  # noqa: BLE001
        pass
    config = json.loads(argv[3])
    staging = config["staging"]
    os.chdir(config.get("cwd", staging))
    _scrub_import_path(staging, config.get("hidden", []))

    import hw  # noqa: F401  (the trusted copy in staging: imports TensorFlow quietly)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import hw.policies as policies
    import hw.utils as utils

    # Warm up the kernels that every graded function uses, so that a first call's timeout
    # does not pay for TensorFlow's initialisation.
    with tf.GradientTape() as tape:
        v = tf.Variable([[1.0, 2.0]], dtype=tf.float64)
        y = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=tf.one_hot([1], 2, dtype=tf.float64),
                                                                    logits=tf.matmul(v, tf.ones((2, 2), tf.float64))))
    tape.gradient(y, v)
    # The last of the protocol: the student must not be able to read the requests of others
    # nor inherit anything else from the parent; our two descriptors stay as they are.
    modules: dict[str, object] = {}

    def build(value, blobs):
        if isinstance(value, list):
            return [build(v, blobs) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"__nd__"}:
            return load_array(blobs[int(value["__nd__"])])
        if set(value) == {"__tensor__"}:
            return tf.constant(build(value["__tensor__"], blobs))
        if set(value) == {"__policy__"}:
            return make_policy(build(value["__policy__"], blobs))
        if set(value) == {"__matvec__"}:
            return make_matvec(build(value["__matvec__"], blobs))
        if set(value) == {"__fn__"}:
            return make_function(build(value["__fn__"], blobs))
        return {k: build(v, blobs) for k, v in value.items()}

    def make_policy(spec):
        dtype = tf.as_dtype(spec.get("dtype", "float64"))
        kind = spec["kind"]
        if kind == "categorical":
            policy = policies.CategoricalPolicy(spec["obs_dim"], spec["n_actions"], tuple(spec["hidden_sizes"]),
                                                seed=spec.get("seed", 0), dtype=dtype)
        elif kind == "gaussian":
            policy = policies.GaussianPolicy(spec["obs_dim"], spec["act_dim"], tuple(spec["hidden_sizes"]),
                                             seed=spec.get("seed", 0), dtype=dtype)
        elif kind == "linear_gaussian":
            policy = policies.LinearGaussianPolicy(0.0, 1.0, dtype=dtype)
        else:
            raise ValueError(f"unknown policy kind {kind!r}")
        if spec.get("params") is not None:
            utils.set_flat_params(policy, np.asarray(spec["params"]))
        return policy

    def make_matvec(spec):
        matrix = np.asarray(spec["matrix"], dtype=np.float64)

        def matvec(vector):
            if isinstance(vector, (tf.Tensor, tf.Variable)):
                return tf.linalg.matvec(tf.cast(matrix, vector.dtype), vector)
            return matrix @ np.asarray(vector, dtype=np.float64)
        return matvec

    def make_function(spec):
        center = np.asarray(spec["center"], dtype=np.float64)
        matrix = np.asarray(spec.get("matrix", np.zeros((len(center), len(center)))), dtype=np.float64)
        linear = np.asarray(spec.get("linear", np.zeros(len(center))), dtype=np.float64)
        offset = float(spec.get("offset", 0.0))

        def function(theta):
            x = np.asarray(theta, dtype=np.float64).reshape(-1) - center
            return float(offset + linear @ x + 0.5 * x @ matrix @ x)
        return function

    def to_plain(value, depth=0):
        if depth > 3:
            raise TypeError("nested too deeply")
        if value is None:
            return None
        if isinstance(value, (list, tuple)):
            return [to_plain(v, depth + 1) for v in value]
        if isinstance(value, tf.IndexedSlices):
            raise TypeError("returned a tf.IndexedSlices (a sparse gradient); convert it with tf.convert_to_tensor")
        if isinstance(value, (bool, int, float)):
            return np.asarray(value, dtype=np.float64)
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"returned an object of type {type(value).__name__} (array dtype {array.dtype}), "
                            "not numbers")
        return np.array(array, order="C")  # (ascontiguousarray would make a scalar 1-d)

    def student_traceback(exc) -> str:
        frames = traceback.extract_tb(exc.__traceback__)
        mine = [f for f in frames if os.path.basename(f.filename) in ("policy_gradient.py", "natural_gradient.py")]
        lines = traceback.format_list(mine[-3:] or frames[-2:])
        return "".join(lines)[-1500:].replace(os.path.join(staging, "hw") + os.sep, "hw/")

    def error(exc) -> dict:
        if isinstance(exc, SystemExit):
            return {"type": "SystemExit", "message": f"called sys.exit({exc.code!r})", "traceback": student_traceback(exc)}
        if isinstance(exc, SyntaxError):
            where = f"hw/{os.path.basename(exc.filename or '?')}, line {exc.lineno}"
            text = (exc.text or "").strip()
            return {"type": type(exc).__name__, "message": f"{exc.msg} ({where}" + (f": {text})" if text else ")"),
                    "traceback": ""}
        return {"type": type(exc).__name__, "message": str(exc)[:2000], "traceback": student_traceback(exc)}

    def flush():
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:  # noqa: BLE001
                pass

    write_message(response_fd, {"ok": "ready"})
    while True:
        try:
            body, blobs = read_message(request_fd)
        except EOFError:
            os._exit(0)
        try:
            if body["op"] == "import":
                name = body["module"]
                if name not in GRADED_MODULES:
                    raise ValueError(f"not a graded module: {name}")
                import importlib
                modules[name] = importlib.import_module(f"hw.{name}")
                result = "imported"
            elif body["op"] == "call":
                module = modules.get(body["module"])
                if module is None:
                    raise ImportError(f"hw/{body['module']}.py was not imported")
                function = getattr(module, body["function"], None)
                if function is None or not callable(function):
                    raise AttributeError(f"hw/{body['module']}.py has no function {body['function']}()")
                args = build(body.get("args", []), blobs)
                kwargs = build(body.get("kwargs", {}), blobs)
                grad_wrt = body.get("grad_wrt")
                if grad_wrt:
                    watched = {i: tf.Variable(args[i]) if isinstance(args[i], np.ndarray)
                               else tf.Variable(tf.convert_to_tensor(args[i])) for i in grad_wrt}
                    call_args = [watched.get(i, a) for i, a in enumerate(args)]
                    # Variables are handed over as tensors (a student may tf.cast or np.asarray them).
                    with tf.GradientTape(persistent=True) as tape:
                        call_args = [tf.identity(a) if i in watched else a for i, a in enumerate(call_args)]
                        value = function(*call_args, **kwargs)
                    gradients = []
                    for i in grad_wrt:
                        try:
                            g = tape.gradient(value, watched[i])
                        except Exception:  # noqa: BLE001  (e.g. a NumPy value: no gradient at all)
                            g = None
                        gradients.append(None if g is None else to_plain(tf.convert_to_tensor(g)))
                    result = {"value": to_plain(value), "grads": gradients}
                else:
                    result = to_plain(function(*args, **kwargs))
            else:
                raise ValueError(f"unknown op {body.get('op')!r}")
            response = {"ok": result}
        except BaseException as exc:  # noqa: BLE001  (SystemExit and KeyboardInterrupt included)
            try:
                response = {"error": error(exc)}
            except BaseException:  # noqa: BLE001
                response = {"error": {"type": "Error", "message": "an exception that cannot be shown", "traceback": ""}}
        flush()
        try:
            write_message(response_fd, response)
        except TypeError as exc:
            write_message(response_fd, {"error": {"type": "TypeError", "message": str(exc), "traceback": ""}})


if __name__ == "__main__":
    _child_main(sys.argv)
