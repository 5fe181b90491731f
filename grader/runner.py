"""Grading one submission: stage it, start its sandbox, run the hidden tests with pytest in
this (trusted) process, and write a complete results.json whatever happens."""
from __future__ import annotations

import io
import sys
import time
import traceback
from contextlib import redirect_stdout
from pathlib import Path

from . import results as res
from .sandbox import GraderError, Sandbox, StudentError, isolation
from .submission import read_submission

HIDDEN_TESTS = Path(__file__).resolve().parent / "hidden_tests"
MAX_MESSAGE = 4000

_CURRENT: dict = {}


def current_sandbox() -> Sandbox:
    """The sandbox of the submission being graded (for the hidden tests' fixtures)."""
    if "sandbox" not in _CURRENT:
        raise RuntimeError("no submission is being graded (run the hidden tests through `python -m grader grade`)")
    return _CURRENT["sandbox"]


def current_config() -> dict:
    return _CURRENT.get("config") or res.load_config()


class Recorder:
    """A pytest plugin that records each hidden test's outcome and message."""

    def __init__(self, sandbox: Sandbox | None):
        self.sandbox = sandbox
        self.outcomes: dict[str, res.Outcome] = {}
        self.collection_errors: list[str] = []
        self._started: dict[str, float] = {}

    def pytest_runtest_setup(self, item):
        self._started[item.name] = time.monotonic()
        if self.sandbox is not None:
            self.sandbox.output = ""

    def pytest_collectreport(self, report):
        if report.failed:
            self.collection_errors.append(str(report.longrepr)[-3000:])

    def pytest_runtest_makereport(self, item, call):
        if call.when == "call" or (call.excinfo is not None and call.when == "setup"):
            self._record(item, call)

    def _record(self, item, call):
        doc = (item.function.__doc__ or "").strip().splitlines()
        title = doc[0].strip() if doc else item.name
        seconds = time.monotonic() - self._started.get(item.name, time.monotonic())
        if call.excinfo is None:
            passed, message = True, "passed"
        else:
            passed, message = False, describe_failure(call.excinfo.value)
        output = self.sandbox.output.strip() if self.sandbox is not None else ""
        if output:
            message += "\n\nYour code printed (truncated):\n" + output[-1500:]
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE - 200] + "\n... [truncated]"
        self.outcomes[item.name] = res.Outcome(passed, message, seconds, title)


def describe_failure(exc: BaseException) -> str:
    if isinstance(exc, StudentError):
        return exc.message
    if isinstance(exc, GraderError):
        return f"the grader could not run your code: {exc}"
    if isinstance(exc, AssertionError):
        text = str(exc).strip()
        # pytest's assertion rewriting appends the failing expression after a newline
        return text.split("\nassert ")[0] if text else "check failed"
    name = type(exc).__name__
    if name in ("Skipped", "XFailed"):
        return f"skipped: {exc}"
    return f"the result could not be checked ({name}: {str(exc)[:500]})"


def titles() -> dict[str, str]:
    """Each hidden test's title (first docstring line), read without importing TensorFlow."""
    import ast
    found = {}
    for path in sorted(HIDDEN_TESTS.glob("test_*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                doc = (ast.get_docstring(node) or node.name).strip().splitlines()[0]
                found[node.name] = doc
    return found


def grade(submission: Path, out: Path, *, quiet: bool = False, config: dict | None = None,
          only: list[str] | None = None) -> dict:
    """Grade one submission into out/results.json and return the results dictionary."""
    start = time.monotonic()
    config = config or res.load_config()
    out = Path(out)
    known_titles = {}
    try:
        known_titles = titles()
    except Exception:  # noqa: BLE001
        pass

    def finish(outcomes, notes, default_message):
        for key, title in known_titles.items():
            if key in outcomes and not outcomes[key].title:
                outcomes[key].title = title
        filled = dict(outcomes)
        for key, title in known_titles.items():
            filled.setdefault(key, res.Outcome(False, default_message, 0.0, title))
        results = res.build_results(filled, execution_time=time.monotonic() - start, config=config,
                                    notes=notes, default_message=default_message)
        res.write_results(out, results)
        return results

    # A complete results.json exists from the start: if this process is killed, it stands.
    finish({}, ["grading did not finish"], "not run: grading did not finish")
    notes: list[str] = []
    outcomes: dict[str, res.Outcome] = {}
    default_message = "not run"
    sandbox = None
    try:
        files, notes = read_submission(Path(submission))
        missing = {m: f"the submission has no {m}.py (looked at its top and under hw/)"
                   for m, data in files.items() if data is None}
        limits = config.get("limits", {})
        sandbox = Sandbox(files, call_timeout=float(limits.get("call_timeout", 60)),
                          startup_timeout=float(limits.get("startup_timeout", 180)),
                          total_timeout=float(limits.get("total_timeout", 900)), missing=missing,
                          memory_mb=int(limits.get("memory_mb", 6144)))
        sandbox.start()  # imports TensorFlow in the child while this process loads the tests
        notes.append(f"isolation: {sandbox.iso.note}")
        _CURRENT.update(sandbox=sandbox, config=config)
        recorder = Recorder(sandbox)
        import pytest
        ini = HIDDEN_TESTS / "pytest.ini"
        if not ini.exists():  # an install without package data: an empty configuration of our own
            ini = Path(sandbox.base) / "pytest.ini"
            ini.write_text("[pytest]\n")
        args = [str(HIDDEN_TESTS), "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "--tb=no", "--no-header",
                "-c", str(ini), "--rootdir", str(HIDDEN_TESTS), "-W", "ignore"]
        if only:
            args += ["-k", " or ".join(only)]
        captured = io.StringIO()
        with redirect_stdout(captured):
            code = pytest.main(args, plugins=[recorder])
        outcomes = recorder.outcomes
        if recorder.collection_errors:
            notes.append("hidden tests failed to load: " + recorder.collection_errors[0][-1500:])
            default_message = "not run: the hidden tests could not be loaded (a grader problem)"
        if int(code) not in (0, 1):
            notes.append(f"pytest exited with code {int(code)}")
        if sandbox.restarts > 1:
            notes.append(f"the sandbox process was restarted {sandbox.restarts - 1} time(s)")
    except BaseException as exc:  # noqa: BLE001  (the results file is written whatever happens)
        notes.append(f"grading stopped: {type(exc).__name__}: {exc}")
        notes.append(traceback.format_exc()[-2000:])
        default_message = f"not run: grading stopped ({type(exc).__name__}: {exc})"
    finally:
        _CURRENT.clear()
        if sandbox is not None:
            sandbox.close()
    results = finish(outcomes, notes, default_message)
    if not quiet:
        print(res.format_table(results))
        for note in notes:
            if note.startswith("grading stopped") or note.startswith("hidden tests failed"):
                print(note, file=sys.stderr)
    return results


__all__ = ["grade", "current_sandbox", "current_config", "Recorder", "isolation"]
