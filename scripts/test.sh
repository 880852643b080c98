#!/usr/bin/env bash
# `make test` after its prerequisites (set-up, build, models): every step, in order, with the
# arguments for `cargo test` (the Makefile's flags).
#
# 1. `cargo test` over the workspace on the stand-in model (the Makefile's comment says why);
# 2. scripts/install-check.sh, scripts/lava-check.sh;
# 3. the emulated stages: scripts/cross-test.sh (the aarch64 tarball under qemu-user), then
#    scripts/board-check.sh and scripts/lava-run-check.sh (the real arm64 kernel).
#
# The emulated stages need nothing the host's tests produce, and the host's tests mostly wait
# on timed phases (on 2 cores about a third of the CPU is busy while they run), so all of them
# (the aarch64 build, the board's images, and the two checks that boot it) run beside them, at
# the lowest priority (nice 19), once the test binaries are built; their output is held and
# printed when the host's steps end. A test that failed only because a build ran beside it would fail on any
# busy machine: the speed sweep runs every test with the CPU shared three ways.
set -euo pipefail
cd "$(dirname "$0")/.."
export MODELS_FROM=${MODELS_FROM:-../shared/models}

JOULEBENCH_TEST_MODEL=standin cargo test "$@" --no-run

beside_log=$(mktemp)
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
' >"$beside_log" 2>&1 </dev/null &
beside=$!
set +m
stop_beside() {
  kill -- "-$beside" 2>/dev/null || true
  rm -f "$beside_log"
}
trap stop_beside EXIT
trap 'exit 130' INT TERM

JOULEBENCH_TEST_MODEL=standin cargo test "$@"
scripts/install-check.sh
scripts/lava-check.sh "${CARGO_TARGET_DIR:-target}/release/joulebench"

beside_status=0
wait "$beside" || beside_status=$?
cat "$beside_log"
if [ "$beside_status" != 0 ]; then
  echo "test: the emulated stages failed (exit $beside_status): their output is above"
  exit 1
fi
