"""Running a submission's code in a separate, unprivileged process (see process.py)."""
from .isolation import isolation
from .messages import GraderError, StudentError
from .process import Sandbox

__all__ = ["Sandbox", "StudentError", "GraderError", "isolation"]
