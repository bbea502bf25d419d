#!/usr/bin/env bash
# Everything a short GPU lease should measure, in one call (issue #7): first the recurrent
# throughput diagnostic with the GPU to itself, then the four apps' `gpu` presets sharing it, each
# with a training time budget that fits what is left. Results come back as three files under $OUT
# (or lease-out/), within the device tool's 8 files back: lease.txt (this script's output),
# rnn_bench.json, and lease.tar.gz holding the bench table, every run dir's JSON/PNG/text files
# (not the models) and one log per job.
#
# HERE (63 of the 64 MiB the call may carry; the de/en files only):
#   tools/gpu/prepare.sh --word2vec nlp/aclImdb.tar.xz timeseries/ETTh1.csv \
#     nlp/multi30k/{train,val,test_2016_flickr}.{de,en}.gz
# THERE:  source tools/gpu/env.sh && bash tools/gpu/lease.sh [SECONDS]     (default 480: a call may run 600 s, and starting the machine eats into a 15-minute lease)
#
# PYTHON=.venv/bin/python KERAS_BACKEND=jax LEASE_PRESET=tiny LEASE_BENCH="--device cpu --grid smoke --batches 2 --no-torch" \
#   bash tools/gpu/lease.sh 240
# rehearses the same plan on a CPU (KERAS_BACKEND=jax); tests/test_gpu_lease.py runs it that way.
set -uo pipefail
cd "$(dirname "$0")/../.."
budget=${1:-480}
preset=${LEASE_PRESET:-gpu}
# The star grid (16 shapes: LSTM/GRU at B=256, T=100, H=256 and one axis moved at a time) against
# PyTorch's cuDNN: native layers, scan unroll 8 with JAX's autodiff, and with the hand-written
# backward pass (the suite's default scan since 2026-11-26). LEASE_BENCH replaces its arguments
# (the CPU rehearsal's smoke grid).
bench_args=${LEASE_BENCH:-"--device gpu --grid gpu --batches 32 --scan-unroll 8 --fused-backward"}
out=$(realpath -m "${OUT:-lease-out}")
py=${PYTHON:-python3}
runs=${LEASE_RUNS:-/tmp/lease-runs}
res=$runs/results  # gathered here, packed into $out at the end
start=$SECONDS
left() { echo $(( budget - (SECONDS - start) )); }
rm -rf "$res" && mkdir -p "$out" "$res/logs"
exec > >(tee "$out/lease.txt") 2>&1
echo "lease plan: ${budget}s; bench, then speech/sentiment/translation/forecast '$preset' presets; results in $out"

# 1. Throughput, alone on the GPU: LEASE_BENCH_PCT (default 45) % of the budget at most (every
#    variant compiles once per shape; the JSON is written shape by shape, so a run cut short keeps its rows).
bench_limit=$(( budget * ${LEASE_BENCH_PCT:-45} / 100 ))
timeout "$bench_limit" "$py" -m bench.rnn_throughput $bench_args --out "$res/rnn_bench.json" > "$res/logs/bench.log" 2>&1
echo "bench: exit $? after $(( SECONDS - start ))s (limit ${bench_limit}s)"
grep "^\[" "$res/logs/bench.log" || tail -3 "$res/logs/bench.log"

# 1b. What a per-step host sync in fit costs on the GPU (the suite's callbacks avoid it since 2026-11-26).
sync_args=${LEASE_SYNC_ARGS:-"--units 128 --steps 100 --batch 256 --batches 50"}
timeout 45 "$py" -m bench.callback_sync $sync_args --out "$res/callback_sync.json" > "$res/logs/callback_sync.log" 2>&1
echo "callback_sync: exit $? after $(( SECONDS - start ))s"; tail -3 "$res/logs/callback_sync.log"

# 2. The four apps at once. Each job is killed at what is left less a margin for copying; its
#    training stops earlier (time_budget_minutes), leaving time for data preparation before it and
#    evaluation after it (speech synthesis ~150 s, translation beam search 82 s on an H100; with
#    210 s speech's evaluation finished but the process was killed on exit on 2026-11-26, so 240).
job_limit=$(( $(left) - 15 ))
if [ "$job_limit" -lt 60 ]; then echo "error: ${job_limit}s left for the trainings; give a larger budget" >&2; exit 2; fi
minutes() { "$py" -c "print(round(max(0.1, ($job_limit - $1) / 60), 2))"; }
# Extra settings per app (LEASE_SET_<APP>, e.g. LEASE_SET_TRANSLATION="--set model.rnn_implementation=scan");
# by default each `gpu` preset runs as it is.
declare -A jobs=(
  [speech]="apps.speech.train --set train.time_budget_minutes=$(minutes 240) ${LEASE_SET_SPEECH:-}"
  [sentiment]="apps.nlp.sentiment.train --set train.time_budget_minutes=$(minutes 180) ${LEASE_SET_SENTIMENT:-}"
  [translation]="apps.nlp.translation.train --set train.time_budget_minutes=$(minutes 180) ${LEASE_SET_TRANSLATION:-}"
  [forecast]="apps.timeseries.train --set train.time_budget_minutes=$(minutes 60) ${LEASE_SET_FORECAST:-}"
)
declare -A pids=()
for name in "${!jobs[@]}"; do
  rm -rf "$runs/$name" "$runs/$name.partial"
  read -r module rest <<< "${jobs[$name]}"
  config=$preset
  # LEASE_PRESET_FORECAST: another forecasting preset for this lease, e.g. etth1-720-gpu (SegRNN's Table 2 recipe)
  # with LEASE_SET_FORECAST="--set data.horizon=96"
  [ "$name" = forecast ] && config=${LEASE_PRESET_FORECAST:-$preset}
  timeout "$job_limit" "$py" -m "$module" --config "$config" --run-dir "$runs/$name" $rest \
    > "$res/logs/$name.log" 2>&1 &
  pids[$name]=$!
done
status=0
for name in "${!pids[@]}"; do
  wait "${pids[$name]}"; code=$?
  [ "$code" -eq 0 ] || status=1
  echo "$name: exit $code after $(( SECONDS - start ))s"
  # A job killed by its limit leaves <run>.partial: its history and config still tell how far it got.
  for dir in "$runs/$name" "$runs/$name.partial"; do
    [ -d "$dir" ] || continue
    dest="$res/runs/$(basename "$dir")"
    mkdir -p "$dest"
    (cd "$dir" && find . -maxdepth 2 -type f \( -name "*.json" -o -name "*.png" -o -name "*.txt" \) \
      -size -2M -exec cp --parents {} "$dest/" \;)
  done
done
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > "$res/device.txt" 2>/dev/null || echo "no GPU" > "$res/device.txt"
# One line per run: its scalar metrics, so the reply's output tail alone tells how it went.
"$py" - "$res/runs" <<'PY'
import json, sys
from pathlib import Path
for path in sorted(Path(sys.argv[1]).glob("*/metrics.json")):
    flat = {}
    def walk(prefix, value):
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}{key}.", inner)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[prefix[:-1]] = value
    walk("", json.loads(path.read_text()))
    print(path.parent.name, " ".join(f"{k}={v:.4g}" for k, v in list(flat.items())[:12]))
PY
[ -f "$res/rnn_bench.json" ] && cp "$res/rnn_bench.json" "$out/"
tar czf "$out/lease.tar.gz" -C "$res" .
echo "done in $(( SECONDS - start ))s; results in $out: lease.txt, rnn_bench.json, lease.tar.gz"
exit $status
