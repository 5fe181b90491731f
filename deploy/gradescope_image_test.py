"""The autograder zip in Gradescope's base images: build it, set it up, grade five
submissions, measure, and write the figures to benchmarks/deploy.md.

    .venv/bin/python deploy/gradescope_image_test.py [--ref HEAD] [--out benchmarks/deploy.md]

Needs root, debootstrap and gpg (`apt-get install debootstrap gpg`), util-linux (unshare,
setpriv) and the network (Ubuntu's archive once per image, PyPI for every
setup.sh); about 30 minutes.

What it does, as Gradescope does it:
- the two base images Gradescope offers, Ubuntu 22.04 (Python 3.10, pip allowed into the
  system Python) and Ubuntu 24.04 (Python 3.12, marked externally managed: PEP 668), each a
  minimal root with python3 only (no pip, no venv), built once with debootstrap from
  Ubuntu's archive, its signatures checked with Ubuntu's archive key, and kept (--roots,
  default /var/tmp/cs285-gradescope);
- the zip from a clean checkout of --ref (a temporary git worktree, never the working
  tree, which others may be editing): `python -m grader gradescope`;
- per image: a fresh copy of the root, the zip unpacked in /autograder/source, setup.sh run
  there once, then run_autograder for each submission, in a chroot with Docker's default
  capability set only (no CAP_SYS_ADMIN: no namespaces for the sandbox, as in Gradescope's
  container) and inside the limits of Gradescope's default container (container.py: 768 MB
  of memory, beyond which the kernel kills, and half a CPU; --memory-mb, --cpus);
- the submissions, each from a user of its own (submission_metadata.json), so that each
  computes its own hidden instance as on Gradescope: the reference solutions; a mutant (the
  solutions with the sign of policy_gradient's result flipped); a forger (the stubs,
  printing a fake results.json and writing one into /autograder/results at import); a
  hanger (every function loops forever); a hog (the solutions, but policy_gradient first
  fills 2 GB, more than the container has: the kernel must kill the student's process, not
  the grader, and the student must be told); and, first, the reference without the
  container's limits, right after setup.sh (the page cache warm: the most library pages
  mapped), for the footprint grading has when nothing makes the kernel reclaim;
- per case: the score, whether results.json is complete (every test listed), the grade time
  and the peak memory of the grading process tree (sum of PSS, which splits shared pages
  among the processes that map them, close to what a container's limit is charged; and sum
  of RSS), sampled from the host every 50 ms, separately while the trusted instance
  pre-pass runs and while the student's process runs; and what the container's memory
  group was charged at its peak (page cache included) and whether the kernel killed.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from container import Container
from grader.sandbox.process import descendants
from grader.stubs import GRADED_MODULES

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
MEMORY_TARGET_MB = 700  # issue 8: peak PSS of grading in the image
HALF_CPU_TARGET_S = 60  # a correct submission at half a CPU
GRADESCOPE_MEMORY_MB, GRADESCOPE_CPUS = 768, 0.5  # the default container
HANG_TARGET_S = 480  # a submission that hangs everywhere still gets its results
SUBMISSIONS = ("reference", "mutant", "forger", "hanger", "hog")  # see submissions()
OUT_OF_MEMORY = "ran out of memory"  # in the hog's messages (grader/sandbox/process.py)
# Gradescope's base images: name -> Ubuntu suite
IMAGES = {"ubuntu-22.04": "jammy", "ubuntu-24.04": "noble"}
UBUNTU_MIRROR = "http://archive.ubuntu.com/ubuntu"  # signed: checked with the key below
UBUNTU_KEYRING_DEB = "https://archive.ubuntu.com/ubuntu/pool/main/u/ubuntu-keyring/ubuntu-keyring_2023.11.28.1_all.deb"
UBUNTU_ARCHIVE_KEY = "F6ECB3762474EDA9D21B7022871920D1991BC93C"  # Ubuntu Archive Automatic Signing Key (2018)
PREPASS = "grader.instances"  # in the command line of the trusted pre-pass
DOCKER_CAPS = "+chown,+dac_override,+fsetid,+fowner,+mknod,+net_raw,+setgid,+setuid,+setfcap,+setpcap," \
              "+net_bind_service,+sys_chroot,+kill,+audit_write"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

FORGER = '''
import json as _json, os as _os
_FAKE = {"score": 100.0, "tests": [{"name": "forged", "score": 100.0, "max_score": 100.0, "status": "passed"}]}
print(_json.dumps(_FAKE))
for _path in ("/autograder/results/results.json", "/autograder/results/forged.json"):
    try:
        with open(_path, "w") as _file:
            _json.dump(_FAKE, _file)
        print("forged", _path)
    except OSError as _error:
        print("could not forge", _path, _error)
'''

HOG = '''

_reference_policy_gradient = policy_gradient


def policy_gradient(*args, **kwargs):
    hoard = np.ones(1 << 28)  # 2 GB, every page touched
    return _reference_policy_gradient(*args, **kwargs)
'''

SIGN_FLIP = '''

_reference_policy_gradient = policy_gradient


def policy_gradient(*args, **kwargs):
    return [-gradient for gradient in _reference_policy_gradient(*args, **kwargs)]
'''


@dataclass
class Peak:
    pss_mb: float = 0.0  # the peak of the sum of PSS over the process tree
    at_peak: str = ""  # the processes of more than 20 MB PSS when it peaked


@dataclass
class Memory:
    """The peaks of one run, while the trusted instance pre-pass ran and otherwise."""
    prepass: Peak = field(default_factory=Peak)
    grading: Peak = field(default_factory=Peak)
    rss_mb: float = 0.0  # the peak of the sum of RSS, over the whole run
    charged_mb: float = 0.0  # the container's memory group at its peak (page cache included)
    oom_kills: int = 0  # processes the kernel killed at the container's memory limit

    @property
    def pss_mb(self) -> float:
        return max(self.prepass.pss_mb, self.grading.pss_mb)


@dataclass
class Outcome:
    case: str
    score: float | None
    max_score: float
    tests: int
    complete: bool
    seconds: float
    memory: Memory
    container: str  # its limits, or "none"
    note: str = ""
    isolation: str = ""


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], check=True, text=True, **kwargs)


# ----------------------------------------------------------------------------- the pieces

def ubuntu_keyring(folder: Path) -> Path:
    """Ubuntu's archive keyring, from the host if it has one, else from Ubuntu's archive
    (over HTTPS) and only if it holds the archive key this script names."""
    host = Path("/usr/share/keyrings/ubuntu-archive-keyring.gpg")
    if host.exists():
        return host
    keyring = folder / "ubuntu-archive-keyring.gpg"
    if not keyring.exists():
        package = folder / "ubuntu-keyring.deb"
        run(["curl", "-sSfL", "-o", package, UBUNTU_KEYRING_DEB])
        run(["dpkg-deb", "-x", package, folder / "ubuntu-keyring"])
        shutil.copyfile(folder / "ubuntu-keyring" / "usr" / "share" / "keyrings" / keyring.name, keyring)
    keys = run(["gpg", "--show-keys", "--with-colons", keyring], capture_output=True).stdout
    if f":{UBUNTU_ARCHIVE_KEY}:" not in keys:
        sys.exit(f"{keyring} does not hold Ubuntu's archive key {UBUNTU_ARCHIVE_KEY}")
    return keyring


def ubuntu_root(roots: Path, image: str) -> Path:
    """The minimal root of a Gradescope base image: Ubuntu with python3 only (built once,
    then reused)."""
    root = roots / image
    if (root / "usr" / "bin" / "python3").exists():
        return root
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    roots.mkdir(parents=True, exist_ok=True)
    keyring = ubuntu_keyring(roots)
    print(f"debootstrap {IMAGES[image]} into {partial} (a few minutes)", flush=True)
    with open(root.with_name(root.name + ".log"), "w") as log:
        run(["debootstrap", "--variant=minbase", f"--keyring={keyring}", "--include=python3,ca-certificates",
             IMAGES[image], partial, UBUNTU_MIRROR, "/usr/share/debootstrap/scripts/gutsy"],
            stdout=log, stderr=subprocess.STDOUT)
    write_sources(partial, IMAGES[image])
    partial.rename(root)
    return root


def write_sources(root: Path, suite: str) -> None:
    """The package sources of Ubuntu's own container images (debootstrap leaves only the
    release's main): every component, with the updates, backports and security suites."""
    components = "main restricted universe multiverse"
    (root / "etc" / "apt" / "sources.list").write_text(
        "".join(f"deb {UBUNTU_MIRROR} {suite}{pocket} {components}\n" for pocket in ("", "-updates", "-backports"))
        + f"deb http://security.ubuntu.com/ubuntu {suite}-security {components}\n")


def system_python(root: Path) -> str:
    """The root's python3 and whether it is marked externally managed (PEP 668)."""
    version = next(p.name for p in sorted((root / "usr" / "lib").glob("python3.*")) if (p / "os.py").exists())
    marked = (root / "usr" / "lib" / version / "EXTERNALLY-MANAGED").exists()
    return f"{version}, {'externally managed (PEP 668)' if marked else 'pip allowed (no PEP 668 marker)'}"


def build_zip(ref: str, scratch: Path) -> tuple[Path, Path, str]:
    """(the zip, a copy of the checkout, its commit) for git ref `ref`."""
    commit = run(["git", "-C", REPO, "rev-parse", ref], capture_output=True).stdout.strip()
    worktree = scratch / "worktree"
    run(["git", "-C", REPO, "worktree", "add", "--detach", worktree, commit], capture_output=True)
    try:
        archive = scratch / "autograder.zip"
        run([sys.executable, "-m", "grader", "gradescope", "--out", archive], cwd=worktree, capture_output=True)
        checkout = scratch / "checkout"
        shutil.copytree(worktree, checkout, ignore=shutil.ignore_patterns(".git", "__pycache__"))
    finally:
        run(["git", "-C", REPO, "worktree", "remove", "--force", worktree], capture_output=True)
    return archive, checkout, commit


def submissions(checkout: Path, folder: Path) -> dict[str, Path]:
    """The five submissions, each a folder with the two graded files."""
    def write(name: str, texts: dict[str, str]) -> Path:
        (folder / name).mkdir(parents=True)
        for module, text in texts.items():
            (folder / name / f"{module}.py").write_text(text)
        return folder / name

    solutions = {m: (checkout / "solutions" / f"{m}.py").read_text() for m in GRADED_MODULES}
    stubs = {m: (checkout / "hw" / f"{m}.py").read_text() for m in GRADED_MODULES}
    raise_line = re.compile(r"^(\s*)raise NotImplementedError\(.*\)\s*$", re.MULTILINE)
    hanging = {m: raise_line.sub(r"\1while True:\n\1    pass", text) for m, text in stubs.items()}
    if any(text == stubs[m] for m, text in hanging.items()):
        sys.exit("the stubs have no `raise NotImplementedError(...)` line to turn into an endless loop")
    return {
        "reference": write("reference", solutions),
        "mutant": write("mutant", {**solutions, "policy_gradient": solutions["policy_gradient"] + SIGN_FLIP}),
        "forger": write("forger", {**stubs, "policy_gradient": stubs["policy_gradient"] + FORGER}),
        "hanger": write("hanger", hanging),
        "hog": write("hog", {**solutions, "policy_gradient": solutions["policy_gradient"] + HOG}),
    }


def expected_tests(checkout: Path) -> int:
    points = tomllib.loads((checkout / "grader" / "points.toml").read_text())
    return sum(len(part["tests"]) for key, part in points.items() if key.startswith("part"))


def make_root(base: Path, image: str, archive: Path, scratch: Path) -> Path:
    """A fresh copy of the base with the zip unpacked as Gradescope unpacks it."""
    root = scratch / f"root-{image}"
    run(["cp", "-a", f"{base}/.", root])
    shutil.copyfile("/etc/resolv.conf", root / "etc" / "resolv.conf")
    # the host's CA bundle, so that pip and apt inside the root trust what the host trusts
    shutil.copyfile("/etc/ssl/certs/ca-certificates.crt", root / "etc" / "ssl" / "certs" / "ca-certificates.crt")
    source = root / "autograder" / "source"
    source.mkdir(parents=True)
    with zipfile.ZipFile(archive) as unpacked:
        unpacked.extractall(source)
    for name in ("setup.sh", "run_autograder"):
        (source / name).chmod(0o755)
    shutil.copy2(source / "run_autograder", root / "autograder" / "run_autograder")
    return root


def in_root(root: Path, script: str) -> list[str]:
    """`script` run by bash in the root, as root with Docker's default capabilities only."""
    inner = (f"mount -t proc proc {shlex.quote(str(root / 'proc'))} && "
             f"mount --rbind /dev {shlex.quote(str(root / 'dev'))} && "
             f"mount --rbind /sys {shlex.quote(str(root / 'sys'))} && "
             f"exec chroot {shlex.quote(str(root))} setpriv --inh-caps=-all --bounding-set=-all,{DOCKER_CAPS} "
             f"/usr/bin/env -i PATH={PATH} HOME=/root LANG=C.UTF-8 /bin/bash -c {shlex.quote(script)}")
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", inner]


# ----------------------------------------------------------------------------- measuring

def memory_mb(pids: list[int]) -> dict[str, tuple[float, float]]:
    """{process: (PSS, RSS) in MB}, a process named by its pid and the start of its command."""
    found = {}
    for pid in pids:
        pss = rss = 0
        try:
            with open(f"/proc/{pid}/smaps_rollup") as handle:
                for line in handle:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
                    elif line.startswith("Rss:"):
                        rss += int(line.split()[1])
            words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        found[f"{pid} " + " ".join(w.decode(errors="replace") for w in words[:4])[:80]] = (pss / 1024, rss / 1024)
    return found


@dataclass
class Measure:
    code: int
    seconds: float
    memory: Memory


def measured(command: list[str], log: Path, limits: tuple[int, float] | None = None) -> Measure:
    """Run a command, inside a container with limits (memory MB, CPUs) if given; its exit
    code, time and the peak memory of it and its descendants."""
    memory = Memory()
    with open(log, "w") as output, Container(*limits) if limits else contextlib.nullcontext() as box:
        start = time.monotonic()
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT,
                                   preexec_fn=box.enter if box else None)
        while process.poll() is None:
            processes = memory_mb([process.pid, *descendants(process.pid)])
            pss, rss = sum(p for p, _ in processes.values()), sum(r for _, r in processes.values())
            peak = memory.prepass if any(PREPASS in name for name in processes) else memory.grading
            if pss > peak.pss_mb:
                big = sorted(((p, name) for name, (p, _) in processes.items() if p > 20), reverse=True)
                peak.pss_mb, peak.at_peak = pss, "; ".join(f"{name}: {p:.0f} MB" for p, name in big)
            memory.rss_mb = max(memory.rss_mb, rss)
            time.sleep(0.05)
        seconds = time.monotonic() - start
    if box:
        memory.charged_mb, memory.oom_kills = box.peak_mb, box.oom_kills
    return Measure(process.returncode, seconds, memory)


def grade(root: Path, case: str, submission: Path, tests: int, logs: Path,
          limits: tuple[int, float] | None) -> Outcome:
    """run_autograder on one submission, in a container with `limits` (memory MB, CPUs) or
    none, with Gradescope's metadata naming a user of its own: each run computes its own
    hidden instance, as every submission does on Gradescope."""
    name = case if limits else f"{case}-no-limits"
    container = f"{limits[0]} MB, {limits[1]:g} CPU" if limits else "none"
    autograder = root / "autograder"
    for folder in ("submission", "results"):
        shutil.rmtree(autograder / folder, ignore_errors=True)
    shutil.copytree(submission, autograder / "submission")
    (autograder / "results").mkdir()
    user = {"id": str(zlib.crc32(name.encode())), "name": f"A Student ({name})"}
    (autograder / "submission_metadata.json").write_text(json.dumps({"id": 1, "users": [user]}))
    measure = measured(in_root(root, "cd /autograder && ./run_autograder"), logs / f"{name}.log", limits)
    code, seconds = measure.code, measure.seconds
    try:
        results = json.loads((autograder / "results" / "results.json").read_text())
    except (OSError, ValueError) as error:
        return Outcome(case, None, 0, 0, False, seconds, measure.memory, container, f"no valid results.json: {error}")
    listed = results.get("tests") or []
    complete = len(listed) == tests and all({"name", "score", "max_score", "status"} <= set(t) for t in listed)
    notes = [] if code == 0 else [f"run_autograder exit {code}"]
    strays = sorted(p.name for p in (autograder / "results").iterdir() if p.name != "results.json")
    if strays:
        notes.append("other files in the results folder: " + ", ".join(strays))
    isolation = re.search(r"^isolation: (.*)$", results.get("output", ""), re.MULTILINE)
    if case == "hog" and not any(OUT_OF_MEMORY in t.get("output", "") for t in listed):
        notes.append(f"no message says '{OUT_OF_MEMORY}'")
    return Outcome(case, results.get("score"), sum(t.get("max_score", 0) for t in listed), len(listed), complete,
                   seconds, measure.memory, container, "; ".join(notes), isolation.group(1) if isolation else "")


# ----------------------------------------------------------------------------- the report

def verdict(outcome: Outcome) -> str:
    """Whether the case did what it must (issue 8's "Done when")."""
    problems = []
    if "other files in the results folder" in outcome.note:
        problems.append("wrote into the results folder")
    if OUT_OF_MEMORY in outcome.note:
        problems.append("the student is not told their code ran out of memory")
    if outcome.score is None or not outcome.complete:
        problems.append("results.json incomplete")
    elif outcome.case == "reference" and outcome.score != outcome.max_score:
        problems.append("not full marks")
    elif outcome.case == "mutant" and outcome.score >= outcome.max_score:
        problems.append("lost no points")
    elif outcome.case in ("forger", "hanger") and outcome.score != 0:
        problems.append("not 0")
    elif outcome.case == "hog" and outcome.container != "none" and not 0 < outcome.score < outcome.max_score:
        problems.append("not between 0 and full marks")
    if outcome.memory.pss_mb > MEMORY_TARGET_MB and outcome.case != "hog":
        problems.append(f"PSS over {MEMORY_TARGET_MB} MB")
    if outcome.memory.oom_kills and outcome.case != "hog":
        problems.append(f"{outcome.memory.oom_kills} process(es) killed at the memory limit")
    if outcome.case == "reference" and outcome.container != "none" and outcome.seconds > HALF_CPU_TARGET_S:
        problems.append(f"over {HALF_CPU_TARGET_S} s")
    if outcome.case == "hanger" and outcome.seconds > HANG_TARGET_S:
        problems.append(f"over {HANG_TARGET_S} s")
    return "ok" if not problems else "; ".join(problems)


def relative(path: str) -> str:
    """A path inside the repository as seen from its root (as the command was typed there)."""
    absolute = Path(path).absolute()
    return str(absolute.relative_to(REPO)) if absolute.is_relative_to(REPO) else path


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
               platform.processor())
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    memory = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
    load = Path("/proc/loadavg").read_text().split()[:3]
    return (f"{os.cpu_count()} cores ({cpu}), {memory / 2**20:.0f} GB memory, {platform.system()} "
            f"{platform.release()}; load average at the end {' '.join(load)} (other jobs share the machine)")


def report(args, commit: str, setups: dict, outcomes: dict) -> str:
    limits = (f"{args.memory_mb} MB of memory and {args.cpus:g} CPU" if args.container
              else "no container limits (--no-container)")
    lines = [
        "# The autograder in Gradescope's base images",
        "",
        f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC. "
        f"Machine: {machine()}.",
        "",
        "Command (as root, from the repository root):",
        "",
        f"    {' '.join(shlex.quote(a) for a in [relative(sys.executable), relative(sys.argv[0])] + sys.argv[1:])}",
        "",
        f"The zip: `python -m grader gradescope` from a clean checkout of commit {commit[:12]}. The images: "
        "minimal roots of Gradescope's base images (debootstrap from Ubuntu's archive, python3 only: no pip, no "
        "venv), a fresh copy per image. setup.sh runs without limits; each run_autograder runs in a container "
        f"with {limits} (a control group of its own, the page cache dropped before it starts), in a chroot with "
        "Docker's default capability set (no CAP_SYS_ADMIN, as in Gradescope's container). Grade time: "
        "run_autograder from start to exit. Memory, sampled every 50 ms from the host: the peak of the sum of PSS "
        "over run_autograder's process tree while the trusted instance pre-pass runs and while the student's "
        "process runs (PSS splits shared pages among the processes that map them; target "
        f"<= {MEMORY_TARGET_MB} MB); the peak of the sum of RSS; and what the container's memory group was "
        "charged at its peak, page cache included (at its limit the kernel first drops page cache, and kills "
        "only what it cannot reclaim: the OOM column counts the kills).",
        "",
        "| image | system Python | setup.sh | build time |",
        "|---|---|---|---|",
    ]
    for image, (python, code, seconds) in setups.items():
        lines.append(f"| {image} | {python} | {'ok' if code == 0 else f'failed (exit {code})'} | {seconds:.0f} s |")
    for image, cases in outcomes.items():
        notes = sorted({re.sub(r"uid \d+", "uid N", outcome.isolation) for outcome in cases if outcome.isolation})
        lines += ["", f"Isolation of the student's code in {image} (from results.json): "
                  + (" / ".join(notes) or "not reported")]
    lines += ["", "| image | submission | container | score | results.json | grade time | peak PSS, pre-pass | "
              "peak PSS, grading | peak RSS | charged | OOM kills | verdict |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for image, cases in outcomes.items():
        for outcome in cases:
            score = "none" if outcome.score is None else f"{outcome.score:g}/{outcome.max_score:g}"
            full = f"complete ({outcome.tests} tests)" if outcome.complete else f"INCOMPLETE ({outcome.tests} tests)"
            note = verdict(outcome) + (f" ({outcome.note})" if outcome.note else "")
            memory = outcome.memory
            charged = f"{memory.charged_mb:.0f} MB" if outcome.container != "none" else "-"
            lines.append(f"| {image} | {outcome.case} | {outcome.container} | {score} | {full} | {outcome.seconds:.1f} s | "
                         f"{memory.prepass.pss_mb:.0f} MB | {memory.grading.pss_mb:.0f} MB | {memory.rss_mb:.0f} MB "
                         f"| {charged} | {memory.oom_kills} | {note} |")
    lines += ["", "The processes of more than 20 MB PSS when each sum peaked (pid, command: PSS):", ""]
    for image, cases in outcomes.items():
        for outcome in cases:
            where = f"{image}, {outcome.case}, container {outcome.container}"
            lines += [f"- {where}, pre-pass: {outcome.memory.prepass.at_peak or '(none ran)'}",
                      f"- {where}, grading: {outcome.memory.grading.at_peak}"]
    lines += ["", "Logs of this run (setup.sh and each run_autograder): " + str(args.logs), ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", default="HEAD", help="the git commit to build the zip from (default HEAD)")
    parser.add_argument("--roots", type=Path, default=Path("/var/tmp/cs285-gradescope"),
                        help="where the images' minimal roots are kept between runs")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "deploy.md", help="the report")
    parser.add_argument("--logs", type=Path, default=Path("/var/tmp/cs285-gradescope/logs"),
                        help="setup.sh and run_autograder output")
    parser.add_argument("--images", nargs="+", choices=IMAGES, default=list(IMAGES))
    parser.add_argument("--submissions", nargs="+", choices=SUBMISSIONS, default=list(SUBMISSIONS),
                        help="grade only these (default all)")
    parser.add_argument("--memory-mb", type=int, default=GRADESCOPE_MEMORY_MB,
                        help=f"the container's memory (default {GRADESCOPE_MEMORY_MB}, Gradescope's default)")
    parser.add_argument("--cpus", type=float, default=GRADESCOPE_CPUS,
                        help=f"the container's CPUs (default {GRADESCOPE_CPUS:g}, Gradescope's default)")
    parser.add_argument("--no-container", dest="container", action="store_false",
                        help="grade without the container's limits (where control groups cannot be made)")
    parser.add_argument("--keep", action="store_true", help="keep the roots (their paths are printed)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: debootstrap, chroot and mount namespaces need it")
    tools = ("debootstrap", "gpg", "curl", "dpkg-deb", "unshare", "setpriv", "git")
    missing = [tool for tool in tools if not shutil.which(tool)]
    if missing:
        sys.exit(f"missing: {', '.join(missing)} (apt-get install debootstrap gpg curl util-linux git)")
    bases = {image: ubuntu_root(args.roots, image) for image in args.images}
    shutil.rmtree(args.logs, ignore_errors=True)
    args.logs.mkdir(parents=True)
    scratch = Path(tempfile.mkdtemp(prefix="run-", dir=args.roots))
    archive, checkout, commit = build_zip(args.ref, scratch)
    cases = submissions(checkout, scratch / "submissions")
    tests = expected_tests(checkout)
    setups, outcomes = {}, {}
    limits = (args.memory_mb, args.cpus) if args.container else None
    try:
        for image, base in bases.items():
            root = make_root(base, image, archive, scratch)
            print(f"{image}: setup.sh in {root}", flush=True)
            setup = measured(in_root(root, "cd /autograder/source && ./setup.sh"), args.logs / f"{image}-setup.log")
            setups[image] = (system_python(base), setup.code, setup.seconds)
            print(f"{image}: setup.sh exit {setup.code} after {setup.seconds:.0f} s", flush=True)
            outcomes[image] = []
            (args.logs / image).mkdir()
            # the reference's footprint when nothing makes the kernel reclaim, first: the page
            # cache is as warm as setup.sh left it (the most pages mapped), then in the container
            runs = [("reference", None)] if limits and "reference" in args.submissions else []
            for name, run_limits in runs + [(name, limits) for name in args.submissions]:
                outcome = grade(root, name, cases[name], tests, args.logs / image, run_limits)
                outcomes[image].append(outcome)
                print(f"{image}: {outcome}", flush=True)
            if not args.keep:
                run(["rm", "-rf", root])
    finally:
        if not args.keep:
            run(["rm", "-rf", scratch])
    args.out.write_text(report(args, commit, setups, outcomes))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
