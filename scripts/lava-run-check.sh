#!/usr/bin/env bash
# LAVA's own dispatcher on the emulated board (part of `make test` on x86-64 hosts):
# `lava-run` (Debian 12's lava-dispatcher, 2023.01) runs a QEMU job whose kernel and ramdisk
# are scripts/board-vm.sh's (Debian's arm64 kernel, the aarch64 tarball in /opt/dist), and whose
# test is lava/joulebench.yaml from this clone's git repository (its committed HEAD, as LAVA
# clones it): the definition installs the tarball, fetches the models and runs `sim-cpu`, and
# every figure must come back as a LAVA test case that passed, with its measurement.
#
# The device dictionary is rendered from LAVA's own `qemu.jinja2` device type (lava-server's
# package, unpacked, not installed: the dispatcher ships none). LAVA puts its test overlay into
# the ramdisk (`overlays: {lava: true}`), so the guest needs no disk. scripts/lava-check.sh
# checks the rest (the files parse; a bad tarball is a failed install) on any host.
set -euo pipefail
cd "$(dirname "$0")/.."

case $(uname -m) in
  x86_64) ;;
  *) echo "SKIP (a $(uname -m) host) lava-run-check: the emulated board is built on x86-64 hosts only"; exit 0 ;;
esac
start=$(date +%s)
scripts/setup.sh --lava
cache=${JOULEBENCH_CACHE:-$HOME/.cache/joulebench}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The board's kernel and its ramdisk as one archive (LAVA unpacks it to add its overlay).
image=$work/image
scripts/board-vm.sh --build --single "$image" >/dev/null
[ -f "$image/initrd.cpio.gz" ] || { echo "lava-run-check: no board image"; exit 1; }
tarball=$(cd "$cache/cross/dist" && ls joulebench-*-aarch64-unknown-linux-gnu.tar.gz | tail -1)

mkdir -p "$cache/lava"
server=$(ls "$cache/lava/"lava-server_*_all.deb 2>/dev/null | tail -1 || true)
if [ -z "$server" ]; then
  (cd "$cache/lava" && apt-get download -qq lava-server 2>/dev/null)
  server=$(ls "$cache/lava/"lava-server_*_all.deb | tail -1)
fi
dpkg-deb -x "$server" "$work/server"
# qemu.jinja2 gives the guest a virtio NIC, whose option ROM is ipxe-qemu's.
options="['-smp 2', '-L /usr/lib/ipxe/qemu', '-L /usr/share/qemu']"
/usr/bin/python3 - "$work/server/usr/share/lava-server/device-types" "$options" > "$work/device.yaml" <<'DEVICE'
import ast, sys, jinja2
env = jinja2.Environment(loader=jinja2.FileSystemLoader(sys.argv[1]), trim_blocks=True)
device = env.from_string(
    "{% extends 'qemu.jinja2' %}{% set memory = 2048 %}{% set mac_addr = '52:54:00:12:34:59' %}")
print(device.render(arch="arm64", machine="virt", cpu="cortex-a72",
                    extra_options=ast.literal_eval(sys.argv[2])))
DEVICE
cat > "$work/job.yaml" <<JOB
device_type: qemu
job_name: joulebench on an emulated arm64 board
timeouts:
  job: {minutes: 20}
  action: {minutes: 15}
  connection: {minutes: 2}
priority: medium
visibility: public
context:
  arch: arm64
  machine: virt
  cpu: cortex-a72
  extra_options: $options
actions:
- deploy:
    timeout: {minutes: 5}
    to: tmpfs
    images:
      kernel:
        image_arg: -kernel {kernel} -append "console=ttyAMA0 rdinit=/init panic=-1"
        url: file://$image/vmlinuz
      ramdisk:
        image_arg: -initrd {ramdisk}
        url: file://$image/initrd.cpio.gz
        compression: gz
        format: cpio.newc
        overlays:
          lava: true
- boot:
    method: qemu
    media: tmpfs
    prompts: ['/ # ']
    timeout: {minutes: 5}
- test:
    timeout: {minutes: 15}
    definitions:
    - repository: $PWD
      from: git
      path: lava/joulebench.yaml
      name: joulebench
      parameters:
        TARBALL: /opt/dist/$tarball
        RIG: sim-cpu
        RUNS: "5"
        MODELS_FROM: /var/lib/joulebench/models
        WORKDIR: /tmp/joulebench-lava
JOB
sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
$sudo lava-run --job-id "$$" --output-dir "$work/out" --device "$work/device.yaml" "$work/job.yaml" > "$work/log" 2>&1 || {
  echo "lava-run-check: lava-run failed; its last lines:"; tail -30 "$work/log"; exit 1; }
# The results LAVA logged: one line per case, `"case": …, "definition": …, …, "result": …`.
results=$(grep '"lvl": "results"' "$work/log" | sed -n 's/.*"case": "\([^"]*\)", "definition": "\([^"]*\)".*"result": "\([^"]*\)".*/\2 \1 \3/p')
grep -qx 'lava job pass' <<<"$results" || {
  echo "lava-run-check: the job did not pass:"; echo "$results"; tail -30 "$work/log"; exit 1; }
cases=$(grep '^0_joulebench ' <<<"$results" || true)
for want in joulebench-install joulebench-models sim-cpu_b0_r1_s0_fps sim-cpu_b0_r1_s0_mean_watts \
  sim-cpu_b0_r1_s0_inferences_per_joule sim-cpu_b0_r1_s0_net_inferences_per_joule joulebench-run; do
  grep -qx "0_joulebench $want pass" <<<"$cases" || {
    echo "lava-run-check: test case $want did not pass; the definition's cases:"; echo "$cases"; exit 1; }
done
grep '"lvl": "results"' "$work/log" | grep '"case": "sim-cpu_b0_r1_s0_fps"' | grep -q '"measurement"' || {
  echo "lava-run-check: the FPS case came back without its measurement"; exit 1; }
echo "lava-run-check: lava-run ran lava/joulebench.yaml on a QEMU device (Debian's arm64 kernel, the aarch64 tarball): job pass, $(wc -l <<<"$cases") test cases passed ($(awk '{print $2}' <<<"$cases" | paste -sd, -)); $(( $(date +%s) - start )) s"
