"""The grader's configuration, typed: grader/points.toml (or the file GRADER_CONFIG names).

Every default lives in points.toml; a file with a key missing is refused with the key's
name, so no second default can hide in the code.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10 (e.g. Gradescope's Ubuntu 22.04 image): the same parser from PyPI
    import tomli as tomllib

POINTS_FILE = Path(__file__).resolve().parent / "points.toml"
TRAINING_TEST = "test_learns_cartpole"  # the learning check's test (grader/learning.py)
VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")


class ConfigError(ValueError):
    """A configuration file that is missing a key or holds a wrong value."""


@dataclass(frozen=True)
class Limits:
    call_timeout: float  # seconds for one call of a student function
    startup_timeout: float  # seconds for the student's process to start (import TensorFlow)
    total_timeout: float  # seconds for all of a submission's calls
    memory_mb: int  # address-space limit of the student's process
    instance_timeout: float  # seconds for the trusted process that computes a hidden instance


@dataclass(frozen=True)
class Training:
    """The optional learning check (grader/learning.py)."""

    enabled: bool
    points: float
    env: str
    algo: str
    steps: int  # environment steps the student's code may train for
    time_limit: float  # seconds the training may take
    hidden_sizes: tuple  # of the policy network
    episodes: int  # of the grader's own evaluation
    threshold: float  # mean evaluation return to pass


@dataclass(frozen=True)
class TestPoints:
    key: str  # the hidden test function's name
    part: str  # "part1"
    number: str  # "1.3": its place in the report
    max_score: float


@dataclass(frozen=True)
class Config:
    limits: Limits
    seed: int  # the course seed
    visibility: str  # of each test in Gradescope, unless test_visibility says otherwise
    test_visibility: dict  # {hidden test name: its visibility}
    stdout_visibility: str
    tests: tuple[TestPoints, ...]
    totals: dict  # {part: its points}
    training: Training
    path: Path

    def visibility_of(self, key: str) -> str:
        return self.test_visibility.get(key, self.visibility)


def _get(table: dict, key: str, where: str, kind):
    if key not in table:
        raise ConfigError(f"{where}: missing the key {key!r}")
    value = table[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ConfigError(f"{where}: {key} = {value!r} is not a {kind.__name__}")
    return value


def load_config(path: Path | str | None = None) -> Config:
    """Read and check the configuration (points.toml unless `path` or GRADER_CONFIG says otherwise)."""
    path = Path(path or os.environ.get("GRADER_CONFIG") or POINTS_FILE)
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    where = str(path)
    table = _get(data, "limits", where, dict)
    limits = Limits(*(_get(table, key, f"{where} [limits]", float)
                      for key in ("call_timeout", "startup_timeout", "total_timeout")),
                    memory_mb=_get(table, "memory_mb", f"{where} [limits]", int),
                    instance_timeout=_get(table, "instance_timeout", f"{where} [limits]", float))
    seed = _get(_get(data, "instances", where, dict), "seed", f"{where} [instances]", int)
    gradescope = _get(data, "gradescope", where, dict)
    visibility = _get(gradescope, "visibility", f"{where} [gradescope]", str)
    stdout_visibility = _get(gradescope, "stdout_visibility", f"{where} [gradescope]", str)
    test_visibility = _get(gradescope, "test_visibility", f"{where} [gradescope]", dict)
    for name, value in (("visibility", visibility), ("stdout_visibility", stdout_visibility), *test_visibility.items()):
        if value not in VISIBILITIES:
            raise ConfigError(f"{where} [gradescope]: {name} = {value!r} is not one of {VISIBILITIES}")
    tests, totals = [], {}
    for part in sorted(k for k in data if k.startswith("part")):
        section = _get(data, part, where, dict)
        totals[part] = _get(section, "total", f"{where} [{part}]", float)
        for i, (key, points) in enumerate(_get(section, "tests", f"{where} [{part}]", dict).items(), start=1):
            tests.append(TestPoints(key, part, f"{part[len('part'):]}.{i}",
                                    _get({key: points}, key, f"{where} [{part}.tests]", float)))
    if not tests:
        raise ConfigError(f"{where}: no [partN.tests] table")
    table = _get(data, "training", where, dict)
    section = f"{where} [training]"
    training = Training(_get(table, "enabled", section, bool), _get(table, "points", section, float),
                        _get(table, "env", section, str), _get(table, "algo", section, str),
                        _get(table, "steps", section, int), _get(table, "time_limit", section, float),
                        tuple(_get(table, "hidden_sizes", section, list)), _get(table, "episodes", section, int),
                        _get(table, "threshold", section, float))
    unknown = set(test_visibility) - {t.key for t in tests} - {TRAINING_TEST}
    if unknown:
        raise ConfigError(f"{where} [gradescope.test_visibility]: no such test {sorted(unknown)}")
    config = Config(limits, seed, visibility, test_visibility, stdout_visibility, tuple(tests), totals, training, path)
    return with_training(config) if training.enabled else config


def with_training(config: Config) -> Config:
    """The configuration with the learning check on (`--train`, or `enabled` in points.toml):
    its test is a part of its own, "training"."""
    if any(t.key == TRAINING_TEST for t in config.tests):
        return config
    points = config.training.points
    return replace(config, training=replace(config.training, enabled=True),
                   tests=config.tests + (TestPoints(TRAINING_TEST, "training", "3.1", points),),
                   totals={**config.totals, "training": points})
