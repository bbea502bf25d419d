#!/usr/bin/env bash
# Run HERE (the CPU machine) before sending the tree to a GPU machine that has JAX + CUDA but no
# TensorFlow, no Keras and no package registry. Fills two git-ignored folders to carry along:
#   .gpu-wheels/  keras + the pure/manylinux wheels the apps need there (soundfile, espeakng-loader, num2words)
#   .gpu-data/    copies of the real-data files named on the command line, in ../shared/data's layout,
#                 and the .deb files of SVOX Pico (pico-debs/, 4.3 MB) and MBROLA (mbrola-debs/, 17.6 MB)
# usage: tools/gpu/prepare.sh [--word2vec] [DATA_PATH ...]     e.g. tools/gpu/prepare.sh nlp/aclImdb.tar.xz nlp/multi30k
#   --word2vec adds gensim (28 MB) for sentiment's model.embedding_init=word2vec
set -euo pipefail
cd "$(dirname "$0")/../.."
shared=${LSTM_SUITE_DATA:-../shared/data}
extra=()
if [ "${1:-}" = "--word2vec" ]; then extra=(gensim==4.4.0 smart_open==9.0.2 wrapt==2.5.2); shift; fi
../shared/tools/gpu-wheels.sh soundfile==0.14.0 espeakng-loader==0.2.4 num2words==0.5.14 cffi==2.1.1 pycparser==3.12 "${extra[@]}" \
  2>&1 | grep -v "^WARNING: Location" | tail -2
rm -rf .gpu-data && mkdir -p .gpu-data  # exactly what is named now: stale copies would eat the carry
grep -qx "/.gpu-data/" .git/info/exclude 2>/dev/null || echo "/.gpu-data/" >> .git/info/exclude
for item in "$@"; do
  [ -e "$shared/$item" ] || { echo "error: $shared/$item not found (paths are relative to $shared)" >&2; exit 2; }
  mkdir -p ".gpu-data/$(dirname "$item")"
  rm -rf ".gpu-data/$item" && cp -r "$shared/$item" ".gpu-data/$item"
done
# SVOX Pico (the speech presets' second engine) as its two .deb files: env.sh points the app at them.
.venv/bin/python -m apps.speech.pico --save-debs .gpu-data/pico-debs | grep -v "^saved"
.venv/bin/python -m apps.speech.mbrola --save-debs .gpu-data/mbrola-debs | grep -v "^saved"
du -sh .gpu-wheels .gpu-data
# The device tool carries the tree (tracked + untracked, not ignored) and the named paths: 64 MiB in all.
total=$( { git ls-files; git ls-files --others --exclude-standard; } | tr '\n' '\0' \
  | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
total=$(( total + $(du -sb .gpu-wheels | cut -f1) + $(du -sb .gpu-data | cut -f1) ))
echo "carry: $(( total / 1048576 )) MiB of 64 (tree + .gpu-wheels + .gpu-data)"
if [ "$total" -gt $(( 64 * 1048576 )) ]; then
  echo "error: over the 64 MiB carry; name fewer data paths (single files, e.g. nlp/multi30k/train.de.gz)" >&2; exit 2
fi
echo "Carry .gpu-wheels and .gpu-data; start the GPU command with: source tools/gpu/env.sh"
