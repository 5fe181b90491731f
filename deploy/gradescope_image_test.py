"""The autograder zip in a simulated Gradescope image: build it, set it up, grade four
submissions, measure, and write the figures to benchmarks/deploy.md.

    .venv/bin/python deploy/gradescope_image_test.py [--ref HEAD] [--out benchmarks/deploy.md]

Needs root, debootstrap (`apt-get install debootstrap`), util-linux (unshare, setpriv,
taskset) and the network (Debian's mirror once, PyPI for every setup.sh); about 30 minutes.

What it does, as Gradescope does it:
- a minimal Debian 12 root with python3 and python3-pip only (no python3-venv), built once
  with debootstrap and kept (--base, default /var/tmp/cs285-gradescope/debian12);
- the zip from a clean checkout of --ref (a temporary git worktree, never the working
  tree, which others may be editing): `python -m grader gradescope`;
- for "pep668" (the system Python marked externally managed, like Ubuntu 24.04) and
  "nopep668" (the marker removed, like Ubuntu 22.04): a fresh copy of the root, the zip
  unpacked in /autograder/source, setup.sh run there once, then run_autograder for each
  submission, in a chroot with Docker's default capability set only (no CAP_SYS_ADMIN: no
  namespaces for the sandbox, as in Gradescope's container);
- the submissions, each from a user of its own (submission_metadata.json), so that each
  computes its own hidden instance as on Gradescope: the reference solutions; a mutant (the
  solutions with the sign of policy_gradient's result flipped); a forger (the stubs,
  printing a fake results.json and writing one into /autograder/results at import); a
  hanger (every function loops forever);
- per case: the score, whether results.json is complete (every test listed), the grade time
  and the peak memory of the grading process tree (sum of PSS, which splits shared pages
  among the processes that map them, close to what a container's limit is charged; and sum
  of RSS), sampled from the host every 50 ms;
- the reference once more with the grade pinned to one core beside a busy loop on that
  core (half a CPU, as Gradescope's default container has).
"""
from __future__ import annotations

import argparse
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
from dataclasses import dataclass
from pathlib import Path

from grader.sandbox.process import descendants

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
GRADED_MODULES = ("policy_gradient", "natural_gradient")
MEMORY_TARGET_MB = 700  # issue 8: peak PSS of grading in the image
HALF_CPU_TARGET_S = 60  # a correct submission at half a CPU
HANG_TARGET_S = 480  # a submission that hangs everywhere still gets its results
SUBMISSIONS = ("reference", "mutant", "forger", "hanger")  # see submissions()
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

SIGN_FLIP = '''

_reference_policy_gradient = policy_gradient


def policy_gradient(*args, **kwargs):
    return [-gradient for gradient in _reference_policy_gradient(*args, **kwargs)]
'''


@dataclass
class Outcome:
    case: str
    score: float | None
    max_score: float
    tests: int
    complete: bool
    seconds: float
    pss_mb: float
    rss_mb: float
    note: str = ""
    isolation: str = ""
    at_peak: str = ""


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], check=True, text=True, **kwargs)


# ----------------------------------------------------------------------------- the pieces

def base_root(base: Path) -> Path:
    """The minimal Debian 12 root (built once, then reused)."""
    if (base / "usr" / "bin" / "python3").exists():
        return base
    partial = base.with_name(base.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    print(f"debootstrap into {partial} (a few minutes)", flush=True)
    with open(base.with_name(base.name + ".log"), "w") as log:
        run(["debootstrap", "--variant=minbase", "--include=python3,python3-pip,ca-certificates", "bookworm",
             partial], stdout=log, stderr=subprocess.STDOUT)
    partial.rename(base)
    return base


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
    """The four submissions, each a folder with the two graded files."""
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
    }


def expected_tests(checkout: Path) -> int:
    points = tomllib.loads((checkout / "grader" / "points.toml").read_text())
    return sum(len(part["tests"]) for key, part in points.items() if key.startswith("part"))


def make_root(base: Path, mode: str, archive: Path, scratch: Path) -> Path:
    """A fresh copy of the base with the zip unpacked as Gradescope unpacks it."""
    root = scratch / f"root-{mode}"
    run(["cp", "-a", f"{base}/.", root])
    shutil.copyfile("/etc/resolv.conf", root / "etc" / "resolv.conf")
    # the host's CA bundle, so that pip and apt inside the root trust what the host trusts
    shutil.copyfile("/etc/ssl/certs/ca-certificates.crt", root / "etc" / "ssl" / "certs" / "ca-certificates.crt")
    if mode == "nopep668":
        for marker in (root / "usr" / "lib").glob("python3*/EXTERNALLY-MANAGED"):
            marker.unlink()
    source = root / "autograder" / "source"
    source.mkdir(parents=True)
    with zipfile.ZipFile(archive) as unpacked:
        unpacked.extractall(source)
    for name in ("setup.sh", "run_autograder"):
        (source / name).chmod(0o755)
    shutil.copy2(source / "run_autograder", root / "autograder" / "run_autograder")
    return root


def in_root(root: Path, script: str, cpu: int | None = None) -> list[str]:
    """`script` run by bash in the root, as root with Docker's default capabilities only."""
    inner = (f"mount -t proc proc {shlex.quote(str(root / 'proc'))} && "
             f"mount --rbind /dev {shlex.quote(str(root / 'dev'))} && "
             f"mount --rbind /sys {shlex.quote(str(root / 'sys'))} && "
             f"exec chroot {shlex.quote(str(root))} setpriv --inh-caps=-all --bounding-set=-all,{DOCKER_CAPS} "
             f"/usr/bin/env -i PATH={PATH} HOME=/root LANG=C.UTF-8 /bin/bash -c {shlex.quote(script)}")
    command = ["unshare", "-m", "--propagation", "private", "sh", "-c", inner]
    return (["taskset", "-c", str(cpu)] if cpu is not None else []) + command


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
        found[f"{pid} " + " ".join(w.decode(errors="replace") for w in words[:3])[:70]] = (pss / 1024, rss / 1024)
    return found


@dataclass
class Measure:
    code: int
    seconds: float
    pss_mb: float  # peak of the sum over the process tree
    rss_mb: float
    at_peak: str  # the processes of more than 20 MB PSS when the PSS sum peaked


def measured(command: list[str], log: Path) -> Measure:
    """Run a command; its exit code, time and the peak memory of it and its descendants."""
    start = time.monotonic()
    peak_pss = peak_rss = 0.0
    at_peak = ""
    with open(log, "w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        while process.poll() is None:
            processes = memory_mb([process.pid, *descendants(process.pid)])
            pss, rss = sum(p for p, _ in processes.values()), sum(r for _, r in processes.values())
            if pss > peak_pss:
                big = sorted(((p, name) for name, (p, _) in processes.items() if p > 20), reverse=True)
                at_peak = "; ".join(f"{name}: {p:.0f} MB" for p, name in big)
            peak_pss, peak_rss = max(peak_pss, pss), max(peak_rss, rss)
            time.sleep(0.05)
    return Measure(process.returncode, time.monotonic() - start, peak_pss, peak_rss, at_peak)


def grade(root: Path, name: str, submission: Path, tests: int, logs: Path, cpu: int | None = None) -> Outcome:
    """run_autograder on one submission, with Gradescope's metadata naming a user of its own:
    each case computes its own hidden instance, as every submission does on Gradescope."""
    autograder = root / "autograder"
    for folder in ("submission", "results"):
        shutil.rmtree(autograder / folder, ignore_errors=True)
    shutil.copytree(submission, autograder / "submission")
    (autograder / "results").mkdir()
    user = {"id": str(zlib.crc32(name.encode())), "name": f"A Student ({name})"}
    (autograder / "submission_metadata.json").write_text(json.dumps({"id": 1, "users": [user]}))
    measure = measured(in_root(root, "cd /autograder && ./run_autograder", cpu), logs / f"{name}.log")
    code, seconds, pss, rss = measure.code, measure.seconds, measure.pss_mb, measure.rss_mb
    try:
        results = json.loads((autograder / "results" / "results.json").read_text())
    except (OSError, ValueError) as error:
        return Outcome(name, None, 0, 0, False, seconds, pss, rss, f"no valid results.json: {error}")
    listed = results.get("tests") or []
    complete = len(listed) == tests and all({"name", "score", "max_score", "status"} <= set(t) for t in listed)
    notes = [] if code == 0 else [f"run_autograder exit {code}"]
    strays = sorted(p.name for p in (autograder / "results").iterdir() if p.name != "results.json")
    if strays:
        notes.append("other files in the results folder: " + ", ".join(strays))
    isolation = re.search(r"^isolation: (.*)$", results.get("output", ""), re.MULTILINE)
    return Outcome(name, results.get("score"), sum(t.get("max_score", 0) for t in listed), len(listed), complete,
                   seconds, pss, rss, "; ".join(notes), isolation.group(1) if isolation else "", measure.at_peak)


def busy_loop(cpu: int) -> subprocess.Popen:
    return subprocess.Popen(["taskset", "-c", str(cpu), sys.executable, "-c", "while True: pass"])


# ----------------------------------------------------------------------------- the report

def verdict(outcome: Outcome) -> str:
    """Whether the case did what it must (issue 8's "Done when")."""
    problems = []
    if "other files in the results folder" in outcome.note:
        problems.append("wrote into the results folder")
    if outcome.score is None or not outcome.complete:
        problems.append("results.json incomplete")
    elif outcome.case == "reference" and outcome.score != outcome.max_score:
        problems.append("not full marks")
    elif outcome.case == "mutant" and outcome.score >= outcome.max_score:
        problems.append("lost no points")
    elif outcome.case in ("forger", "hanger") and outcome.score != 0:
        problems.append("not 0")
    if outcome.pss_mb > MEMORY_TARGET_MB:
        problems.append(f"PSS over {MEMORY_TARGET_MB} MB")
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


def report(args, commit: str, setups: dict, outcomes: dict, half_cpu: Outcome | None, base: Path) -> str:
    python = (base / "usr" / "lib").glob("python3.*")
    lines = [
        "# The autograder in a simulated Gradescope image",
        "",
        f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC. "
        f"Machine: {machine()}.",
        "",
        "Command (as root, from the repository root):",
        "",
        f"    {' '.join(shlex.quote(a) for a in [relative(sys.executable), relative(sys.argv[0])] + sys.argv[1:])}",
        "",
        f"The zip: `python -m grader gradescope` from a clean checkout of commit {commit[:12]}. The image: a "
        f"minimal Debian 12 root (debootstrap, python3 and python3-pip only; "
        f"{', '.join(p.name for p in python)}), a fresh copy per mode; setup.sh and run_autograder run in a chroot "
        "with Docker's default capability set (no CAP_SYS_ADMIN, as in Gradescope's container). pep668: the system "
        "Python is marked externally managed (Ubuntu 24.04); nopep668: the marker removed (Ubuntu 22.04). Grade "
        "time: run_autograder from start to exit. Memory: peaks over the whole process tree of run_autograder, "
        "sampled every 50 ms from the host (PSS splits shared pages among the processes that map them; target "
        f"<= {MEMORY_TARGET_MB} MB for the default 768 MB container).",
        "",
        "| mode | setup.sh | build time |",
        "|---|---|---|",
    ]
    for mode, (code, seconds) in setups.items():
        lines.append(f"| {mode} | {'ok' if code == 0 else f'failed (exit {code})'} | {seconds:.0f} s |")
    for mode, cases in outcomes.items():
        notes = sorted({re.sub(r"uid \d+", "uid N", outcome.isolation) for outcome in cases if outcome.isolation})
        lines += ["", f"Isolation of the student's code in the {mode} image (from results.json): "
                  + (" / ".join(notes) or "not reported")]
    lines += ["", "| mode | submission | score | results.json | grade time | peak PSS | peak RSS | verdict |",
              "|---|---|---|---|---|---|---|---|"]
    for mode, cases in outcomes.items():
        for outcome in cases:
            score = "none" if outcome.score is None else f"{outcome.score:g}/{outcome.max_score:g}"
            full = f"complete ({outcome.tests} tests)" if outcome.complete else f"INCOMPLETE ({outcome.tests} tests)"
            note = verdict(outcome) + (f" ({outcome.note})" if outcome.note else "")
            lines.append(f"| {mode} | {outcome.case} | {score} | {full} | {outcome.seconds:.1f} s | "
                         f"{outcome.pss_mb:.0f} MB | {outcome.rss_mb:.0f} MB | {note} |")
    lines += ["", "The processes of more than 20 MB PSS when the sum peaked (pid, command: PSS):", ""]
    for mode, cases in outcomes.items():
        lines += [f"- {mode}, {outcome.case}: {outcome.at_peak}" for outcome in cases]
    if half_cpu is not None:
        lines += ["", f"Half a CPU ({args.half_cpu_mode}): the reference graded by run_autograder pinned to one core "
                  "(taskset) beside a busy loop pinned to the same core: "
                  f"{half_cpu.seconds:.1f} s (target <= {HALF_CPU_TARGET_S} s), score "
                  f"{'none' if half_cpu.score is None else f'{half_cpu.score:g}/{half_cpu.max_score:g}'}, "
                  f"peak PSS {half_cpu.pss_mb:.0f} MB."]
    lines += ["", "Logs of this run (setup.sh and each run_autograder): " + str(args.logs), ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", default="HEAD", help="the git commit to build the zip from (default HEAD)")
    parser.add_argument("--base", type=Path, default=Path("/var/tmp/cs285-gradescope/debian12"),
                        help="where the minimal Debian 12 root is kept between runs")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "deploy.md", help="the report")
    parser.add_argument("--logs", type=Path, default=Path("/var/tmp/cs285-gradescope/logs"),
                        help="setup.sh and run_autograder output")
    parser.add_argument("--modes", nargs="+", choices=("pep668", "nopep668"), default=["pep668", "nopep668"])
    parser.add_argument("--half-cpu-mode", choices=("pep668", "nopep668"), default="nopep668",
                        help="the image in which the reference is also graded at half a CPU")
    parser.add_argument("--submissions", nargs="+", choices=SUBMISSIONS, default=list(SUBMISSIONS),
                        help="grade only these (default all; the half-CPU run needs the reference)")
    parser.add_argument("--keep", action="store_true", help="keep the roots (their paths are printed)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: debootstrap, chroot and mount namespaces need it")
    missing = [tool for tool in ("debootstrap", "unshare", "setpriv", "taskset", "git") if not shutil.which(tool)]
    if missing:
        sys.exit(f"missing: {', '.join(missing)} (apt-get install debootstrap util-linux git)")
    base = base_root(args.base)
    shutil.rmtree(args.logs, ignore_errors=True)
    args.logs.mkdir(parents=True)
    scratch = Path(tempfile.mkdtemp(prefix="run-", dir=args.base.parent))
    archive, checkout, commit = build_zip(args.ref, scratch)
    cases = submissions(checkout, scratch / "submissions")
    tests = expected_tests(checkout)
    setups, outcomes, half_cpu = {}, {}, None
    try:
        for mode in args.modes:
            root = make_root(base, mode, archive, scratch)
            print(f"{mode}: setup.sh in {root}", flush=True)
            setup = measured(in_root(root, "cd /autograder/source && ./setup.sh"), args.logs / f"{mode}-setup.log")
            code, seconds = setups[mode] = (setup.code, setup.seconds)
            print(f"{mode}: setup.sh exit {code} after {seconds:.0f} s", flush=True)
            outcomes[mode] = []
            (args.logs / mode).mkdir()
            for name, submission in ((name, cases[name]) for name in args.submissions):
                outcome = grade(root, name, submission, tests, args.logs / mode)
                outcomes[mode].append(outcome)
                print(f"{mode}: {outcome}", flush=True)
            if mode == args.half_cpu_mode and "reference" in args.submissions:
                loop = busy_loop(0)
                try:
                    half_cpu = grade(root, "reference-half-cpu", cases["reference"], tests, args.logs / mode, cpu=0)
                finally:
                    loop.kill()
                    loop.wait()
                print(f"{mode}: {half_cpu}", flush=True)
            if not args.keep:
                run(["rm", "-rf", root])
    finally:
        if not args.keep:
            run(["rm", "-rf", scratch])
    args.out.write_text(report(args, commit, setups, outcomes, half_cpu, base))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
