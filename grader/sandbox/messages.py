"""What the student reads when their code fails in the sandbox: the two error types and
the text made from an error the student's process reported."""
from __future__ import annotations


class StudentError(Exception):
    """The student's code raised, timed out, crashed, is missing or returned garbage."""

    def __init__(self, message: str, kind: str = "exception"):
        super().__init__(message)
        self.message, self.kind = message, kind


class GraderError(Exception):
    """The grader itself could not run the sandbox."""


def _error_text(error) -> tuple[str, str, str]:
    if not isinstance(error, dict):
        return "Error", str(error), ""
    return str(error.get("type", "Error")), str(error.get("message", "")), str(error.get("traceback", ""))


def call_message(module: str, function: str, error) -> str:
    """A student function raised: its exception and the student's own frames."""
    kind, message, trace = _error_text(error)
    if kind == "NotImplementedError":
        return f"{function}() is not implemented yet: {message}"
    if kind == "AttributeError" and message.startswith(f"hw/{module}.py has no function"):
        return message
    text = f"{function}() raised {kind}: {message}"
    if trace:
        text += f"\n{trace.rstrip()}"
    return text


def import_message(module: str, error, missing: bool) -> str:
    """A graded module could not be imported."""
    if missing:
        return f"the submission has no {module}.py (looked at its top and under hw/)"
    kind, message, trace = _error_text(error)
    text = f"hw/{module}.py could not be imported: {kind}: {message}"
    if trace:
        text += f"\n{trace.rstrip()}"
    return text
