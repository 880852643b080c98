#!/usr/bin/env bash
# Installs what joulebench needs, idempotently: Debian packages, and the Python venv of the
# reference loop, in $JOULEBENCH_CACHE (default ~/.cache/joulebench), outside the clone so
# repeat runs are fast. Called by `make run`, `make test` and `make bench`; safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${JOULEBENCH_CACHE:-$HOME/.cache/joulebench}
mkdir -p "$cache"

# Debian packages: libclang for the tflite crate's bindgen, a C++ toolchain and make for
# TensorFlow Lite's source build, python3-venv for the reference venv (Debian's python3).
packages=(libclang-dev g++ make)
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

# The reference venv, rebuilt only when its requirements change.
req=analysis/reference/requirements.txt
venv=$cache/venv
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
  echo "setup: creating the Python venv in $venv"
  python3 -m venv --clear "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
  echo "$want" > "$venv/.requirements.sha256"
fi
