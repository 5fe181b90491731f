"""One identity per sandbox: a uid and gid that no real user has and no other live sandbox
holds, and the teardown that kills every process of that uid.

A uid is leased by taking an exclusive lock (flock) on its file in a root-only folder; the
kernel drops the lock when the grading process exits, however it exits, so a lease never
goes stale. Several grading processes on one host (a batch with --jobs N, or several
batches) therefore never share a uid. Since processes of a dead grader may still run under
a uid whose lock was dropped, a newly leased uid is swept clean before it is used.

The sweep kills with kill(-1, SIGKILL) sent from a helper that has taken the uid: the
kernel delivers it to every process of that uid at once, under the lock that fork also
takes, so a process that forks and exits in a loop cannot outrun it. It repeats until no
live process of the uid remains.
"""
from __future__ import annotations

import errno
import fcntl
import os
import pwd
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path

FIRST_UID = 1_700_000_000  # far above any real user, system user or container id map
UID_COUNT = 4096  # sandboxes that can be live at once on one host
LEASE_DIR = Path("/run/cs285-grader/sandbox-uids")
SWEEP_SECONDS = 30.0  # how long a sweep keeps killing before it gives the uid up


class SweepError(RuntimeError):
    """Processes of a sandbox uid survived every kill."""


@dataclass
class Lease:
    uid: int
    fd: int  # the locked file; closing it frees the uid

    @property
    def gid(self) -> int:
        return self.uid

    def release(self) -> None:
        """Kill whatever still runs under the uid, then free it (if processes survive, the
        uid stays locked until this process exits, and the next lease sweeps it again)."""
        if self.fd < 0:
            return
        sweep(self.uid)
        os.close(self.fd)
        self.fd = -1


def _lease_dir() -> Path:
    """The root-only folder of lock files (made if missing; refused if others can write it)."""
    LEASE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(LEASE_DIR)
    if info.st_uid != 0 or info.st_mode & 0o077 or not os.path.isdir(LEASE_DIR) or os.path.islink(LEASE_DIR):
        raise PermissionError(f"{LEASE_DIR} must be a folder owned by root with mode 0700")
    return LEASE_DIR


def _has_user(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False


def lease() -> Lease:
    """A uid no other live sandbox holds, with no process left running under it."""
    folder = _lease_dir()
    start = secrets.randbelow(UID_COUNT)  # a random start: consecutive sandboxes rarely reuse a uid
    for step in range(UID_COUNT):
        uid = FIRST_UID + (start + step) % UID_COUNT
        if _has_user(uid):
            continue
        fd = os.open(folder / str(uid), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                continue  # held by a live sandbox
            raise
        try:
            sweep(uid)
        except SweepError:
            continue  # keep it locked (until this process exits) and take another
        return Lease(uid, fd)
    raise RuntimeError(f"all {UID_COUNT} sandbox uids ({FIRST_UID}...) are in use")


# ----------------------------------------------------------------------------- the sweep

def processes_of(uid: int) -> list[int]:
    """Live processes (not zombies) whose real, effective, saved or filesystem uid is `uid`,
    and this process's own zombie children of that uid, which it reaps on the way."""
    live, me = [], os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as handle:
                fields = dict(line.split(":", 1) for line in handle if ":" in line)
            uids = {int(u) for u in fields["Uid"].split()}
            state, parent = fields["State"].split()[0], int(fields["PPid"].split()[0])
        except (OSError, KeyError, ValueError, IndexError):
            continue  # gone meanwhile
        if uid not in uids:
            continue
        if state in ("Z", "X"):
            if parent == me:  # an orphan re-parented to this process (see become_subreaper)
                try:
                    os.waitpid(int(entry), os.WNOHANG)
                except ChildProcessError:
                    pass
            continue
        live.append(int(entry))
    return live


def _kill_all_as(uid: int) -> None:
    """kill(-1, SIGKILL) from a helper process running as `uid`: every process of the uid."""
    helper = os.fork()
    if helper == 0:
        try:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(helper, 0)


def sweep(uid: int) -> None:
    """Kill every process of `uid`, again and again until none is alive (SweepError if some
    survive SWEEP_SECONDS, e.g. stuck in the kernel)."""
    deadline = time.monotonic() + SWEEP_SECONDS
    while True:
        live = processes_of(uid)
        if not live:
            return
        if time.monotonic() > deadline:
            raise SweepError(f"processes {live} of the sandbox uid {uid} survived {SWEEP_SECONDS:.0f} s of kills")
        _kill_all_as(uid)
        time.sleep(0.001)


def become_subreaper() -> None:
    """Orphans of the sandbox are re-parented to this process, which reaps them after the kill."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
    except Exception:  # noqa: BLE001  (not Linux: orphans go to init, which reaps them)
        pass
