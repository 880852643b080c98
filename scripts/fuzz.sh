#!/usr/bin/env bash
# Runs each cargo-fuzz target of fuzz/ for SECONDS (default 60) on a corpus seeded with the
# project's rigs and models: `make fuzz` for ten minutes each (FUZZ_SECONDS=N for another
# length). `make test` does not run it: its stable `fuzz_smoke_` tests run the same targets'
# code on the seed corpus without sanitized builds.
# A crash fails the script and leaves its input under fuzz/artifacts/.
#
# cargo fuzz needs a nightly toolchain; where there is none this prints a SKIP line and exits
# 0 (the stable `fuzz_smoke_` tests of `make test` stand in). cargo-fuzz itself is installed
# into the cache on first use, and the fuzz builds (sanitized, so apart from the main ones)
# live there too.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
cache=${JOULEBENCH_CACHE:-$HOME/.cache/joulebench}
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "SKIP fuzz: no nightly Rust toolchain here (cargo fuzz needs one); the fuzz_smoke_ tests stood in"
    exit 0
fi
tools=$cache/cargo-fuzz
if [ ! -x "$tools/bin/cargo-fuzz" ]; then
    cargo install --quiet --locked --root "$tools" cargo-fuzz --version 0.12.0
fi
models=${JOULEBENCH_MODELS_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/joulebench/models}
corpus=$cache/fuzz-corpus
mkdir -p "$corpus/rig_parser" "$corpus/model_reader"
cp rigs/*.toml "$corpus/rig_parser/"
# The int8 models the reader is for (the seeds of the mutations; a few MB each).
cp "$models"/mobilenet_v2_1.0_224_quant.tflite "$corpus/model_reader/"

cd fuzz
for target in rig_parser model_reader; do
    log=$(mktemp)
    # Leaks are not what this looks for (TF Lite keeps static allocations to the end).
    if ! PATH="$tools/bin:$PATH" cargo +nightly fuzz run --target-dir "$cache/fuzz-target" "$target" \
        "$corpus/$target" -- -max_total_time="$seconds" -max_len=4000000 \
        -rss_limit_mb=4096 -detect_leaks=0 -print_final_stats=1 >"$log" 2>&1; then
        tail -40 "$log"
        rm -f "$log"
        echo "fuzz: $target crashed; the input is under fuzz/artifacts/$target/"
        exit 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rm -f "$log"
    echo "fuzz: $target: ${runs:-?} inputs in $seconds s, no crash"
done
