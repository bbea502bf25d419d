#!/usr/bin/env bash
# `make test`: the fast suite's two passes side by side on the machine's cores.
#   - TensorFlow backend, every test not marked slow, on two xdist workers (in the foreground);
#   - JAX backend, the shared blocks, the apps' scan recurrences and the experiments' compiled loop
#     (tests/common tests/test_rnn_implementation.py tests/experiments), in one process beside it.
# Run one after the other they took 5:05 on 2 cores (3:49 + 1:16, each pass ending with a worker idle
# while the other finished, and the second paying its own start-up); side by side, 4:50; with the
# tests' XLA flags of tests/conftest.py (no fusion emitters: the JAX pass 1:16 -> 0:48 on its own), 4:14.
# The JAX pass's output is kept in a file and printed once the TensorFlow pass is done; the exit
# status is the first failing pass's. Extra arguments go to both passes (e.g. -x, -k NAME).
set -u
PY=${PY:-.venv/bin/python}
log=$(mktemp "${TMPDIR:-/tmp}/lstm-suite-jax-pass.XXXXXX")
jax=""
# Without job control a background job ignores Ctrl-C: stop it with the script, and drop its log.
trap '[ -n "$jax" ] && kill "$jax" 2>/dev/null; rm -f "$log"' EXIT
trap 'exit 130' INT TERM

KERAS_BACKEND=jax "$PY" -m pytest -q -m "not slow and not tf_only and not one_backend" \
    tests/common tests/test_rnn_implementation.py tests/experiments "$@" >"$log" 2>&1 &
jax=$!

echo "== TensorFlow pass (the JAX pass runs beside it; its output follows) =="
"$PY" -m pytest -q -m "not slow" -n 2 --dist loadgroup tests "$@"
tf=$?

echo "== JAX pass (KERAS_BACKEND=jax) =="
wait "$jax"
jx=$?
jax=""
cat "$log"
if [ "$tf" -ne 0 ]; then exit "$tf"; fi
exit "$jx"
