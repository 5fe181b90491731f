"""The trusted pre-pass: `python -I -m grader.instances FOLDER SEED...` computes the hidden
instance of each seed into FOLDER (see __init__.py), then exits."""
from __future__ import annotations

import sys
from pathlib import Path


def build(seed: int) -> dict:
    """Every hidden test's cases for one seed."""
    import hw  # noqa: F401  (imports TensorFlow quietly)
    import tensorflow as tf

    from . import part1, part2  # noqa: F401  (they register their builders)
    from .common import BUILDERS, test_rng, test_seed
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    return {"seed": seed, "tests": {test: builder(test_rng(seed, test), test_seed(seed, test))
                                    for test, builder in BUILDERS.items()}}


def main(argv: list[str]) -> int:
    from . import instance_path, write
    folder, seeds = Path(argv[0]), [int(s) for s in argv[1:]]
    for seed in seeds:
        write(instance_path(seed, folder), build(seed))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
