#!/usr/bin/env bash
# The real-kernel stage of `make test` (x86-64 hosts): scripts/board-vm.sh boots Debian's arm64
# kernel with the aarch64 tarball installed, and scripts/board-vm/check.sh runs there as root.
# Each case below is judged from what the board printed:
# - LiteRT's aarch64 library (the tarball's libLiteRt.so) loads and classifies the bird as a
#   chickadee in `run --rig sim-cpu` (qemu-user cannot run it: no kernel, the host's sysfs);
# - the kernel's ina2xx driver on an INA219 at 0x40 (i2c-stub, registers for 1.000 A through
#   0.1 Ω at 5.000 V): `sensors --detect` lists it, a hwmon rig reads 5.000 W;
# - joulebench's ina219 kind while ina2xx holds the chip: one line naming the driver and how to
#   release it (EBUSY); unbound: its own driver reads the same chip over i2c-stub's SMBus word
#   transfers (the adapter has no plain I2C), 1.000 A and 5.000 W, as the kernel's did (both
#   drivers write calibration 4096: 100 µA and 2 mW LSBs);
# - an address with no chip (0x45) and /dev/i2c-0 opened by a user outside the i2c group: one
#   line each with the fix;
# - the kernel's ina3221 driver at 0x41 (the layout JetPack 5 and 6 use), without labels:
#   5.000 V and 1.000 A on channel 1, read by a hwmon rig as 5.000 W;
# - the kernel's ina3221 driver at 0x42, created from the board's device tree, which labels its
#   channels as a Jetson Orin Nano's does (VDD_IN, VDD_CPU_GPU_CV, VDD_SOC): the shipped
#   jetson-orin-nano rig finds each rail by its label and reads 5.000, 1.984 and 1.190 W, the
#   kernel's own volts and amps multiplied.
# - on Debian 11's C library and libstdc++ (glibc 2.31, GCC 10; `--userland bullseye`), older
#   than LiteRT's library needs: the same binary runs TF Lite 1.15.5 instead, names the
#   loader's reason, and still classifies the bird as a chickadee.
# Elsewhere it prints a SKIP line saying why.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=run-folder.sh
source scripts/run-folder.sh

case $(uname -m) in
  x86_64) ;;
  *) echo "SKIP (a $(uname -m) host) board-check: the emulated board is built on x86-64 hosts only"; exit 0 ;;
esac

start=$(date +%s)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
scripts/board-vm.sh --run "SUMMARY_CSV=$SUMMARY_CSV; $(cat scripts/board-vm/check.sh)" > "$out" 2>&1 || {
  echo "board-check: the board did not run its commands:"; cat "$out"; exit 1; }

# What case $1 printed: the lines after its "== $1" line, up to the next case.
printed() { sed -n "/^== $1\$/,/^== /p" "$out" | sed '1d;$d'; }
expect() {
  printed "$1" | grep -Eq -- "$2" || {
    echo "board-check: $1: $3; the board printed:"; printed "$1"; exit 1; }
}
expect litert '^sim-cpu,0,1,1,tflite,litert,2\.3\.0,.*,20,chickadee,' \
  "LiteRT's aarch64 library did not classify the bird as a chickadee"
expect ina2xx '^power1_input 5000000$' "the kernel's ina2xx did not read 5.000 W from the registers"
expect ina2xx '^hwmon ina219 \(hwmon[0-9]+\) channel 1: readable' "sensors --detect did not list the kernel's INA219"
expect ina2xx '^hwmon \(5V\): 5\.000 W ' "the hwmon rig did not read 5.000 W through ina2xx"
expect ebusy "^ina219 \(5V\): error: INA219 at 0x40 on /dev/i2c-0: the kernel's ina2xx driver has the chip at this address.*echo 0-0040 > /sys/bus/i2c/drivers/ina2xx/unbind" \
  "no one-line error naming ina2xx and how to unbind it"
expect ours '^ina219 \(5V\): 5\.000 V  1\.0000 A  5\.000 W .*cal=4096.*SMBus word transfers' \
  "joulebench's driver did not read 1.000 A and 5.000 W over SMBus word transfers"
expect enxio '^ina219 \(5V\): error: no INA219 answers at 0x45 on /dev/i2c-0 \(check address pins A0/A1' \
  "no one-line error for an address without a chip"
expect eacces '^ina219 \(5V\): error: no permission to open I2C bus /dev/i2c-0: add your user to the i2c group' \
  "no one-line error for a user without access to the bus"
expect ina3221 '^in1_input 5000 curr1_input 1000 ' "the kernel's ina3221 did not read 5.000 V and 1.000 A"
expect ina3221 '^hwmon \(VDD_IN\): 5\.000 V  1\.0000 A  5\.000 W ' "the hwmon rig did not read 5.000 W through ina3221"
expect ina3221-labels '^in1_label VDD_IN in1_input 5000 curr1_input 1000$' "the device tree's INA3221 has no VDD_IN label, or not 5.000 V and 1.000 A"
expect ina3221-labels '^in3_label VDD_SOC in3_input 4960 curr3_input 240$' "the device tree's INA3221 has no VDD_SOC label, or not 4.960 V and 0.240 A"
expect ina3221-labels '^ina3221 \(Orin Nano module input \(VDD_IN\)\): 5\.000 V  1\.0000 A  5\.000 W ' \
  "the jetson-orin-nano rig did not read 5.000 W on VDD_IN by its label"
expect ina3221-labels '^ina3221 \(Orin Nano CPU, GPU and CV \(VDD_CPU_GPU_CV\)\): 4\.960 V  0\.4000 A  1\.984 W ' \
  "the jetson-orin-nano rig did not read 1.984 W on VDD_CPU_GPU_CV by its label"
expect ina3221-labels '^ina3221 \(Orin Nano SoC \(VDD_SOC\)\): 4\.960 V  0\.2400 A  1\.190 W ' \
  "the jetson-orin-nano rig did not read 1.190 W on VDD_SOC by its label"
# The older userland: LiteRT cannot load, and the run says why.
old=$(mktemp)
trap 'rm -f "$out" "$old"' EXIT
scripts/board-vm.sh --userland bullseye --run 'joulebench run --rig sim-cpu --runs 3 --out /tmp/r 2>&1 | grep "^joulebench: backend 0: cannot load"; cat /tmp/r/'"$SUMMARY_CSV" > "$old" 2>&1 || {
  echo "board-check: the Debian 11 board did not run its commands:"; cat "$old"; exit 1; }
grep -Eq "^joulebench: backend 0: cannot load .*/libLiteRt\.so: .*version \`GLIBC(XX)?_[0-9.]+' not found.*; running TF Lite 1\.15\.5 instead" "$old" ||
  { echo "board-check: on Debian 11's C library the run did not name why LiteRT cannot load:"; cat "$old"; exit 1; }
grep -Eq '^sim-cpu,0,1,1,tflite,tflite,1\.15\.5,.*,20,chickadee,' "$old" ||
  { echo "board-check: on Debian 11's C library TF Lite 1.15.5 did not classify the bird as a chickadee:"; cat "$old"; exit 1; }

echo "board-check: on Debian's arm64 kernel under qemu-system: LiteRT 2.3.0 (top-1 chickadee); ina2xx and joulebench's INA219 driver (over SMBus words) both 5.000 W on the same registers; EBUSY, no chip and no permission one line each; ina3221 channel 1 5.000 W, and by the device tree's labels (jetson-orin-nano rig) 5.000, 1.984 and 1.190 W; on Debian 11's C library TF Lite 1.15.5 with LiteRT's loader error named: ok ($(( $(date +%s) - start )) s)"
