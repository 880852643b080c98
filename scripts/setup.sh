#!/usr/bin/env bash
# Installs what joulebench needs, idempotently: Debian packages, and Python venvs in
# $JOULEBENCH_CACHE (default ~/.cache/joulebench), outside the clone so repeat runs are fast:
# `venv` (LiteRT, the Python reference loop) always, `torch-venv` (libtorch) with --torch.
# Called by the Makefile's targets; safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${JOULEBENCH_CACHE:-$HOME/.cache/joulebench}
mkdir -p "$cache"

# Debian packages: libclang for the tflite crate's bindgen, a C++ toolchain and make for
# TensorFlow Lite's source build, python3-venv for the reference venv (Debian's python3).
packages=(libclang-dev g++ make fonts-dejavu-core)
python3 -c 'import ensurepip, venv' 2>/dev/null || packages+=(python3-venv)
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

# A venv per requirements file, rebuilt only when that file changes.
make_venv() {
  local venv=$1 req=$2 want
  want=$(sha256sum "$req" | cut -d' ' -f1)
  if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
    echo "setup: creating the Python venv $venv"
    python3 -m venv --clear "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
    echo "$want" > "$venv/.requirements.sha256"
  fi
}

# LiteRT (the default int8 engine's library) and the Python reference loop.
make_venv "$cache/venv" analysis/reference/requirements.txt
# libtorch for the torch feature: about 4.6 GB with its CUDA libraries.
if [ "${1:-}" = --torch ]; then
  make_venv "$cache/torch-venv" analysis/reference/requirements-torch.txt
fi
