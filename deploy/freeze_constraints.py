"""Write constraints.txt: the exact versions of everything the project installs, taken from
the environment that passed the tests, valid on every supported Python.

    .venv/bin/python deploy/freeze_constraints.py --python PYTHON3.10 --python PYTHON3.12 --python PYTHON3.13

Run it with the tested environment's Python (after `python -m pytest --runslow` passed
there). It keeps the installed version of each package that the requirements in
grader/requirements.py pull in (what `pip freeze` lists, less the project itself and tools
installed by hand). A pinned version that cannot serve another supported Python (numpy 2.3+
dropped 3.10, the requirements ask for a newer setuptools from 3.12), or a package that only
another Python needs (tomli below 3.11), is resolved for that Python by its own
interpreter's pip, with every other pin kept, and gets an environment marker. Each
`--python` names an interpreter of one supported minor version other than the running one;
the script refuses to write a file that leaves one out. Needs the network (pip resolves
against PyPI, downloading only metadata where it can).
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import runpy
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
RANGES = runpy.run_path(str(ROOT / "grader" / "requirements.py"))
REQUIREMENTS = RANGES["REQUIREMENTS"] + RANGES["GRADER_REQUIREMENTS"]
OUT = ROOT / "constraints.txt"


def supported_minors() -> list[str]:
    """"3.10", "3.11", ... as admitted by PYTHON_REQUIRES."""
    allowed = SpecifierSet(RANGES["PYTHON_REQUIRES"])
    return [f"3.{minor}" for minor in range(40) if f"3.{minor}" in allowed]


def installed_closure() -> dict[str, str]:
    """{name: version} of every installed distribution the requirements pull in here."""
    pins: dict[str, str] = {}
    todo = [(Requirement(text), set()) for text in REQUIREMENTS]
    while todo:
        requirement, parent_extras = todo.pop()
        environments = [{"extra": extra} for extra in parent_extras] or [{"extra": ""}]
        if requirement.marker and not any(requirement.marker.evaluate(env) for env in environments):
            continue
        name = canonicalize_name(requirement.name)
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            sys.exit(f"{requirement} is not installed in {sys.prefix}: run this script with the tested environment")
        if dist.version not in requirement.specifier:
            sys.exit(f"{name} {dist.version} is installed but the requirements ask for {requirement}")
        first_visit = name not in pins
        pins[name] = dist.version
        if first_visit or requirement.extras:
            todo.extend((Requirement(text), set(requirement.extras)) for text in dist.requires or [])
    return pins


def requires_python(name: str) -> SpecifierSet:
    return SpecifierSet(importlib.metadata.metadata(name).get("Requires-Python") or "")


def admitted(name: str, version: str, minor: str) -> bool:
    """Whether the requirements that apply on Python `minor` admit this version of `name`."""
    for text in REQUIREMENTS:
        requirement = Requirement(text)
        applies = requirement.marker is None or requirement.marker.evaluate({"python_version": minor, "extra": ""})
        if applies and canonicalize_name(requirement.name) == name and version not in requirement.specifier:
            return False
    return True


def resolve(python: str, constraints: str) -> dict[str, str]:
    """{name: version} that pip of `python` picks for the requirements under these constraints."""
    with tempfile.TemporaryDirectory(prefix="constraints-") as scratch:
        path = Path(scratch) / "constraints.txt"
        path.write_text(constraints)
        report = Path(scratch) / "report.json"
        command = [python, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--only-binary=:all:",
                   "--quiet", "--report", str(report), "-c", str(path), *REQUIREMENTS]
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            sys.exit(f"pip of {python} cannot install the requirements under these constraints:\n"
                     f"{constraints}\n{completed.stderr}")
        return {canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
                for item in json.loads(report.read_text())["install"]}


def pinned(versions: dict[str, str]) -> str:
    return "".join(f"{name}=={version}\n" for name, version in sorted(versions.items()))


def python_minor(python: str) -> str:
    completed = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        sys.exit(f"cannot run {python}: {completed.stderr.strip()}")
    return completed.stdout.strip()


def marker(minors: list[str], supported: list[str]) -> str:
    """A python_version marker for a contiguous run of supported minors ('' for all of them)."""
    conditions = []
    if minors[0] != supported[0]:
        conditions.append(f'python_version >= "{minors[0]}"')
    following = supported.index(minors[-1]) + 1
    if following < len(supported):
        conditions.append(f'python_version < "{supported[following]}"')
    return " and ".join(conditions)


def lines(per_minor: dict[str, dict[str, str]], supported: list[str]) -> list[str]:
    """`name==version[; marker]` lines, one per run of minors that share a version."""
    names = sorted({name for versions in per_minor.values() for name in versions})
    out = []
    for name in names:
        runs: list[tuple[str, list[str]]] = []  # (version, minors), absent minors break a run
        for minor in supported:
            version = per_minor[minor].get(name)
            if version is not None and runs and runs[-1][0] == version and \
                    supported.index(runs[-1][1][-1]) + 1 == supported.index(minor):
                runs[-1][1].append(minor)
            elif version is not None:
                runs.append((version, [minor]))
        for version, minors in runs:
            condition = marker(minors, supported)
            out.append(f"{name}=={version}" + (f"; {condition}" if condition else ""))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", action="append", default=[], metavar="PATH",
                        help="an interpreter of another supported Python version (one per version)")
    args = parser.parse_args()
    supported = supported_minors()
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if here not in supported:
        sys.exit(f"Python {here} is not supported ({RANGES['PYTHON_REQUIRES']})")
    pythons = {python_minor(path): path for path in args.python}
    missing = [minor for minor in supported if minor != here and minor not in pythons]
    if missing:
        sys.exit("give an interpreter (--python PATH) for Python " + ", ".join(missing))
    tested = installed_closure()
    per_minor = {here: tested}
    for minor in supported:
        if minor == here:
            continue
        kept = {name: v for name, v in tested.items()
                if f"{minor}.0" in requires_python(name) and admitted(name, v, minor)}
        per_minor[minor] = resolve(pythons[minor], pinned(kept))
        print(f"Python {minor}: " + (", ".join(f"{n} {v}" for n, v in sorted(per_minor[minor].items())
                                                if tested.get(n) != v) or "the tested versions"))
    header = [
        "# The exact versions the course tested, for `pip install -c constraints.txt ...` (the",
        "# README's install command and the Gradescope image's setup.sh). Generated by",
        "#     python deploy/freeze_constraints.py --python ... (see its docstring); do not edit by hand.",
        f"# Tested on Python {here}; the lines with a marker are what pip picked for the other Pythons.",
    ]
    text = "\n".join(header + lines(per_minor, supported)) + "\n"
    pythons[here] = sys.executable
    for minor in supported:  # the file as written, read by each Python's own pip
        if resolve(pythons[minor], text) != per_minor[minor]:
            sys.exit(f"on Python {minor} pip resolves the file to other versions than the ones chosen")
    OUT.write_text(text)
    print(f"wrote {OUT}: pip of Python {', '.join(supported)} installs exactly its versions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
