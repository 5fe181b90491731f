"""Grading a folder of submissions: N grading worker processes (`python -m grader worker`)
grade one submission at a time each, and a tqdm progress bar follows them; one results
folder per submission and a CSV gradebook.

A worker imports TensorFlow and the hidden tests once and keeps the reference answers
between submissions; every submission still gets its own fresh sandbox process. A worker
that dies or overruns is killed and replaced, the submission it was grading keeps the
complete results.json the grader writes before it starts (every test at 0) or gets a
fallback one, and the batch goes on: one broken submission never stops it."""
from __future__ import annotations

import csv
import json
import os
import queue
import re
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from . import results as res


def find_submissions(folder: Path) -> dict[str, Path]:
    """{name: path}: every sub-folder and .zip of `folder` (hidden entries skipped)."""
    found: dict[str, Path] = {}
    for entry in sorted(Path(folder).iterdir()):
        if entry.name.startswith((".", "_")):
            continue
        if entry.is_dir() or (entry.is_file() and entry.suffix.lower() == ".zip"):
            name = re.sub(r"[^A-Za-z0-9._@-]+", "_", entry.stem if entry.is_file() else entry.name)
            while name in found:
                name += "_"
            found[name] = entry
    return found


def _fallback(reason: str, config: dict) -> dict:
    return res.build_results({}, execution_time=0.0, config=config, notes=[reason],
                             default_message=f"not graded: {reason}")


def _read_valid(out: Path) -> dict | None:
    try:
        results = json.loads((Path(out) / "results.json").read_text())
    except (OSError, ValueError):
        return None
    return None if res.validate_results(results) else results


class Worker:
    """A `python -m grader worker` process: JSON lines in, JSON lines out."""

    def __init__(self):
        self.process = subprocess.Popen([sys.executable, "-m", "grader", "worker"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
        self.buffer = b""

    def grade(self, submission: Path, out: Path, timeout: float) -> str | None:
        """None if graded, else why not (the worker is then dead)."""
        try:
            self.process.stdin.write((json.dumps({"submission": str(submission), "out": str(out)}) + "\n").encode())
            self.process.stdin.flush()
        except OSError:
            self.kill()
            return "the grading process died"
        deadline = time.monotonic() + timeout
        fd = self.process.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                return f"grading did not finish within {timeout:.0f} s"
            ready, _, _ = select.select([fd], [], [], min(left, 5.0))
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    code = self.process.poll()
                    self.kill()
                    return f"the grading process died (exit code {code})"
                self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return None

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()

    def close(self) -> None:
        try:
            self.process.stdin.close()
            self.process.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.kill()


def worker_main() -> int:
    """The worker loop: read {"submission", "out"} lines, grade, answer {"done": out}."""
    from .runner import grade
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything printed by accident goes to stderr, not into the channel
    sys.stdout = sys.stderr
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            results = grade(Path(request["submission"]), Path(request["out"]), quiet=True)
            answer = {"done": request["out"], "score": results["score"]}
        except BaseException as exc:  # noqa: BLE001
            answer = {"done": request["out"], "error": f"{type(exc).__name__}: {exc}"}
        channel.write(json.dumps(answer) + "\n")
        channel.flush()
    return 0


def _ensure_results(out: Path, reason: str | None, config: dict) -> dict:
    results = _read_valid(out)
    if results is None:
        results = _fallback(reason or "the grading process wrote no valid results.json", config)
        res.write_results(out, results)
    elif reason:
        results.setdefault("output", "")
        results["output"] = (results["output"] + "\n" if results["output"] else "") + f"batch: {reason}"
        res.write_results(out, results)
    return results


def write_gradebook(path: Path, graded: dict[str, dict], config: dict) -> Path:
    specs = res.test_specs(config)
    parts = sorted({s.part for s in specs})
    header = ["submission"] + [f"{s.number} {s.key} ({s.max_score:g})" for s in specs] + \
             [f"{p} ({sum(s.max_score for s in specs if s.part == p):g})" for p in parts] + \
             [f"total ({sum(s.max_score for s in specs):g})", "execution_time"]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for name, results in sorted(graded.items()):
            by_key = {}
            for test in results.get("tests", []):
                tags = test.get("tags") or []
                if len(tags) >= 2:
                    by_key[tags[1]] = test.get("score", 0.0)
            row = [name] + [f"{by_key.get(s.key, 0.0):g}" for s in specs]
            for part in parts:
                row.append(f"{sum(by_key.get(s.key, 0.0) for s in specs if s.part == part):g}")
            row += [f"{results.get('score', 0.0):g}", results.get("execution_time", 0)]
            writer.writerow(row)
    return path


def run_batch(folder: Path, out: Path, *, jobs: int = 1, quiet: bool = False) -> int:
    config = res.load_config()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    submissions = find_submissions(Path(folder))
    limits = config.get("limits", {})
    timeout = float(limits.get("total_timeout", 900)) + float(limits.get("startup_timeout", 180)) + 120
    graded: dict[str, dict] = {}
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    progress = tqdm(total=len(submissions), unit="submission", disable=quiet, file=sys.stderr) if tqdm else None
    todo: queue.Queue = queue.Queue()
    for item in submissions.items():
        todo.put(item)
    lock = threading.Lock()

    def work():
        worker = None
        while True:
            try:
                name, path = todo.get_nowait()
            except queue.Empty:
                break
            reason = None
            try:
                if worker is None:
                    worker = Worker()
                reason = worker.grade(path, out / name, timeout)
                if reason is not None:
                    worker = None
            except Exception as exc:  # noqa: BLE001  (never stop the batch)
                reason = f"{type(exc).__name__}: {exc}"
                worker = None
            results = _ensure_results(out / name, reason, config)
            with lock:
                graded[name] = results
                if progress:
                    progress.set_postfix_str(f"{name}: {results['score']:g}")
                    progress.update(1)
        if worker is not None:
            worker.close()

    threads = [threading.Thread(target=work, daemon=True) for _ in range(max(1, min(jobs, len(submissions) or 1)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if progress:
        progress.close()
    gradebook = write_gradebook(out / "gradebook.csv", graded, config)
    if not quiet:
        for name in sorted(graded):
            print(f"{name:<40} {graded[name]['score']:g}")
        print(f"wrote {gradebook}")
    return 0
