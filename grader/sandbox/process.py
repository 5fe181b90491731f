"""The student's process and its I/O: one child per submission, restarted when it dies.

The child (grader/sandbox/child.py, run from the staging folder) imports TensorFlow once
and runs the student's functions on inputs sent in the wire format (grader/wire.py); it
answers with plain arrays. Every comparison and score is computed in the grading process,
which never imports TensorFlow. The child talks over two dedicated pipes; its stdout and
stderr go to two other pipes, read here, truncated, and reported beside the test that
produced them. A call that overruns its time limit kills the child with its whole process
group; the next call starts a fresh one.
"""
from __future__ import annotations

import dataclasses
import errno
import functools
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .. import wire
from ..config import Limits
from . import identity
from .isolation import PROCESS_LIMIT, hidden_paths, isolation, lock_down, namespace_command, prepare_child, python_dirs
from .messages import GraderError, StudentError, call_message, import_message
from .staging import stage

OUTPUT_HEAD = 3000  # characters of a call's student output kept (the start)
OUTPUT_TAIL = 1000  # and the end
READY = "ready"


class Sandbox:
    """A submission's child process.

    `call(module, function, *args, **kwargs)` returns the student's result as NumPy arrays
    (lists for lists), or raises StudentError with a readable message.
    """

    def __init__(self, files: dict[str, bytes | None], limits: Limits, *, missing: dict[str, str] | None = None):
        self.files = files
        self.limits = limits
        self.deadline = time.monotonic() + limits.total_timeout
        self.base = Path(tempfile.mkdtemp(prefix="grader-"))
        os.chmod(self.base, 0o755)
        self.staging = stage(files, self.base)
        self.scratch = self.base / "scratch"
        self.scratch.mkdir()
        iso = isolation()
        self.lease = identity.lease() if iso.own_uid else None
        self.iso = dataclasses.replace(iso, note=iso.note.format(uid=self.lease.uid if self.lease else None))
        identity.become_subreaper()
        if self.lease is not None:
            os.chown(self.scratch, self.lease.uid, self.lease.gid)
            os.chmod(self.scratch, 0o700)
        if self.iso.mode == "user":
            lock_down()
        self.module_status: dict[str, str | None] = dict(missing or {})  # None: imported; str: why not
        self.hung: dict[tuple[str, str], str] = {}
        self.process: subprocess.Popen | None = None
        self.ready = False
        self.output = ""  # student output of the current test (reset by the grading plugin)
        self.restarts = 0
        self.request_id = 0
        self.broken = ""  # why the process could not start (a grader problem: not retried)

    # ------------------------------------------------------------------ process control
    def _spawn(self) -> None:
        request_read, request_write = os.pipe()
        response_read, response_write = os.pipe()
        settings = json.dumps({"staging": str(self.staging), "cwd": str(self.scratch),
                               "hidden": [str(p) for p in hidden_paths()],
                               "python": [str(p) for p in python_dirs()]})
        command = [sys.executable, "-I", "-B", str(self.staging / "runtime" / "child.py"),
                   str(request_read), str(response_write), settings]
        env = {"PATH": "/usr/bin:/bin", "HOME": str(self.scratch), "TMPDIR": str(self.scratch), "LANG": "C.UTF-8",
               "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0", "OMP_NUM_THREADS": "1",
               "CUDA_VISIBLE_DEVICES": "", "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg"}
        user = None
        if self.iso.mode == "user":
            user = (self.lease.uid, self.lease.gid)
        elif self.iso.mode == "namespace":
            (self.base / "root").mkdir(mode=0o755, exist_ok=True)
            command = namespace_command(self.iso, command, self.lease.uid, self.base / "root", [self.staging],
                                        work=self.scratch, pass_fds=(request_read, response_write))
        processes = PROCESS_LIMIT if self.lease else 0
        try:
            self.process = subprocess.Popen(
                command, env=env, cwd=str(self.staging), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(request_read, response_write),
                start_new_session=True,
                preexec_fn=functools.partial(prepare_child, self.limits.memory_mb << 20, processes, user))
        finally:
            os.close(request_read)
            os.close(response_write)
        self.request_fd, self.response_fd = request_write, response_read
        self.reader = wire.MessageReader(wire.STUDENT_ANSWER)
        for fd in (self.request_fd, self.response_fd, self.process.stdout.fileno(), self.process.stderr.fileno()):
            os.set_blocking(fd, False)
        self.restarts += 1
        self.ready = False

    def start(self) -> None:
        """Start the child now (it imports TensorFlow while the caller does other work)."""
        if self.process is None:
            self._spawn()

    def _wait_ready(self) -> None:
        if self.broken:
            raise GraderError(self.broken)
        try:
            body = self._exchange(None, max(30.0, min(self.limits.startup_timeout, self._time_left())),
                                  "starting the sandbox")
        except StudentError as exc:
            output = self.output.strip()
            self.kill()
            self.broken = (f"the sandbox process did not start: {exc.message}"
                           + (f"\n{output[-2000:]}" if output else ""))
            raise GraderError(self.broken)
        if body.get("ok") != READY:
            self.kill()
            self.broken = f"the sandbox process did not start: {body!r}"
            raise GraderError(self.broken)
        self.ready = True
        for module, status in self.module_status.items():
            if status is None:  # imported fine in an earlier child: import it again
                self._import(module)

    def kill(self) -> None:
        """Kill the child and everything it started (see _tear_down), then close its pipes."""
        process, self.process = self.process, None
        self.ready = False
        if process is None:
            return
        try:
            self._tear_down(process)
        finally:
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

    def _tear_down(self, process: subprocess.Popen) -> None:
        """With a uid of its own, the sandbox dies as a unit: its pid namespace's init (the
        whole namespace with it) and then every process of its uid, until none is left.
        Without one (modes "none" and "root"), its process group and the processes found
        below it, at best effort: a process that forks away fast enough can survive."""
        escapees = [] if self.lease else descendants(process.pid)
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
        if self.lease:
            try:
                identity.sweep(self.lease.uid)
            except identity.SweepError as exc:
                raise GraderError(str(exc)) from None

    def close(self) -> None:
        """Tear the sandbox down for good: its processes, its uid, its folder."""
        try:
            self.kill()
        finally:
            if self.lease:
                self.lease.release()
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
        """Send a request (None: only wait for the ready message) and read its answer, all
        within `timeout` seconds, decoding included."""
        process = self.process
        deadline = time.monotonic() + timeout
        if request is not None:
            self.request_id += 1
            request = {**request, "id": self.request_id}
        outgoing = b"" if request is None else wire.encode(request)
        kept = {"head": "", "tail": "", "count": 0, "cut": False}
        streams = {process.stdout.fileno(), process.stderr.fileno()}
        response = None
        failure = None
        while True:
            now = time.monotonic()
            if now >= deadline:
                failure = ("timeout", f"{what} did not finish within {timeout:.0f} s (killed)")
                break
            writers = [self.request_fd] if outgoing else []
            try:
                ready_r, ready_w, _ = select.select([self.response_fd, *streams], writers, [], min(1.0, deadline - now))
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
                        response = self._read_answer(chunk, request, deadline)
                    except Exception as exc:  # noqa: BLE001  (whatever the bytes were: the student's error)
                        detail = str(exc) if isinstance(exc, wire.WireError) else type(exc).__name__
                        failure = ("protocol", f"{what}: the process sent an unreadable answer ({detail})")
                        break
                else:
                    try:
                        chunk = os.read(fd, 1 << 16)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        streams.discard(fd)
                    else:
                        self._capture(chunk, kept)
            if failure or response is not None:
                break
        # What the student printed before answering is in the pipes already.
        for fd in list(streams):
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
        return response

    def _read_answer(self, chunk: bytes, request: dict | None, deadline: float) -> dict | None:
        """Feed the child's bytes to the reader; the decoded answer to `request` once it is
        complete (a dict with "ok" or "error" and the request's id), decoded before the
        deadline. A second message, or an answer to another request, is a WireError."""
        self.reader.feed(chunk)
        got = self.reader.message()
        if got is None:
            return None
        if self.reader.pending():
            raise wire.WireError("more than one answer to one request")
        answer = wire.decode(*got, deadline=deadline)
        if not isinstance(answer, dict) or not ({"ok", "error"} & set(answer)):
            raise wire.WireError("an answer that is neither a result nor an error")
        expected = None if request is None else request["id"]
        received = answer.get("id")
        if not (received is None or isinstance(received, int)) or received != expected:
            raise wire.WireError(f"an answer to request {str(received)[:40]} where {expected!r} was expected")
        return answer

    def _death(self, what: str) -> str:
        process = self.process
        try:
            code = process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            return f"{what}: the process closed its channel without exiting"
        if self.iso.mode == "namespace" and code > 128:
            code = 128 - code  # the namespace's init reports a child killed by signal N as 128 + N
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            why = {"SIGSEGV": ", a segmentation fault",
                   # nothing of the grader's sends it here (a timeout is reported before): the kernel's
                   # out-of-memory killer, which picks the student's process first (prepare_child)
                   "SIGKILL": ": most likely it ran out of memory; look for very large arrays or tensors"}
            return f"{what} killed the process ({name}{why.get(name, '')})"
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
            body = self._exchange({"op": "import", "module": module}, self.limits.call_timeout,
                                  f"importing hw/{module}.py")
        except StudentError as exc:
            self.module_status[module] = f"hw/{module}.py could not be imported: {exc.message}"
            return
        if "error" in body:
            self.module_status[module] = import_message(module, body["error"], self.files.get(module) is None)
        else:
            self.module_status[module] = None

    def require(self, module: str) -> None:
        """Import a graded module in the child (once); StudentError if it cannot be."""
        if module not in self.module_status:
            if self._time_left() <= 0:
                raise StudentError(f"the grading time limit ({self.limits.total_timeout:.0f} s) was reached",
                                   "deadline")
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
            raise StudentError(f"the grading time limit ({self.limits.total_timeout:.0f} s) was reached before "
                               "this call", "deadline")
        self._ensure_process()
        limit = min(timeout or self.limits.call_timeout, max(left, 1.0))
        request = {"op": "call", "module": module, "function": function, "args": list(args), "kwargs": kwargs,
                   "grad_wrt": grad_wrt}
        try:
            body = self._exchange(request, limit, f"{function}()")
        except StudentError as exc:
            if exc.kind == "timeout":
                self.hung[key] = (f"{function}() did not finish within {limit:.0f} s in an earlier test "
                                  "(an endless loop?); not run again")
            raise
        if "error" in body:
            raise StudentError(call_message(module, function, body["error"]), "exception")
        return _check_numbers(body.get("ok"), function)


    def train(self, argv: list[str], timeout: float):
        """Run the provided training loop (`python -m hw.train ARGV`) on the student's code in
        the child, within `timeout` seconds: its report {"params", "curve", "steps"}."""
        for key in (("policy_gradient", "estimate_q_values"), ("policy_gradient", "policy_gradient")):
            if key in self.hung:
                raise StudentError(self.hung[key], "timeout")
        self.require("policy_gradient")
        left = self._time_left()
        if left <= 0:
            raise StudentError(f"the grading time limit ({self.limits.total_timeout:.0f} s) was reached before "
                               "the training", "deadline")
        self._ensure_process()
        body = self._exchange({"op": "train", "argv": list(argv)}, min(timeout, max(left, 1.0)), "training")
        if "error" in body:
            raise StudentError(call_message("train", "hw.train.main", body["error"]), "exception")
        return _check_numbers(body.get("ok"), "hw.train.main")


def _check_numbers(value, function):
    if isinstance(value, list):
        return [_check_numbers(v, function) for v in value]
    if isinstance(value, dict):
        return {k: _check_numbers(v, function) for k, v in value.items()}
    if isinstance(value, np.ndarray) and value.dtype.kind not in "biuf":
        raise StudentError(f"{function}() returned an array of dtype {value.dtype}, not numbers", "type")
    return value


def descendants(root: int) -> list[int]:
    """Every process below `root`, found by ancestry in /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():  # (self, thread-self, and the kernel's own files)
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found
