"""python -m grader {grade,batch,stubs,release,gradescope} (see README.md, "For instructors")."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader", description="The CS 285 policy-gradient autograder.")
    commands = parser.add_subparsers(dest="command", required=True)

    grade = commands.add_parser("grade", help="grade one submission (a folder or a .zip)")
    grade.add_argument("submission", type=Path)
    grade.add_argument("--out", type=Path, required=True, help="folder for results.json")
    grade.add_argument("--quiet", action="store_true", help="do not print the table")
    grade.add_argument("-k", dest="only", action="append", help="only the hidden tests whose names match (debugging)")

    batch = commands.add_parser("batch", help="grade every submission in a folder (one sub-folder or .zip each)")
    batch.add_argument("folder", type=Path)
    batch.add_argument("--out", type=Path, required=True, help="folder for the results and gradebook.csv")
    batch.add_argument("--jobs", type=int, default=1, help="submissions graded in parallel (default 1)")

    commands.add_parser("stubs", help="regenerate the hw/ stubs from solutions/")

    release = commands.add_parser("release", help="write the student bundle")
    release.add_argument("--out", type=Path, required=True)

    gradescope = commands.add_parser("gradescope", help="write the Gradescope autograder zip")
    gradescope.add_argument("--out", type=Path, required=True, help="the .zip to write")

    args = parser.parse_args(argv)
    if args.command == "grade":
        from .runner import grade as grade_one
        results = grade_one(args.submission, args.out, quiet=args.quiet, only=args.only)
        print(f"wrote {args.out / 'results.json'}", file=sys.stderr)
        return 0 if results is not None else 1
    if args.command == "batch":
        from .batch import run_batch
        return run_batch(args.folder, args.out, jobs=args.jobs)
    if args.command == "stubs":
        from .stubs import write_stubs
        for path in write_stubs():
            print(f"wrote {path}")
        return 0
    if args.command == "release":
        from .release import build_release
        build_release(args.out)
        print(f"wrote the student bundle to {args.out}")
        return 0
    if args.command == "gradescope":
        from .gradescope import build_gradescope
        build_gradescope(args.out)
        print(f"wrote {args.out}")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
