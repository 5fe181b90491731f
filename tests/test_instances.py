"""Per-student hidden instances and the regrade diff: the same student always gets the same
inputs, two students different ones, every mutant is caught on every instance tried, and
`grader diff` lists exactly the students whose points changed."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from grader import instances
from grader import results as res
from grader.batch import write_gradebook
from grader.config import load_config
from grader.diff import diff
from grader.stubs import ROOT
from tests.mutants import MUTANTS, build
from tests.test_grader import failures, run_grader

STUDENTS = ["ada", "grace", "alan", "barbara", "edsger"]


def test_instance_seeds_are_per_student_and_reproducible():
    seeds = [instances.instance_seed(285, s) for s in STUDENTS]
    assert len(set(seeds)) == len(STUDENTS)
    assert seeds == [instances.instance_seed(285, s) for s in STUDENTS]
    assert instances.instance_seed(285, None) == instances.instance_seed(285, "") == 285
    assert instances.instance_seed(286, "ada") != seeds[0]


def test_student_id_from_gradescope_metadata(tmp_path):
    metadata = tmp_path / "submission_metadata.json"
    metadata.write_text(json.dumps({"id": 1, "users": [{"email": "b@x.edu", "id": 2222, "name": "B"},
                                                       {"email": "a@x.edu", "id": 1111, "name": "A"}]}))
    assert instances.student_from_metadata(metadata) == "1111+2222"
    metadata.write_text(json.dumps({"users": []}))
    with pytest.raises(ValueError):
        instances.student_from_metadata(metadata)


def _grade(submission: Path, out: Path, student: str) -> dict:
    completed = run_grader("grade", str(submission), "--out", str(out), "--student", student, "--quiet",
                           "-k", "test_reward_to_go")
    assert completed.returncode == 0, completed.stderr[-2000:]
    return json.loads((out / "results.json").read_text())


def test_two_students_get_different_inputs_each_reproducible(tmp_path):
    submission = build(MUTANTS["rtg_from_start"], tmp_path / "mutant")
    ada, grace, ada_again = (_grade(submission, tmp_path / name, student)
                             for name, student in (("ada", "ada"), ("grace", "grace"), ("ada2", "ada")))
    messages = [failures(r)["test_reward_to_go"] for r in (ada, grace, ada_again)]
    assert "from the path start" in messages[0]
    assert messages[0] != messages[1]  # other rewards in the message
    assert messages[0] == messages[2]  # the same, bit for bit
    assert ada["extra_data"]["instance"] == ada_again["extra_data"]["instance"] == \
        {"student": "ada", "seed": instances.instance_seed(load_config().seed, "ada")}
    assert grace["extra_data"]["instance"]["seed"] != ada["extra_data"]["instance"]["seed"]


def _sweep(folder: Path, submissions: dict) -> dict:
    spec = folder / "spec.json"
    spec.write_text(json.dumps({"students": STUDENTS, "submissions": submissions}))
    completed = subprocess.run([sys.executable, "-m", "tests.instance_sweep", str(spec), str(folder / "out.json")],
                               cwd=ROOT, capture_output=True, text=True, timeout=3600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads((folder / "out.json").read_text())


@pytest.mark.slow
def test_reference_passes_and_every_mutant_is_caught_on_every_instance(tmp_path):
    """Each of five students' instances is valid: the reference scores full marks on it and
    every mutant of the catalog fails, on it, every test that is to catch it (only those
    tests are run for a mutant)."""
    submissions = {"solutions": {"path": str(ROOT / "solutions"), "only": None}}
    for name, case in MUTANTS.items():
        submissions[name] = {"path": str(build(case, tmp_path / "corpus" / name)), "only": sorted(case.catches)}
    names = sorted(submissions)
    instances.ensure([instances.instance_seed(load_config().seed, s) for s in STUDENTS],
                     load_config().limits.instance_timeout, processes=2)
    shares = []
    for i in range(2):
        (tmp_path / f"sweep{i}").mkdir()
        shares.append((tmp_path / f"sweep{i}", {n: submissions[n] for n in names[i::2]}))
    with ThreadPoolExecutor(2) as pool:
        graded = {}
        for part in pool.map(lambda share: _sweep(*share), shares):
            graded.update(part)
    assert set(graded) == set(submissions)
    for student in STUDENTS:
        assert len(graded["solutions"][student]) == len(load_config().tests)
        assert all(graded["solutions"][student].values()), (student, graded["solutions"][student])
        for name, case in MUTANTS.items():
            passed = graded[name][student]
            assert set(passed) == case.catches, (name, sorted(passed))
            escaped = sorted(test for test in case.catches if passed[test])
            assert not escaped, f"mutant {name} escapes {escaped} on {student}'s instance"


def _batch_output(folder: Path, scores: dict[str, dict[str, bool]], messages: dict[str, str]) -> Path:
    """A batch output folder in the grader's own format, from {student: {test: passed}}."""
    config = load_config()
    graded = {}
    for student, passed in scores.items():
        outcomes = {key: res.Outcome(ok, "passed" if ok else messages.get(key, "failed")) for key, ok in passed.items()}
        graded[student] = res.build_results(outcomes, execution_time=1.0, config=config)
        res.write_results(folder / student, graded[student])
    write_gradebook(folder / "gradebook.csv", graded, config)
    return folder


def test_diff_lists_exactly_the_students_whose_points_changed(tmp_path):
    keys = [t.key for t in load_config().tests]
    everything = {key: True for key in keys}
    old = {"ada": everything, "grace": {**everything, keys[0]: False}, "alan": {**everything, keys[1]: False},
           "edsger": everything}
    new = {"ada": everything, "grace": everything, "alan": {**everything, keys[1]: False, keys[2]: False},
           "barbara": everything, "edsger": everything}
    message = "reward_to_go(...): wrong values\nExpected: [1]\nGot: [2]"
    before = _batch_output(tmp_path / "old", old, {})
    after = _batch_output(tmp_path / "new", new, {keys[2]: message})
    changes, unchanged = diff(before, after)
    assert [c.student for c in changes] == ["alan", "barbara", "grace"]
    assert unchanged == 2  # ada and edsger
    alan = changes[0]
    assert [t[0] for t in alan.tests] == [keys[2]] and alan.tests[0][3] == "reward_to_go(...): wrong values"
    assert changes[1].old_total is None and changes[1].new_total == 100
    assert changes[2].tests == [(keys[0], 0.0, load_config().tests[0].max_score, "passed")]
    completed = run_grader("diff", str(before), str(after))
    assert completed.returncode == 0, completed.stderr
    assert "3 student(s) changed, 2 unchanged" in completed.stdout
    with open(after / "regrade-diff.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["student"] for row in rows} == {"alan", "barbara", "grace"}
    # the same from the two gradebooks alone (no messages)
    changes_csv, unchanged_csv = diff(before / "gradebook.csv", after / "gradebook.csv")
    assert [c.student for c in changes_csv] == ["alan", "barbara", "grace"] and unchanged_csv == 2
