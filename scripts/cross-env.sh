# Sourced by scripts/dist.sh and scripts/cross-test.sh: the environment of a cross build with
# cargo-zigbuild, so a binary for any board is built on one machine and runs on glibc 2.27
# (JetPack 4) and later. `scripts/setup.sh --cross` installs what it uses.
#
#   cross_cargo TARGET SUBCOMMAND ARGS...   cargo-zigbuild SUBCOMMAND --target TARGET.2.27 ...
#   cross_binary TARGET                     where the release binary of TARGET lands
#
# What each setting is for:
# - zig links against the glibc 2.27 symbol set (the `.2.27` target suffix) and compiles C++
#   against its own libc++, linked statically: the binary needs no libstdc++ of the board's.
# - bindgen (the tflite crate's, which lays out TF Lite's structs for Rust) must read the very
#   libc++ headers the C++ is compiled with: cargo-zigbuild passes them, and libclang 18 from
#   the cross venv parses them. libc++ declares everything in `namespace std { inline
#   namespace __1 {` written through a macro, which bindgen 0.69 does not see as inline, so it
#   would name std::string `std::__1::string` and the tflite crate would not compile;
#   bindgen-libcxx-inline.h opens that namespace once with the keyword in plain sight, first.
# - TF Lite is built without -march=native (.cargo/config.toml's, the build machine's): for
#   aarch64 the tflite makefile's armv8-a (NEON is part of it: the Pi 3/4's Cortex-A53/A72 and
#   the Nano's A57), for x86-64 the baseline x86-64 (the x86-64 tarball's default engine is
#   LiteRT, which picks its kernels at run time), for armv7 Cortex-A7's ARMv7 with NEON and
#   VFPv4, which every 32-bit Pi OS board from the Pi 2 on has (the Rust target itself leaves
#   NEON out, and so would TF Lite's gemmlowp and Eigen kernels without this).
# - Caches stay in $JOULEBENCH_CACHE: the target folder target-cross/ (beside the host
#   build's target/, which it never touches), zig's and cargo-zigbuild's under cross/.

cross_cache=${JOULEBENCH_CACHE:-$HOME/.cache/joulebench}
cross_venv=$cross_cache/cross-venv
cross_dir=$cross_cache/cross
export CARGO_TARGET_DIR=$cross_cache/target-cross
export PATH="$cross_venv/bin:$HOME/.cargo/bin:$PATH"
export XDG_CACHE_HOME=$cross_dir/xdg-cache
export LIBCLANG_PATH
LIBCLANG_PATH=$(echo "$cross_venv"/lib/python3*/site-packages/clang/native)
mkdir -p "$cross_dir" "$XDG_CACHE_HOME"

# Writes $2 into file $1 unless it already holds exactly that (so its time stamp, and the
# builds that depend on it, only change with its content).
cross_put() {
  [ "$(cat "$1" 2>/dev/null)" = "$2" ] || printf '%s\n' "$2" > "$1"
}

cross_put "$cross_dir/bindgen-libcxx-inline.h" '/* Read by bindgen only (scripts/cross-env.sh): libc++ inline namespace, visibly inline. */
#ifdef __cplusplus
namespace std { inline namespace __1 {} }
#endif'
export BINDGEN_EXTRA_CLANG_ARGS="-include $cross_dir/bindgen-libcxx-inline.h"

# The Rust targets the cross build knows (each linked against glibc 2.27 by its `.2.27` suffix).
cross_known_target() {
  case $1 in
    x86_64-unknown-linux-gnu | aarch64-unknown-linux-gnu | armv7-unknown-linux-gnueabihf) ;;
    *) echo "cross-env: unknown target $1 (x86_64-unknown-linux-gnu, aarch64-unknown-linux-gnu or armv7-unknown-linux-gnueabihf)" >&2; return 2 ;;
  esac
}

cross_cargo() {
  local target=$1 sub=$2
  shift 2
  cross_known_target "$target" || return
  local tflite_flags="" stamp=$CARGO_TARGET_DIR/$target/tflite-make-flags
  [ "$target" != armv7-unknown-linux-gnueabihf ] || tflite_flags="-mcpu=cortex_a7"
  # The tflite crate keeps its built library whatever the flags now say: build it again when
  # they changed.
  if [ "$(cat "$stamp" 2>/dev/null)" != "flags: $tflite_flags" ]; then
    cargo clean --quiet --release --target "$target" -p tflite 2>/dev/null || true
    mkdir -p "$(dirname "$stamp")"
    echo "flags: $tflite_flags" > "$stamp"
  fi
  env TFLITE_RS_MAKE_EXTRA_CFLAGS="$tflite_flags" \
    TFLITE_RS_MAKE_EXTRA_CXXFLAGS="$tflite_flags" \
    nice -n 19 cargo-zigbuild "$sub" --release --locked --target "$target.2.27" "$@"
}

cross_binary() {
  echo "$CARGO_TARGET_DIR/$1/release/joulebench"
}

# The newest GLIBC_ symbol version an ELF file needs (readelf reads any architecture's).
cross_glibc_max() {
  readelf -V -W "$1" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1
}
