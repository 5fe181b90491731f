"""Finding the two graded files in a submission (a folder or a .zip).

Only policy_gradient.py and natural_gradient.py are taken, from the submission's top or
its hw/ folder (also inside one wrapping folder, as zips made by a file browser have).
Everything else in it is ignored. Nothing is extracted to disk: the files are read into
memory (at most MAX_FILE_BYTES each), so a zip cannot write outside its folder.
"""
from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

from .stubs import GRADED_MODULES

MAX_FILE_BYTES = 2 * 1024 * 1024
PREFIXES = ("", "hw/")


def _candidates(relative_paths: list[str], module: str) -> list[str]:
    """The paths where a module may sit, best first."""
    name = f"{module}.py"
    found = [p for p in relative_paths if PurePosixPath(p).name == name and "__MACOSX" not in p]
    ranked = []
    for prefix in PREFIXES:
        ranked += [p for p in found if p == prefix + name]
    # One wrapping folder: X/name or X/hw/name
    for prefix in PREFIXES:
        ranked += sorted(p for p in found if len(PurePosixPath(p).parts) == 2 + prefix.count("/")
                         and p.endswith("/" + prefix + name) and p not in ranked)
    return ranked


def read_submission(path: Path) -> tuple[dict[str, bytes | None], list[str]]:
    """({module: source bytes or None if missing}, notes on what was taken)."""
    path = Path(path)
    notes: list[str] = []
    files: dict[str, bytes | None] = {m: None for m in GRADED_MODULES}
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            infos = {i.filename: i for i in archive.infolist() if not i.is_dir()}
            for module in GRADED_MODULES:
                ranked = _candidates(list(infos), module)
                if not ranked:
                    continue
                info = infos[ranked[0]]
                if info.file_size > MAX_FILE_BYTES:
                    notes.append(f"{ranked[0]} is larger than {MAX_FILE_BYTES} bytes: ignored")
                    continue
                with archive.open(info) as handle:
                    files[module] = handle.read(MAX_FILE_BYTES + 1)[:MAX_FILE_BYTES]
                notes.append(f"{module}.py taken from {path.name}:{ranked[0]}")
    elif path.is_dir():
        relative = []
        base = path.resolve()
        for depth_glob in ("*.py", "*/*.py", "*/*/*.py"):
            for p in path.glob(depth_glob):
                # no symbolic links: the grader reads as root, the student must not make it
                # copy another file (e.g. /etc/shadow) into the sandbox
                if p.is_symlink() or not p.resolve().is_relative_to(base):
                    if p.name in {f"{m}.py" for m in GRADED_MODULES}:
                        notes.append(f"{p.relative_to(path)} is a symbolic link: ignored")
                    continue
                if p.is_file():
                    relative.append(p.relative_to(path).as_posix())
        for module in GRADED_MODULES:
            ranked = _candidates(relative, module)
            if not ranked:
                continue
            source = path / ranked[0]
            if source.stat().st_size > MAX_FILE_BYTES:
                notes.append(f"{ranked[0]} is larger than {MAX_FILE_BYTES} bytes: ignored")
                continue
            files[module] = source.read_bytes()
            notes.append(f"{module}.py taken from {ranked[0]}")
    else:
        notes.append(f"{path} is neither a folder nor a .zip file")
    for module, data in files.items():
        if data is None:
            notes.append(f"{module}.py not found in the submission (looked at its top and under hw/)")
    return files, notes
