"""Grade submissions on several hidden instances, one sandbox per submission:

    python -m tests.instance_sweep OUT.json STUDENTS NAME=PATH...

STUDENTS is a comma-separated list of student ids; each submission is graded on each of
their instances, through the grader's own stages (the instance from the trusted pre-pass,
the submission's sandbox, the hidden tests), its process started once for all of them.
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
    out, students, pairs = Path(argv[0]), argv[1].split(","), argv[2:]
    config = load_config()
    seeds = {student: instances.instance_seed(config.seed, student) for student in students}
    paths = instances.ensure(list(seeds.values()), config.limits.instance_timeout)
    loaded = {student: instances.load(paths[seed]) for student, seed in seeds.items()}
    graded = {}
    for pair in pairs:
        name, path = pair.split("=", 1)
        files, _ = read_submission(Path(path))
        sandbox = Sandbox(files, config.limits, missing={m: f"no {m}.py" for m, d in files.items() if d is None})
        try:
            sandbox.start()
            graded[name] = {}
            for student, instance in loaded.items():
                plugin = GradingPlugin(sandbox, instance)
                run_hidden_tests(plugin, None)
                graded[name][student] = {key: outcome.passed for key, outcome in plugin.outcomes.items()}
        finally:
            sandbox.close()
    out.write_text(json.dumps(graded, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
