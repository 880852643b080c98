#!/usr/bin/env bash
# The torch backend's GPU checks, in one call on a machine with an NVIDIA GPU. In parts, each
# named on the command line (default: all, in this order). Not yet run on a GPU: from the one
# package compiled on an H200 (94 s), expect the compile part to take minutes, so a session
# with little device time runs some parts per call (cached packages are lost with the machine):
#   compile    AOTInductor packages for every configuration below, in parallel
#              (`run --open-only`; about 1.5 min each on an H200, alone)
#   units      the torch backend's unit tests (packages and graphs against eager, failed
#              captures) and the speed test (eager, graph, package, package + graph)
#   runs       `joulebench run` on h100 (SingleStream fp32 batch 1) and h100-offline (fp16
#              batch 64): the default engine, then without the package, then plain eager
#   sweep      h100-offline at batch 1, 8, 64 and 256: inferences per joule by batch
#   bench      `joulebench bench` against PyTorch at its best (torch.compile), alternating,
#              both rigs: the issue's targets, as ratios measured side by side
#   reference  the PyTorch reference loop alone in every mode, both shapes
#
# The GPU machines have no registries and no Rust: build here, carry the result there.
#   scripts/gpu-check.sh --build   here: builds the release binary and the library's test
#                                  binary with the torch feature, and copies them, the
#                                  models (not the float weights, remade there) and the
#                                  Python scripts (reference loop, package export) into
#                                  gpu-check/ (about 40 MB; ignored by git)
#   scripts/gpu-check.sh [PART...] there, from the repository root with gpu-check/ carried
#                                  along: runs the parts against that machine's torch
#                                  (python3's, or /opt/torch/.venv's; TORCH_DIR=... and
#                                  TORCH_PYTHON=... to name one). Everything printed also goes
#                                  to $OUT/gpu-check.log ($OUT if set, else gpu-check/).
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
  models=${JOULEBENCH_MODELS_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/joulebench/models}
  rm -rf "$dir"
  mkdir -p "$dir/models"
  cp "$bin" "$dir/joulebench"
  cp "$tests" "$dir/torch-lib-tests"
  for f in "$models"/*; do
    # The float weights are remade there (`models convert`): 28 MB less to carry.
    case $f in *edgetpu* | *.safetensors) continue ;; esac
    cp "$f" "$dir/models/"
  done
  cp analysis/reference/torch_loop.py analysis/reference/aoti_export.py "$dir/"
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
# LD_LIBRARY_PATH wins over it. Its python3 compiles the packages and runs the reference.
torch_dir=${TORCH_DIR:-}
torch_py=${TORCH_PYTHON:-}
for py in ${torch_py:-python3 /opt/torch/.venv/bin/python3}; do
  [ -n "$torch_dir" ] && break
  torch_dir=$("$py" -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null) && torch_py=$py
done
[ -n "$torch_dir" ] && [ -d "$torch_dir/lib" ] || { echo "gpu-check: no torch found (set TORCH_DIR and TORCH_PYTHON)" >&2; exit 1; }
torch_py=$(command -v "${torch_py:-python3}")
export LD_LIBRARY_PATH="$torch_dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export JOULEBENCH_MODELS_DIR="$PWD/$dir/models"
# Packages are compiled by that python3 from the carried script, and cached beside the
# binaries (that machine is bare at every start).
export JOULEBENCH_TORCH_PYTHON="$torch_py" JOULEBENCH_REFERENCE_DIR="$PWD/$dir"
export JOULEBENCH_CACHE="$PWD/$dir/cache"
echo "== $(date -u +%FT%TZ) gpu-check: torch at $torch_dir ($(sed -n "s/^__version__ = //p" "$torch_dir/version.py" 2>/dev/null)), $torch_py"
nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv,noheader || true

"$dir/joulebench" models convert || { echo "gpu-check: models convert failed" >&2; exit 1; }

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(compile units runs sweep bench reference)
jb="$dir/joulebench"
status=0
step() { echo "== $(date -u +%T) $*"; }

for part in "${parts[@]}"; do
  case $part in
  compile)
    step "compiling AOTInductor packages, in parallel"
    pids=()
    for args in "--rig h100" "--rig h100-offline" "--rig h100-offline --batch 1" \
      "--rig h100-offline --batch 8" "--rig h100-offline --batch 256"; do
      # shellcheck disable=SC2086 # the arguments are words
      "$jb" run $args --open-only & pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || status=1; done
    ;;
  units)
    step "torch backend unit tests (packages and graphs against eager, failed captures; CPU ones too)"
    "$dir/torch-lib-tests" backend::torch --test-threads=1 --nocapture || status=1
    step "speed: eager, graph, package, package + graph (copy in, forward or replay, scores back)"
    "$dir/torch-lib-tests" backend::torch::tests::torch_cuda_graph_speed --exact --ignored --nocapture || status=1
    ;;
  runs)
    n=0
    for rig in h100 h100-offline; do
      for args in "" "--no-aoti" "--no-aoti --no-cuda-graph"; do
        n=$((n + 1))
        step "joulebench run --rig $rig $args (results in $out/results/$n)"
        # shellcheck disable=SC2086 # the arguments are words
        "$jb" run --rig $rig --out "$out/results/$n" $args || status=1
      done
    done
    ;;
  sweep)
    step "joulebench run --rig h100-offline --batch 1,8,64,256 (results in $out/results/sweep)"
    "$jb" run --rig h100-offline --batch 1,8,64,256 --out "$out/results/sweep" || status=1
    ;;
  bench)
    for rig in h100 h100-offline; do
      step "joulebench bench --rig $rig --reference-mode best (joulebench against torch.compile, alternating)"
      "$jb" bench --rig $rig --rounds 3 --reference-mode best --no-sampler || status=1
    done
    ;;
  reference)
    weights=$(ls "$dir"/models/mobilenet_v2_1.0_224_quant.safetensors 2>/dev/null | head -1)
    image=$(ls "$dir"/models/parrot.jpg "$dir"/models/*/parrot.jpg 2>/dev/null | head -1)
    if [ -z "$weights" ] || [ -z "$image" ]; then
      echo "gpu-check: no float weights or parrot.jpg in $dir/models: reference loop not run"
      status=1
      continue
    fi
    for mode in eager graph compile; do
      for shape in "--precision fp32 --batch 1" "--precision fp16 --batch 64 --channels-last"; do
        step "torch_loop.py --mode $mode $shape"
        # shellcheck disable=SC2086 # the arguments are words
        "$torch_py" "$dir/torch_loop.py" --weights "$weights" --image "$image" --device cuda \
          --runs 2000 --min-duration 3 --mode $mode $shape || status=1
      done
    done
    ;;
  *)
    echo "gpu-check: unknown part $part (compile, units, runs, sweep, bench, reference)" >&2
    exit 2
    ;;
  esac
done
echo "== gpu-check: ${parts[*]}: $([ $status = 0 ] && echo passed || echo FAILED)"
exit $status
