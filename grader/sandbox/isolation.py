"""How the student's process is kept from the grader's secrets: decided once per grading
process by probing what this machine allows.

- "user": as root, the child runs as the unprivileged user `nobody`, which can neither read
  the solutions, the hidden tests and the instances nor write the results folder; the
  hidden paths are made private to root (chmod 700).
- "namespace": as root where `nobody` cannot run Python in place (e.g. a pyenv under /root,
  or a virtual environment inside the repository), the child gets a private mount
  namespace: the hidden paths and the folders `nobody` cannot enter are covered with empty
  tmpfs mounts, and Python's installation is bound back in; then it runs as `nobody`.
- "none": not root (or GRADER_ISOLATION=none): a separate process with a scrubbed import
  path, nothing more. Files readable by the grader's user are readable by the student.

Also here: the resource limits set in the child before it runs Python, and the cleanup of
processes the student's code leaves behind.
"""
from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..stubs import ROOT

GRADER_DIR = Path(__file__).resolve().parent.parent
SANDBOX_UID = SANDBOX_GID = 65534  # nobody / nogroup
FILE_SIZE_LIMIT = 256 << 20  # bytes the student's process may write to one file
PROCESS_LIMIT = 2048  # processes and threads of the sandbox user (no fork bomb)


@dataclass
class Isolation:
    mode: str  # "user", "namespace" or "none"
    note: str = ""
    keep: list = field(default_factory=list)  # folders bound back in under the masks (namespace mode)
    masks: list = field(default_factory=list)  # folders covered with an empty tmpfs (namespace mode)


def python_dirs() -> list[Path]:
    """The folders the child's Python needs: its installation and its site-packages."""
    import site

    import numpy as np
    dirs = {Path(sys.base_prefix), Path(sys.prefix), Path(sys.executable).parent,
            Path(sys.executable).resolve().parent, Path(np.__file__).resolve().parent.parent}
    dirs.update(Path(d) for d in site.getsitepackages())
    return sorted({d.resolve() for d in dirs if d.exists()})


def hidden_paths() -> list[Path]:
    """What the child must never read: the repository (solutions, hidden tests, history)
    or, for an installed grader, its package folders."""
    import importlib.util
    if (ROOT / "grader").resolve() == GRADER_DIR and (ROOT / "setup.py").exists():
        return [ROOT.resolve()]
    paths = [GRADER_DIR]
    spec = importlib.util.find_spec("solutions")
    if spec and spec.submodule_search_locations:
        paths.extend(Path(p).resolve() for p in spec.submodule_search_locations)
    return paths


def _closed_ancestor(path: Path) -> Path | None:
    """The highest ancestor of path that other users cannot enter, if any."""
    for parent in reversed(path.parents):
        if parent != Path("/") and not parent.stat().st_mode & 0o001:
            return parent
    return None


def _under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _probe(command: list[str], as_nobody: bool) -> bool:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/", "LANG": "C.UTF-8"}
    try:
        result = subprocess.run(command, env=env, capture_output=True, timeout=120, cwd="/",
                                user=SANDBOX_UID if as_nobody else None, group=SANDBOX_GID if as_nobody else None,
                                extra_groups=[] if as_nobody else None)
        return result.returncode == 0 and b"sandbox-ok" in result.stdout
    except (OSError, subprocess.SubprocessError):
        return False


_DECIDED: Isolation | None = None


def isolation() -> Isolation:
    """How children run on this machine (probed once per process)."""
    global _DECIDED
    if _DECIDED is None:
        _DECIDED = _decide()
    return _DECIDED


def _decide() -> Isolation:
    forced = os.environ.get("GRADER_ISOLATION")
    if os.geteuid() != 0 or forced == "none":
        return Isolation("none", "student code runs as the grader's own user (not root, or GRADER_ISOLATION=none): "
                                 "separate process, import path scrubbed, files not protected")
    probe = [sys.executable, "-I", "-B", "-c", "import numpy; print('sandbox-ok')"]
    hidden = hidden_paths()
    pythons = python_dirs()
    python_inside_hidden = any(_under(d, h) for d in pythons for h in hidden)
    if forced in (None, "user") and not python_inside_hidden and _probe(probe, as_nobody=True):
        return Isolation("user", "student code runs as the user nobody")
    masks = list(hidden)
    for d in pythons:
        closed = _closed_ancestor(d)
        if closed is not None and not any(_under(closed, m) for m in masks):
            masks.append(closed)
    keep = []
    for d in pythons:
        for mask in masks:
            if _under(d, mask) and d != mask:
                top = Path(mask, d.relative_to(mask).parts[0])
                if top not in keep:
                    keep.append(top)
    if shutil.which("unshare") and shutil.which("setpriv"):
        iso = Isolation("namespace", "student code runs as the user nobody in a private mount namespace",
                        keep=keep, masks=masks)
        scratch = Path(tempfile.mkdtemp(prefix="grader-probe-"))
        try:
            if _probe(namespace_command(iso, probe, scratch), as_nobody=False):
                return iso
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return Isolation("none", "WARNING: running as root but the user nobody cannot run Python here and no mount "
                             "namespace is available: student code runs as root")


def namespace_command(iso: Isolation, command: list[str], scratch: Path) -> list[str]:
    """`command` in a private mount namespace: masks covered, Python bound back, as nobody."""
    def q(p) -> str:
        return "'" + str(p).replace("'", "'\\''") + "'"
    lines = ["set -e"]
    for i, folder in enumerate(iso.keep):
        (scratch / f"keep{i}").mkdir(parents=True, exist_ok=True)
        lines.append(f"mount --bind {q(folder)} {q(scratch / f'keep{i}')}")
    for mask in iso.masks:
        lines.append(f"mount -t tmpfs -o size=64k,mode=755 grader-mask {q(mask)}")
    for i, folder in enumerate(iso.keep):
        lines.append(f"mkdir -p {q(folder)} && mount --bind {q(scratch / f'keep{i}')} {q(folder)}")
    lines.append(f'exec setpriv --reuid={SANDBOX_UID} --regid={SANDBOX_GID} --clear-groups --no-new-privs "$@"')
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", "\n".join(lines), "sandbox", *command]


def lock_down() -> None:
    """User mode: make the hidden paths unreadable to others."""
    for path in hidden_paths():
        try:
            os.chmod(path, 0o700)
        except OSError:
            pass


def limit_resources(memory_bytes: int, processes: int) -> None:
    """In the child, before it runs Python: no core dumps, bounded memory, files, processes."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if processes > 0:
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


# ----------------------------------------------------------------------------- cleanup

def become_subreaper() -> None:
    """Orphans of the sandbox are re-parented to this process (so that they can be killed)."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
    except Exception:  # noqa: BLE001
        pass


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


def descendants(root: int) -> list[int]:
    """Every process below `root`, found by ancestry."""
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


def reap_orphans(uid: int) -> None:
    """Kill and reap this process's children that run as `uid` (escaped grandchildren of a
    killed sandbox, re-parented here)."""
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
