"""Shared, backend-agnostic building blocks and the one app pipeline every app declares itself to."""

import os as _os

# TensorFlow's C++ start-up lines (CPU feature notes, absl's pre-init warning) say nothing a user can act on.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
