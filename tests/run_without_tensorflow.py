"""Runs `python -m MODULE ARGS...` with TensorFlow (and other CPU-side extras) unimportable.

Emulates the GPU machine, which has JAX but no TensorFlow: `python tests/run_without_tensorflow.py
apps.nlp.sentiment.train --config tiny --run-dir /tmp/x` must work there and here alike. Several
commands separated by `---` run one after another in this one process (one interpreter and JAX
start-up for all); the exit status is the first non-zero one, and each command's status is printed.
"""

import runpy
import sys
import time

BLOCKED = {"tensorflow", "tensorflow_datasets", "tf2onnx", "librosa"}


class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked: emulating a machine without it)")
        return None


def _commands(argv: list[str]) -> list[list[str]]:
    commands, current = [], []
    for arg in argv:
        if arg == "---":
            commands.append(current)
            current = []
        else:
            current.append(arg)
    return [c for c in [*commands, current] if c]


if __name__ == "__main__":
    sys.meta_path.insert(0, _Block())
    status = 0
    for module, *args in _commands(sys.argv[1:]):
        sys.argv = [module, *args]
        start = time.perf_counter()
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        print(f"[run_without_tensorflow] {module}: exit {code} ({time.perf_counter() - start:.1f} s)", flush=True)
        status = status or code
        import keras

        keras.backend.clear_session()
    sys.exit(status)
