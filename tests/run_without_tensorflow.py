"""Runs `python -m MODULE ARGS...` with TensorFlow (and other CPU-side extras) unimportable.

Emulates the GPU machine, which has JAX but no TensorFlow: `python tests/run_without_tensorflow.py
apps.nlp.sentiment.train --config tiny --run-dir /tmp/x` must work there and here alike.
"""

import runpy
import sys

BLOCKED = {"tensorflow", "tensorflow_datasets", "tf2onnx", "librosa"}


class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked: emulating a machine without it)")
        return None


if __name__ == "__main__":
    sys.meta_path.insert(0, _Block())
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
