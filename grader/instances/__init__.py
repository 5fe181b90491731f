"""The hidden instance: every input the hidden tests send to a submission and every reference
answer they compare with.

An instance derives from one integer seed (the course seed, mixed with the student's id
when instances are per student). It is computed by a trusted process of its own,
`python -I -m grader.instances OUT SEED...`, which imports TensorFlow, the reference
solutions and the case builders (part1.py, part2.py) and exits before any student code
runs: the grading process itself never imports TensorFlow, so that at most one TensorFlow
process is alive at any moment (Gradescope's container has 768 MB; one such process takes
500-630 MB). Instances are kept in a cache folder private to the grader's user, under a
key that changes whenever the code that computes them changes.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .. import wire
from ..stubs import GRADED_MODULES, ROOT

FORMAT = 1  # of the instance files; part of the cache key
PRE_PASS_TIMEOUT = 600  # seconds for the trusted process to compute a batch's instances


class InstanceError(RuntimeError):
    """The trusted pre-pass failed (a grader problem, never the student's)."""


def fingerprint() -> str:
    """A digest of everything an instance depends on: the builders, the reference solutions
    and the provided hw/ helpers."""
    digest = hashlib.sha256(f"format {FORMAT}".encode())
    sources = sorted(Path(__file__).resolve().parent.glob("*.py"))
    sources += [ROOT / "grader" / "wire.py"] + [ROOT / "solutions" / f"{m}.py" for m in GRADED_MODULES]
    sources += sorted(p for p in (ROOT / "hw").glob("*.py") if p.stem not in GRADED_MODULES)
    for path in sources:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def cache_dir() -> Path:
    """GRADER_CACHE, or ~/.cache/cs285-grader: created private to the grader's user."""
    folder = Path(os.environ.get("GRADER_CACHE") or Path.home() / ".cache" / "cs285-grader")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    return folder


def instance_path(seed: int, folder: Path | None = None) -> Path:
    return (folder or cache_dir()) / f"instance-{fingerprint()}-{seed}.bin"


def ensure(seeds: list[int], timeout: float = PRE_PASS_TIMEOUT) -> dict[int, Path]:
    """{seed: instance file}, computing the missing ones in one trusted process (which has
    exited when this returns)."""
    folder = cache_dir()
    paths = {seed: instance_path(seed, folder) for seed in dict.fromkeys(seeds)}
    missing = [seed for seed, path in paths.items() if not path.exists()]
    if missing:
        command = [sys.executable, "-I", "-m", "grader.instances", str(folder), *map(str, missing)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env.update(TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=folder)
        except subprocess.TimeoutExpired:
            raise InstanceError(f"computing the hidden instances took longer than {timeout:.0f} s") from None
        absent = [seed for seed in missing if not paths[seed].exists()]
        if done.returncode != 0 or absent:
            raise InstanceError(f"computing the hidden instances failed (exit {done.returncode}):\n"
                                + done.stderr[-3000:])
    return paths


def load(path: Path) -> dict:
    """An instance: {"seed": int, "tests": {hidden test name: [case, ...]}}."""
    return wire.read_file(path)


def write(path: Path, instance: dict) -> None:
    """Atomically (a reader never sees half a file), private to the grader's user."""
    fd, temporary = tempfile.mkstemp(prefix=".instance-", dir=path.parent)
    os.close(fd)
    wire.write_file(temporary, instance)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)
