"""The Python versions and dependency ranges the course supports: the one home that setup.py
(the repository, the Gradescope image) and the student bundle (grader/release.py) both read.

setup.py loads this file by its path, before anything is installed: keep it plain Python
with no imports. The upper bounds stop at the next minor (or major) release that nobody has
tested. The exact versions that were tested live in constraints.txt at the top of the
repository, written by `python deploy/freeze_constraints.py` from the environment that
passed the tests.
"""

# TensorFlow 2.21 ships wheels for CPython 3.10 to 3.13 only.
PYTHON_REQUIRES = ">=3.10,<3.14"

# What the homework needs: the repository and the student bundle install these ranges.
REQUIREMENTS = [
    "tensorflow>=2.16,<2.22",
    "tensorflow-probability>=0.24,<0.26",  # 0.25 (2024-11) is its last release
    "tf-keras>=2.16,<2.22",  # tensorflow-probability imports it
    "gymnasium[classic-control,mujoco]>=1.0,<1.5",
    "numpy>=1.26,<2.5",
    "matplotlib>=3.8,<3.12",
    "tqdm>=4.66,<5",
    "pytest>=8,<10",
    # tensorflow-probability 0.25 imports distutils, which Python 3.12 removed: setuptools
    # provides it (before 69 setuptools itself fails on 3.12).
    "setuptools>=69,<85; python_version >= '3.12'",
]

# What the grader needs besides (the repository only, not the student bundle).
GRADER_REQUIREMENTS = [
    "tomli>=2,<3; python_version < '3.11'",  # reads points.toml where tomllib is missing
]
