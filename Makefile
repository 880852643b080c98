# joulebench: the two commands of the README, and their parts.
#   make run    set up, build, fetch the models, run the default rig (rigs/sim-cpu.toml)
#   make test   set up, build, fetch the models, run every test
# Caches (cargo target dir, Python venv) live in $(JOULEBENCH_CACHE), outside the clone.

JOULEBENCH_CACHE ?= $(HOME)/.cache/joulebench
export JOULEBENCH_CACHE
export CARGO_TARGET_DIR ?= $(JOULEBENCH_CACHE)/target
export JOULEBENCH_PYTHON ?= $(JOULEBENCH_CACHE)/venv/bin/python3
# Where `models fetch` copies from instead of downloading, when that folder exists.
MODELS_FROM ?= ../shared/models
# Extra arguments for `make run` / `make bench`, e.g. ARGS="--rig rigs/rpi3-cpu.toml".
ARGS ?=

BIN := $(CARGO_TARGET_DIR)/release/joulebench

.PHONY: setup build models run test bench lint
setup:
	@scripts/setup.sh

build: setup
	cargo build --release --locked

models: build
	@if [ -d "$(MODELS_FROM)" ]; then $(BIN) models fetch --from "$(MODELS_FROM)"; else $(BIN) models fetch; fi

run: models
	$(BIN) run $(ARGS)

# Tests build in release mode: TensorFlow Lite is compiled once for `run` and `test`.
test: models
	cargo test --release --locked

bench: models
	$(BIN) bench $(ARGS)

lint:
	cargo fmt --all -- --check
	cargo clippy --release --locked --all-targets -- -D warnings
