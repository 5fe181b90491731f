"""The student bundle (`python -m grader release`): stubs, helpers and public tests, no solutions."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from .requirements import PYTHON_REQUIRES, REQUIREMENTS
from .stubs import GRADED_MODULES, ROOT, solution_source, write_stubs

GRADER_DIR = Path(__file__).resolve().parent
DISTINCTIVE = 45  # characters: a solution line this long in a helper or public test is a leak
BEGIN_STUDENT, END_STUDENT = "<!-- BEGIN STUDENT -->", "<!-- END STUDENT -->"

# The bundle installs the ranges the repository installs (grader/requirements.py).
STUDENT_SETUP = '''"""Installs the CS 285 policy-gradient homework package (hw) and its dependencies."""
from setuptools import find_packages, setup

setup(
    name="cs285-hw-policy-gradients",
    version="1.0.0",
    description="CS 285 homework: policy gradients (Lecture 5 part 5) and natural policy gradient (Lecture 9 part 4)",
    python_requires={python_requires!r},
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
    # docs/ is for students: the contract, and the pages and figures the student README links to.
    for page in sorted((ROOT / "docs").glob("*")):
        if page.suffix in (".md", ".png"):
            (out / "docs").mkdir(exist_ok=True)
            shutil.copyfile(page, out / "docs" / page.name)
    (out / "setup.py").write_text(STUDENT_SETUP.format(requirements=REQUIREMENTS, python_requires=PYTHON_REQUIRES))
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
