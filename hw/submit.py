"""Pack your submission (provided, no TODOs):

    python -m hw.submit                  # writes submission.zip, then runs the public tests
    python -m hw.submit --no-tests       # only the checks and the zip

Checks that hw/policy_gradient.py and hw/natural_gradient.py are there and import (it
refuses to write the zip otherwise: the grader would give that part 0), warns about every
function that still raises a TODO's NotImplementedError (it scores 0), writes
submission.zip holding the two files, and prints the summary of the public tests
(`pytest hw/`). Upload submission.zip to Gradescope. Nothing else of your folder is
graded: the grader brings its own copy of every other module.
"""
from __future__ import annotations

import argparse
import ast
import importlib.util
import re
import subprocess
import sys
import traceback
import zipfile
from collections import Counter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
FILES = ("policy_gradient.py", "natural_gradient.py")


def todo_functions(source: str) -> list[str]:
    """The functions of `source` that still raise NotImplementedError with a TODO message."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef):
            for inner in ast.walk(node):
                if (isinstance(inner, ast.Raise) and isinstance(inner.exc, ast.Call)
                        and getattr(inner.exc.func, "id", None) == "NotImplementedError"
                        and "TODO" in ast.unparse(inner.exc)):
                    names.append(node.name)
                    break
    return names


def import_error(path: Path) -> str | None:
    """None if the file imports, else the error (its last traceback lines)."""
    spec = importlib.util.spec_from_file_location(f"_submission_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except BaseException:  # SyntaxError, ImportError, SystemExit...: the grader could not import it either
        return "".join(traceback.format_exc().splitlines(keepends=True)[-4:]).rstrip()
    return None


def public_tests_summary(folder: Path) -> tuple[str, dict[str, Counter]]:
    """(pytest's summary line, {test file: Counter of outcomes}) of the public tests in folder/tests."""
    result = subprocess.run([sys.executable, "-m", "pytest", str(folder / "tests"), "-q", "--tb=no", "-rA",
                             "-p", "no:cacheprovider"], cwd=folder.parent, capture_output=True, text=True)
    lines = result.stdout.strip().splitlines()
    per_file: dict[str, Counter] = {}
    for line in lines:
        match = re.match(r"^(PASSED|FAILED|ERROR|SKIPPED)\s+(\S+?)(::|\s|$)", line)
        if match:
            per_file.setdefault(match.group(2), Counter())[match.group(1).lower()] += 1
    summary = re.sub(r"^=+ | =+$", "", lines[-1]) if lines else result.stderr.strip()[-500:]
    return summary, per_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hw.submit", description=(
        "Check hw/policy_gradient.py and hw/natural_gradient.py, write submission.zip (upload it to Gradescope), "
        "and run the public tests."))
    parser.add_argument("--out", type=Path, default=Path("submission.zip"), help="the zip to write")
    parser.add_argument("--no-tests", action="store_true", help="do not run the public tests")
    args = parser.parse_args(argv)

    missing = [name for name in FILES if not (PACKAGE / name).is_file()]
    if missing:
        print(f"hw.submit: {', '.join(missing)} missing from {PACKAGE}: nothing written. "
              "Both files are graded; put them back (the release has the originals).", file=sys.stderr)
        return 1
    broken = {name: error for name in FILES if (error := import_error(PACKAGE / name)) is not None}
    if broken:
        for name, error in broken.items():
            print(f"hw.submit: hw/{name} does not import, so the grader would give its part 0:\n{error}\n",
                  file=sys.stderr)
        print("hw.submit: nothing written. Fix the error, then run python -m hw.submit again.", file=sys.stderr)
        return 1

    for name in FILES:
        todos = todo_functions((PACKAGE / name).read_text())
        if todos:
            print(f"warning: hw/{name}: {', '.join(todos)} still raise{'s' if len(todos) == 1 else ''} the TODO's "
                  "NotImplementedError: every check that needs them scores 0")
    with zipfile.ZipFile(args.out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in FILES:
            archive.write(PACKAGE / name, arcname=name)
    print(f"wrote {args.out} ({', '.join(FILES)}): upload it to Gradescope")

    if not args.no_tests:
        print("running the public tests (pytest hw/) ...", flush=True)
        summary, per_file = public_tests_summary(PACKAGE)
        print(f"public tests: {summary}")
        for path, counts in sorted(per_file.items()):
            print(f"    {path}: " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())))
        if any(counts["failed"] or counts["error"] for counts in per_file.values()):
            print("    pytest hw/ shows why each failing test fails")
    return 0


if __name__ == "__main__":
    sys.exit(main())
