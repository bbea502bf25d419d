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
# PYTHON=.venv/bin/python KERAS_BACKEND=jax LEASE_PRESET=tiny LEASE_BENCH_COMMON="--device cpu --grid smoke --batches 2 --no-torch" \
#   bash tools/gpu/lease.sh 240
# rehearses the same plan on a CPU (KERAS_BACKEND=jax); tests/test_gpu_lease.py runs it that way.
set -uo pipefail
cd "$(dirname "$0")/../.."
budget=${1:-480}
preset=${LEASE_PRESET:-gpu}
# H=128 only: the shape still below target (scan unroll 8 gave 0.80-0.93x PyTorch on an H200, whose
# own H=128 numbers moved 15 % between runs). Three short runs, each with the GPU to itself and its
# own JSON, so one that fails or runs out of time costs only itself:
#   main: scan unroll 8, with and without the hand-written backward pass (scan_fused_backward: the
#     recurrent kernel's gradient as one matmul after the loop; 1.14-1.28x on the CPU), profiled;
#   cmdbuf: the same under XLA command buffers (CUDA graphs) for while loops and conditionals, which
#     replay a loop's many small kernels with one launch;
#   spe: scan unroll 16, and steps_per_execution 4, which hides per-step host work.
# LEASE_BENCH_COMMON replaces the shared arguments (the CPU rehearsal's smoke grid); LEASE_BENCH
# replaces all three runs with one run of the given arguments.
h128=${LEASE_BENCH_COMMON:-"--device gpu --grid anchor --units 128 --batches 32 --repeats 3"}
declare -a bench_names=(main cmdbuf spe)
declare -A bench_runs=(
  [main]="$h128 --scan-unroll 8 --fused-backward --profile"
  [cmdbuf]="$h128 --scan-unroll 8 --fused-backward"
  [spe]="$h128 --scan-unroll 16 --steps-per-execution 1 4"
)
declare -A bench_env=([cmdbuf]="--xla_gpu_enable_command_buffer=+WHILE,+CONDITIONAL --xla_gpu_graph_min_graph_size=1")
if [ -n "${LEASE_BENCH:-}" ]; then bench_names=(main); bench_runs=([main]="$LEASE_BENCH"); bench_env=(); fi
out=$(realpath -m "${OUT:-lease-out}")
py=${PYTHON:-python3}
runs=${LEASE_RUNS:-/tmp/lease-runs}
res=$runs/results  # gathered here, packed into $out at the end
start=$SECONDS
left() { echo $(( budget - (SECONDS - start) )); }
rm -rf "$res" && mkdir -p "$out" "$res/logs"
exec > >(tee "$out/lease.txt") 2>&1
echo "lease plan: ${budget}s; bench, then speech/sentiment/translation/forecast '$preset' presets; results in $out"

# 1. Throughput diagnostics, alone on the GPU: LEASE_BENCH_PCT (default 40) % of the budget at most,
#    split evenly (every variant compiles once; each JSON is written shape by shape, so a run cut
#    short keeps its rows).
bench_limit=$(( budget * ${LEASE_BENCH_PCT:-40} / 100 / ${#bench_names[@]} ))
for name in "${bench_names[@]}"; do
  json="$res/rnn_bench.json"; [ "$name" = main ] || json="$res/rnn_bench_$name.json"
  flags=(); [ -n "${bench_env[$name]:-}" ] && flags=(env "XLA_FLAGS=${XLA_FLAGS:-} ${bench_env[$name]}")
  "${flags[@]}" timeout "$bench_limit" "$py" -m bench.rnn_throughput \
    ${bench_runs[$name]} --out "$json" > "$res/logs/bench_$name.log" 2>&1
  echo "bench $name: exit $? after $(( SECONDS - start ))s (limit ${bench_limit}s each)"
  grep "^\[" "$res/logs/bench_$name.log" || tail -3 "$res/logs/bench_$name.log"
done

# 1b. What a per-step host sync in fit costs on the GPU (the suite's callbacks avoid it since 2026-11-26).
sync_args=${LEASE_SYNC_ARGS:-"--units 128 --steps 100 --batch 256 --batches 50"}
timeout 45 "$py" -m bench.callback_sync $sync_args --out "$res/callback_sync.json" > "$res/logs/callback_sync.log" 2>&1
echo "callback_sync: exit $? after $(( SECONDS - start ))s"; tail -3 "$res/logs/callback_sync.log"

# 2. The four apps at once. Each job is killed at what is left less a margin for copying; its
#    training stops earlier (time_budget_minutes), leaving time for data preparation before it and
#    evaluation after it (speech synthesis ~150 s, translation beam search 82 s on an H100).
job_limit=$(( $(left) - 15 ))
if [ "$job_limit" -lt 60 ]; then echo "error: ${job_limit}s left for the trainings; give a larger budget" >&2; exit 2; fi
minutes() { "$py" -c "print(round(max(0.1, ($job_limit - $1) / 60), 2))"; }
# Extra settings per app. Speech (BiGRU-128), sentiment (masked BiGRU-128) and translation (masked
# BiLSTM-128 encoder, LSTM-256 decoder) train with the scan recurrence, which the H200 bench found
# 1.0-2.5x (median 1.4x) faster than native at those widths. Speech's and translation's epoch times compare with
# the native runs of 2026-11-26 (docs/results.md, same 4-way sharing; sentiment's preset changed
# since). Forecasting's SegRNN recurs over 2 segments only.
scan="--set model.rnn_implementation=scan"
declare -A jobs=(
  [speech]="apps.speech.train --set train.time_budget_minutes=$(minutes 210) ${LEASE_SET_SPEECH-$scan}"
  [sentiment]="apps.nlp.sentiment.train --set train.time_budget_minutes=$(minutes 180) ${LEASE_SET_SENTIMENT-$scan}"
  [translation]="apps.nlp.translation.train --set train.time_budget_minutes=$(minutes 180) ${LEASE_SET_TRANSLATION-$scan}"
  [forecast]="apps.timeseries.train --set train.time_budget_minutes=$(minutes 60) ${LEASE_SET_FORECAST-}"
)
declare -A pids=()
for name in "${!jobs[@]}"; do
  rm -rf "$runs/$name" "$runs/$name.partial"
  read -r module rest <<< "${jobs[$name]}"
  timeout "$job_limit" "$py" -m "$module" --config "$preset" --run-dir "$runs/$name" $rest \
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
