"""The student bundle (`release`) and the Gradescope autograder zip (`gradescope`)."""
from __future__ import annotations

import os
import re
import shutil
import stat
import zipfile
from pathlib import Path

from .stubs import GRADED_MODULES, ROOT, solution_source, write_stubs

GRADER_DIR = Path(__file__).resolve().parent
DISTINCTIVE = 45  # characters: a solution line this long in a helper or public test is a leak
BEGIN_STUDENT, END_STUDENT = "<!-- BEGIN STUDENT -->", "<!-- END STUDENT -->"
STUDENT_REQUIREMENTS = [
    "tensorflow>=2.16",
    "tensorflow-probability>=0.24",
    "tf-keras>=2.16",
    "gymnasium[classic-control,mujoco]>=1.0",
    "numpy",
    "matplotlib",
    "tqdm",
    "pytest",
]

STUDENT_SETUP = '''"""Installs the CS 285 policy-gradient homework package (hw) and its dependencies."""
from setuptools import find_packages, setup

setup(
    name="cs285-hw-policy-gradients",
    version="1.0.0",
    description="CS 285 homework: policy gradients (Lecture 5 part 5) and natural policy gradient (Lecture 9 part 4)",
    python_requires=">=3.10",
    packages=find_packages(include=["hw", "hw.*"]),
    install_requires={requirements!r},
)
'''

FALLBACK_README = """# CS 285 homework: policy gradients and the natural policy gradient

(This README was generated because the course README has no student section yet.)

Install, then run the public tests:

    pip install -e .
    pytest hw/

Fill in the TODOs of `hw/policy_gradient.py` (Part 1, Lecture 5 part 5) and
`hw/natural_gradient.py` (Part 2, Lecture 9 part 4). The public tests fail until you do.
Submit those two files (at the top of your submission or under `hw/`).
"""


def solution_lines() -> set[str]:
    """Every non-trivial line from inside a solution region (to check nothing leaks)."""
    lines = set()
    for module in GRADED_MODULES:
        inside = False
        for line in solution_source(module).splitlines():
            stripped = line.strip()
            if stripped.startswith("# BEGIN SOLUTION"):
                inside = True
                continue
            if stripped.startswith("# END SOLUTION"):
                inside = False
                continue
            if inside and len(stripped) >= 12 and not stripped.startswith("#"):
                lines.add(stripped)
    # A line that the stubs keep outside the regions (e.g. `with tf.GradientTape() as tape:`)
    # is not solution text.
    from .stubs import make_stub
    for module in GRADED_MODULES:
        lines -= {line.strip() for line in make_stub(solution_source(module), module).splitlines()}
    return lines


def student_readme(readme: Path = ROOT / "README.md") -> tuple[str, bool]:
    """(text, True) from README.md between the STUDENT markers, or (fallback, False)."""
    if readme.exists():
        text = readme.read_text()
        match = re.search(re.escape(BEGIN_STUDENT) + r"\n?(.*?)" + re.escape(END_STUDENT), text, re.S)
        if match:
            return match.group(1).strip() + "\n", True
    return FALLBACK_README, False


def _ignore(directory, names):
    return {n for n in names if n == "__pycache__" or n.endswith((".pyc", ".pyo")) or n.startswith(".")}


def build_release(out: Path) -> Path:
    """out/: hw/ with stubs, helpers and public tests, setup.py, README.md. No solutions,
    no hidden tests, no grader."""
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copytree(ROOT / "hw", out / "hw", ignore=_ignore)
    write_stubs(ROOT, destination=out / "hw")  # regenerated from the solutions, whatever hw/ holds
    for picture in sorted((ROOT / "docs").glob("*.png")):  # the figures the student README shows
        (out / "docs").mkdir(exist_ok=True)
        shutil.copyfile(picture, out / "docs" / picture.name)
    (out / "setup.py").write_text(STUDENT_SETUP.format(requirements=STUDENT_REQUIREMENTS))
    (out / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools>=64", "wheel"]\n'
                                        'build-backend = "setuptools.build_meta"\n')
    readme, found = student_readme()
    (out / "README.md").write_text(readme)
    if not found:
        print(f"note: README.md has no {BEGIN_STUDENT} ... {END_STUDENT} section: wrote a generated README")
    leaks = check_no_solutions(out)
    if leaks:
        shutil.rmtree(out)
        raise RuntimeError("the bundle would contain solution code: " + "; ".join(leaks[:5]))
    return out


def check_no_solutions(folder: Path) -> list[str]:
    """Solution lines, solution/grader files found in a folder (empty if clean)."""
    problems = []
    lines = solution_lines()
    for path in sorted(Path(folder).rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.is_dir():
            if path.name in ("solutions", "grader", "hidden_tests"):
                problems.append(f"{relative}/ is shipped")
            continue
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        graded = path.parent.name == "hw" and path.stem in GRADED_MODULES
        for line in text.splitlines():
            # The stubs may hold no solution line at all; other shipped files (helpers, public
            # tests) no distinctive one: short generic lines such as `if policy.discrete:`
            # are shared with the provided code by design.
            if line.strip() in lines and (graded or len(line.strip()) >= DISTINCTIVE):
                problems.append(f"{relative}: {line.strip()[:80]}")
                break
    return problems


SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder image (as root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! command -v python3 >/dev/null || ! python3 -c 'import sys; assert sys.version_info >= (3, 10)'; then
    apt-get update -y && apt-get install -y python3 python3-pip python3-venv
fi
command -v setpriv >/dev/null || (apt-get update -y && apt-get install -y util-linux) || true
cd /autograder/source
python3 -m pip install --upgrade pip
python3 -m pip install tomli || true       # for Python < 3.11 (points.toml)
python3 -m pip install -e .
# The sandbox user must be able to run Python; the source stays private to root.
chmod -R go-rwx /autograder/source
python3 -c "import grader.sandbox as s; print('isolation:', s.isolation().note)"
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission (as root): grade /autograder/submission into
# /autograder/results/results.json. AUTOGRADER_ROOT overrides /autograder (for tests).
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON="${AUTOGRADER_PYTHON:-python3}"
mkdir -p "$ROOT/results"
chmod -R go-rwx "$ROOT/source" 2>/dev/null || true
cd "$ROOT/source" || exit 1
"$PYTHON" -m grader grade "$ROOT/submission" --out "$ROOT/results"
status=$?
# the grader always writes results.json; if even Python failed to start, write one here
if [ ! -s "$ROOT/results/results.json" ]; then
    printf '{"score": 0, "output": "the autograder failed to start (exit %s)", "tests": []}\\n' "$status" \\
        > "$ROOT/results/results.json"
fi
exit 0
"""


def build_gradescope(out: Path) -> Path:
    """A zip with setup.sh and run_autograder at its root, beside the grader's source."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    include = ["setup.py", "pyproject.toml", "README.md"]
    trees = ["grader", "hw", "solutions"]
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in (("setup.sh", SETUP_SH), ("run_autograder", RUN_AUTOGRADER)):
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFREG | 0o755) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text)
        for name in include:
            if (ROOT / name).exists():
                archive.write(ROOT / name, name)
        for tree in trees:
            for path in sorted((ROOT / tree).rglob("*")):
                relative = path.relative_to(ROOT)
                if path.is_dir() or "__pycache__" in relative.parts or path.suffix in (".pyc", ".pyo") \
                        or any(p.startswith(".") for p in relative.parts):
                    continue
                archive.write(path, relative.as_posix())
    return out


def unpack_gradescope(zip_path: Path, autograder_root: Path) -> Path:
    """Unzip as Gradescope does: the zip into ROOT/source, run_autograder copied to ROOT/."""
    source = Path(autograder_root) / "source"
    source.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(source)
    for name in ("run_autograder", "setup.sh"):
        os.chmod(source / name, 0o755)
    shutil.copy2(source / "run_autograder", Path(autograder_root) / "run_autograder")
    return source
