"""The sandbox under attack: each attack of issue 10 reproduced against the real grader.

- a batch takeover (an attacker's leftover process answering for the next submission);
- a process that forks and exits every 2 ms to outlive its sandbox;
- a planted `grader/` package in a world-writable working folder;
- oversized, nested, duplicated and malformed replies on the wire;
- a connection to a listener on 127.0.0.1;
- a process killed for running out of memory, and one trying to escape that fate;
- one sandbox filling the process limit while another starts;
- Gradescope's capabilities (root without CAP_SYS_ADMIN): the isolation that still holds.

Attacks that only root can stop skip elsewhere, with the reason.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from grader.config import load_config
from grader.sandbox import Sandbox, StudentError, isolation
from grader.sandbox.identity import processes_of
from grader.stubs import GRADED_MODULES, ROOT, solution_source
from tests import attacks
from tests.test_grader import write_test_config

PG, NG = GRADED_MODULES
LIMITS = dataclasses.replace(load_config().limits, call_timeout=60, startup_timeout=180, total_timeout=400)
GRADESCOPE_CAPS = ("-all,+chown,+dac_override,+fsetid,+fowner,+mknod,+net_raw,+setgid,+setuid,+setfcap,+setpcap,"
                   "+net_bind_service,+sys_chroot,+kill,+audit_write")

MODE = isolation().mode
needs_own_uid = pytest.mark.skipif(MODE not in ("namespace", "user"),
                                   reason=f"isolation here is {MODE!r}: only as root does each sandbox get a uid "
                                          "of its own (run the tests as root)")
needs_namespaces = pytest.mark.skipif(MODE != "namespace",
                                      reason=f"isolation here is {MODE!r}: namespaces need root with CAP_SYS_ADMIN")
needs_root = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv") or not shutil.which("unshare"),
                                reason="simulating Gradescope's container needs root, setpriv and unshare")


def solution_with(code: str, module: str = PG) -> dict[str, bytes]:
    """Both reference solutions, `code` appended to one of them."""
    files = {m: solution_source(m).encode() for m in GRADED_MODULES}
    files[module] += b"\n" + code.encode()
    return files


def write_submission(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True)
    for module, data in files.items():
        (folder / f"{module}.py").write_bytes(data)
    return folder


def stubs() -> dict[str, bytes]:
    return {m: (ROOT / "hw" / f"{m}.py").read_bytes() for m in GRADED_MODULES}


def marked_processes() -> list[int]:
    """Live processes started by an attack (named attacks.NAME, or attacks.MARKER in their environment)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                named = Path(f"/proc/{entry}/comm").read_text().strip() == attacks.NAME
                if (named or attacks.MARKER.encode() in Path(f"/proc/{entry}/environ").read_bytes()) \
                        and "\nState:\tZ" not in Path(f"/proc/{entry}/status").read_text():
                    found.append(int(entry))
            except OSError:
                pass
    return found


def kill_marked() -> None:
    for pid in marked_processes():
        try:
            os.kill(pid, 9)
        except OSError:
            pass


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    return write_test_config(tmp_path_factory.mktemp("config") / "points.toml")


def grader_command(*args: str) -> list[str]:
    return [sys.executable, "-I", "-m", "grader", *args]


def run(command: list[str], config: Path, cwd: Path | str = "/", env: dict | None = None, timeout: float = 1200):
    environment = dict(os.environ, GRADER_CONFIG=str(config), **(env or {}))
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=environment)


def scores(out: Path) -> dict[str, float]:
    return {entry.name: json.loads((entry / "results.json").read_text())["score"]
            for entry in out.iterdir() if (entry / "results.json").exists()}


# ----------------------------------------------------------------------------- the batch takeover

def takeover_batch(tmp_path: Path, config: Path, jobs: int, env: dict | None = None,
                   wrap=lambda command: command) -> tuple[dict[str, float], list[int]]:
    """Grade an attacker (first) and an untouched stub (second) in one batch: their scores
    and the attacker's processes left when the batch ends (killed then)."""
    folder = tmp_path / "submissions"
    write_submission(folder / "a_attacker", solution_with(attacks.TAKEOVER))
    write_submission(folder / "b_victim", stubs())
    out = tmp_path / "graded"
    try:
        completed = run(wrap(grader_command("batch", str(folder), "--out", str(out), "--jobs", str(jobs))),
                        config, env=env)
        survivors = marked_processes()
    finally:
        kill_marked()
    assert completed.returncode == 0, completed.stderr[-3000:]
    return scores(out), survivors


@needs_own_uid
@pytest.mark.parametrize("jobs", [1, 2])
def test_batch_takeover_fails(tmp_path, config_file, jobs):
    """The attacker's leftover process never answers for the victim, nor survives."""
    graded, survivors = takeover_batch(tmp_path, config_file, jobs)
    assert graded == {"a_attacker": 100.0, "b_victim": 0.0}
    assert survivors == []


# ----------------------------------------------------------------------------- the hopper

@needs_own_uid
def test_hopper_leaves_no_process():
    """A process that forks and exits every 2 ms, forever, dies with its sandbox."""
    sandbox = Sandbox(solution_with(attacks.HOPPER), LIMITS)
    try:
        sandbox.require(PG)
        # it runs: each hop lives about 2 ms, so one scan of /proc can miss it on a busy machine
        deadline = time.monotonic() + 10
        while not marked_processes() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marked_processes() != []
        uid = sandbox.lease.uid
    finally:
        sandbox.close()
    try:
        assert marked_processes() == []
        assert processes_of(uid) == []
    finally:
        kill_marked()


# ----------------------------------------------------------------------------- the planted package

PLANT = "open({marker!r}, 'w').write('the planted grader package ran')\nraise SystemExit(0)\n"


@pytest.fixture
def planted(tmp_path):
    """A world-writable folder (like /tmp) holding a planted grader/ package."""
    folder = Path(tempfile.mkdtemp(prefix="planted-"))
    os.chmod(folder, 0o1777)
    marker = tmp_path / "planted-ran"
    (folder / "grader").mkdir()
    (folder / "grader" / "__init__.py").write_text(PLANT.format(marker=str(marker)))
    (folder / "grader" / "__main__.py").write_text(PLANT.format(marker=str(marker)))
    yield folder, marker
    shutil.rmtree(folder, ignore_errors=True)


def test_plain_python_m_runs_a_planted_package(planted, config_file):
    """Why the rule exists: `python -m grader` imports from its working folder."""
    folder, marker = planted
    run([sys.executable, "-m", "grader", "--help"], config_file, cwd=folder)
    assert marker.exists()


def test_isolated_cli_ignores_a_planted_package(planted, config_file):
    """`python -I -m grader` (the README's command) never imports from its working folder."""
    folder, marker = planted
    completed = run(grader_command("--help"), config_file, cwd=folder)
    assert completed.returncode == 0 and "grade" in completed.stdout
    assert not marker.exists()


def test_console_script_ignores_a_planted_package(planted, config_file):
    """The installed `cs285-grader` never imports from its working folder."""
    script = Path(sys.executable).parent / "cs285-grader"
    if not script.exists():
        pytest.skip(f"{script} is not installed (pip install -e . installs it)")
    folder, marker = planted
    completed = run([str(script), "--help"], config_file, cwd=folder)
    assert completed.returncode == 0 and "grade" in completed.stdout
    assert not marker.exists()


def test_batch_workers_ignore_a_planted_package(planted, config_file, tmp_path):
    """A batch started from a planted folder: its grading processes never run the plant."""
    folder, marker = planted
    write_submission(tmp_path / "submissions" / "stub", stubs())
    completed = run(grader_command("batch", str(tmp_path / "submissions"), "--out", str(tmp_path / "out")),
                    config_file, cwd=folder)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert scores(tmp_path / "out") == {"stub": 0.0}
    assert not marker.exists()


# ----------------------------------------------------------------------------- hostile replies

REPLY_DRIVER = textwrap.dedent("""
    import dataclasses, json, resource, sys, time
    from grader.config import load_config
    from grader.sandbox import Sandbox, StudentError
    files = {k: v.encode() for k, v in json.loads(sys.stdin.read()).items()}
    sandbox = Sandbox(files, dataclasses.replace(load_config().limits, call_timeout=20, startup_timeout=180,
                                                 total_timeout=400))
    report = {}
    try:
        sandbox.require("policy_gradient")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.monotonic()
        for name in ("discounted_return", "reward_to_go"):
            try:
                value = sandbox.call("policy_gradient", name, [1.0, 2.0], 0.5)
                report[name] = {"value": value.tolist() if hasattr(value, "tolist") else repr(value)}
            except StudentError as exc:
                report[name] = {"error": exc.message, "kind": exc.kind}
            if name == "discounted_return":
                report["seconds"] = time.monotonic() - start
        report["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        report["before_mb"] = before / 1024
    finally:
        sandbox.close()
    print(json.dumps(report))
""")

MB = 1 << 20
REPLIES = {
    # a header that claims 1 GB: refused on its first 4 bytes
    "huge_header": ("struct.pack('>I', 1 << 30) + b'[' * 4096", "takes 1073741824 bytes"),
    # 15 MB of nested lists, as in the issue: over the header cap before it is read
    "nested_15mb": ("(lambda h: struct.pack('>I', len(h)) + h)(b'{\"body\": ' + b'[' * (15 << 20) + b']' * (15 << 20) "
                    "+ b', \"blobs\": []}')", "description takes"),
    # 100k-deep nesting within the header cap: refused (no RecursionError escapes)
    "deep_100k": ("(lambda h: struct.pack('>I', len(h)) + h)(b'{\"body\": {\"ok\": ' + b'[' * 100000 + b']' * 100000 "
                  "+ b'}, \"blobs\": []}')", "RecursionError"),
    # 20,000 references to one 60 MB array: refused, never loaded 20,000 times
    "array_references": ("(lambda blob: (lambda h: struct.pack('>I', len(h)) + h + blob)(json.dumps({'body': {'id': 2, "
                         "'ok': [{'__kind__': 'array', 'blob': 0}] * 20000}, 'blobs': [len(blob)]}).encode()))"
                         "(b'\\x93NUMPY\\x01\\x00v\\x00' + b\"{'descr': '<f8', 'fortran_order': False, 'shape': "
                         "(7864320,), }\".ljust(117) + b'\\n' + bytes(60 << 20))", "referenced twice"),
    # more arrays than allowed, and more bytes than allowed
    "many_arrays": ("(lambda h: struct.pack('>I', len(h)) + h)(json.dumps({'body': None, 'blobs': [0] * 20000})"
                    ".encode())", "arrays (at most"),
    "huge_blob": ("(lambda h: struct.pack('>I', len(h)) + h)(json.dumps({'body': None, 'blobs': [200 << 20]})"
                  ".encode())", "larger than"),
    # an object kind that is not even a string
    "unhashable_kind": ("(lambda h: struct.pack('>I', len(h)) + h)(json.dumps({'body': {'id': 2, 'ok': "
                        "{'__kind__': [1]}}, 'blobs': []}).encode())", "only arrays and numbers"),
}


def hostile_reply(payload: str, then_return: bool = False) -> dict:
    files = {m: solution_source(m) for m in GRADED_MODULES}
    files[PG] += "\n" + attacks.raw_reply(payload, then_return)
    completed = subprocess.run([sys.executable, "-I", "-c", REPLY_DRIVER], input=json.dumps(files),
                               capture_output=True, text=True, timeout=600, cwd="/")
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", sorted(REPLIES))
def test_hostile_reply_is_the_students_error(name):
    """The reply costs the call (a readable message, well before its deadline), the parent
    stays small, and the next call gets a fresh process and the right answer."""
    payload, words = REPLIES[name]
    report = hostile_reply(payload)
    failed = report["discounted_return"]
    assert failed["kind"] == "protocol" and "unreadable answer" in failed["error"], failed
    assert words in failed["error"], failed
    assert report["peak_mb"] - report["before_mb"] < 400, report  # 60 MB blobs at most, never copied per reference
    assert report["reward_to_go"] == {"value": [2.0, 2.0]}


def test_replayed_reply_costs_only_its_call():
    """A replay of an earlier answer (request 1, the import) fails its call only: the later
    calls are not shifted by the answer that follows it."""
    replay = "(lambda h: struct.pack('>I', len(h)) + h)(json.dumps({'body': {'id': 1, 'ok': None}, 'blobs': []}).encode())"
    report = hostile_reply(replay, then_return=True)
    assert report["discounted_return"]["kind"] == "protocol", report
    assert "an answer to request 1 where 2 was expected" in report["discounted_return"]["error"], report
    assert report["reward_to_go"] == {"value": [2.0, 2.0]}


# ----------------------------------------------------------------------------- the network

@needs_namespaces
def test_localhost_listener_is_unreachable():
    """A submission cannot send its hidden inputs to a listener on the grading machine."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    files = {m: solution_source(m).encode() for m in GRADED_MODULES}
    files[PG] += attacks.connect_to(listener.getsockname()[1]).encode()
    sandbox = Sandbox(files, LIMITS)
    try:
        sandbox.require(PG)
        with pytest.raises(StudentError) as failure:
            sandbox.call(PG, "discounted_return", [1.0, 2.0], 0.5)
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):  # no connection is waiting in the listener's backlog
            listener.accept()
    finally:
        sandbox.close()
        listener.close()
    assert "Network is unreachable" in failure.value.message, failure.value


# ----------------------------------------------------------------------------- out of memory

OOM = textwrap.dedent("""
    def oom_score_adj():
        with open("/proc/self/oom_score_adj") as adj:
            return float(adj.read())

    def lower_oom_score_adj():
        with open("/proc/self/oom_score_adj", "w") as adj:
            adj.write("0")

    def killed_by_the_kernel():
        import os, signal
        os.kill(os.getpid(), signal.SIGKILL)
""")


def test_out_of_memory_takes_the_students_process_and_says_so():
    """A container out of memory has its kernel kill the process with the highest score: the
    student's process is at the top (oom_score_adj 1000), and its death by SIGKILL reaches
    the student as running out of memory."""
    sandbox = Sandbox(solution_with(OOM), LIMITS)
    try:
        assert sandbox.call(PG, "oom_score_adj") == 1000
        with pytest.raises(StudentError) as killed:
            sandbox.call(PG, "killed_by_the_kernel")
    finally:
        sandbox.close()
    assert "SIGKILL" in killed.value.message and "ran out of memory" in killed.value.message, killed.value


@pytest.mark.skipif(os.geteuid() == 0 and MODE in ("root", "none"),
                    reason=f"isolation here is {MODE!r} as root: the student's process runs as root and could")
def test_the_student_cannot_lower_its_oom_score():
    sandbox = Sandbox(solution_with(OOM), LIMITS)
    try:
        with pytest.raises(StudentError) as lowered:
            sandbox.call(PG, "lower_oom_score_adj")
        assert sandbox.call(PG, "oom_score_adj") == 1000
    finally:
        sandbox.close()
    assert "Permission denied" in lowered.value.message or "Operation not permitted" in lowered.value.message, \
        lowered.value


# ----------------------------------------------------------------------------- the process limit

def _tasks_of(uid: int) -> int:
    count = 0
    for pid in processes_of(uid):
        try:
            count += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            pass
    return count


@needs_own_uid
def test_one_sandbox_at_its_process_limit_does_not_stop_another():
    """A sandbox that fills its process limit leaves every other sandbox able to start."""
    from grader.sandbox.isolation import PROCESS_LIMIT
    attacker = Sandbox(solution_with(attacks.FORK_TO_THE_LIMIT), LIMITS)
    victim = None
    try:
        attacker.require(PG)
        assert _tasks_of(attacker.lease.uid) >= PROCESS_LIMIT - 8  # at its limit (a fork was refused)
        victim = Sandbox(solutions := {m: solution_source(m).encode() for m in GRADED_MODULES}, LIMITS)
        assert solutions and list(victim.call(PG, "discounted_return", [1.0, 2.0], 0.5)) == [2.0, 2.0]
        assert victim.lease.uid != attacker.lease.uid
    finally:
        for sandbox in (attacker, victim):
            if sandbox is not None:
                sandbox.close()
        kill_marked()
    assert marked_processes() == []


# ----------------------------------------------------------------------------- Gradescope's capabilities

def gradescope_like(command: list[str], scratch: Path) -> list[str]:
    """`command` as root with only the capabilities of Gradescope's container (no
    CAP_SYS_ADMIN: no namespaces), with this machine's Python where another uid can run it
    (here it sits under /root and inside the repository, which Gradescope's does not):
    in a private mount namespace set up first, the virtual environment is bound outside
    the repository, a copy of the repository covers it, and /root is covered with only the
    pyenv and the grader's cache bound back."""
    venv = Path(sys.prefix)
    pyenv = Path(sys.base_prefix).resolve()
    cache = Path(os.environ.get("GRADER_CACHE") or Path.home() / ".cache" / "cs285-grader")
    for name in ("venv", "pyenv", "cache"):
        (scratch / name).mkdir(parents=True, exist_ok=True)
    os.chmod(scratch, 0o755)
    python = scratch / "venv" / Path(sys.executable).relative_to(venv)
    checkout = scratch / "checkout"  # a copy, so that the isolation's chmod never touches the real one
    for name in ("grader", "hw", "solutions"):
        shutil.copytree(ROOT / name, checkout / name, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
    shutil.copyfile(ROOT / "setup.py", checkout / "setup.py")
    lines = [
        "set -e",
        f"mount --bind {venv} {scratch}/venv",
        f"mount --bind {checkout} {ROOT}",
        f"mount --bind {pyenv} {scratch}/pyenv",
        f"mount --bind {cache} {scratch}/cache" if cache.exists() else "true",
        "mount -t tmpfs -o mode=755 simulation /root",
        f"mkdir -p {pyenv} {cache}",
        f"mount --bind {scratch}/pyenv {pyenv}",
        f"mount --bind {scratch}/cache {cache}" if cache.exists() else "true",
        f'exec setpriv --inh-caps=-all --bounding-set={GRADESCOPE_CAPS} {python} "$@"',
    ]
    assert command[0] == sys.executable
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", "\n".join(lines), "simulation", *command[1:]]


@pytest.fixture
def simulation():
    if not str(Path(sys.base_prefix).resolve()).startswith("/root/"):
        pytest.skip("the simulation is written for a pyenv under /root, as on the project's machine")
    folder = Path(tempfile.mkdtemp(prefix="gradescope-like-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@needs_root
def test_gradescope_capabilities_degrade_to_a_uid_of_its_own(tmp_path, config_file, simulation):
    """Without CAP_SYS_ADMIN: the solutions still score 100, and the note says what held."""
    command = gradescope_like(grader_command("grade", str(ROOT / "solutions"), "--out", str(tmp_path), "--quiet"),
                              simulation)
    completed = run(command, config_file)
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["score"] == 100
    note = next(line for line in results["output"].splitlines() if line.startswith("isolation:"))
    assert "its own uid" in note and "no namespaces" in note and "not dumpable" in note, note


@needs_root
def test_gradescope_capabilities_still_stop_the_takeover(tmp_path, config_file, simulation):
    """Without namespaces (both sandboxes live at once, --jobs 2), the uid of its own holds."""
    graded, survivors = takeover_batch(tmp_path, config_file, 2,
                                       wrap=lambda command: gradescope_like(command, simulation))
    assert graded == {"a_attacker": 100.0, "b_victim": 0.0}
    assert survivors == []
