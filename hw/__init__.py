"""CS 285 policy-gradient homework: Lecture 5 part 5 and Lecture 9 part 4, in TensorFlow 2.

Importing this package first imports TensorFlow and tensorflow-probability quietly, so
that students see test results rather than pages of start-up logs. Whatever the import
printed is shown after all if it fails.
"""
import os
import sys
import tempfile
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # no C++ INFO/WARNING logs
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # no oneDNN banner; repeatable CPU sums
# tf.keras is tf-keras (Keras 2), the Keras tensorflow-probability imports anyway; otherwise
# TensorFlow also loads Keras 3 at import: 45 MB more in every process and 1 s more start-up.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def _import_tensorflow_quietly() -> None:
    # The CUDA stub logs "Could not find cuda drivers" through absl before TensorFlow
    # reads TF_CPP_MIN_LOG_LEVEL, so the C-level stderr is parked in a file meanwhile.
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved_fd = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            with warnings.catch_warnings():  # tensorflow-probability's own distutils deprecation
                warnings.simplefilter("ignore", DeprecationWarning)
                import tensorflow  # noqa: F401
                import tensorflow_probability  # noqa: F401
        except BaseException:
            os.dup2(saved_fd, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")


_import_tensorflow_quietly()
