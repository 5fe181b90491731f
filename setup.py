"""Installs the homework (hw), the reference solutions and the grader with their dependencies.

The supported Pythons and the dependency ranges live in grader/requirements.py (shared with
the student bundle); the exact tested versions in constraints.txt:
    pip install -c constraints.txt -e .
"""
import runpy
from pathlib import Path

from setuptools import find_packages, setup

RANGES = runpy.run_path(str(Path(__file__).resolve().parent / "grader" / "requirements.py"))

setup(
    name="cs285-policy-gradients",
    version="1.0.0",
    description="CS 285 policy-gradient homework (Lecture 5 part 5, Lecture 9 part 4) with its autograder",
    python_requires=RANGES["PYTHON_REQUIRES"],
    packages=find_packages(include=["hw", "hw.*", "solutions", "solutions.*", "grader", "grader.*"]),
    package_data={"grader": ["*.toml", "hidden_tests/pytest.ini"]},
    install_requires=RANGES["REQUIREMENTS"] + RANGES["GRADER_REQUIREMENTS"],
    extras_require={"dev": ["tensorboard"]},
    entry_points={"console_scripts": ["cs285-grader = grader.__main__:main"]},
)
