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
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .. import wire
from ..stubs import GRADED_MODULES, ROOT

FORMAT = 1  # of the instance files; part of the cache key


class InstanceError(RuntimeError):
    """The trusted pre-pass failed (a grader problem, never the student's)."""


def instance_seed(course_seed: int, student: str | None) -> int:
    """The seed of a student's instance: the course seed itself without a student, else the
    course seed mixed with the student's id (the same id always gives the same seed, and
    different ids different seeds but for a 2^-48 chance)."""
    if not student:
        return course_seed
    digest = hashlib.sha256(f"{course_seed}\0{student}".encode()).digest()
    return int.from_bytes(digest[:6], "big")


def student_from_metadata(path: Path) -> str:
    """The student id of a Gradescope submission (/autograder/submission_metadata.json): its
    users' ids, sorted and joined with '+' (a group submission has several)."""
    data = json.loads(Path(path).read_text())
    ids = sorted(str(user.get("id") or user.get("email") or "") for user in data.get("users") or [])
    ids = [i for i in ids if i]
    if not ids:
        raise ValueError(f"{path}: no user ids in the submission metadata")
    return "+".join(ids)


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


def ensure(seeds: list[int], timeout: float, *, processes: int = 1) -> dict[int, Path]:
    """{seed: instance file}, computing the missing ones in trusted processes (up to
    `processes` at a time, each importing TensorFlow once) that have all exited when this
    returns. `timeout` is per instance."""
    folder = cache_dir()
    paths = {seed: instance_path(seed, folder) for seed in dict.fromkeys(seeds)}
    missing = [seed for seed, path in paths.items() if not path.exists()]
    shares = [missing[i::max(1, processes)] for i in range(max(1, processes))]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    running = [subprocess.Popen([sys.executable, "-I", "-m", "grader.instances", str(folder), *map(str, share)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=folder)
               for share in shares if share]
    errors = []
    for process in running:
        try:
            _, stderr = process.communicate(timeout=timeout * len(shares[0]))
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
            errors.append(f"computing the hidden instances took longer than {timeout:.0f} s")
            continue
        if process.returncode != 0:
            errors.append(f"exit {process.returncode}:\n{stderr.decode(errors='replace')[-3000:]}")
    absent = [seed for seed in missing if not paths[seed].exists()]
    if errors or absent:
        raise InstanceError("computing the hidden instances failed: " + "\n".join(errors or [f"no file for {absent}"]))
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
