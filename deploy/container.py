"""Gradescope's container limits around one command: a fresh control group with a memory
limit (beyond it the kernel reclaims the page cache, then kills: "Killed") and a CPU quota
(half a CPU is 50 ms of CPU time per 100 ms, as Docker's --cpus=0.5).

    with Container(memory_mb=768, cpus=0.5) as box:
        subprocess.run(command, preexec_fn=box.enter)
    box.peak_mb, box.oom_kills

The group is charged, as a container is, for its processes' memory and for the page cache
they read in (the TensorFlow libraries included). So that a run is charged for every page
it reads, as in a container that starts cold, the page cache is dropped before each run.
Needs root and the cgroup memory and cpu controllers (cgroup v1 as on this project's
machines, or v2).
"""
from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")
PERIOD_US = 100_000


class ContainerError(RuntimeError):
    """The limits cannot be set up on this machine."""


def _own_group(controller: str) -> Path:
    """This process's group of a cgroup v1 controller."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return CGROUP / controller / path.lstrip("/")
    raise ContainerError(f"no cgroup v1 {controller} controller in /proc/self/cgroup")


class Container:
    def __init__(self, memory_mb: int, cpus: float):
        self.memory_bytes, self.cpus = memory_mb << 20, cpus
        self.unified = (CGROUP / "cgroup.controllers").exists()  # cgroup v2 only
        self.groups: list[Path] = []
        self.peak_mb = 0.0
        self.oom_kills = 0

    # ------------------------------------------------------------------ set-up and tear-down

    def __enter__(self) -> Container:
        name = f"cs285-container-{uuid.uuid4().hex[:8]}"
        quota = int(self.cpus * PERIOD_US)
        try:
            if self.unified:
                parent = CGROUP / Path("/proc/self/cgroup").read_text().split("::", 1)[1].strip().lstrip("/")
                group = self._make(parent / name)
                (group / "memory.max").write_text(str(self.memory_bytes))
                (group / "memory.swap.max").write_text("0")
                (group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
            else:
                memory = self._make(_own_group("memory") / name)
                (memory / "memory.limit_in_bytes").write_text(str(self.memory_bytes))
                if (memory / "memory.memsw.limit_in_bytes").exists():  # no swap either
                    (memory / "memory.memsw.limit_in_bytes").write_text(str(self.memory_bytes))
                cpu = self._make(_own_group("cpu") / name)
                (cpu / "cpu.cfs_period_us").write_text(str(PERIOD_US))
                (cpu / "cpu.cfs_quota_us").write_text(str(quota))
        except OSError as error:
            self._remove()
            raise ContainerError(f"cannot set the container's limits: {error}") from error
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("1")  # a cold start: the run is charged for what it reads
        return self

    def __exit__(self, *exc) -> None:
        memory = self.groups[0]
        if self.unified:
            self.peak_mb = int((memory / "memory.peak").read_text()) / 2**20
            events = dict(line.split() for line in (memory / "memory.events").read_text().splitlines())
            self.oom_kills = int(events.get("oom_kill", 0))
        else:
            self.peak_mb = int((memory / "memory.max_usage_in_bytes").read_text()) / 2**20
            control = dict(line.split() for line in (memory / "memory.oom_control").read_text().splitlines())
            self.oom_kills = int(control.get("oom_kill", 0))
        self._remove()

    def _make(self, group: Path) -> Path:
        group.mkdir()
        self.groups.append(group)
        return group

    def _remove(self) -> None:
        """Kill what is left in the groups, then remove them."""
        for group in reversed(self.groups):
            for _ in range(50):
                pids = [int(p) for p in (group / "cgroup.procs").read_text().split()]
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.1)
            group.rmdir()
        self.groups.clear()

    # ------------------------------------------------------------------ in the child

    def enter(self) -> None:
        """For subprocess's preexec_fn: move the new process (and so all it starts) into the
        groups."""
        for group in self.groups:
            (group / "cgroup.procs").write_text(str(os.getpid()))
