"""The deployable artifacts, installed the way they are installed in their real homes: the
student bundle (`pip install .` in a fresh virtual environment) and the Gradescope
autograder zip (setup.sh, then run_autograder).

By default the installs run offline: each fresh virtual environment sees the tested
environment's packages through a .pth file and pip may not use the network (no index, no
build isolation), so pip itself checks that the declared ranges and constraints.txt admit
the tested versions, and builds and installs the project for real. The tests marked
`network` (deselected unless `pytest -m network`) install everything from PyPI into bare
virtual environments, as a student and Gradescope's image build do.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from grader import results as res
from grader.gradescope import unpack_gradescope
from grader.release import check_no_solutions
from grader.requirements import PYTHON_REQUIRES
from grader.stubs import GRADED_MODULES, ROOT

# The interpreter this test run's environment was made from: fresh environments use it too.
BASE_PYTHON = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
STUDENT = "271828"  # the Gradescope user id in the submission metadata
# pip without the network; PIP_NO_BUILD_ISOLATION=0 is pip's spelling of --no-build-isolation.
OFFLINE = {"PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def run(command: list, timeout: float = 900, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=timeout,
                          check=False, **kwargs)


def run_grader(*args: str) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "grader", *args], timeout=600, cwd=ROOT)


def environment(**overrides: str) -> dict:
    """This process's environment without its virtual environment, Python and pip settings."""
    env = {k: v for k, v in os.environ.items()
           if k != "VIRTUAL_ENV" and not k.startswith(("PYTHON", "PIP_"))}
    env.update(overrides)
    return env


def fresh_venv(path: Path, see_tested: bool) -> Path:
    """A new virtual environment made from BASE_PYTHON; with see_tested, the packages of the
    environment running these tests are visible in it (after its own), installed nowhere."""
    created = run([BASE_PYTHON, "-m", "venv", path], timeout=300, env=environment())
    assert created.returncode == 0, created.stderr[-2000:]
    python = path / "bin" / "python"
    if see_tested:
        site = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], env=environment())
        tested = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
        (Path(site.stdout.strip()) / "tested-environment.pth").write_text("".join(f"{p}\n" for p in tested))
    return python


def solutions_submission(folder: Path) -> Path:
    (folder / "hw").mkdir(parents=True)
    for module in GRADED_MODULES:
        shutil.copyfile(ROOT / "solutions" / f"{module}.py", folder / "hw" / f"{module}.py")
    return folder


def read_results(path: Path) -> dict:
    results = json.loads(path.read_text())
    assert res.validate_results(results) == [], results
    return results


def release_bundle(folder: Path) -> Path:
    completed = run_grader("release", "--out", str(folder))
    assert completed.returncode == 0, completed.stderr[-2000:]
    return folder


@pytest.fixture
def gradescope_root(tmp_path):
    """The autograder zip, unpacked as Gradescope does (ROOT/source, ROOT/run_autograder).
    Like /autograder, ROOT is open to other users and, as root, at the top of the file
    system: the student's code runs under another uid that must reach the Python in
    ROOT/venv, and the namespace sandbox gives it an empty /tmp of its own."""
    archive = tmp_path / "autograder.zip"
    completed = run_grader("gradescope", "--out", str(archive))
    assert completed.returncode == 0, completed.stderr[-2000:]
    names = zipfile.ZipFile(archive).namelist()
    assert {"setup.sh", "run_autograder", "constraints.txt", "setup.py", "grader/requirements.py"} <= set(names)
    root = Path(tempfile.mkdtemp(prefix="cs285-autograder-", dir="/" if os.geteuid() == 0 else None))
    root.chmod(0o755)
    unpack_gradescope(archive, root)
    solutions_submission(root / "submission")
    (root / "submission_metadata.json").write_text(json.dumps({"users": [{"id": STUDENT, "name": "A Student"}]}))
    yield root
    shutil.rmtree(root)


def check_stubs_fail_with_todo(python: Path, bundle: Path, tmp_path: Path) -> None:
    """hw is imported from `python`'s environment, and the public tests fail on the TODOs."""
    where = run([python, "-c", "import hw.policy_gradient as m; print(m.__file__)"], cwd=tmp_path, env=environment())
    assert str(python.parent.parent) in where.stdout, where.stdout + where.stderr[-2000:]
    tests = run([python, "-m", "pytest", "hw/", "-x", "-q", "-p", "no:cacheprovider"], cwd=bundle,
                env=environment())
    assert tests.returncode == 1, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert "NotImplementedError" in tests.stdout and "TODO" in tests.stdout, tests.stdout[-3000:]


def check_gradescope(root: Path, env: dict) -> None:
    """setup.sh, then run_autograder on the reference solutions: full marks, from the
    grader installed in ROOT/venv, never from the source folder."""
    setup = run(["bash", root / "source" / "setup.sh"], timeout=1800, cwd=root / "source", env=env)
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
    assert "the reference solutions score 100" in setup.stdout, setup.stdout[-3000:]
    grader_file = run([root / "venv" / "bin" / "python", "-I", "-c", "import grader; print(grader.__file__)"],
                      env=environment())
    assert grader_file.stdout.startswith(str(root / "venv")), grader_file.stdout + grader_file.stderr[-2000:]
    graded = run(["bash", root / "run_autograder"], cwd=root, env=env)
    assert graded.returncode == 0, graded.stderr[-3000:]
    results = read_results(root / "results" / "results.json")
    assert results["score"] == 100, [t["output"] for t in results["tests"] if t["status"] != "passed"]
    assert results["extra_data"]["instance"]["student"] == STUDENT  # from the submission metadata
    # Python writes __pycache__ beside what it imports: nothing came from the zip's source.
    assert not list((root / "source").rglob("__pycache__"))


# ----------------------------------------------------------------------------- offline

def test_release_bundle_installs_and_fails_on_the_stubs(tmp_path):
    bundle = release_bundle(tmp_path / "release")
    assert check_no_solutions(bundle) == []
    assert not (bundle / "solutions").exists() and not (bundle / "grader").exists()
    assert not list(bundle.rglob("hidden_tests")) and not list(bundle.rglob("points.toml"))
    assert (bundle / "README.md").read_text().strip()
    python = fresh_venv(tmp_path / "venv", see_tested=True)
    # with its dependencies: pip checks the bundle's ranges against the tested versions
    install = run([python, "-m", "pip", "install", bundle], env=environment(**OFFLINE))
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    check_stubs_fail_with_todo(python, bundle, tmp_path)


@pytest.mark.parametrize("project", ["repository", "bundle"])
def test_only_the_supported_pythons_may_install(tmp_path, project):
    """The built package declares the supported range as its Requires-Python, which pip checks
    before it installs anything: on Python 3.9 or 3.14 (no TensorFlow wheels) it stops with
    "requires a different Python: 3.14.0 not in '<3.14,>=3.10'"."""
    folder = ROOT if project == "repository" else release_bundle(tmp_path / "release")
    report = tmp_path / "report.json"
    completed = run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--report", report, folder],
                    env=environment(**OFFLINE))
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    declared = SpecifierSet(json.loads(report.read_text())["install"][0]["metadata"]["requires_python"])
    assert declared == SpecifierSet(PYTHON_REQUIRES)
    versions = ("3.9", "3.10", "3.11", "3.12", "3.13", "3.14")
    assert [version for version in versions if version in declared] == ["3.10", "3.11", "3.12", "3.13"]


def test_gradescope_zip_sets_up_and_grades_in_a_simulated_autograder(gradescope_root):
    root = gradescope_root
    # setup.sh makes ROOT/venv from the same Python: it keeps the .pth that shows it the tested
    # packages, and installs the project with constraints.txt, which pip checks against them.
    fresh_venv(root / "venv", see_tested=True)
    check_gradescope(root, environment(AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=str(BASE_PYTHON), **OFFLINE))


def test_run_autograder_writes_results_when_the_grader_is_missing(gradescope_root):
    """Without setup.sh (no virtual environment), every submission still gets a results.json."""
    root = gradescope_root
    graded = run(["bash", root / "run_autograder"], cwd=root, env=environment(AUTOGRADER_ROOT=str(root)))
    assert graded.returncode == 0, graded.stderr[-3000:]
    results = read_results(root / "results" / "results.json")
    assert results["score"] == 0 and "the autograder failed to start (exit 127)" in results["output"]


# ----------------------------------------------------------------------------- from PyPI

@pytest.mark.network
def test_release_bundle_installs_from_pypi(tmp_path):
    """The students' command in a bare virtual environment: the ranges, nothing pinned."""
    bundle = release_bundle(tmp_path / "release")
    python = fresh_venv(tmp_path / "venv", see_tested=False)
    install = run([python, "-m", "pip", "install", "--no-cache-dir", bundle], timeout=1800, env=environment())
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    check_stubs_fail_with_todo(python, bundle, tmp_path)


@pytest.mark.network
def test_gradescope_setup_installs_from_pypi(gradescope_root):
    """setup.sh as Gradescope runs it (apart from apt-get): a bare virtual environment, the
    tested versions from PyPI."""
    root = gradescope_root
    check_gradescope(root, environment(AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=str(BASE_PYTHON)))
