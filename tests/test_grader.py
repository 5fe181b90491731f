"""The grader's own tests: full marks for the solutions, zero with TODO messages for the
stubs, every mutant caught by the test that covers it (and losing little elsewhere), every
hostile submission contained, valid Gradescope results, the batch gradebook.

One batch (`python -m grader batch --jobs 2`) grades the whole corpus once per session;
the tests below read its results.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader import results as res
from grader.config import load_config
from grader.runner import titles
from grader.stubs import GRADED_MODULES, ROOT
from tests.mutants import CORRECT, DEGENERATE, HOSTILE, MUTANTS, PART1, PART2, build

ALL_TESTS = PART1 | PART2
TEST_LIMITS = {"call_timeout": 10, "startup_timeout": 180, "total_timeout": 400}


def write_test_config(path: Path, limits: dict = TEST_LIMITS) -> Path:
    """points.toml with shorter time limits (an endless loop costs 10 s, not 20)."""
    text = (ROOT / "grader" / "points.toml").read_text()
    lines = []
    for line in text.splitlines():
        key = line.split("=")[0].strip()
        if key in limits:
            line = f"{key} = {limits[key]}"
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")
    return path


def run_grader(*args: str, config: Path | None = None, timeout: float = 1800, cwd: Path | None = None):
    env = dict(os.environ)
    if config is not None:
        env["GRADER_CONFIG"] = str(config)
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=cwd or ROOT)


@pytest.fixture(scope="session")
def config_file(tmp_path_factory) -> Path:
    return write_test_config(tmp_path_factory.mktemp("config") / "points.toml")


@pytest.fixture(scope="session")
def corpus(tmp_path_factory, config_file):
    """Grade every case once: {name: results}, plus the batch folder."""
    folder = tmp_path_factory.mktemp("corpus")
    out = tmp_path_factory.mktemp("graded")
    for group in (MUTANTS, HOSTILE, CORRECT, DEGENERATE):
        for name, case in group.items():
            build(case, folder / name)
    shutil.copytree(ROOT / "solutions", folder / "solutions")
    (folder / "stubs").mkdir()
    for module in GRADED_MODULES:
        shutil.copyfile(ROOT / "hw" / f"{module}.py", folder / "stubs" / f"{module}.py")
    started = time.monotonic()
    completed = run_grader("batch", str(folder), "--out", str(out), "--jobs", "2", config=config_file)
    assert completed.returncode == 0, completed.stderr[-3000:]
    seconds = time.monotonic() - started
    graded = {}
    for entry in sorted(folder.iterdir()):
        name = entry.stem if entry.is_file() else entry.name
        graded[name] = json.loads((out / name / "results.json").read_text())
    return {"results": graded, "out": out, "folder": folder, "seconds": seconds}


def failures(results: dict) -> dict[str, str]:
    """{test: its message as plain text} for the failed tests."""
    return {t["tags"][1]: res.plain_text(t["output"]) for t in results["tests"] if t["status"] == "failed"}


def max_scores(results: dict) -> dict[str, float]:
    return {t["tags"][1]: t["max_score"] for t in results["tests"]}


# ----------------------------------------------------------------------------- configuration

def test_points_cover_every_hidden_test_and_sum_to_part_totals():
    config = load_config()
    assert {s.key for s in config.tests} == set(titles()) == ALL_TESTS
    for part in ("part1", "part2"):
        assert sum(s.max_score for s in config.tests if s.part == part) == config.totals[part]


def test_results_validator_rejects_broken_results():
    good = res.build_results({}, execution_time=1.2, config=load_config())
    assert res.validate_results(good) == []
    assert res.validate_results({"score": "high"})
    assert res.validate_results({"tests": [{"score": 1, "max_score": 1, "status": "ok"}]})
    assert res.validate_results({"score": 5, "tests": [{"score": 2, "max_score": 1}]})


def test_results_for_gradescope_markdown_visibility_and_honest_summary(tmp_path):
    """Messages go out as Markdown (labels in bold, code fenced), a test's own visibility from
    points.toml is applied, and the top-level output counts only what the student sees now."""
    text = (ROOT / "grader" / "points.toml").read_text()
    text = text.replace("[gradescope.test_visibility]", '[gradescope.test_visibility]\ntest_line_search = "after_due_date"')
    (tmp_path / "points.toml").write_text(text)
    config = load_config(tmp_path / "points.toml")
    message = ("reward_to_go(rewards=[1, 2], gamma=0.5): wrong values\nExpected: [2, 2]\nGot: [3, 2]\n"
               "Likely mistake: this is what the whole return at every step gives.\n\nYour code printed (truncated):\n"
               "```hello``` *world*")
    outcomes = {t.key: res.Outcome(True, "passed") for t in config.tests}
    outcomes["test_reward_to_go"] = res.Outcome(False, message)
    results = res.build_results(outcomes, execution_time=1.0, config=config)
    assert res.validate_results(results) == []
    tests = {t["tags"][1]: t for t in results["tests"]}
    assert tests["test_line_search"]["visibility"] == "after_due_date"
    assert tests["test_reward_to_go"]["visibility"] == "visible"
    failed = tests["test_reward_to_go"]
    assert failed["output_format"] == "md"
    assert "**Expected:** \\[2, 2\\]" in failed["output"] and "**Likely mistake:**" in failed["output"]
    assert "```\n` ` `hello` ` ` *world*\n```" in failed["output"]  # the student's output cannot end the fence
    assert res.first_line(failed["output"]) == "reward_to_go(rewards=[1, 2], gamma=0.5): wrong values"
    assert results["output"].splitlines()[0] == (f"{len(config.tests) - 2} of {len(config.tests) - 1} tests passed "
                                                 "(1 more test(s) are shown later and not counted here).")


def test_wire_format_refuses_pickles():
    import io

    import numpy as np

    from grader import wire
    reader = wire.MessageReader()
    reader.feed(wire.encode({"ok": np.arange(3.0)}))
    body, blobs = reader.message()
    assert np.array_equal(wire.decode(body, blobs)["ok"], np.arange(3.0))
    buffer = io.BytesIO()
    np.save(buffer, np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError):
        wire.load_array(buffer.getvalue())


def test_submission_files_are_found_in_zips_and_folders(tmp_path):
    import zipfile

    from grader.submission import read_submission
    archive = tmp_path / "alice.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("homework/hw/policy_gradient.py", "A = 1\n")
        handle.writestr("__MACOSX/homework/hw/policy_gradient.py", "junk")
        handle.writestr("homework/natural_gradient.py", "B = 2\n")
        handle.writestr("homework/hw/other.py", "C = 3\n")
    files, notes = read_submission(archive)
    assert files == {"policy_gradient": b"A = 1\n", "natural_gradient": b"B = 2\n"}
    folder = tmp_path / "bob"
    (folder / "hw").mkdir(parents=True)
    (folder / "policy_gradient.py").write_text("top\n")
    (folder / "hw" / "policy_gradient.py").write_text("under hw\n")
    files, notes = read_submission(folder)
    assert files["policy_gradient"] == b"top\n" and files["natural_gradient"] is None
    assert any("natural_gradient.py not found" in n for n in notes)
    # symbolic links are not followed (the grader reads as root)
    evil = tmp_path / "mallory"
    evil.mkdir()
    (evil / "policy_gradient.py").symlink_to("/etc/shadow")
    (evil / "hw").symlink_to("/etc")
    files, notes = read_submission(evil)
    assert files == {"policy_gradient": None, "natural_gradient": None}


# ----------------------------------------------------------------------------- the corpus

def test_every_results_file_is_valid_gradescope(corpus):
    for name, results in corpus["results"].items():
        assert res.validate_results(results) == [], name
        assert {t["tags"][1] for t in results["tests"]} == ALL_TESTS, name


def test_solutions_score_full_marks(corpus):
    results = corpus["results"]["solutions"]
    assert failures(results) == {}
    assert results["score"] == 100


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_correct_variants_score_full_marks(corpus, name):
    assert failures(corpus["results"][name]) == {}


def test_stubs_score_zero_with_todo_messages(corpus):
    results = corpus["results"]["stubs"]
    assert results["score"] == 0
    for test in results["tests"]:
        assert "TODO" in test["output"] and "not implemented" in test["output"], test


@pytest.mark.parametrize("name", sorted(DEGENERATE))
def test_degenerate_submissions_score_zero(corpus, name):
    """Every function returning zeros (or NaNs) of the right shapes earns nothing anywhere."""
    results = corpus["results"][name]
    assert results["score"] == 0, [t["tags"][1] for t in results["tests"] if t["status"] == "passed"]


def _check_case(case, results):
    failed = failures(results)
    assert case.catches <= set(failed), f"not caught: {sorted(case.catches - set(failed))}"
    assert set(failed) <= case.catches | case.may_fail, f"also lost: {sorted(set(failed) - case.catches - case.may_fail)}"
    for key in case.catches:
        for words in case.says:
            assert words in failed[key], f"{key}: {words!r} not in {failed[key]!r}"
    points = max_scores(results)
    assert results["score"] >= 100 - sum(points[k] for k in case.catches | case.may_fail)


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_is_caught_by_its_test(corpus, name):
    _check_case(MUTANTS[name], corpus["results"][name])


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_submission_is_contained(corpus, name):
    _check_case(HOSTILE[name], corpus["results"][name])


def test_monkeypatching_and_forged_results_change_nothing(corpus):
    results = corpus["results"]["monkeypatch"]
    assert results["score"] < 100 and "test_reward_to_go" in failures(results)
    with open(corpus["out"] / "gradebook.csv") as handle:
        rows = {row["submission"]: row for row in csv.DictReader(handle)}
    assert float(rows["monkeypatch"]["total (100)"]) == results["score"]


def test_no_sandbox_process_survives(corpus):
    """The setsid case's escaped process (and every sandbox) is gone after the batch."""
    from tests.mutants import ESCAPEE_MARKER
    survivors = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if ESCAPEE_MARKER.encode() in Path(f"/proc/{entry}/environ").read_bytes():
                    survivors.append(entry)
            except OSError:
                pass
    assert survivors == []


def test_huge_output_is_truncated(corpus):
    results = corpus["results"]["huge_output"]
    assert results["score"] == 100
    for test in results["tests"]:
        assert len(test["output"]) <= 4000
    first = next(t for t in results["tests"] if t["tags"][1] == "test_discounted_return")
    assert "Your code printed" in first["output"] and "truncated" in first["output"]


def test_reading_the_solutions_is_refused(corpus):
    message = failures(corpus["results"]["read_solutions"])["test_reward_to_go"]
    assert "PermissionError" in message or "FileNotFoundError" in message or "not available" in message


def test_gradebook_has_a_row_per_submission(corpus):
    with open(corpus["out"] / "gradebook.csv") as handle:
        rows = list(csv.DictReader(handle))
    names = {row["submission"] for row in rows}
    assert names == set(corpus["results"])
    for row in rows:
        assert float(row["total (100)"]) == corpus["results"][row["submission"]]["score"]
        assert float(row["part1 (50)"]) + float(row["part2 (50)"]) == pytest.approx(float(row["total (100)"]))


# ----------------------------------------------------------------------------- one submission

FUNCTIONS = {"policy_gradient": ["discounted_return", "reward_to_go", "estimate_q_values", "discrete_pseudo_loss",
                                   "gaussian_pseudo_loss", "policy_gradient", "importance_sampled_pseudo_loss"],
             "natural_gradient": ["vanilla_step", "score_matrix", "fisher_matrix", "natural_gradient_step",
                                  "fisher_vector_product", "conjugate_gradient", "natural_step_cg", "mean_kl",
                                  "line_search"]}


def test_a_submission_that_hangs_everywhere_stops_at_the_total_limit(tmp_path):
    """Every function loops forever: each call is killed at call_timeout, the calls together
    stop at total_timeout, and every test is reported with why it failed."""
    config = write_test_config(tmp_path / "points.toml", {**TEST_LIMITS, "total_timeout": 30})
    submission = tmp_path / "hangs"
    submission.mkdir()
    for module, names in FUNCTIONS.items():
        (submission / f"{module}.py").write_text("def _hang(*args, **kwargs):\n    while True:\n        pass\n\n\n"
                                                 + "".join(f"{name} = _hang\n" for name in names))
    completed = run_grader("grade", str(submission), "--out", str(tmp_path / "out"), config=config, timeout=600)
    assert completed.returncode == 0, completed.stderr[-2000:]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert res.validate_results(results) == [] and results["score"] == 0
    messages = [res.plain_text(t["output"]) for t in results["tests"]]
    assert len(messages) == len(ALL_TESTS)
    assert all("did not finish" in m or "time limit (30 s) was reached" in m for m in messages), messages
    assert any("did not finish" in m for m in messages) and any("was reached" in m for m in messages)


def test_grade_always_writes_results(tmp_path, config_file):
    """A path that is not a submission: every test listed with 0 and a message."""
    completed = run_grader("grade", str(tmp_path / "nothing-here"), "--out", str(tmp_path / "out"),
                           config=config_file)
    assert completed.returncode == 0, completed.stderr[-2000:]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert res.validate_results(results) == []
    assert results["score"] == 0 and len(results["tests"]) == len(ALL_TESTS)
    messages = [res.plain_text(t["output"]) for t in results["tests"]]
    assert all("no policy_gradient.py" in m or "no natural_gradient.py" in m for m in messages)
    assert "points" in completed.stdout and "total: 0/100" in completed.stdout
