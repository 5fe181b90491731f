"""The student's process (run from the staging folder as staging/runtime/child.py).

It imports TensorFlow once, then answers requests read from its request pipe:
{"id", "op": "import", "module"}, {"id", "op": "train", "argv"} (the learning check) and
{"id", "op": "call", "module", "function", "args",
"kwargs", "grad_wrt": indices of args or null}. With grad_wrt it returns
{"value", "grads"}: the result and its gradients with respect to those arguments. Each
answer is {"id", "ok": value} or {"id", "error": {"type", "message", "traceback"}}, in the
wire format of wire.py (staged beside this file), never pickle. Objects of the wire
vocabulary become what the student's function expects: a tf.Tensor, a policy of
hw.policies, a matrix-vector product, a quadratic function.
"""
from __future__ import annotations

import json
import os
import sys
import traceback

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # (-I leaves the script's folder out)
import wire  # noqa: E402  (staging/runtime/wire.py)

GRADED_MODULES = ("policy_gradient", "natural_gradient")
BLOCKED_PACKAGES = ("grader", "solutions", "tests")


class _Blocker:
    """A meta-path finder that refuses the grader's own packages inside the child."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED_PACKAGES:
            raise ImportError(f"the package {name!r} is not available to submissions")
        return None


def _scrub_import_path(staging: str, hidden: list[str], python: list[str]) -> None:
    """Only the staging folder (trusted hw + the student's two files) and the Python
    installation stay importable: no repository root, no editable-install finder. (A
    virtual environment may sit inside a hidden folder: Python's folders stay.)"""
    hidden = [os.path.realpath(h) for h in hidden if h] + [os.path.realpath(os.path.dirname(__file__))]
    python = [os.path.realpath(p) for p in python if p]

    def under(real: str, folders: list[str]) -> bool:
        return any(real == f or real.startswith(f + os.sep) for f in folders)

    def visible(entry: str) -> bool:
        if not entry:
            return False
        real = os.path.realpath(entry)
        return under(real, python) or not under(real, hidden)

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


def _read(fd: int):
    reader = wire.MessageReader(wire.TRUSTED)
    while True:
        got = reader.message()
        if got is not None:
            return got
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            raise EOFError("pipe closed")
        reader.feed(chunk)


def _write(fd: int, value) -> None:
    view = memoryview(wire.encode(value))
    while view:
        written = os.write(fd, view)
        view = view[written:]


def main(argv: list[str]) -> None:
    request_fd, response_fd = int(argv[1]), int(argv[2])
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    # Not dumpable (PR_SET_DUMPABLE = 4, 0) before any student code runs: no process can
    # ptrace this one, read its memory or take its pipes (pidfd_getfd), even under its uid.
    if libc.prctl(4, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")
    libc.prctl(1, 9, 0, 0, 0)  # die with the process that started this one (PR_SET_PDEATHSIG = 1, SIGKILL)
    settings = json.loads(argv[3])
    staging = settings["staging"]
    os.chdir(settings.get("cwd", staging))
    _scrub_import_path(staging, settings["hidden"], settings["python"])

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
    modules: dict[str, object] = {}

    def make_policy(spec):
        dtype = tf.as_dtype(spec["dtype"])
        kind = spec["kind"]
        if kind == "categorical":
            policy = policies.CategoricalPolicy(spec["obs_dim"], spec["n_actions"], tuple(spec["hidden_sizes"]),
                                                seed=spec["seed"], dtype=dtype)
        elif kind == "gaussian":
            policy = policies.GaussianPolicy(spec["obs_dim"], spec["act_dim"], tuple(spec["hidden_sizes"]),
                                             seed=spec["seed"], dtype=dtype)
        elif kind == "linear_gaussian":
            policy = policies.LinearGaussianPolicy(0.0, 1.0, dtype=dtype)
        else:
            raise ValueError(f"unknown policy kind {kind!r}")
        utils.set_flat_params(policy, np.asarray(spec["params"]))
        return policy

    def make_matvec(spec):
        matrix = np.asarray(spec["matrix"], dtype=np.float64)

        def matvec(vector):
            if isinstance(vector, (tf.Tensor, tf.Variable)):
                return tf.linalg.matvec(tf.cast(matrix, vector.dtype), vector)
            return matrix @ np.asarray(vector, dtype=np.float64)
        return matvec

    def make_quadratic(spec):
        quadratic = wire.Quadratic(**spec)
        return lambda theta: quadratic(np.asarray(theta))

    builders = {"tensor": lambda spec: tf.constant(spec["array"]), "policy": make_policy,
                "matvec": make_matvec, "quadratic": make_quadratic}

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

    def train(argv):
        """The provided training loop (hw/train.py) on the student's modules: the final flat
        parameters, the curve it logged and its environment steps (the grader believes
        only its own evaluation of the parameters)."""
        import csv

        import hw.train as training
        try:
            summary = training.main([*argv, "--runs-dir", os.path.join(os.getcwd(), "runs")])
        except training.TrainingError as exc:  # (a SystemExit): its message is for the student
            raise RuntimeError(str(exc.code)) from None
        with open(os.path.join(summary["run_dir"], "progress.csv")) as handle:
            curve = [float(row["return_mean"]) for row in csv.DictReader(handle)]
        return {"params": np.asarray(summary["params"], np.float64), "curve": np.asarray(curve, np.float64),
                "steps": np.asarray(summary["env_steps"])}

    def run(body):
        if body["op"] == "import":
            name = body["module"]
            if name not in GRADED_MODULES:
                raise ValueError(f"not a graded module: {name}")
            import importlib
            modules[name] = importlib.import_module(f"hw.{name}")
            return "imported"
        if body["op"] == "train":
            return train(body["argv"])
        if body["op"] != "call":
            raise ValueError(f"unknown op {body.get('op')!r}")
        module = modules.get(body["module"])
        if module is None:
            raise ImportError(f"hw/{body['module']}.py was not imported")
        function = getattr(module, body["function"], None)
        if function is None or not callable(function):
            raise AttributeError(f"hw/{body['module']}.py has no function {body['function']}()")
        args, kwargs, grad_wrt = body["args"], body["kwargs"], body.get("grad_wrt")
        if not grad_wrt:
            return to_plain(function(*args, **kwargs))
        watched = {i: tf.Variable(args[i]) if isinstance(args[i], np.ndarray)
                   else tf.Variable(tf.convert_to_tensor(args[i])) for i in grad_wrt}
        # Variables are handed over as tensors (a student may tf.cast or np.asarray them).
        with tf.GradientTape(persistent=True) as tape:
            call_args = [tf.identity(watched[i]) if i in watched else a for i, a in enumerate(args)]
            value = function(*call_args, **kwargs)
        gradients = []
        for i in grad_wrt:
            try:
                g = tape.gradient(value, watched[i])
            except Exception:  # noqa: BLE001  (e.g. a NumPy value: no gradient at all)
                g = None
            gradients.append(None if g is None else to_plain(tf.convert_to_tensor(g)))
        return {"value": to_plain(value), "grads": gradients}

    _write(response_fd, {"id": None, "ok": "ready"})
    while True:
        try:
            message = _read(request_fd)
        except EOFError:
            os._exit(0)
        request_id = None
        try:
            body = wire.decode(*message, kinds=builders)
            request_id = body.get("id")
            answer = {"id": request_id, "ok": run(body)}
        except BaseException as exc:  # noqa: BLE001  (SystemExit and KeyboardInterrupt included)
            try:
                answer = {"id": request_id, "error": error(exc)}
            except BaseException:  # noqa: BLE001
                answer = {"id": request_id, "error": {"type": "Error", "message": "an exception that cannot be shown",
                                                      "traceback": ""}}
        flush()
        try:
            _write(response_fd, answer)
        except TypeError as exc:
            _write(response_fd, {"id": request_id, "error": {"type": "TypeError", "message": str(exc),
                                                             "traceback": ""}})


if __name__ == "__main__":
    main(sys.argv)
