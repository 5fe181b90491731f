"""One source of truth for stubs and solutions, as nbgrader and otter-grader do it.

`solutions/<module>.py` is the source. A region

    # BEGIN SOLUTION: what the student fills in
    ...reference code...
    # END SOLUTION

becomes, in the student's `hw/<module>.py`,

    # TODO: what the student fills in
    raise NotImplementedError("<function>: TODO, what the student fills in (hw/<module>.py)")

at the marker's indentation. Everything outside the regions is copied as it is, so the
stubs and the solutions cannot drift: `python -m grader stubs` rewrites hw/ and a test
checks that the committed stubs are what it writes.
"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GRADED_MODULES = ("policy_gradient", "natural_gradient")

_BEGIN = re.compile(r"^(?P<indent>\s*)# BEGIN SOLUTION(?::\s*(?P<todo>.*\S))?\s*$")
_END = re.compile(r"^\s*# END SOLUTION\s*$")
_DEF = re.compile(r"^(?P<indent>\s*)def (?P<name>\w+)\(")


class MarkerError(ValueError):
    """A solution source whose BEGIN/END SOLUTION markers do not pair up."""


def make_stub(source: str, module: str) -> str:
    """The student version of a solution source (see the module docstring)."""
    out: list[str] = []
    functions: list[tuple[int, str]] = []  # (indent, name) of the enclosing defs
    region_start = None
    for number, line in enumerate(source.splitlines(keepends=True), start=1):
        if region_start is not None:
            if _BEGIN.match(line):
                raise MarkerError(f"{module}.py:{number}: BEGIN SOLUTION inside the region opened at line {region_start}")
            if _END.match(line):
                region_start = None
            continue
        if _END.match(line):
            raise MarkerError(f"{module}.py:{number}: END SOLUTION without a BEGIN SOLUTION")
        definition = _DEF.match(line)
        if definition:
            indent = len(definition["indent"])
            functions = [f for f in functions if f[0] < indent] + [(indent, definition["name"])]
        begin = _BEGIN.match(line)
        if not begin:
            out.append(line)
            continue
        region_start = number
        indent = begin["indent"]
        enclosing = [name for level, name in functions if level < len(indent)]
        if not enclosing:
            raise MarkerError(f"{module}.py:{number}: a solution region must sit inside a function")
        todo = begin["todo"] or "your code here"
        message = f"{enclosing[-1]}: TODO, {todo} (hw/{module}.py)"
        out.append(f"{indent}# TODO: {todo}\n")
        out.append(f"{indent}raise NotImplementedError({message!r})\n")
    if region_start is not None:
        raise MarkerError(f"{module}.py:{region_start}: BEGIN SOLUTION is never closed")
    return "".join(out)


def solution_source(module: str, root: Path = ROOT) -> str:
    return (root / "solutions" / f"{module}.py").read_text()


def write_stubs(root: Path = ROOT, destination: Path | None = None,
                modules: tuple[str, ...] = GRADED_MODULES) -> list[Path]:
    """Write hw/<module>.py for each graded module (into `destination`/ if given)."""
    destination = destination or root / "hw"
    written = []
    for module in modules:
        path = destination / f"{module}.py"
        path.write_text(make_stub(solution_source(module, root), module))
        written.append(path)
    return written
