#!/usr/bin/env bash
# Installs what joulebench needs, idempotently: Debian packages, and Python venvs in
# $JOULEBENCH_CACHE (default ~/.cache/joulebench), outside the clone so repeat runs are fast:
# `venv` (LiteRT, the Python reference loop) always, `torch-venv` (libtorch) with --torch, and
# with --cross the cross-build toolchain of `make dist` and the emulated aarch64 tests
# (`cross-venv`: zig, cargo-zigbuild, libclang 18; the rustup targets; on x86-64, qemu-user and
# the arm64 and armhf C libraries it loads). Called by the Makefile's targets; safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."

torch=false cross=false board_vm=false lava=false
for arg in "$@"; do
  case $arg in
    --torch) torch=true ;;
    --cross) cross=true ;;
    --board-vm) board_vm=true ;;
    --lava) board_vm=true lava=true ;;
    *) echo "setup: unknown option $arg (known: --torch, --cross, --board-vm, --lava)" >&2; exit 2 ;;
  esac
done

cache=${JOULEBENCH_CACHE:-$HOME/.cache/joulebench}
mkdir -p "$cache"

# Debian packages: libclang for the tflite crate's bindgen, a C++ toolchain and make for
# TensorFlow Lite's source build, python3-venv for the reference venv (Debian's python3), the
# font the SVG reports draw their text with.
packages=(libclang-dev g++ make fonts-dejavu-core)
python3 -c 'import ensurepip, venv' 2>/dev/null || packages+=(python3-venv)
# The emulated tests run the aarch64 and armv7 builds under qemu-user with Debian's arm64 and
# armhf C libraries (/usr/aarch64-linux-gnu, /usr/arm-linux-gnueabihf); only an x86-64
# machine needs them (an arm64 one runs the aarch64 build natively).
if $cross && [ "$(uname -m)" = x86_64 ]; then
  packages+=(qemu-user-static libc6-arm64-cross libgcc-s1-arm64-cross libc6-armhf-cross libgcc-s1-armhf-cross)
fi
# The emulated board (scripts/board-vm.sh): qemu-system, the cross compiler and kernel source
# for the three drivers Debian's arm64 kernel leaves out, dtc for the board's device tree, the
# arm64 C and C++ libraries the tarball's binary runs on under qemu-user while the image is
# made, and dpkg's arm64 architecture, so apt-get download fetches that kernel and the arm64 C
# library for the initramfs.
if $board_vm; then
  packages+=(qemu-system-arm qemu-user-static gcc-aarch64-linux-gnu libc6-arm64-cross libstdc++6-arm64-cross
    linux-source-6.1 cpio xz-utils patch device-tree-compiler)
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    echo "setup: adding dpkg's arm64 architecture (for apt-get download of the board's packages)"
    $sudo dpkg --add-architecture arm64
    $sudo apt-get update -qq
  fi
fi
# LAVA's own dispatcher for scripts/lava-run-check.sh, and the option ROM of the NIC its QEMU
# device type gives the guest.
if $lava; then
  packages+=(lava-dispatcher ipxe-qemu)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# A venv per requirements file, rebuilt only when that file changes. (Each step returns on
# failure itself: under `if !` bash does not stop at a failing command.)
make_venv() {
  local venv=$1 req=$2 want
  want=$(sha256sum "$req" | cut -d' ' -f1)
  if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
    echo "setup: creating the Python venv $venv"
    python3 -m venv --clear "$venv" || return 1
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" || return 1
    echo "$want" > "$venv/.requirements.sha256"
  fi
}

# LiteRT (the default int8 engine's library) and the Python reference loop. The
# ai-edge-litert wheel exists for CPython 3.9 and later only: where pip finds none (a Jetson
# Nano's JetPack 4 has Python 3.6), say what works instead.
if ! make_venv "$cache/venv" analysis/reference/requirements.txt; then
  cat >&2 <<MESSAGE
setup: the Python venv could not be installed (pip's error above) with $(python3 --version 2>&1).
  The pinned ai-edge-litert wheel exists for CPython 3.9 and later only (a Jetson Nano's
  JetPack 4 has 3.6). Measuring does not need the venv:
  - use a release tarball (\`make dist\` on another machine): it needs neither Python nor a
    compiler, and carries LiteRT's libLiteRt.so beside the binary (INSTALL.txt in it says which
    glibc that library needs; where the board's is older, as on JetPack 4, run the built-in
    TF Lite 1.15.5 with --engine tflite, as rigs/jetson-nano.toml does); or
  - build here without the venv: \`cargo build --release --locked\`, then run with
    --engine tflite (or engine = "tflite" in the rig). Only \`bench\`'s Python reference loop
    needs the venv.
MESSAGE
  exit 1
fi
# libtorch for the torch feature: about 4.6 GB with its CUDA libraries.
if $torch; then
  make_venv "$cache/torch-venv" analysis/reference/requirements-torch.txt
fi
# The cross-build toolchain (scripts/cross-env.sh), and the Rust standard library of each
# target of `make dist`.
if $cross; then
  make_venv "$cache/cross-venv" scripts/cross-requirements.txt
  installed=$(rustup target list --installed)
  for t in x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf; do
    grep -qx "$t" <<<"$installed" || rustup target add "$t"
  done
fi
