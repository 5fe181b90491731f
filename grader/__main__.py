"""python -m grader {grade,batch,diff,stubs,release,gradescope} (see README.md, "For instructors")."""
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
    grade.add_argument("--student", help="grade the hidden instance of this student id (default: the course's own)")
    grade.add_argument("--metadata", type=Path,
                       help="Gradescope's submission_metadata.json: the student id is its users' ids")
    grade.add_argument("--train", action="store_true",
                       help="also run the learning check (the student's code trains CartPole; see points.toml [training])")
    grade.add_argument("--quiet", action="store_true", help="do not print the table")
    grade.add_argument("-k", dest="only", action="append", help="only the hidden tests whose names match (debugging)")

    batch = commands.add_parser("batch", help="grade every submission in a folder (one sub-folder or .zip each)")
    batch.add_argument("folder", type=Path)
    batch.add_argument("--out", type=Path, required=True, help="folder for the results and gradebook.csv")
    batch.add_argument("--jobs", type=int, default=1, help="submissions graded in parallel (default 1)")
    batch.add_argument("--train", action="store_true", help="also run the learning check for every submission")

    regrade = commands.add_parser("diff", help="the students whose points changed between two batch outputs")
    regrade.add_argument("old", type=Path, help="the earlier batch output folder (or its gradebook.csv)")
    regrade.add_argument("new", type=Path, help="the later batch output folder (or its gradebook.csv)")
    regrade.add_argument("--csv", type=Path, help="where to write the changes (default: NEW/regrade-diff.csv)")

    commands.add_parser("stubs", help="regenerate the hw/ stubs from solutions/")

    release = commands.add_parser("release", help="write the student bundle")
    release.add_argument("--out", type=Path, required=True)

    gradescope = commands.add_parser("gradescope", help="write the Gradescope autograder zip")
    gradescope.add_argument("--out", type=Path, required=True, help="the .zip to write")

    args = parser.parse_args(argv)
    if args.command == "grade":
        from .runner import grade as grade_one
        student = args.student
        if args.metadata is not None and student is None:
            from .instances import student_from_metadata
            try:
                student = student_from_metadata(args.metadata)
            except (OSError, ValueError) as exc:
                print(f"note: {exc}; grading the course's own instance", file=sys.stderr)
        results = grade_one(args.submission, args.out, student=student, quiet=args.quiet, only=args.only,
                            train=args.train)
        print(f"wrote {args.out / 'results.json'}", file=sys.stderr)
        return 0 if results is not None else 1
    if args.command == "batch":
        from .batch import run_batch
        return run_batch(args.folder, args.out, jobs=args.jobs, train=args.train)
    if args.command == "diff":
        from .diff import main as diff_main
        return diff_main(args.old, args.new, args.csv)
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
