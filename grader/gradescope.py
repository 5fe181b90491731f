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
