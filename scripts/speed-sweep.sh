#!/usr/bin/env bash
# The speed sweep (`make sweep`; docs/src/contributing.md, The speed sweep): the test suite on
# a machine far faster than this one and on one at least three times slower, both stood in
# for on this one.
#
#   fast  every test with JOULEBENCH_TEST_MODEL=standin: the run-timing tests classify with a
#         generated stand-in for MobileNetV2 that takes microseconds, not milliseconds;
#   slow  every test on MobileNetV2 with the CPU shared: 3 × cores − 1 busy loops beside it, so
#         each thread of the tests gets about a third of a core's time.
#
# Before the passes it measures what each one stands for, side by side on this machine: the
# FPS of the sim-cpu rig (100 timed classifications) on MobileNetV2, on the stand-in, and on
# MobileNetV2 under the same contention, and prints the ratios.
#
#   scripts/speed-sweep.sh BINARY [fast|slow|both] -- CARGO TEST COMMAND...
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=run-folder.sh
source scripts/run-folder.sh
bin=$1 passes=$2
shift 2
[ "${1:-}" = -- ] && shift
[ $# -gt 0 ] || { echo "usage: $0 BINARY [fast|slow|both] -- cargo test ..." >&2; exit 2; }
case $passes in fast | slow | both) ;; *) echo "speed-sweep: pass $passes: fast, slow or both" >&2; exit 2 ;; esac

work=$(mktemp -d)
spinners=()
stop_load() {
  [ ${#spinners[@]} -eq 0 ] || kill "${spinners[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  spinners=()
}
trap 'stop_load; rm -rf "$work"' EXIT

# Busy loops, one process each, until stop_load: the CPU a slower machine would not have.
start_load() {
  local n=$(($(nproc) * 3 - 1))
  for _ in $(seq "$n"); do
    (while :; do :; done) &
    spinners+=($!)
  done
}

# The FPS of sim-cpu with `model`, from its summary rows.
fps() {
  local model=$1 out=$work/run-$RANDOM
  "$bin" run --rig sim-cpu --model "$model" --runs 100 --out "$out" >/dev/null 2>&1
  awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "fps") c = i } NR == 2 { print $c }' "$out/$SUMMARY_CSV"
}

# The test that checks the stand-in on both engines writes it where every test binary finds it
# (cargo's CARGO_TARGET_TMPDIR: the target folder's tmp/).
"$@" --test integration end_to_end::the_standin_model >/dev/null
standin=${CARGO_TARGET_DIR:?the Makefile sets it}/tmp/standin_mobilenet_v2.tflite
mobilenet=$(fps mobilenet_v2_1.0_224_quant)
fast=$(fps "$standin")
start_load
slow=$(fps mobilenet_v2_1.0_224_quant)
stop_load
awk -v m="$mobilenet" -v f="$fast" -v s="$slow" 'BEGIN {
  printf "speed-sweep: sim-cpu FPS here: MobileNetV2 %.1f; the stand-in %.1f (%.0fx as fast); MobileNetV2 with the CPU shared %.1f (%.1fx as slow)\n", m, f, f / m, s, m / s }'

# Both passes run whatever the first gives; the script fails at the end if either did.
failed=()
started=$(date +%s)
if [ "$passes" != slow ]; then
  echo "speed-sweep: fast pass (JOULEBENCH_TEST_MODEL=standin)"
  JOULEBENCH_TEST_MODEL=standin "$@" --no-fail-fast || failed+=(fast)
fi
fast_s=$(($(date +%s) - started))
if [ "$passes" != fast ]; then
  echo "speed-sweep: slow pass ($(($(nproc) * 3 - 1)) busy loops on $(nproc) cores)"
  start_load
  "$@" --no-fail-fast || failed+=(slow)
  stop_load
fi
slow_s=$(($(date +%s) - started - fast_s))
if [ ${#failed[@]} -gt 0 ]; then
  echo "speed-sweep: FAILED in the ${failed[*]} pass; fast pass ${fast_s} s, slow pass ${slow_s} s" >&2
  exit 1
fi
echo "speed-sweep: passed; fast pass ${fast_s} s, slow pass ${slow_s} s"
