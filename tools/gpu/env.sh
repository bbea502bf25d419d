# Source THERE (the GPU machine) at the start of a command, from the project root:
#   source tools/gpu/env.sh && python3 -m apps.nlp.translation.train --config gpu --run-dir /tmp/runs/tr
# Installs the carried wheels, selects the JAX backend and points the apps at the carried data.
python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .gpu-wheels/*.whl \
  || { echo "error: run tools/gpu/prepare.sh here first and carry .gpu-wheels" >&2; return 1; }
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1
export LSTM_SUITE_DATA=$PWD/.gpu-data LSTM_SUITE_CACHE=${LSTM_SUITE_CACHE:-/tmp/lstm-suite-cache}
[ -d .gpu-data/pico-debs ] && export LSTM_SUITE_PICO_DEBS=$PWD/.gpu-data/pico-debs  # no Debian archive there
[ -d .gpu-data/mbrola-debs ] && export LSTM_SUITE_MBROLA_DEBS=$PWD/.gpu-data/mbrola-debs
# Several trainings sharing one GPU: each takes memory as it needs it instead of 75 % up front.
export XLA_PYTHON_CLIENT_PREALLOCATE=${XLA_PYTHON_CLIENT_PREALLOCATE:-false}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true
