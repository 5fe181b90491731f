"""Running a submission's code in a separate, unprivileged process (the parent side).

One child process per submission imports TensorFlow once and runs the student's
functions on inputs described as plain data; it answers with plain arrays (see
grader/sandbox_child.py for the wire format, which never uses pickle). Every comparison
and score is computed here, in the parent. The child:

- runs from a staging folder that holds a trusted copy of hw/ (policies, utils, the MDP
  and LQ helpers) plus the student's two files, and nothing else of the repository;
- has no grader, solutions or hidden tests on its import path (sys.path is scrubbed, the
  editable-install finders removed, and the three packages refused by name);
- when the grader runs as root, runs as the unprivileged user `nobody`, which can neither
  read the solutions and hidden tests nor write the results folder. Where Python itself
  lies in a folder `nobody` cannot enter (e.g. a pyenv under /root), the child gets a
  private mount namespace in which that folder's other contents and the repository are
  hidden under empty tmpfs mounts, and Python's installation is bound back in;
- talks over two dedicated pipes; its stdout and stderr go to two other pipes, read here,
  truncated, and reported beside the test that produced them;
- is killed with its whole process group (os.killpg) when a call exceeds its time limit;
  the next call starts a fresh child.
"""
from __future__ import annotations

import errno
import functools
import json
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import sandbox_child as wire
from .stubs import GRADED_MODULES, ROOT

GRADER_DIR = Path(__file__).resolve().parent
CHILD_SCRIPT = GRADER_DIR / "sandbox_child.py"
SANDBOX_UID = SANDBOX_GID = 65534  # nobody / nogroup
OUTPUT_HEAD = 3000  # characters of a call's student output kept (the start)
OUTPUT_TAIL = 1000  # and the end


class StudentError(Exception):
    """The student's code raised, timed out, crashed, is missing or returned garbage."""

    def __init__(self, message: str, kind: str = "exception"):
        super().__init__(message)
        self.message, self.kind = message, kind


class GraderError(Exception):
    """The grader itself could not run the sandbox."""


# ----------------------------------------------------------------------------- arguments

class Tensor:
    """An argument that the child hands to the student as a tf.Tensor (else NumPy)."""

    def __init__(self, array):
        self.array = np.asarray(array)


@dataclass
class PolicySpec:
    """A policy of hw.policies built in the child: kind 'categorical', 'gaussian' or
    'linear_gaussian', its sizes and dtype, and its flat parameters."""

    kind: str
    params: np.ndarray
    obs_dim: int = 1
    n_actions: int = 2
    act_dim: int = 1
    hidden_sizes: tuple = ()
    dtype: str = "float64"
    seed: int = 0

    def plain(self):
        return {"kind": self.kind, "params": np.asarray(self.params, dtype=np.float64), "obs_dim": self.obs_dim,
                "n_actions": self.n_actions, "act_dim": self.act_dim, "hidden_sizes": list(self.hidden_sizes),
                "dtype": self.dtype, "seed": self.seed}


@dataclass
class MatVec:
    """matvec(v) = matrix @ v in the child (a tf.Tensor in, a tf.Tensor out)."""

    matrix: np.ndarray


@dataclass
class Quadratic:
    """f(theta) = offset + linear . x + 1/2 x^T matrix x with x = theta - center (a Python float)."""

    center: np.ndarray
    linear: np.ndarray | None = None
    matrix: np.ndarray | None = None
    offset: float = 0.0


def _to_wire(value):
    if isinstance(value, Tensor):
        return {"__tensor__": value.array}
    if isinstance(value, PolicySpec):
        return {"__policy__": value.plain()}
    if isinstance(value, MatVec):
        return {"__matvec__": {"matrix": np.asarray(value.matrix, dtype=np.float64)}}
    if isinstance(value, Quadratic):
        n = len(value.center)
        return {"__fn__": {"center": np.asarray(value.center, np.float64),
                           "linear": np.zeros(n) if value.linear is None else np.asarray(value.linear, np.float64),
                           "matrix": np.zeros((n, n)) if value.matrix is None else np.asarray(value.matrix, np.float64),
                           "offset": float(value.offset)}}
    if isinstance(value, (list, tuple)):
        return [_to_wire(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_wire(v) for k, v in value.items()}
    return value


# ----------------------------------------------------------------------------- privileges

def _probe(command: list[str], env: dict, user: bool) -> bool:
    try:
        result = subprocess.run(command, env=env, capture_output=True, timeout=120,
                                user=SANDBOX_UID if user else None, group=SANDBOX_GID if user else None,
                                extra_groups=[] if user else None, cwd="/")
        return result.returncode == 0 and b"sandbox-ok" in result.stdout
    except (OSError, subprocess.SubprocessError):
        return False


def _python_dirs() -> list[Path]:
    import site
    dirs = {Path(sys.base_prefix), Path(sys.prefix), Path(sys.executable).resolve().parent,
            Path(np.__file__).resolve().parent.parent}
    for d in site.getsitepackages():
        dirs.add(Path(d))
    return sorted(d.resolve() for d in dirs if d.exists())


def _closed_ancestor(path: Path) -> Path | None:
    """The highest ancestor of path that `other` users cannot enter, if any."""
    for parent in reversed(path.parents):
        if parent == Path("/"):
            continue
        mode = parent.stat().st_mode
        if not mode & 0o001:
            return parent
    return None


def hidden_paths() -> list[Path]:
    """What the child must never read: the repository (solutions, hidden tests, history)
    or, for an installed grader, its package folders."""
    import importlib.util
    paths = []
    if (ROOT / "grader").resolve() == GRADER_DIR and (ROOT / "setup.py").exists():
        paths.append(ROOT)
    else:
        paths.append(GRADER_DIR)
        spec = importlib.util.find_spec("solutions")
        if spec and spec.submodule_search_locations:
            paths.extend(Path(p).resolve() for p in spec.submodule_search_locations)
    return paths


@dataclass
class Isolation:
    mode: str  # "user", "namespace" or "none"
    note: str = ""
    binds: list = field(default_factory=list)  # (closed ancestor, its child on Python's path)


_ISOLATION: Isolation | None = None


def isolation() -> Isolation:
    """How children run on this machine (decided once per process by probing)."""
    global _ISOLATION
    if _ISOLATION is not None:
        return _ISOLATION
    forced = os.environ.get("GRADER_ISOLATION")
    if os.geteuid() != 0 or forced == "none":
        _ISOLATION = Isolation("none", "student code runs as the grader's own user (not root, or "
                                       "GRADER_ISOLATION=none): separate process, import path scrubbed, "
                                       "files not protected")
        return _ISOLATION
    env = {"PATH": "/usr/bin:/bin", "HOME": "/", "LANG": "C.UTF-8"}
    probe = [sys.executable, "-I", "-B", "-c", "import numpy; print('sandbox-ok')"]
    if forced in (None, "user") and _probe(probe, env, user=True):
        _ISOLATION = Isolation("user", "student code runs as the user nobody")
        return _ISOLATION
    binds = []
    for d in _python_dirs():
        closed = _closed_ancestor(d)
        if closed is not None:
            first = Path(closed, d.relative_to(closed).parts[0])
            if (closed, first) not in binds:
                binds.append((closed, first))
    if shutil.which("unshare") and shutil.which("setpriv"):
        iso = Isolation("namespace", "student code runs as the user nobody in a private mount namespace", binds)
        keep = Path(tempfile.mkdtemp(prefix="grader-probe-"))
        try:
            command = _namespace_command(iso, probe, keep, [])
            if _probe(command, env, user=False):
                _ISOLATION = iso
                return iso
        finally:
            shutil.rmtree(keep, ignore_errors=True)
    _ISOLATION = Isolation("none", "WARNING: running as root but the user nobody cannot run Python here and "
                                   "no mount namespace is available: student code runs as root")
    return _ISOLATION


def _namespace_command(iso: Isolation, command: list[str], keep: Path, hidden: list[Path]) -> list[str]:
    def q(p) -> str:
        return "'" + str(p).replace("'", "'\\''") + "'"
    lines = ["set -e"]
    for path in hidden:
        lines.append(f"mount -t tmpfs -o size=64k,mode=700 grader-hidden {q(path)}")
    for i, (closed, first) in enumerate(iso.binds):
        (keep / f"bind{i}").mkdir(parents=True, exist_ok=True)
        lines.append(f"mount --bind {q(first)} {q(keep / f'bind{i}')}")
    for closed in dict.fromkeys(c for c, _ in iso.binds):
        lines.append(f"mount -t tmpfs -o size=64k,mode=755 grader-mask {q(closed)}")
    for i, (closed, first) in enumerate(iso.binds):
        lines.append(f"mkdir -p {q(first)} && mount --bind {q(keep / f'bind{i}')} {q(first)}")
    lines.append(f'exec setpriv --reuid={SANDBOX_UID} --regid={SANDBOX_GID} --clear-groups --no-new-privs "$@"')
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", "\n".join(lines), "sandbox", *command]


def lock_down() -> None:
    """As root without a mount namespace: make the hidden paths unreadable to others."""
    for path in hidden_paths():
        try:
            os.chmod(path, 0o700)
        except OSError:
            pass


def _limit_resources(memory_bytes: int = 0, processes: int = 0) -> None:  # in the child, before exec
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if processes > 0:  # counts the sandbox user's processes and threads: no fork bomb
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 20, 256 << 20))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


# ----------------------------------------------------------------------------- the sandbox

def stage(files: dict[str, bytes | None], base: Path) -> Path:
    """base/staging: a trusted copy of hw/ (all but the graded modules and the tests), the
    student's files as hw/<module>.py, and the child script. Root-owned, read-only to others."""
    staging = base / "staging"
    hw_dir = staging / "hw"
    hw_dir.mkdir(parents=True)
    for source in sorted((ROOT / "hw").glob("*.py")):
        if source.stem not in GRADED_MODULES:
            shutil.copyfile(source, hw_dir / source.name)
    for module, data in files.items():
        if data is not None:
            (hw_dir / f"{module}.py").write_bytes(data)
    shutil.copyfile(CHILD_SCRIPT, staging / "sandbox_child.py")
    for path in [staging, hw_dir]:
        os.chmod(path, 0o755)
    for path in list(hw_dir.iterdir()) + [staging / "sandbox_child.py"]:
        os.chmod(path, 0o644)
    return staging


@dataclass
class CallRecord:
    module: str
    function: str
    seconds: float
    output: str


class Sandbox:
    """A submission's child process, restarted when it dies.

    `call(module, function, *args, **kwargs)` returns the student's result as NumPy arrays
    (lists for lists), or raises StudentError with a readable message.
    """

    def __init__(self, files: dict[str, bytes | None], *, call_timeout: float = 40.0,
                 startup_timeout: float = 180.0, total_timeout: float = 900.0, missing: dict[str, str] | None = None,
                 memory_mb: int = 6144):
        self.files = files
        self.memory_bytes = int(memory_mb) * 1024 * 1024
        self.call_timeout, self.startup_timeout = call_timeout, startup_timeout
        self.deadline = time.monotonic() + total_timeout
        self.total_timeout = total_timeout
        self.base = Path(tempfile.mkdtemp(prefix="grader-"))
        os.chmod(self.base, 0o755)
        self.staging = stage(files, self.base)
        self.scratch = self.base / "scratch"
        self.scratch.mkdir()
        self.iso = isolation()
        _become_subreaper()
        if self.iso.mode != "none":
            os.chown(self.scratch, SANDBOX_UID, SANDBOX_GID)
            os.chmod(self.scratch, 0o700)
            if self.iso.mode == "user":
                lock_down()
        self.module_status: dict[str, str | None] = {}  # None: imported; str: why not
        for module, why in (missing or {}).items():
            self.module_status[module] = why
        self.hung: dict[tuple[str, str], str] = {}
        self.process: subprocess.Popen | None = None
        self.ready = False
        self.output = ""  # student output of the current test (reset by the plugin)
        self.restarts = 0
        self.calls: list[CallRecord] = []

    # ------------------------------------------------------------------ process control
    def _spawn(self) -> None:
        request_read, request_write = os.pipe()
        response_read, response_write = os.pipe()
        config = json.dumps({"staging": str(self.staging), "cwd": str(self.scratch),
                             "hidden": [str(p) for p in hidden_paths()]})
        command = [sys.executable, "-I", "-B", str(self.staging / "sandbox_child.py"),
                   str(request_read), str(response_write), config]
        env = {"PATH": "/usr/bin:/bin", "HOME": str(self.scratch), "TMPDIR": str(self.scratch), "LANG": "C.UTF-8",
               "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0", "OMP_NUM_THREADS": "1",
               "CUDA_VISIBLE_DEVICES": "", "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg"}
        kwargs = {}
        if self.iso.mode == "user":
            kwargs = {"user": SANDBOX_UID, "group": SANDBOX_GID, "extra_groups": []}
        elif self.iso.mode == "namespace":
            keep = self.base / "keep"
            command = _namespace_command(self.iso, command, keep, hidden_paths())
        try:
            self.process = subprocess.Popen(
                command, env=env, cwd=str(self.staging), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(request_read, response_write),
                start_new_session=True, preexec_fn=functools.partial(_limit_resources, self.memory_bytes,
                                                                     0 if self.iso.mode == "none" else 2048), **kwargs)
        finally:
            os.close(request_read)
            os.close(response_write)
        self.request_fd, self.response_fd = request_write, response_read
        for fd in (self.request_fd, self.response_fd, self.process.stdout.fileno(), self.process.stderr.fileno()):
            os.set_blocking(fd, False)
        self.restarts += 1
        self.ready = False

    def start(self) -> None:
        """Start the child now (it imports TensorFlow while the caller does other work)."""
        if self.process is None:
            self._spawn()

    def _wait_ready(self) -> None:
        try:
            body = self._exchange(None, max(30.0, min(self.startup_timeout, self._time_left())),
                                  "starting the sandbox")
        except StudentError as exc:
            output = self.output.strip()
            self.kill()
            raise GraderError(f"the sandbox process did not start: {exc.message}"
                              + (f"\n{output[-2000:]}" if output else ""))
        if body.get("ok") != "ready":
            self.kill()
            raise GraderError(f"the sandbox process did not start: {body!r}")
        self.ready = True
        for module, status in self.module_status.items():
            if status is None:  # imported fine in an earlier child: import it again
                self._import(module)

    def kill(self) -> None:
        process, self.process = self.process, None
        self.ready = False
        if process is None:
            return
        # Processes the student's code started, even ones that left the process group
        # (setsid): found by ancestry now, or later as orphans re-parented to this process.
        escapees = _descendants(process.pid)
        for kill in (lambda: os.killpg(process.pid, signal.SIGKILL), process.kill):  # the group, and the
            try:                                                                    # child if it left it
                kill()
            except (ProcessLookupError, PermissionError, OSError):
                pass
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        for pid in escapees:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.iso.mode != "none":
            _reap_orphans(SANDBOX_UID)
        for fd in (self.request_fd, self.response_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        for stream in (process.stdout, process.stderr):
            try:
                stream.close()
            except OSError:
                pass

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.base, ignore_errors=True)

    @staticmethod
    def _capture(data: bytes, kept: dict) -> None:
        """Keep the first OUTPUT_HEAD and the last OUTPUT_TAIL characters of the output."""
        kept["count"] += len(data)
        text = data.decode(errors="replace")
        if len(kept["head"]) < OUTPUT_HEAD:
            room = OUTPUT_HEAD - len(kept["head"])
            kept["head"] += text[:room]
            text = text[room:]
        if text:
            kept["tail"] = (kept["tail"] + text)[-OUTPUT_TAIL:]
            kept["cut"] = kept["cut"] or kept["count"] > OUTPUT_HEAD + OUTPUT_TAIL

    def _exchange(self, request: dict | None, timeout: float, what: str) -> dict:
        """Send a request (None: only wait for the ready message) and read the response."""
        process = self.process
        deadline = time.monotonic() + timeout
        outgoing = b"" if request is None else wire.encode_message(request)
        reader = wire.MessageReader()
        kept = {"head": "", "tail": "", "count": 0, "cut": False}
        streams = {process.stdout.fileno(): "out", process.stderr.fileno(): "err"}
        open_streams = set(streams)
        response = None
        failure = None
        while True:
            now = time.monotonic()
            if now >= deadline:
                failure = ("timeout", f"{what} did not finish within {timeout:.0f} s (killed)")
                break
            readers = [self.response_fd, *open_streams]
            writers = [self.request_fd] if outgoing else []
            try:
                ready_r, ready_w, _ = select.select(readers, writers, [], min(1.0, deadline - now))
            except InterruptedError:
                continue
            if ready_w:
                try:
                    sent = os.write(self.request_fd, outgoing[:1 << 16])
                    outgoing = outgoing[sent:]
                except BlockingIOError:
                    pass
                except OSError as exc:
                    if exc.errno == errno.EPIPE:
                        failure = ("crash", self._death(what))
                        break
                    raise
            for fd in ready_r:
                if fd == self.response_fd:
                    try:
                        chunk = os.read(fd, 1 << 20)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        failure = ("crash", self._death(what))
                        break
                    try:
                        reader.feed(chunk)
                        response = reader.message()
                    except (ValueError, KeyError, TypeError) as exc:
                        failure = ("protocol", f"{what}: the process sent an unreadable answer ({exc})")
                        break
                else:
                    try:
                        chunk = os.read(fd, 1 << 16)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        open_streams.discard(fd)
                    else:
                        self._capture(chunk, kept)
            if failure or response is not None:
                break
        # What the student printed before answering is in the pipes already.
        for fd in list(open_streams):
            while True:
                try:
                    chunk = os.read(fd, 1 << 16)
                except (BlockingIOError, OSError):
                    break
                if not chunk:
                    break
                self._capture(chunk, kept)
        if kept["cut"]:
            text = kept["head"] + f"\n... [{kept['count']} bytes in all, truncated] ...\n" + kept["tail"]
        else:
            text = kept["head"] + kept["tail"]
        if text and len(self.output) < 3 * (OUTPUT_HEAD + OUTPUT_TAIL):
            self.output += text
        if failure:
            self.kill()
            raise StudentError(failure[1], failure[0])
        body, blobs = response
        try:
            return wire.decode_plain(body, blobs)
        except Exception as exc:  # noqa: BLE001
            self.kill()
            raise StudentError(f"{what}: the process sent an unreadable answer ({type(exc).__name__}: {exc})",
                               "protocol")

    def _death(self, what: str) -> str:
        process = self.process
        try:
            code = process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            return f"{what}: the process closed its channel without exiting"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"{what} killed the process ({name}{', a segmentation fault' if name == 'SIGSEGV' else ''})"
        return f"{what} ended the process (exit code {code}, e.g. os._exit or a crash)"

    def _ensure_process(self) -> None:
        if self.process is None or (self.ready and self.process.poll() is not None):
            self.kill()
            self._spawn()
        if not self.ready:
            self._wait_ready()

    def _time_left(self) -> float:
        return self.deadline - time.monotonic()

    def _import(self, module: str) -> None:
        try:
            body = self._exchange({"op": "import", "module": module}, self.call_timeout,
                                  f"importing hw/{module}.py")
        except StudentError as exc:
            self.module_status[module] = f"hw/{module}.py could not be imported: {exc.message}"
            return
        if "error" in body:
            self.module_status[module] = _import_message(module, body["error"], self.files.get(module) is None)
        else:
            self.module_status[module] = None

    def require(self, module: str) -> None:
        """Import a graded module in the child (once); StudentError if it cannot be."""
        if module not in self.module_status:
            if self._time_left() <= 0:
                raise StudentError(f"the grading time limit ({self.total_timeout:.0f} s) was reached", "deadline")
            self._ensure_process()
            self._import(module)
        status = self.module_status[module]
        if status is not None:
            raise StudentError(status, "import")

    def call(self, module: str, function: str, *args, grad_wrt=None, timeout: float | None = None, **kwargs):
        """Run hw.<module>.<function>(*args, **kwargs) in the child; plain results back."""
        key = (module, function)
        if key in self.hung:
            raise StudentError(self.hung[key], "timeout")
        self.require(module)
        left = self._time_left()
        if left <= 0:
            raise StudentError(f"the grading time limit ({self.total_timeout:.0f} s) was reached before this call",
                               "deadline")
        self._ensure_process()
        limit = min(timeout or self.call_timeout, max(left, 1.0))
        request = {"op": "call", "module": module, "function": function, "args": _to_wire(list(args)),
                   "kwargs": _to_wire(kwargs), "grad_wrt": grad_wrt}
        start = time.monotonic()
        output_before = len(self.output)
        try:
            body = self._exchange(request, limit, f"{function}()")
        except StudentError as exc:
            if exc.kind == "timeout":
                self.hung[key] = (f"{function}() did not finish within {limit:.0f} s in an earlier test "
                                  "(an endless loop?); not run again")
            raise
        finally:
            self.calls.append(CallRecord(module, function, time.monotonic() - start, self.output[output_before:]))
        if "error" in body:
            raise StudentError(_call_message(module, function, body["error"]), "exception")
        return _check_plain(body.get("ok"), function)


def _process_table() -> dict[int, tuple[int, int]]:
    """{pid: (parent pid, real uid)} from /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as handle:
                fields = dict(line.split(":", 1) for line in handle if ":" in line)
            table[int(entry)] = (int(fields["PPid"].split()[0]), int(fields["Uid"].split()[0]))
        except (OSError, KeyError, ValueError, IndexError):
            continue
    return table


def _descendants(root: int) -> list[int]:
    try:
        table = _process_table()
    except OSError:
        return []
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _become_subreaper() -> None:
    """Orphans of the sandbox are re-parented to this process (so that they can be killed)."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
    except Exception:  # noqa: BLE001
        pass


def _reap_orphans(uid: int) -> None:
    """Kill and reap this process's children that run as the sandbox user (escaped
    grandchildren of a killed sandbox, re-parented here)."""
    try:
        table = _process_table()
    except OSError:
        return
    me = os.getpid()
    for pid, (parent, owner) in table.items():
        if parent == me and owner == uid:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, PermissionError, ChildProcessError):
                pass


def _check_plain(value, function):
    if isinstance(value, list):
        return [_check_plain(v, function) for v in value]
    if isinstance(value, dict):
        return {k: _check_plain(v, function) for k, v in value.items()}
    if isinstance(value, np.ndarray) and value.dtype.kind not in "biuf":
        raise StudentError(f"{function}() returned an array of dtype {value.dtype}, not numbers", "type")
    return value


def _error_text(error) -> tuple[str, str, str]:
    if not isinstance(error, dict):
        return "Error", str(error), ""
    return str(error.get("type", "Error")), str(error.get("message", "")), str(error.get("traceback", ""))


def _call_message(module: str, function: str, error) -> str:
    kind, message, trace = _error_text(error)
    if kind == "NotImplementedError":
        return f"{function}() is not implemented yet: {message}"
    if kind == "AttributeError" and message.startswith(f"hw/{module}.py has no function"):
        return message
    text = f"{function}() raised {kind}: {message}"
    if trace:
        text += f"\n{trace.rstrip()}"
    return text


def _import_message(module: str, error, missing: bool) -> str:
    kind, message, trace = _error_text(error)
    if missing:
        return f"the submission has no {module}.py (looked at its top and under hw/)"
    text = f"hw/{module}.py could not be imported: {kind}: {message}"
    if trace:
        text += f"\n{trace.rstrip()}"
    return text
