"""The Gradescope autograder zip (`python -m grader gradescope`): setup.sh and run_autograder
at its root, beside the grader's source."""
from __future__ import annotations

import os
import shutil
import stat
import zipfile
from pathlib import Path

from .stubs import ROOT

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (Ubuntu 22.04 with
# Python 3.10, or 24.04 with Python 3.12 whose system pip refuses to install: PEP 668).
# It installs the grader with the tested versions (constraints.txt) into a virtual
# environment, ROOT/venv, never into the system Python. AUTOGRADER_ROOT overrides
# /autograder and AUTOGRADER_PYTHON the python3 the environment is made from (for tests).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON="${AUTOGRADER_PYTHON:-python3}"
apt_install() { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@"; }
command -v "$PYTHON" >/dev/null || apt_install python3
# Debian and Ubuntu keep venv's pip bootstrap (ensurepip) in the python3-venv package.
"$PYTHON" -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
# The sandbox runs the student's code under a uid of its own with setpriv, and in namespaces
# with unshare where the container allows them (util-linux).
command -v setpriv >/dev/null && command -v unshare >/dev/null || apt_install util-linux
"$PYTHON" -m venv "$ROOT/venv"
"$ROOT/venv/bin/python" -m pip install --no-cache-dir --disable-pip-version-check \\
    -c "$ROOT/source/constraints.txt" "$ROOT/source"
# The grader runs from the environment; the source stays private to root.
chmod -R go-rwx "$ROOT/source"
# The image must grade the reference solutions full marks (the course's own instance).
check=$(mktemp -d)
"$ROOT/venv/bin/cs285-grader" grade "$ROOT/source/solutions" --out "$check" --quiet
"$ROOT/venv/bin/python" -I - "$check/results.json" <<'CHECK'
import json, sys
results = json.load(open(sys.argv[1]))
full = sum(test["max_score"] for test in results["tests"])
if not results["tests"] or results["score"] != full:
    sys.exit(f"setup.sh: the reference solutions score {results['score']} of {full} in this image")
print(f"setup.sh: the grader is installed in the virtual environment {sys.prefix}; "
      f"the reference solutions score {results['score']} of {full}")
CHECK
rm -rf "$check"
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission (as root): grade ROOT/submission into
# ROOT/results/results.json with the grader installed by setup.sh in ROOT/venv (its console
# script imports nothing from the working folder), on the hidden instance of the student
# named by Gradescope's submission metadata. AUTOGRADER_ROOT overrides /autograder.
ROOT="${AUTOGRADER_ROOT:-/autograder}"
mkdir -p "$ROOT/results"
chmod -R go-rwx "$ROOT/source" 2>/dev/null || true
cd "$ROOT" || exit 1
"$ROOT/venv/bin/cs285-grader" grade "$ROOT/submission" --out "$ROOT/results" \\
    --metadata "$ROOT/submission_metadata.json"
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
    include = ["setup.py", "pyproject.toml", "README.md", "constraints.txt"]
    trees = ["grader", "hw", "solutions"]
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in (("setup.sh", SETUP_SH), ("run_autograder", RUN_AUTOGRADER)):
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFREG | 0o755) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text)
        for name in include:
            if not (ROOT / name).is_file():
                raise FileNotFoundError(f"{ROOT / name} is missing: the autograder zip needs it"
                                        + (" (python deploy/freeze_constraints.py writes it)"
                                           if name == "constraints.txt" else ""))
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
