#!/usr/bin/env bash
# Run HERE (the CPU machine) before sending the tree to a GPU machine that has JAX + CUDA but no
# TensorFlow, no Keras and no package registry. Fills two git-ignored folders to carry along:
#   .gpu-wheels/  keras + the pure/manylinux wheels the apps need there (soundfile, espeakng-loader, num2words)
#   .gpu-data/    copies of the real-data files named on the command line, in ../shared/data's layout
# usage: tools/gpu/prepare.sh [--word2vec] [DATA_PATH ...]     e.g. tools/gpu/prepare.sh nlp/aclImdb.tar.xz nlp/multi30k
#   --word2vec adds gensim (28 MB) for sentiment's model.embedding_init=word2vec
set -euo pipefail
cd "$(dirname "$0")/../.."
shared=${LSTM_SUITE_DATA:-../shared/data}
extra=()
if [ "${1:-}" = "--word2vec" ]; then extra=(gensim==4.4.0 smart_open==9.0.2 wrapt==2.5.2); shift; fi
../shared/tools/gpu-wheels.sh soundfile==0.14.0 espeakng-loader==0.2.4 num2words==0.5.14 cffi==2.1.1 pycparser==3.12 "${extra[@]}" \
  2>&1 | grep -v "^WARNING: Location" | tail -2
mkdir -p .gpu-data
grep -qx "/.gpu-data/" .git/info/exclude 2>/dev/null || echo "/.gpu-data/" >> .git/info/exclude
for item in "$@"; do
  [ -e "$shared/$item" ] || { echo "error: $shared/$item not found (paths are relative to $shared)" >&2; exit 2; }
  mkdir -p ".gpu-data/$(dirname "$item")"
  rm -rf ".gpu-data/$item" && cp -r "$shared/$item" ".gpu-data/$item"
done
du -sh .gpu-wheels .gpu-data
echo "Carry .gpu-wheels and .gpu-data (64 MiB in all with the tree); start the GPU command with: source tools/gpu/env.sh"
