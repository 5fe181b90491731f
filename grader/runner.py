"""Grading one submission, the stages in the order data flows through them:

1. read the submission's two files (submission.py);
2. get the hidden instance, computed by a trusted process that has exited before any
   student code runs (instances/);
3. start the submission's sandbox process (sandbox/);
4. run the hidden tests (hidden_tests/) with pytest in this process, which never imports
   TensorFlow: they send the instance's inputs to the sandbox and compare in NumPy;
5. optionally, the learning check (learning.py): the student's code trains a policy in
   its process, and this process evaluates the result itself;
6. write results.json in Gradescope's format (results.py), complete whatever happens: a
   placeholder with every test at 0 is written first, so that even a killed grader
   leaves a valid file.
"""
from __future__ import annotations

import io
import sys
import time
import traceback
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from . import instances, learning
from . import results as res
from .config import Config, load_config, with_training
from .sandbox import GraderError, Sandbox, StudentError
from .submission import read_submission

HIDDEN_TESTS = Path(__file__).resolve().parent / "hidden_tests"
MAX_MESSAGE = 4000  # characters of a test's message in results.json


class GradingPlugin:
    """The pytest plugin of one grading run: it hands the hidden tests their sandbox and
    instance (as fixtures) and records each test's outcome and message."""

    def __init__(self, sandbox: Sandbox, instance: dict):
        self._sandbox, self._instance = sandbox, instance
        self.outcomes: dict[str, res.Outcome] = {}
        self.collection_errors: list[str] = []
        self._started: dict[str, float] = {}

    @pytest.fixture(scope="session")
    def sandbox(self) -> Sandbox:
        return self._sandbox

    @pytest.fixture(scope="session")
    def instance(self) -> dict:
        return self._instance

    def pytest_runtest_setup(self, item):
        self._started[item.name] = time.monotonic()
        self._sandbox.output = ""

    def pytest_collectreport(self, report):
        if report.failed:
            self.collection_errors.append(str(report.longrepr)[-3000:])

    def pytest_runtest_makereport(self, item, call):
        if call.when == "call" or (call.excinfo is not None and call.when == "setup"):
            self._record(item, call)

    def _record(self, item, call):
        seconds = time.monotonic() - self._started.get(item.name, time.monotonic())
        if call.excinfo is None:
            passed, message = True, "passed"
        else:
            passed, message = False, describe_failure(call.excinfo.value)
        # the student's output as they would see it locally: their files are hw/<module>.py
        output = self._sandbox.output.strip().replace(f"{self._sandbox.staging / 'hw'}/", "hw/")
        if output:
            message += "\n\nYour code printed (truncated):\n" + output[-1500:]
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE - 200] + "\n... [truncated]"
        self.outcomes[item.name] = res.Outcome(passed, message, seconds)


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
    """Each hidden test's title (the first line of its docstring), read without running it."""
    import ast
    found = {}
    for path in sorted(HIDDEN_TESTS.glob("test_*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                found[node.name] = (ast.get_docstring(node) or node.name).strip().splitlines()[0]
    return found


def why_missing(module: str, notes: list[str]) -> str:
    """What the tests that need a missing module say: the reason the submission's reader
    gave (encrypted, too large, a damaged or unreadable zip), if it gave one."""
    absent = f"the submission has no {module}.py (looked at its top and under hw/)"
    for note in notes:
        if note.startswith(f"{module}.py not found"):
            return absent
        if f"{module}.py" in note:
            return note
    return next((note for note in notes if "could not be opened" in note or "neither a folder" in note), absent)


def run_hidden_tests(plugin: GradingPlugin, only: list[str] | None) -> int:
    args = [str(HIDDEN_TESTS), "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "--tb=no", "--no-header",
            "-c", str(HIDDEN_TESTS / "pytest.ini"), "--rootdir", str(HIDDEN_TESTS), "-W", "ignore"]
    if only:
        args += ["-k", " or ".join(only)]
    with redirect_stdout(io.StringIO()):
        return int(pytest.main(args, plugins=[plugin]))


def learning_check(sandbox: Sandbox, config: Config, seed: int, out: Path) -> res.Outcome:
    """Train in the student's process, evaluate here (see learning.py)."""
    settings = config.training
    start = time.monotonic()
    argv = ["--algo", settings.algo, "--env", settings.env, "--total-steps", str(settings.steps),
            "--seed", str(seed % 10_000), "--hidden-sizes", *map(str, settings.hidden_sizes),
            "--target-return", "475", "--no-progress"]
    try:
        report = sandbox.train(argv, settings.time_limit)
    except StudentError as exc:
        return res.Outcome(False, f"training with your code failed: {exc.message}", time.monotonic() - start,
                           learning.TITLE)
    evaluation = learning.judge(report, settings, seed)
    if evaluation.curve:
        learning.plot(evaluation.curve, evaluation.returns, settings, out / "learning_curve.png")
    return res.Outcome(evaluation.passed, evaluation.message, time.monotonic() - start, learning.TITLE)


def grade(submission: Path, out: Path, *, student: str | None = None, quiet: bool = False,
          config: Config | None = None, only: list[str] | None = None, train: bool = False) -> dict:
    """Grade one submission into out/results.json and return the results dictionary. The
    hidden inputs are those of `student` (the course's own instance if None); `train`
    turns the learning check on whatever points.toml says."""
    start = time.monotonic()
    config = config or load_config()
    if train:
        config = with_training(config)
    out = Path(out)
    known_titles = {**titles(), **({learning.TEST_KEY: learning.TITLE} if config.training.enabled else {})}
    seed = instances.instance_seed(config.seed, student)
    extra = {"instance": {"student": student or "", "seed": seed}}

    def finish(outcomes, notes, default_message):
        filled = {key: res.Outcome(o.passed, o.message, o.seconds, known_titles.get(key, key))
                  for key, o in outcomes.items()}
        for key, title in known_titles.items():
            filled.setdefault(key, res.Outcome(False, default_message, 0.0, title))
        results = res.build_results(filled, execution_time=time.monotonic() - start, config=config, notes=notes,
                                    extra=extra)
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
        instance = instances.load(instances.ensure([seed], config.limits.instance_timeout)[seed])
        missing = {m: why_missing(m, notes) for m, data in files.items() if data is None}
        sandbox = Sandbox(files, config.limits, missing=missing)
        sandbox.start()
        notes.append(f"isolation: {sandbox.iso.note}")
        plugin = GradingPlugin(sandbox, instance)
        code = run_hidden_tests(plugin, only)
        outcomes = plugin.outcomes
        if plugin.collection_errors:
            notes.append("hidden tests failed to load: " + plugin.collection_errors[0][-1500:])
            default_message = "not run: the hidden tests could not be loaded (a grader problem)"
        if code not in (0, 1):
            notes.append(f"pytest exited with code {code}")
        if config.training.enabled:
            outcomes[learning.TEST_KEY] = learning_check(sandbox, config, seed, out)
        if sandbox.restarts > 1:
            notes.append(f"the sandbox process was restarted {sandbox.restarts - 1} time(s)")
    except BaseException as exc:  # noqa: BLE001  (the results file is written whatever happens)
        notes.append(f"grading stopped: {type(exc).__name__}: {exc}")
        notes.append(traceback.format_exc()[-2000:])
        default_message = f"not run: grading stopped ({type(exc).__name__}: {exc})"
    finally:
        if sandbox is not None:
            try:
                sandbox.close()
            except Exception as exc:  # noqa: BLE001  (the results are written all the same)
                notes.append(f"the sandbox could not be closed cleanly: {type(exc).__name__}: {exc}")
    results = finish(outcomes, notes, default_message)
    if not quiet:
        print(res.format_table(results))
        for note in notes:
            if note.startswith(("grading stopped", "hidden tests failed")):
                print(note, file=sys.stderr)
    return results
