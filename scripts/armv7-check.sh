#!/usr/bin/env bash
# The armv7 tarball (32-bit Raspberry Pi OS; TF Lite 1.15.5 only, built for Cortex-A7 with
# NEON) run under qemu-arm as scripts/dist.sh makes it: `run --rig sim-cpu` and its top-1, a
# chickadee. Called by scripts/dist.sh for that target (`make dist
# TARGETS=armv7-unknown-linux-gnueabihf`); it is not part of `make test`, whose CI budget a
# third TF Lite and dependency tree would take 7 minutes of from an empty cache.
#
#   scripts/armv7-check.sh TARBALL
set -euo pipefail
tarball=$1
sysroot=/usr/arm-linux-gnueabihf
if ! command -v qemu-arm-static >/dev/null || [ ! -e "$sysroot/lib/ld-linux-armhf.so.3" ]; then
  echo "armv7-check: not run: no qemu-arm-static or armhf C library here (scripts/setup.sh --cross on x86-64 installs them)"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -xzf "$tarball" -C "$work"
bin32=$(echo "$work"/joulebench-*/joulebench)
# A window the rig calls invalid (a machine too busy for the sampler) is about the machine.
qemu-arm-static -L "$sysroot" "$bin32" run --rig sim-cpu --runs 3 --out "$work/sim32" \
  > "$work/sim32.log" 2>&1 || grep -q '^joulebench: invalid: ' "$work/sim32.log" || {
  echo "armv7-check: the armv7 binary failed under qemu-arm:"; cat "$work/sim32.log"; exit 1; }
grep -Eq '^0 +tflite +tflite 1\.15\.5 .* chickadee \(20\)$' "$work/sim32.log" || {
  echo "armv7-check: sim-cpu under qemu-arm did not classify the bird as a chickadee:"; cat "$work/sim32.log"; exit 1; }
echo "armv7-check: the armv7 tarball's binary ran sim-cpu under qemu-arm with TF Lite 1.15.5 (top-1 chickadee): ok"
