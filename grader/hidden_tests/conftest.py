"""Fixtures of the hidden tests, which run in the grading process (NumPy only, no
TensorFlow). The grading plugin (grader/runner.py) provides `sandbox` (the submission's
process) and `instance` (the hidden inputs and reference answers); from them:

- `pg`, `ng`: pg.f(*args) runs hw.policy_gradient.f(*args) (or natural_gradient) in the
  sandbox and returns plain NumPy arrays;
- `cases`: the running test's cases from the instance.
"""
from __future__ import annotations

import pytest


class Student:
    """student.f(*args, grad_wrt=None, timeout=None, **kwargs) runs hw.<module>.f in the sandbox."""

    def __init__(self, sandbox, module: str):
        self._sandbox, self._module = sandbox, module

    def __getattr__(self, function: str):
        if function.startswith("_"):
            raise AttributeError(function)

        def call(*args, grad_wrt=None, timeout=None, **kwargs):
            return self._sandbox.call(self._module, function, *args, grad_wrt=grad_wrt, timeout=timeout, **kwargs)
        return call


@pytest.fixture
def pg(sandbox):
    return Student(sandbox, "policy_gradient")


@pytest.fixture
def ng(sandbox):
    return Student(sandbox, "natural_gradient")


@pytest.fixture
def cases(instance, request) -> list[dict]:
    return instance["tests"][request.node.name]
