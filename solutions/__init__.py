"""Reference implementations of the graded modules. Never shipped to students.

solutions/<module>.py is the single source of hw/<module>.py: `python -m grader stubs`
replaces each `# BEGIN SOLUTION ... # END SOLUTION` region by a TODO.
"""
import hw  # noqa: F401  (quiet TensorFlow start-up)
