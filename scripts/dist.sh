#!/usr/bin/env bash
# `make dist`: a release tarball per target, joulebench-VERSION-TARGET.tar.gz, that runs on the
# board without Python or a compiler: the binary (default features: the int8 engines, the
# sensors), LiteRT's libLiteRt.so beside it (the binary looks there), the rigs, the man pages
# (man/man1/, generated from the clap definitions into docs/man/), the licences and
# INSTALL.txt.
#
#   scripts/dist.sh [--out DIR] [TARGET...]
#
# TARGETs: x86_64-unknown-linux-gnu and aarch64-unknown-linux-gnu (the default: both);
# armv7-unknown-linux-gnueabihf on request (32-bit Raspberry Pi OS; the built-in engine only,
# no LiteRT library exists for it). DIR defaults to dist/ in the clone (ignored by git).
#
# Every binary is linked against glibc 2.27's symbols (Ubuntu 18.04, JetPack 4): the script
# reads the newest GLIBC_ version the binary needs and fails above 2.27. How the cross build
# works: scripts/cross-env.sh. The tarball's INSTALL.txt states what libLiteRt.so needs, as
# read from the library here.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

out=$repo/dist
targets=()
while [ $# -gt 0 ]; do
  case $1 in
    --out) [ $# -ge 2 ] || { echo "dist: --out needs a folder" >&2; exit 2; }; out=$2; shift 2 ;;
    x86_64-unknown-linux-gnu | aarch64-unknown-linux-gnu | armv7-unknown-linux-gnueabihf)
      targets+=("$1"); shift ;;
    *) echo "dist: unknown argument $1 (targets: x86_64-unknown-linux-gnu, aarch64-unknown-linux-gnu, armv7-unknown-linux-gnueabihf; option: --out DIR)" >&2
       exit 2 ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu)
mkdir -p "$out"
out=$(cd "$out" && pwd)

scripts/setup.sh --cross
# shellcheck source=cross-env.sh
. scripts/cross-env.sh

# The glibc every binary must run on: JetPack 4's.
glibc_floor=2.27
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo " (with uncommitted changes)" || true)
# Tar entries dated by the commit, so two builds of one commit differ only where the bytes do.
mtime=$(git log -1 --format=%ct 2>/dev/null || date +%s)

# LiteRT 2.3.0's wheel per platform (the version analysis/reference/requirements.txt pins),
# fetched once into the cache and checked against the digest recorded here.
litert_version=2.3.0
declare -A wheel_platform=(
  [x86_64-unknown-linux-gnu]=manylinux_2_27_x86_64
  [aarch64-unknown-linux-gnu]=manylinux_2_27_aarch64
)
declare -A wheel_sha256=(
  [manylinux_2_27_x86_64]=1f15078a6725d2357d9de9221664c29afa0545d807559c5f7199ce5e40b96b23
  [manylinux_2_27_aarch64]=853fc608f96da87bd5f3458465dfb9abbf18d5ae6b94eceacead407146f175ae
)
wheel_for() {
  local platform=$1 dir=$cross_cache/dist-wheels/$1 wheel
  wheel=$(ls "$dir"/ai_edge_litert-$litert_version-*.whl 2>/dev/null | head -1 || true)
  if [ -z "$wheel" ]; then
    "$cross_cache/venv/bin/python3" -m pip download -q --disable-pip-version-check --no-deps \
      --only-binary=:all: --platform "$platform" --python-version 3.11 -d "$dir" \
      "ai-edge-litert==$litert_version" >&2
    wheel=$(ls "$dir"/ai_edge_litert-$litert_version-*.whl | head -1)
  fi
  if [ "$(sha256sum "$wheel" | cut -d' ' -f1)" != "${wheel_sha256[$platform]}" ]; then
    echo "dist: $wheel is not the wheel whose SHA-256 scripts/dist.sh records" >&2
    return 1
  fi
  echo "$wheel"
}

# The newest version of a symbol-version family (GLIBC, GLIBCXX) an ELF file needs.
newest() {
  readelf -V -W "$2" | grep -o "$1_[0-9][0-9.]*" | sed "s/$1_//" | sort -uV | tail -1
}

zig_lib=$(python3 -c 'import os, ziglang; print(os.path.join(os.path.dirname(ziglang.__file__), "lib"))')
tflite_src=$(cargo metadata --locked --format-version 1 2>/dev/null |
  python3 -c 'import json, os, sys
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == "tflite":
        print(os.path.dirname(p["manifest_path"]))')

for target in "${targets[@]}"; do
  start=$(date +%s)
  echo "dist: building $target (glibc $glibc_floor)"
  cross_cargo "$target" build --bin joulebench
  bin=$(cross_binary "$target")
  need=$(cross_glibc_max "$bin")
  if [ "$(printf '%s\n%s\n' "$need" "$glibc_floor" | sort -V | tail -1)" != "$glibc_floor" ]; then
    echo "dist: $bin needs glibc $need, newer than $glibc_floor (JetPack 4), for:" >&2
    readelf --dyn-syms -W "$bin" | grep -o '[^ ]*@GLIBC_[0-9.]*' | sort -u |
      while IFS=@ read -r symbol v; do
        v=${v#GLIBC_}
        [ "$(printf '%s\n%s\n' "$v" "$glibc_floor" | sort -V | tail -1)" = "$glibc_floor" ] ||
          echo "  $symbol (GLIBC_$v)" >&2
      done
    exit 1
  fi
  name=joulebench-$version-$target
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  root=$stage/$name
  mkdir -p "$root/rigs" "$root/licenses" "$root/man/man1"
  cp "$bin" "$root/joulebench"
  cp rigs/*.toml "$root/rigs/"
  # The man pages: joulebench.1 and one per command, as `cli::reference` generates them.
  ls docs/man/joulebench*.1 >/dev/null 2>&1 || { echo "dist: no man pages in docs/man" >&2; exit 1; }
  cp docs/man/joulebench*.1 "$root/man/man1/"

  # LiteRT's library, and its licence from the wheel's dist-info.
  litert_note="No LiteRT library exists for this target: the engine is the built-in TF Lite
1.15.5 (rigs whose engine is left open say so once per backend; --engine tflite or
engine = \"tflite\" in the rig silences it)."
  if [ -n "${wheel_platform[$target]:-}" ]; then
    wheel=$(wheel_for "${wheel_platform[$target]}")
    unpack=$stage/wheel
    python3 - "$wheel" "$unpack" <<'UNZIP'
import sys, zipfile
wheel, to = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name == "ai_edge_litert/libLiteRt.so" or (
            ".dist-info/" in name and not name.endswith("/RECORD")
        ):
            z.extract(name, to)
UNZIP
    cp "$unpack/ai_edge_litert/libLiteRt.so" "$root/libLiteRt.so"
    # The wheel's metadata beside the library, as a venv has it: its version and licence.
    cp -r "$unpack/ai_edge_litert-$litert_version.dist-info" "$root/"
    cp "$unpack/ai_edge_litert-$litert_version.dist-info/licenses/LICENSE" "$root/licenses/LiteRT-LICENSE"
    lib_glibc=$(newest GLIBC "$root/libLiteRt.so")
    lib_glibcxx=$(newest GLIBCXX "$root/libLiteRt.so")
    litert_note="libLiteRt.so is LiteRT $litert_version's, from the ai-edge-litert wheel for
${wheel_platform[$target]} (Apache-2.0: licenses/LiteRT-LICENSE). joulebench finds it beside
itself and runs it by default (engine left open). It needs glibc $lib_glibc or later and a
libstdc++ with GLIBCXX_$lib_glibcxx (read from the library when this tarball was made)."
    if [ "$(printf '%s\n%s\n' "$lib_glibc" "$glibc_floor" | sort -V | tail -1)" != "$glibc_floor" ]; then
      litert_note+="
That is newer than the binary's own needs: on an older system (JetPack 4 on a Jetson Nano:
glibc 2.27, GLIBCXX_3.4.25; JetPack 5 and Raspberry Pi OS bullseye: glibc 2.31) the library
cannot load, and a backend whose engine is left open runs the built-in TF Lite 1.15.5
instead, saying why (the loader's error). --engine tflite, or engine = \"tflite\" in the
rig (as rigs/jetson-nano.toml has), chooses it outright; --engine litert fails there."
    fi
  fi

  # Licences: joulebench's (Apache-2.0, like LiteRT: the same text), what is linked in.
  tfl=$tflite_src/submodules
  cp "$zig_lib/libcxx/LICENSE.TXT" "$root/licenses/libc++-LICENSE.TXT"
  cp "$zig_lib/libcxxabi/LICENSE.TXT" "$root/licenses/libc++abi-LICENSE.TXT"
  cp "$zig_lib/libunwind/LICENSE.TXT" "$root/licenses/libunwind-LICENSE.TXT"
  cp "$tflite_src/LICENSE-APACHE" "$root/licenses/Apache-2.0.txt"
  cp "$tfl/downloads/flatbuffers/LICENSE.txt" "$root/licenses/flatbuffers-LICENSE.txt"
  cp "$tfl/downloads/gemmlowp/LICENSE" "$root/licenses/gemmlowp-LICENSE"
  cp "$tfl/downloads/absl/LICENSE" "$root/licenses/abseil-LICENSE"
  cp "$tfl/downloads/farmhash/COPYING" "$root/licenses/farmhash-COPYING"
  cp "$tfl/downloads/neon_2_sse/LICENSE" "$root/licenses/neon_2_sse-LICENSE"
  cp "$tfl/downloads/eigen/COPYING.MPL2" "$root/licenses/eigen-COPYING.MPL2"
  cp "$tfl/tensorflow/third_party/fft2d/LICENSE" "$root/licenses/fft2d-LICENSE"
  for f in LICENSE LICENSE-APACHE LICENSE-MIT COPYING NOTICE; do
    [ -f "$f" ] && cp "$f" "$root/licenses/joulebench-$f"
  done
  {
    echo "The Rust crates linked into joulebench $version for $target, with their licences"
    echo "(cargo tree: normal dependencies, default features):"
    echo
    cargo tree --locked -e normal --target "$target" --prefix none --format '{p}|{l}' |
      sed 's/ (\*)$//' | awk -F'|' '{ sub(/ \(\/.*\)$/, "", $1); print $1 ": " $2 }' | sort -u
  } > "$root/licenses/rust-crates.txt"

  case $target in
    x86_64-*) where="the machine" example_rig="local" example_note="this machine's RAPL/hwmon meters, else simulated" ;;
    *) where="the board" example_rig="rpi3-cpu" example_note="or jetson-nano; sim-cpu needs no sensor at all" ;;
  esac
  steps=$(printf '  %-42s# %s\n' \
    "tar -xzf $name.tar.gz" "" \
    "cd $name" "" \
    "./joulebench models fetch" "once: model, labels, images, SHA-256 checked" \
    "./joulebench run --rig $example_rig" "$example_note" | sed 's/ *# $//')
  cat > "$root/INSTALL.txt" <<INSTALL
joulebench $version for $target

joulebench measures how many ML inferences a machine does per joule; the README and docs/ of
its source say how. Built by scripts/dist.sh from commit $commit$dirty.

The binary needs glibc $need or later (its newest symbol version, checked when this tarball
was made): Ubuntu 18.04 (JetPack 4), Debian 10, Raspberry Pi OS buster, and anything newer.

On $where:

$steps

\`models fetch\` downloads into ~/.local/share/joulebench/models (\$JOULEBENCH_MODELS_DIR);
without a network, copy a models folder over and run \`models fetch --from FOLDER\`. The rigs
are built into the binary; rigs/ holds their files to copy and edit (\`--rig FILE\`).
\`./joulebench sensors --detect\` lists the meters the board offers.

The INA219 on I2C: add yourself to the i2c group (sudo usermod -aG i2c \$USER, then log in
again). On a Raspberry Pi enable the bus (raspi-config, Interface Options, I2C; or
dtparam=i2c_arm=on in /boot/firmware/config.txt, /boot/config.txt on bullseye and earlier);
for 400 kHz add dtparam=i2c_arm_baudrate=400000 there, reboot, and set bus_khz = 400 in the
rig. Check the chip answers: i2cdetect -y 1; then ./joulebench sensors --rig $example_rig
reads each sensor of the rig once.

Manual pages: man/man1/ holds joulebench(1) and one page per command (joulebench-run(1), ...).
Read one in place:

  man -l man/man1/joulebench-run.1

Install them for yourself (man finds ~/.local/share/man when ~/.local/bin is on PATH; else
add it to MANPATH), or for every user:

  mkdir -p ~/.local/share/man/man1 && cp man/man1/*.1 ~/.local/share/man/man1/
  sudo mkdir -p /usr/local/share/man/man1 && sudo cp man/man1/*.1 /usr/local/share/man/man1/

$litert_note

Licences: joulebench is Apache-2.0 (licenses/Apache-2.0.txt). Linked in: TensorFlow Lite
1.15.5 (Apache-2.0) with flatbuffers, gemmlowp, Abseil, farmhash, neon_2_sse, Eigen (MPL-2.0)
and fft2d; LLVM's libc++, libc++abi and libunwind (Apache-2.0 WITH LLVM-exception); the Rust
crates of licenses/rust-crates.txt. Each licence's text is in licenses/.
INSTALL

  tarball=$out/$name.tar.gz
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" \
    -C "$stage" -czf "$tarball.tmp" "$name"
  mv "$tarball.tmp" "$tarball"
  (cd "$out" && sha256sum "$name.tar.gz" > "$name.tar.gz.sha256")
  rm -rf "$stage"
  trap - EXIT
  size=$(du -k "$tarball" | cut -f1)
  echo "dist: $tarball ($((size / 1024)).$(( (size % 1024) * 10 / 1024 )) MiB; the binary needs glibc $need; $(( $(date +%s) - start )) s)"
  # The armv7 tarball is run where it is made (make test builds aarch64 only).
  if [ "$target" = armv7-unknown-linux-gnueabihf ] && [ "$(uname -m)" = x86_64 ]; then
    scripts/armv7-check.sh "$tarball"
  fi
done
