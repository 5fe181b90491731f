"""Finding the two graded files in a submission (a folder or a .zip).

Only policy_gradient.py and natural_gradient.py are taken, from the submission's top or
its hw/ folder (also inside one wrapping folder, as zips made by a file browser have).
Everything else in it is ignored. Nothing is extracted to disk: the files are read into
memory (at most MAX_FILE_BYTES each), so a zip cannot write outside its folder. A damaged
or encrypted zip costs only the files it keeps from being read, with a note saying why.
"""
from __future__ import annotations

import zipfile
import zlib
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


def _read_zip(path: Path, files: dict[str, bytes | None], notes: list[str]) -> set[str]:
    """Take the graded files from a .zip; a damaged or encrypted one costs only the files
    it keeps from being read. Returns the modules found but not taken (each with a note)."""
    refused = set()
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        notes.append(f"{path.name} could not be opened as a .zip ({exc}): make the .zip again, or upload the "
                     "two .py files themselves")
        return set(GRADED_MODULES)
    with archive:
        infos = {i.filename: i for i in archive.infolist() if not i.is_dir()}
        for module in GRADED_MODULES:
            ranked = _candidates(list(infos), module)
            if not ranked:
                continue
            info = infos[ranked[0]]
            where = f"{path.name}:{ranked[0]}"
            refused.add(module)
            if info.flag_bits & 0x1:
                notes.append(f"{where} is encrypted (the .zip has a password): upload a .zip without a password")
                continue
            if info.file_size > MAX_FILE_BYTES:
                notes.append(f"{where} is larger than {MAX_FILE_BYTES} bytes: ignored")
                continue
            try:
                with archive.open(info) as handle:
                    data = handle.read(MAX_FILE_BYTES + 1)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError,
                    ValueError) as exc:
                notes.append(f"{where} could not be read, the .zip is damaged ({type(exc).__name__}: {exc}): "
                             "make the .zip again")
                continue
            if len(data) > MAX_FILE_BYTES:
                notes.append(f"{where} is larger than {MAX_FILE_BYTES} bytes: ignored")
                continue
            files[module] = data
            refused.discard(module)
            notes.append(f"{module}.py taken from {where}")
    return refused


def read_submission(path: Path) -> tuple[dict[str, bytes | None], list[str]]:
    """({module: source bytes or None if missing}, notes on what was taken)."""
    path = Path(path)
    notes: list[str] = []
    files: dict[str, bytes | None] = {m: None for m in GRADED_MODULES}
    refused: set[str] = set()
    if path.is_file() and (path.suffix.lower() == ".zip" or zipfile.is_zipfile(path)):
        refused = _read_zip(path, files, notes)
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
        if data is None and module not in refused:
            notes.append(f"{module}.py not found in the submission (looked at its top and under hw/)")
    return files, notes
