"""How the student's process is kept from the grader, the other sandboxes and the host:
decided once per grading process by probing what this machine allows. Every mode below
"none" runs each sandbox under its own uid (identity.py) and makes the child non-dumpable
(child.py) before any student code runs.

- "namespace": root with CAP_SYS_ADMIN (a staff machine, CI). The child gets private pid,
  network, IPC, UTS and mount namespaces and a root of its own: the system's programs and
  libraries and Python's installation (read-only, with the grader's own packages covered
  when they are installed there), its staging folder (read-only), its working folder and
  empty /tmp, /var/tmp and /dev/shm (size-limited tmpfs), a /proc that shows only its own
  processes, no network but a loopback that is down. Nothing else of the host is there.
- "user": root without namespaces (Gradescope's container: no CAP_SYS_ADMIN). The child
  runs under its own uid with resource limits; the grader's folders are made private to
  root (chmod 700). It still sees other processes and world-readable files, and the network.
- "root": root where neither works (Python installed where no other user can enter, and no
  namespaces): a WARNING, the student's code runs as root.
- "none": not root (or GRADER_ISOLATION=none): a separate process with a scrubbed import
  path, nothing more. Files readable by the grader's user are readable by the student.

GRADER_ISOLATION=namespace|user|none restricts the choice (for tests).
"""
from __future__ import annotations

import functools
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..stubs import ROOT
from . import identity

GRADER_DIR = Path(__file__).resolve().parent.parent
FILE_SIZE_LIMIT = 256 << 20  # bytes the student's process may write to one file
PROCESS_LIMIT = 2048  # processes and threads of one sandbox's uid (no fork bomb; no effect on other sandboxes)
TMP_SIZE = "64m"  # each of /tmp, /var/tmp and /dev/shm in a namespace sandbox
WORK_SIZE = "256m"  # the child's working folder (HOME, TMPDIR) in a namespace sandbox
SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib64", "lib32", "libx32")  # bound read-only (or their symlinks)
DEVICES = ("null", "zero", "full", "random", "urandom")
TOOLS = ("unshare", "mount", "chroot", "setpriv")
TOOL_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

NOTES = {
    "namespace": "student code runs as its own uid {uid} (no other sandbox shares it), not dumpable, in private pid, "
                 "network, IPC and mount namespaces: it sees only Python's installation, the system's programs, its "
                 "staging folder and empty size-limited /tmp, /var/tmp, /dev/shm; no network; torn down as a unit",
    "user": "student code runs as its own uid {uid} (no other sandbox shares it), not dumpable, with limits on memory, "
            "processes and file size; no namespaces here (no CAP_SYS_ADMIN, as in Gradescope's container), so it can "
            "see other processes, read world-readable files outside the grader's folders and use the network",
    "root": "WARNING: running as root, but no other uid can run Python here and no namespaces are available: student "
            "code runs as root",
    "none": "student code runs as the grader's own user (not root, or GRADER_ISOLATION=none): separate process, "
            "import path scrubbed, files and processes not protected",
}


@dataclass
class Isolation:
    mode: str  # "namespace", "user", "root" or "none"
    note: str = ""
    binds: list = field(default_factory=list)  # namespace mode: Python's folders, bound read-only
    masks: list = field(default_factory=list)  # namespace mode: hidden folders inside them, covered
    tools: dict = field(default_factory=dict)  # namespace mode: {name: absolute path}

    @property
    def own_uid(self) -> bool:
        """Whether each sandbox runs under a leased uid of its own."""
        return self.mode in ("namespace", "user")


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


def _under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


_DECIDED: Isolation | None = None


def isolation() -> Isolation:
    """How children run on this machine (probed once per process)."""
    global _DECIDED
    if _DECIDED is None:
        _DECIDED = _decide()
    return _DECIDED


def _probe(iso: Isolation) -> bool:
    """Whether Python with NumPy runs in this mode, under a leased uid."""
    command = [sys.executable, "-I", "-B", "-c", "import numpy; print('sandbox-ok')"]
    env = {"PATH": "/usr/bin:/bin", "HOME": "/", "LANG": "C.UTF-8"}
    lease = identity.lease()
    base = Path(tempfile.mkdtemp(prefix="grader-probe-"))
    try:
        user = None
        if iso.mode == "namespace":
            (base / "root").mkdir()
            command = namespace_command(iso, command, lease.uid, base / "root", [])
        else:
            user = (lease.uid, lease.gid)
        result = subprocess.run(command, env=env, capture_output=True, timeout=120, cwd="/",
                                preexec_fn=functools.partial(prepare_child, 0, 0, user))
        return result.returncode == 0 and b"sandbox-ok" in result.stdout
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        lease.release()
        shutil.rmtree(base, ignore_errors=True)


def _decide() -> Isolation:
    forced = os.environ.get("GRADER_ISOLATION")
    if os.geteuid() != 0 or forced == "none":
        return Isolation("none", NOTES["none"])
    hidden = hidden_paths()
    pythons = python_dirs()
    tools = {name: shutil.which(name, path=TOOL_PATH) for name in TOOLS}
    if forced in (None, "namespace") and all(tools.values()):
        binds = [d for d in pythons if not any(_under(d, other) for other in pythons if other != d)
                 and not _under(d, Path("/usr"))]
        masks = [h for h in hidden if any(_under(h, b) and h != b for b in binds)]
        iso = Isolation("namespace", NOTES["namespace"], binds=binds, masks=masks, tools=tools)
        if _probe(iso):
            return iso
    python_inside_hidden = any(_under(d, h) for d in pythons for h in hidden)
    if forced in (None, "user") and not python_inside_hidden:
        iso = Isolation("user", NOTES["user"])
        if _probe(iso):
            return iso
    return Isolation("root", NOTES["root"])


def namespace_command(iso: Isolation, command: list[str], uid: int, root: Path, visible: list[Path],
                      work: Path | None = None, pass_fds: tuple = ()) -> list[str]:
    """`command` run as `uid` in new namespaces, chrooted to a fresh root built at `root`
    (an empty folder): system folders, Python's folders and `visible` bound read-only,
    `work` (if given) an empty tmpfs owned by uid; `pass_fds` are the descriptors the
    command inherits. The shell that builds it stays as the
    namespace's init (pid 1) and exits with the command's status (128 + N: killed by signal N)."""
    q = shlex.quote
    tool = {name: q(path) for name, path in iso.tools.items()}

    def bind(folder: Path) -> list[str]:
        return [f"mkdir -p \"$R\"{q(str(folder))}",
                f"{tool['mount']} -o bind,ro,nosuid,nodev {q(str(folder))} \"$R\"{q(str(folder))}"]

    def tmpfs(folder: str, options: str) -> list[str]:
        return [f"mkdir -p \"$R\"{q(folder)}", f"{tool['mount']} -t tmpfs -o {options} sandbox \"$R\"{q(folder)}"]

    lines = ["set -e", "umask 022", f"R={q(str(root))}",
             f"{tool['mount']} -t tmpfs -o size=1m,mode=755,nosuid,nodev sandbox \"$R\""]
    for name in SYSTEM_DIRS:
        path = Path("/", name)
        if path.is_symlink():
            lines.append(f"ln -s {q(os.readlink(path))} \"$R\"/{name}")
        elif path.is_dir():
            lines += bind(path)
    # the private scratch folders first: Python's folders (a virtual environment under /tmp)
    # and the visible ones are bound over them, not hidden by them
    for folder in ("/tmp", "/var/tmp", "/dev/shm"):
        lines += tmpfs(folder, f"size={TMP_SIZE},mode=1777,nosuid,nodev")
    for folder in iso.binds:
        lines += bind(folder)
    for folder in iso.masks:
        lines += tmpfs(str(folder), "size=4k,mode=755,ro")
    lines.append("mkdir -p \"$R\"/etc \"$R\"/dev \"$R\"/proc")
    if Path("/etc/ld.so.cache").exists():
        lines += ["touch \"$R\"/etc/ld.so.cache",
                  f"{tool['mount']} -o bind,ro /etc/ld.so.cache \"$R\"/etc/ld.so.cache"]
    lines += [f"printf 'root:x:0:0::/:/usr/sbin/nologin\\nsandbox:x:{uid}:{uid}::/nonexistent:/usr/sbin/nologin\\n'"
              " > \"$R\"/etc/passwd",
              f"printf 'root:x:0:\\nsandbox:x:{uid}:\\n' > \"$R\"/etc/group"]
    for device in DEVICES:
        lines += [f"touch \"$R\"/dev/{device}", f"{tool['mount']} --bind /dev/{device} \"$R\"/dev/{device}"]
    lines.append("ln -s /proc/self/fd \"$R\"/dev/fd")
    lines.append(f"{tool['mount']} -t proc -o nosuid,nodev,noexec proc \"$R\"/proc")
    for folder in visible:
        lines += bind(folder)
    if work is not None:
        lines += tmpfs(str(work), f"size={WORK_SIZE},mode=700,uid={uid},gid={uid},nosuid,nodev")
    # The command runs in the background so that the shell, whose own stderr now goes to
    # /dev/null, does not print "Killed" into the student's output when a signal kills it.
    spare = min(set(range(3, 10)) - set(pass_fds))
    lines += [f"{tool['mount']} -o remount,ro,bind \"$R\"", "set +e", f"exec {spare}>&2 2>/dev/null",
              f"{tool['chroot']} \"$R\" {tool['setpriv']} --reuid={uid} --regid={uid} --clear-groups --no-new-privs "
              f"--inh-caps=-all --bounding-set=-all \"$@\" 2>&{spare} {spare}>&- &",
              "wait $!", "exit $?"]
    return [iso.tools["unshare"], "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child",
            "--net", "--ipc", "--uts", "/bin/sh", "-c", "\n".join(lines), "sandbox",
            *command]


def lock_down() -> None:
    """User mode: make the hidden paths unreadable to others."""
    for path in hidden_paths():
        try:
            os.chmod(path, 0o700)
        except OSError:
            pass


def prepare_child(memory_bytes: int, processes: int, user: tuple[int, int] | None = None) -> None:
    """In the child, before it runs Python: no core dumps, bounded memory, files, processes;
    first in line for the out-of-memory killer; then, if `user` (uid, gid) is given, that
    user's identity (here rather than with subprocess's `user=`, which would drop root before
    this runs: a process that has changed its uid may no longer write its own /proc files)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if processes > 0:
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    # When a container runs out of memory, its kernel kills the student's process, never the
    # grader (which then reports it): the highest score, which only a privileged process lowers.
    with open("/proc/self/oom_score_adj", "w") as adj:
        adj.write("1000")
    if user is not None:
        uid, gid = user
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
