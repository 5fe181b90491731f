"""Installs the homework (hw), the reference solutions and the grader with their dependencies."""
from setuptools import find_packages, setup

setup(
    name="cs285-policy-gradients",
    version="1.0.0",
    description="CS 285 policy-gradient homework (Lecture 5 part 5, Lecture 9 part 4) with its autograder",
    python_requires=">=3.10",
    packages=find_packages(include=["hw", "hw.*", "solutions", "solutions.*", "grader", "grader.*"]),
    package_data={"grader": ["*.toml", "hidden_tests/pytest.ini"]},
    install_requires=[
        "tensorflow>=2.16",
        "tensorflow-probability>=0.24",
        "tf-keras>=2.16",  # tensorflow-probability imports it
        "gymnasium[classic-control,mujoco]>=1.0",
        "numpy",
        "matplotlib",
        "tqdm",
        "pytest",
        "tomli; python_version < '3.11'",
    ],
    extras_require={"dev": ["tensorboard"]},
)
