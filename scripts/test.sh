#!/usr/bin/env bash
# `make test` after its prerequisites (set-up, build, models): every step, in order, with the
# arguments for `cargo test` (the Makefile's flags).
#
# 1. `cargo test --no-run` over the workspace: the test binaries, run on the stand-in model
#    (the Makefile's comment says why);
# 2. the integration tests (tests/tests.rs); beside them, each crate's unit tests, then
#    scripts/install-check.sh and scripts/lava-check.sh;
# 3. the emulated stages: scripts/cross-test.sh (the aarch64 tarball under qemu-user), then
#    scripts/board-check.sh and scripts/lava-run-check.sh (the real arm64 kernel).
#
# The integration tests mostly wait on timed phases (on 2 cores about a third of the CPU is
# busy while they run), and nothing else here needs what they produce. So the rest runs beside
# them: the unit tests and the two checks at normal priority, and the emulated stages (the
# aarch64 build, the board's images, and the two checks that boot it) at the lowest (nice 19).
# The test binaries are run here, not through `cargo test`, because cargo holds the target
# folder's lock until its last test ends, and install-check's `cargo install` needs it. Output
# beside the integration tests is held and printed when they end. A test that failed only
# because other work ran beside it would fail on any busy machine: the speed sweep runs every
# test with the CPU shared three ways.
set -euo pipefail
cd "$(dirname "$0")/.."
export MODELS_FROM=${MODELS_FROM:-../shared/models}

export JOULEBENCH_TEST_MODEL=standin
work=$(mktemp -d)
beside="" units=""
stop_all() {
  [ -z "$beside$units" ] || kill -- ${beside:+"-$beside"} ${units:+"-$units"} 2>/dev/null || true
  rm -rf "$work"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

cargo test "$@" --no-run --message-format=json-render-diagnostics >"$work/artifacts"
# The binary the integration tests run, copied: install-check's `cargo install` beside them
# puts a build without the torch feature at cargo's path (tests/common's joulebench_bin).
cp "${CARGO_TARGET_DIR:-target}/release/joulebench" "$work/"
export JOULEBENCH_TEST_BIN=$work/joulebench
# Each test binary as `kind folder path`, in cargo's order; it runs in its package's folder, as
# under `cargo test`.
mapfile -t binaries < <(python3 -c '
import json, os, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["profile"]["test"] and m.get("executable"):
        print(m["target"]["kind"][0], os.path.dirname(m["manifest_path"]), m["executable"])
' "$work/artifacts")
if [ ${#binaries[@]} -lt 2 ]; then
  echo "test: cargo listed no test binaries" >&2
  exit 1
fi
# Runs the test binaries of one kind (lib: unit tests, test: integration tests) one after
# another, each with cargo's header line; fails after all have run if any failed.
run_tests() {
  local kind=$1 failed=0 entry k dir bin folder
  for entry in "${binaries[@]}"; do
    read -r k dir bin <<<"$entry"
    [ "$k" = "$kind" ] || continue
    folder=${dir#"$PWD"}
    folder=${folder#/}
    echo "     Running ${bin##*/} in ${folder:-.}"
    (cd "$dir" && "$bin") || failed=1
  done
  return $failed
}

# Its own process group (job control on for the launch), so that an early end (a failed test,
# Ctrl-C) stops all of it; not its own session (setsid): with the kernel's autogroups a new
# session is scheduled as a peer of this one, whatever its nice value.
set -m
# -e: a failed step fails the job (its tests' failures among them), not only the last step.
nice -n 19 bash -ec '
  scripts/cross-test.sh
  if [ "$(uname -m)" = x86_64 ]; then
    scripts/board-vm.sh --build
    scripts/board-vm.sh --build --userland bullseye
  fi
  scripts/board-check.sh
  scripts/lava-run-check.sh
' >"$work/beside.log" 2>&1 </dev/null &
beside=$!
# The unit tests, then the install and LAVA checks, beside the integration tests.
{
  status=0
  run_tests lib || status=1
  scripts/install-check.sh || status=1
  scripts/lava-check.sh "$JOULEBENCH_TEST_BIN" || status=1
  exit $status
} >"$work/units.log" 2>&1 </dev/null &
units=$!
set +m

integration_status=0
run_tests test || integration_status=$?
units_status=0
wait "$units" || units_status=$?
cat "$work/units.log"
if [ "$integration_status" != 0 ] || [ "$units_status" != 0 ]; then
  echo "test: failed (integration tests: exit $integration_status; unit tests and checks: exit $units_status)"
  exit 1
fi

beside_status=0
wait "$beside" || beside_status=$?
cat "$work/beside.log"
if [ "$beside_status" != 0 ]; then
  echo "test: the emulated stages failed (exit $beside_status): their output is above"
  exit 1
fi
