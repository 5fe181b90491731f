"""Grade submissions on several hidden instances, one sandbox per submission:

    python -m tests.instance_sweep SPEC.json OUT.json

SPEC.json: {"students": [ids], "submissions": {name: {"path": ..., "only": [tests] or
null}}}. Each submission is graded on each student's instance, through the grader's own
stages (the instance from the trusted pre-pass, the submission's sandbox, the hidden tests:
all of them, or only those named), its process started once for all the instances.
OUT.json gets {name: {student: {test: passed}}}. For tests/test_instances.py."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from grader import instances
from grader.config import load_config
from grader.runner import GradingPlugin, run_hidden_tests
from grader.sandbox import Sandbox
from grader.submission import read_submission


def main(argv: list[str]) -> int:
    spec, out = json.loads(Path(argv[0]).read_text()), Path(argv[1])
    students = spec["students"]
    config = load_config()
    seeds = {student: instances.instance_seed(config.seed, student) for student in students}
    paths = instances.ensure(list(seeds.values()), config.limits.instance_timeout)
    loaded = {student: instances.load(paths[seed]) for student, seed in seeds.items()}
    graded = {}
    for name, submission in spec["submissions"].items():
        files, _ = read_submission(Path(submission["path"]))
        sandbox = Sandbox(files, config.limits, missing={m: f"no {m}.py" for m, d in files.items() if d is None})
        try:
            sandbox.start()
            graded[name] = {}
            for student, instance in loaded.items():
                plugin = GradingPlugin(sandbox, instance)
                run_hidden_tests(plugin, submission["only"])
                graded[name][student] = {key: outcome.passed for key, outcome in plugin.outcomes.items()}
        finally:
            sandbox.close()
    out.write_text(json.dumps(graded, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
