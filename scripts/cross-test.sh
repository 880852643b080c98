#!/usr/bin/env bash
# The aarch64 build under emulation (part of `make test`), on an x86-64 machine: what a
# Raspberry Pi 3/4 or a Jetson Nano would run, checked without one.
#
# 1. `scripts/dist.sh aarch64-unknown-linux-gnu`: the release tarball, its binary linked
#    against glibc 2.27 (the script fails above that).
# 2. The sensors and analysis crates' library tests, cross-built the same way, run under
#    qemu-aarch64 (cargo's runner, with Debian's arm64 C library as -L): among them the INA219
#    driver on the simulated bcm2835 bus, a Pi's I2C adapter (named in the closing lines).
# 3. The tarball's own binary under qemu-aarch64:
#    - `run --rig sim-cpu --engine tflite`: TF Lite 1.15.5 classifies the bird as a chickadee;
#    - on a fake Jetson Nano tree ($JOULEBENCH_ROOT: JetPack 4's INA3221 IIO layout, nvpmodel
#      status and configuration): `sensors --detect` finds POM_5V_IN as the board's input, and
#      the shipped jetson-nano rig (its INA219 table left out: no I2C bus here) measures its
#      rails and records the power mode in the run's machine state.
# The armv7 tarball (32-bit Raspberry Pi OS) is checked under qemu-arm where it is built, by
# `make dist TARGETS=armv7-unknown-linux-gnueabihf` (scripts/armv7-check.sh): building a third
# TF Lite and dependency tree took 7 of CI's minutes from an empty cache.
#
# What emulation cannot show (speed, LiteRT's library: it crashes under qemu-user, reading the
# host's CPU cache files; a real INA219) is in the README's "What runs where".
# On an aarch64 machine the native `make test` covers all of this; elsewhere it is skipped,
# with a line saying so.
set -euo pipefail
cd "$(dirname "$0")/.."

case $(uname -m) in
  x86_64) ;;
  aarch64) echo "SKIP (an aarch64 host) cross-test: the native make test builds and tests the aarch64 binary"; exit 0 ;;
  *) echo "SKIP (a $(uname -m) host) cross-test: the cross build is set up for x86-64 hosts only"; exit 0 ;;
esac

start=$(date +%s)
target=aarch64-unknown-linux-gnu
cache=${JOULEBENCH_CACHE:-$HOME/.cache/joulebench}
scripts/dist.sh --out "$cache/cross/dist" "$target"
# shellcheck source=cross-env.sh
. scripts/cross-env.sh
# shellcheck source=run-folder.sh
source scripts/run-folder.sh
sysroot=/usr/aarch64-linux-gnu
qemu=(qemu-aarch64-static -L "$sysroot")
for need in "$sysroot/lib/ld-linux-aarch64.so.1" "$(command -v qemu-aarch64-static || echo qemu-aarch64-static)"; do
  [ -e "$need" ] || { echo "cross-test: $need missing: run scripts/setup.sh --cross"; exit 1; }
done
built=$(date +%s)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 2. Library tests under qemu.
echo "cross-test: the sensors and analysis crates' tests under qemu-aarch64"
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="${qemu[*]}" \
  cross_cargo "$target" test -p joulebench-sensors -p joulebench-analysis 2>&1 | tee "$work/lib.log"
lib_passed=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) if ($i ~ /^passed/) p += $(i-1) } END { print p + 0 }' "$work/lib.log")
# The INA219 driver on the Pi's adapter: the tests that put it on a simulated i2c-bcm2835 bus.
ina219_bcm=$(grep -E '^test sensor::ina219(_sim)?::.*(bcm2835|on_a_pi|every_adapter).* \.\.\. ok$' "$work/lib.log" |
  sed 's/^test //; s/ \.\.\. ok$//' || true)
[ -n "$ina219_bcm" ] || { echo "cross-test: no INA219 test on the simulated bcm2835 bus ran"; exit 1; }
tested=$(date +%s)

# 3. The tarball's binary.
tar -xzf "$cache/cross/dist/joulebench-"*"-$target.tar.gz" -C "$work"
bin=$(echo "$work"/joulebench-*-"$target"/joulebench)
[ -x "$bin" ] || { echo "cross-test: no binary in the tarball"; exit 1; }
# The man pages travel with it (INSTALL.txt says how to install them): one per command.
for page in joulebench.1 joulebench-run.1 joulebench-models-list.1; do
  [ -f "$(dirname "$bin")/man/man1/$page" ] || { echo "cross-test: no man/man1/$page in the tarball"; exit 1; }
done
jb() { "${qemu[@]}" "$bin" "$@"; }

# A run whose window the rig calls invalid (a machine too busy for the sampler) is about the
# machine, not the build (as in scripts/install-check.sh); anything else must succeed.
run_ok() {
  local log=$1
  shift
  jb run "$@" >"$log" 2>&1 || grep -q '^joulebench: invalid: ' "$log" || {
    echo "cross-test: joulebench run $* failed under qemu:"; cat "$log"; exit 1; }
}

run_ok "$work/sim.log" --rig sim-cpu --engine tflite --runs 5 --out "$work/sim"
grep -Eq '^0 +tflite +tflite 1\.15\.5 .* chickadee \(20\)$' "$work/sim.log" || {
  echo "cross-test: sim-cpu under qemu did not classify the bird as a chickadee:"; cat "$work/sim.log"; exit 1; }
grep -q '^sim-cpu,0,' "$work/sim/$SUMMARY_CSV" || { echo "cross-test: no summary row for sim-cpu"; exit 1; }

# A Jetson Nano as JetPack 4 lays it out: the INA3221's IIO device (rails in mW, mV, mA) and
# nvpmodel's status and configuration (mode 0, MAXN, as the Nano's own file names it).
nano=$work/nano
iio=$nano/sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0
mkdir -p "$iio" "$nano/var/lib/nvpmodel" "$nano/etc"
i=0
for rail in POM_5V_IN:4200:5000:840 POM_5V_GPU:80:5000:16 POM_5V_CPU:1150:5000:230; do
  IFS=: read -r label mw mv ma <<<"$rail"
  echo "$label" > "$iio/rail_name_$i"
  echo "$mw" > "$iio/in_power${i}_input"
  echo "$mv" > "$iio/in_voltage${i}_input"
  echo "$ma" > "$iio/in_current${i}_input"
  i=$((i + 1))
done
echo "pmode:0000" > "$nano/var/lib/nvpmodel/status"
printf '%s\n' '< POWER_MODEL ID=0 NAME=MAXN >' 'CPU_ONLINE CORE_0 1' \
  '< POWER_MODEL ID=1 NAME=5W >' 'CPU_ONLINE CORE_0 1' '< PM_CONFIG DEFAULT=0 >' \
  > "$nano/etc/nvpmodel.conf"

JOULEBENCH_ROOT=$nano jb sensors --detect > "$work/detect.log" 2>&1 || true
grep -q "^INA3221 POM_5V_IN: readable .*JetPack 4 IIO.*the whole board's input" "$work/detect.log" || {
  echo "cross-test: sensors --detect did not find POM_5V_IN on the fake Nano:"; cat "$work/detect.log"; exit 1; }

# The shipped rig, its INA3221 tables pointed at the fake tree, its INA219 table (a real chip
# on /dev/i2c-1) left out; 3 runs of each backend. Its 4-thread backend gets as many of the
# Nano's 4 threads as this host has cores: a run refuses more threads than cores.
nano_threads=$(python3 -c 'import os; print(min(4, len(os.sched_getaffinity(0))))')
python3 - rigs/jetson-nano.toml "$nano/sys" "$nano_threads" > "$work/jetson-nano.toml" <<'RIG'
import re, sys
text, root, threads = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3]
tables = re.split(r"(?m)^(?=\[\[sensors\]\])", text)
kept = [t for t in tables if not re.search(r'(?m)^kind = "ina219"$', t)]
assert len(kept) == len(tables) - 1, "expected one ina219 table in rigs/jetson-nano.toml"
out = "".join(kept)
out = re.sub(r'(?m)^(kind = "ina3221"\n)', lambda m: m.group(1) + f'root = "{root}"\n', out)
assert out.count("\nthreads = 4\n") == 1, "expected one 4-thread backend in rigs/jetson-nano.toml"
out = out.replace("\nthreads = 4\n", f"\nthreads = {threads}\n")
sys.stdout.write(out)
RIG
JOULEBENCH_ROOT=$nano run_ok "$work/nano.log" --rig "$work/jetson-nano.toml" --runs 3 --out "$work/nano-run"
for rail in "Nano module 5 V input (POM_5V_IN)" "Nano CPU (POM_5V_CPU)" "Nano GPU (POM_5V_GPU)"; do
  grep -q "^jetson-nano,1,.*,ina3221,$rail," "$work/nano-run/$SUMMARY_CSV" || {
    echo "cross-test: no row of the jetson-nano rig's $nano_threads-thread backend for $rail:"; cat "$work/nano.log"; exit 1; }
done
grep -Eq "^1 +tflite +tflite 1\.15\.5 +none +$nano_threads .* chickadee \(20\)\$" "$work/nano.log" || {
  echo "cross-test: the jetson-nano rig did not classify the bird as a chickadee on $nano_threads threads:"; cat "$work/nano.log"; exit 1; }
python3 - "$work/nano-run/$RUN_JSON" <<'STATE'
import json, sys
states = json.load(open(sys.argv[1]))["machine_state"]
modes = [s[edge].get("nvpmodel") for s in states for edge in ("start", "end")]
assert modes and all(m == {"id": 0, "name": "MAXN"} for m in modes), f"nvpmodel in {sys.argv[1]}: {modes}"
STATE

done_at=$(date +%s)

echo "cross-test: aarch64 under qemu-aarch64: $lib_passed library tests passed (sensors, analysis), among them the INA219 driver on the simulated bcm2835 bus:"
sed 's/^/cross-test:   /' <<<"$ina219_bcm"
echo "cross-test: the tarball's binary: sim-cpu with TF Lite 1.15.5 (top-1 chickadee); on a fake JetPack 4 Nano, sensors --detect (POM_5V_IN the board's input) and the jetson-nano rig (3 INA3221 rails, nvpmodel MAXN in the machine state): ok"
echo "cross-test: $((done_at - start)) s in all: aarch64 build and tarball $((built - start)) s, library tests $((tested - built)) s, runs $((done_at - tested)) s"
