"""The staging folder: all the student's process can see of the project.

    staging/hw/           a trusted copy of hw/ (policies, utils, the MDP and LQ helpers),
                          without its tests, plus the student's two files
    staging/runtime/      the child script and the wire format it speaks

Root-owned and read-only to others.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..stubs import GRADED_MODULES, ROOT

GRADER_DIR = Path(__file__).resolve().parent.parent
RUNTIME = {"child.py": GRADER_DIR / "sandbox" / "child.py", "wire.py": GRADER_DIR / "wire.py"}


def stage(files: dict[str, bytes | None], base: Path) -> Path:
    """Write base/staging and return it (the child script is staging/runtime/child.py)."""
    staging = base / "staging"
    hw_dir, runtime = staging / "hw", staging / "runtime"
    hw_dir.mkdir(parents=True)
    runtime.mkdir()
    for source in sorted((ROOT / "hw").glob("*.py")):
        if source.stem not in GRADED_MODULES:
            shutil.copyfile(source, hw_dir / source.name)
    for module, data in files.items():
        if data is not None:
            (hw_dir / f"{module}.py").write_bytes(data)
    for name, source in RUNTIME.items():
        shutil.copyfile(source, runtime / name)
    for folder in (staging, hw_dir, runtime):
        os.chmod(folder, 0o755)
        for path in folder.iterdir():
            if path.is_file():
                os.chmod(path, 0o644)
    return staging
