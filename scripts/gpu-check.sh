#!/usr/bin/env bash
# The torch backend's GPU checks, in one call on a machine with an NVIDIA GPU (a few minutes):
# CUDA graphs against eager (equal scores, failed captures leave CUDA usable, speed), then
# `joulebench run` on the h100 rig with and without graphs, SingleStream fp32 batch 1 and
# Offline fp16 batch 64, with NVML's energy counter.
#
# The GPU machines have no registries and no Rust: build here, carry the result there.
#   scripts/gpu-check.sh --build   here: builds the release binary and the library's test
#                                  binary with the torch feature, and copies them and the
#                                  models (no .safetensors: they are remade there) into
#                                  gpu-check/ (about 45 MB; ignored by git)
#   scripts/gpu-check.sh           there, from the repository root with gpu-check/ carried
#                                  along: runs the checks against that machine's libtorch
#                                  (python3's torch, or /opt/torch/.venv's; TORCH_DIR=... to
#                                  name one). Everything printed also goes to
#                                  $OUT/gpu-check.log ($OUT if set, else gpu-check/).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=gpu-check

if [ "${1:-}" = --build ]; then
  cache=${JOULEBENCH_CACHE:-$HOME/.cache/joulebench}
  export PATH="$cache/torch-venv/bin:$PATH" LIBTORCH_USE_PYTORCH=1
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
  flags=(--release --locked --features torch)
  cargo build "${flags[@]}"
  # The library's test binary: cargo names it by a hash, which its JSON messages give.
  tests=$(cargo test "${flags[@]}" --lib --no-run --message-format=json |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["kind"] == ["lib"] and m.get("executable"):
        print(m["executable"])')
  [ -n "$tests" ] || { echo "gpu-check: cargo named no test binary for the library" >&2; exit 1; }
  bin="$CARGO_TARGET_DIR/release/joulebench"
  if [ -d ../shared/models ]; then "$bin" models fetch --from ../shared/models; else "$bin" models fetch; fi
  models=${JOULEBENCH_MODELS:-${XDG_DATA_HOME:-$HOME/.local/share}/joulebench/models}
  rm -rf "$dir"
  mkdir -p "$dir/models"
  cp "$bin" "$dir/joulebench"
  cp "$tests" "$dir/torch-lib-tests"
  for f in "$models"/*; do
    case $f in *edgetpu*) continue ;; esac
    cp "$f" "$dir/models/"
  done
  cp analysis/reference/torch_loop.py "$dir/"
  du -sh "$dir"
  echo "gpu-check: built; run scripts/gpu-check.sh on the GPU machine with $dir/ carried along"
  exit 0
fi

[ -x "$dir/joulebench" ] && [ -x "$dir/torch-lib-tests" ] ||
  { echo "gpu-check: no $dir/joulebench or $dir/torch-lib-tests: run scripts/gpu-check.sh --build on the build machine first" >&2; exit 1; }
out=${OUT:-$dir}
mkdir -p "$out"
exec > >(tee "$out/gpu-check.log") 2>&1

# That machine's libtorch: the binaries' rpath names the build machine's venv, and
# LD_LIBRARY_PATH wins over it.
torch_dir=${TORCH_DIR:-}
if [ -z "$torch_dir" ]; then
  for torch_py in python3 /opt/torch/.venv/bin/python3; do
    torch_dir=$("$torch_py" -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null) && break
  done
fi
[ -n "$torch_dir" ] && [ -d "$torch_dir/lib" ] || { echo "gpu-check: no torch found (set TORCH_DIR)" >&2; exit 1; }
export LD_LIBRARY_PATH="$torch_dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export JOULEBENCH_MODELS="$PWD/$dir/models"
echo "== $(date -u +%FT%TZ) gpu-check: torch at $torch_dir ($(cat "$torch_dir/version.py" 2>/dev/null | sed -n "s/^__version__ = //p"))"
nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv,noheader || true

status=0
echo "== torch backend unit tests (CUDA graph against eager, failed captures; CPU ones too)"
"$dir/torch-lib-tests" backend::torch --test-threads=1 --nocapture || status=1
echo "== eager against CUDA graph speed (copy in, forward or replay, scores back)"
"$dir/torch-lib-tests" backend::torch::tests::torch_cuda_graph_speed --exact --ignored --nocapture || status=1

n=0
for args in "" "--no-cuda-graph" \
  "--scenario offline --batch 64 --precision fp16" \
  "--scenario offline --batch 64 --precision fp16 --no-cuda-graph"; do
  n=$((n + 1))
  echo "== joulebench run --rig h100 $args (results in $out/results/$n)"
  # shellcheck disable=SC2086 # the arguments are words
  "$dir/joulebench" run --rig h100 --out "$out/results/$n" $args || status=1
done
# The PyTorch reference in every mode, on that machine's own python3 and torch: the figures
# joulebench's are to beat (issue 11's table).
py=${TORCH_PYTHON:-${torch_py:-python3}}
weights=$(ls "$dir"/models/mobilenet_v2_1.0_224_quant.safetensors 2>/dev/null | head -1)
image=$(ls "$dir"/models/parrot.jpg "$dir"/models/*/parrot.jpg 2>/dev/null | head -1)
if [ -n "$weights" ] && [ -n "$image" ]; then
  for mode in eager graph compile; do
    for shape in "--precision fp32 --batch 1" "--precision fp16 --batch 64 --channels-last"; do
      echo "== torch_loop.py --mode $mode $shape"
      # shellcheck disable=SC2086 # the arguments are words
      "$py" "$dir/torch_loop.py" --weights "$weights" --image "$image" --device cuda \
        --runs 2000 --min-duration 3 --mode $mode $shape || status=1
    done
  done
else
  echo "gpu-check: no float weights or parrot.jpg in $dir/models: reference loop not run"
  status=1
fi
echo "== gpu-check: $([ $status = 0 ] && echo passed || echo FAILED)"
exit $status
