"""Shared, backend-agnostic building blocks and the one app pipeline every app declares itself to."""

import os as _os
import sys as _sys

# TensorFlow's C++ start-up lines (CPU feature notes, absl's pre-init warning) say nothing a user can act on.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# TensorFlow 2.21 prints them from C++ whatever TF_CPP_MIN_LOG_LEVEL says ("WARNING: All log messages
# before absl::InitializeLog() ...", the oneDNN "I0000 ... port.cc" note, once per library it loads).
# So TensorFlow, where installed, is imported here once with the process's stderr caught, and everything
# else it printed is passed on. That holds under JAX too: `keras.utils.set_random_seed`, which every app
# calls, imports TensorFlow whenever it is installed (to seed it). LSTM_SUITE_TF_LOGS=1 shows them all.
_NOISE = ("All log messages before absl::InitializeLog()", "oneDNN custom operations are on",
          "This TensorFlow binary is optimized to use available CPU instructions",
          "To enable the following instructions", "Unable to register cu", "computation placer already registered")


def _import_tensorflow_quietly() -> None:
    if "tensorflow" in _sys.modules or _os.environ.get("LSTM_SUITE_TF_LOGS") == "1":
        return
    import tempfile

    try:
        _sys.stderr.flush()
        saved = _os.dup(2)
    except (OSError, ValueError):
        return  # no real stderr to catch (an embedded interpreter): leave TensorFlow's lines alone
    with tempfile.TemporaryFile(mode="w+b") as caught:
        _os.dup2(caught.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except ImportError:
            pass  # a machine without TensorFlow (the GPU machine): Keras says what is missing when used
        finally:
            _os.dup2(saved, 2)
            _os.close(saved)
        caught.seek(0)
        for line in caught.read().decode("utf-8", errors="replace").splitlines():
            if line.strip() and not any(noise in line for noise in _NOISE):
                print(line, file=_sys.stderr)


_import_tensorflow_quietly()
