"""The deployable artifacts: the student bundle and the Gradescope autograder zip."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from grader import results as res
from grader.stubs import GRADED_MODULES, ROOT


def run_grader(*args: str, timeout: float = 1800):
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def test_release_bundle_installs_and_fails_on_the_stubs(tmp_path):
    bundle = tmp_path / "release"
    completed = run_grader("release", "--out", str(bundle))
    assert completed.returncode == 0, completed.stderr[-2000:]
    from grader.release import check_no_solutions
    assert check_no_solutions(bundle) == []
    assert not (bundle / "solutions").exists() and not (bundle / "grader").exists()
    assert not list(bundle.rglob("hidden_tests")) and not list(bundle.rglob("points.toml"))
    assert (bundle / "README.md").read_text().strip()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-q",
                              str(bundle)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    where = subprocess.run([str(python), "-c", "import hw.policy_gradient as m; print(m.__file__)"],
                           capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert str(venv) in where.stdout, where.stdout + where.stderr[-2000:]
    tests = subprocess.run([str(python), "-m", "pytest", "hw/", "-x", "-q", "-p", "no:cacheprovider"],
                           capture_output=True, text=True, timeout=900, cwd=bundle)
    assert tests.returncode != 0
    assert "TODO" in tests.stdout + tests.stderr


def test_gradescope_zip_runs_in_a_simulated_autograder(tmp_path):
    archive = tmp_path / "autograder.zip"
    completed = run_grader("gradescope", "--out", str(archive))
    assert completed.returncode == 0, completed.stderr[-2000:]
    import zipfile
    names = zipfile.ZipFile(archive).namelist()
    assert "setup.sh" in names and "run_autograder" in names
    root = tmp_path / "autograder"
    from grader.gradescope import unpack_gradescope
    unpack_gradescope(archive, root)
    (root / "submission" / "hw").mkdir(parents=True)
    for module in GRADED_MODULES:
        shutil.copyfile(ROOT / "solutions" / f"{module}.py", root / "submission" / "hw" / f"{module}.py")
    (root / "results").mkdir()
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=sys.executable)
    run = subprocess.run(["bash", str(root / "run_autograder")], capture_output=True, text=True, env=env,
                         timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((root / "results" / "results.json").read_text())
    assert res.validate_results(results) == []
    assert results["score"] == 100, [t["output"] for t in results["tests"] if t["status"] != "passed"]
