#!/usr/bin/env bash
# The install test (part of `make test`): `cargo install --path .` into a temporary root, then
# `joulebench run --rig sim-cpu` from an empty folder, as a user of an installed binary would.
# Nothing of the clone may be needed at run time: the rig and the models manifest are built
# in, the models come from the user's data folder (`make models` put them there).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=run-folder.sh
source scripts/run-folder.sh

root=$(mktemp -d)
empty=$(mktemp -d)
trap 'rm -rf "$root" "$empty"' EXIT
# CARGO_TARGET_DIR (set by the Makefile) keeps the compiled dependencies between checks.
cargo install --quiet --locked --path . --root "$root"
cd "$empty"
# A window the validity checks call invalid (a machine too busy for the sampler) is about the
# machine, not the install: that run still has to find everything and write its files.
"$root/bin/joulebench" run --rig sim-cpu --runs 20 --out run >/dev/null 2>run.log ||
  grep -q '^joulebench: invalid: ' run.log || {
  echo "install-check: the installed binary failed from an empty folder:"; cat run.log; exit 1; }
if ! grep -q '^rig,' "run/$SUMMARY_CSV" || ! grep -q 'built-in rig sim-cpu' run.log; then
  echo "install-check: no summary, or the rig did not come from the binary"; cat run.log; exit 1
fi
# The clone's folder followed by a slash: a cache beside it (/tmp/ci-cache next to /tmp/ci)
# is another folder. (Panic locations of sources that dependencies generate at build time name
# the cargo target folder; nothing reads them.)
if grep -qaF "$OLDPWD/" "$root/bin/joulebench"; then
  echo "install-check: the binary holds a path of this clone ($OLDPWD)"; exit 1
fi
echo "install-check: cargo install, then a run from an empty folder: ok ($(ls run | wc -l) files)"
