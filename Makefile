# joulebench: the two commands of the README, and their parts.
#   make run    set up, build, fetch the models, run the default rig (rigs/local.toml)
#   make test   set up, build with every feature, fetch the models, run every test
#   make dist   release tarballs for the boards (scripts/dist.sh; dist/, ignored by git)
# Caches (cargo target dir, Python venvs) live in $(JOULEBENCH_CACHE), outside the clone.
#
# FEATURES=torch adds the float backend on libtorch (a 4.6 GB venv with the PyPI torch
# wheel); `make test` always builds it.

JOULEBENCH_CACHE ?= $(HOME)/.cache/joulebench
export JOULEBENCH_CACHE
export CARGO_TARGET_DIR ?= $(JOULEBENCH_CACHE)/target
export JOULEBENCH_PYTHON ?= $(JOULEBENCH_CACHE)/venv/bin/python3
export JOULEBENCH_TORCH_PYTHON ?= $(JOULEBENCH_CACHE)/torch-venv/bin/python3
# Where `models fetch` copies from instead of downloading, when that folder exists.
MODELS_FROM ?= ../shared/models
# Extra arguments for `make run` / `make bench`, e.g. ARGS="--rig rigs/rpi3-cpu.toml".
ARGS ?=
FEATURES ?=
# Seconds per fuzz target with `make fuzz` (FUZZ_SECONDS=30 for a brief pass).
FUZZ_SECONDS ?= 600
# Targets of `make dist` (empty: x86_64-unknown-linux-gnu and aarch64-unknown-linux-gnu; also
# armv7-unknown-linux-gnueabihf).
TARGETS ?=

# With the torch feature, torch-sys finds libtorch in the torch venv's Python.
with_torch = $(findstring torch,$(FEATURES))
CARGO_ENV = $(if $(with_torch),PATH="$(JOULEBENCH_CACHE)/torch-venv/bin:$$PATH" LIBTORCH_USE_PYTORCH=1)
CARGO = $(CARGO_ENV) cargo
CARGO_FLAGS = --release --locked $(if $(FEATURES),--features $(FEATURES))
# Every crate of the workspace (crates/analysis too), the features named as the root crate's.
CARGO_FLAGS_WORKSPACE = --release --locked --workspace $(if $(FEATURES),--features $(addprefix joulebench/,$(FEATURES)))
BIN := $(CARGO_TARGET_DIR)/release/joulebench

.PHONY: setup build models run test sweep bench soak fuzz lint dist
setup:
	@scripts/setup.sh $(if $(with_torch),--torch)

build: setup
	$(CARGO) build $(CARGO_FLAGS)

models: build
	@if [ -d "$(MODELS_FROM)" ]; then $(BIN) models fetch --from "$(MODELS_FROM)"; else $(BIN) models fetch; fi
	@$(BIN) models convert

run: models
	$(BIN) run $(ARGS)

# Tests build in release mode: TensorFlow Lite is compiled once for `run` and `test`. The
# stable fuzz_smoke_ tests run here; cargo-fuzz's sanitized builds are `make fuzz`'s. The tests
# that time or kill runs by phase (crash safety, signals, end to end, soak) classify with the
# stand-in model, which takes microseconds where MobileNetV2 takes milliseconds: a machine far
# faster than this one; every test that checks what the model predicts keeps MobileNetV2
# (docs/src/contributing.md, The speed sweep). scripts/test.sh builds the test binaries with
# `cargo test --no-run` and runs them: the integration tests, and beside them the unit tests,
# the install check and the LAVA definition's check, and on x86-64 (at the lowest priority)
# the aarch64 build under qemu-user (scripts/cross-test.sh; an aarch64 machine has just tested
# it natively), the real arm64 kernel's checks (scripts/board-check.sh) and LAVA's dispatcher
# (scripts/lava-run-check.sh).
test: FEATURES = torch
test: models
	@$(CARGO_ENV) MODELS_FROM="$(MODELS_FROM)" scripts/test.sh $(CARGO_FLAGS_WORKSPACE)

# The speed sweep (docs/src/contributing.md): every test on the stand-in model, a machine far
# faster than this one (as make test runs them), then every test on MobileNetV2 with the CPU
# shared three ways, one at least three times slower. SWEEP=fast or SWEEP=slow runs one pass.
SWEEP ?= both
sweep: FEATURES = torch
sweep: models
	@scripts/speed-sweep.sh $(BIN) $(SWEEP) -- env $(CARGO) test $(CARGO_FLAGS_WORKSPACE)

# Release tarballs for the boards, built on this machine for glibc 2.27 and later (see
# scripts/dist.sh and docs/src/contributing.md, Building for another machine).
dist:
	@scripts/dist.sh $(TARGETS)

# Each fuzz target for FUZZ_SECONDS (see docs/src/contributing.md, Property tests and fuzzing).
fuzz: models
	@scripts/fuzz.sh $(FUZZ_SECONDS)

bench: models
	$(BIN) bench $(ARGS)

# An hour on the soak rig (ARGS="--minutes 10" for less): see docs/src/guide/soak-and-bench.md.
soak: models
	$(BIN) soak $(ARGS)

lint: FEATURES = torch
lint: setup
	cargo fmt --all -- --check
	$(CARGO) clippy $(CARGO_FLAGS) --all-targets -- -D warnings
	# Links in the docs resolve: an item that moved breaks the build, not the reader.
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc $(CARGO_FLAGS_WORKSPACE) --no-deps
