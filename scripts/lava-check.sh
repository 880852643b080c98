#!/usr/bin/env bash
# The LAVA test definition's check (part of `make test`): lava/joulebench.yaml and the example
# job lava/rpi4-job.yaml parse as LAVA reads them, and the definition's run steps, written
# into a run script the way LAVA's dispatcher writes one (its params as shell variables, the
# job's parameters after them, `set -e`, the steps from the repository's root) and run by sh
# with a fake lava-test-case on PATH that records its arguments, install a tarball of this
# machine's binary, run the sim-cpu rig (5 runs) and report one test case per figure, with
# the measurements of the run's summary rows. A second pass with a tarball that is not one
# checks that the failure is a failed test case, not a broken script.
#
#   scripts/lava-check.sh [BINARY]    (default: $CARGO_TARGET_DIR/release/joulebench)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=run-folder.sh
source scripts/run-folder.sh
repo=$PWD
cache=${JOULEBENCH_CACHE:-$HOME/.cache/joulebench}
bin=${1:-${CARGO_TARGET_DIR:-$cache/target}/release/joulebench}
[ -x "$bin" ] || { echo "lava-check: no binary at $bin (build first: make build)"; exit 1; }
# The project venv's Python, with its pinned PyYAML (analysis/reference/requirements.txt), not
# whichever python3 is first on PATH.
python=${JOULEBENCH_PYTHON:-$cache/venv/bin/python3}
if ! "$python" -c 'import yaml' 2>/dev/null; then
  echo "lava-check: $python cannot import yaml: run scripts/setup.sh, which installs the venv with PyYAML" >&2
  exit 1
fi
# Where the models come from: the folder `make models` copies from, else the user's models.
models_from=${MODELS_FROM:-}
[ -n "$models_from" ] && [ -d "$models_from" ] ||
  models_from=${JOULEBENCH_MODELS_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/joulebench/models}
models_from=$(cd "$models_from" && pwd)
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/joulebench-$version-check"
cp "$bin" "$work/joulebench-$version-check/joulebench"
tar -C "$work" -czf "$work/joulebench.tar.gz" "joulebench-$version-check"
cat > "$work/bin/lava-test-case" <<'FAKE'
#!/bin/sh
# LAVA's helper, faked: one line per call, the arguments separated by tabs.
(IFS='	'; printf '%s\n' "$*") >> "$LAVA_CAPTURE"
FAKE
chmod +x "$work/bin/lava-test-case"

# Parses both files, checks their structure, and writes the run script for the given job
# parameters (NAME=VALUE arguments).
runscript() {
  "$python" - "$repo" "$version" "$@" <<'PY'
import sys, yaml
repo, version, *overrides = sys.argv[1:]
testdef = yaml.safe_load(open(f"{repo}/lava/joulebench.yaml"))
meta = testdef["metadata"]
assert meta["format"] == "Lava-Test Test Definition 1.0", meta
assert meta["name"] == "joulebench" and meta.get("description"), meta
params = testdef["params"]
assert isinstance(params, dict) and all(isinstance(v, str) for v in params.values()), params
steps = testdef["run"]["steps"]
assert steps and all(isinstance(s, str) for s in steps), steps

job = yaml.safe_load(open(f"{repo}/lava/rpi4-job.yaml"))
assert job["device_type"] == "bcm2711-rpi-4-b", job["device_type"]
kinds = [next(iter(a)) for a in job["actions"]]
assert kinds == ["deploy", "boot", "test"], kinds
(definition,) = job["actions"][2]["test"]["definitions"]
assert definition["from"] == "git" and definition["path"] == "lava/joulebench.yaml", definition
unknown = set(definition["parameters"]) - set(params)
assert not unknown, f"the job sets parameters the definition does not have: {unknown}"
tarball = f"joulebench-{version}-aarch64-unknown-linux-gnu.tar.gz"
assert definition["parameters"]["TARBALL"].endswith("/" + tarball), \
    f"the job's TARBALL should name {tarball} (Cargo.toml's version)"

# As lava_dispatcher's TestRunnerAction writes run.sh.
out = ["###default parameters from test definition###"]
out += [f"{k}='{v}'" for k, v in params.items()]
out += ["######", "###test parameters from job submission###"]
out += [f"{k}='{v}'" for k, v in (o.split("=", 1) for o in overrides)]
out += ["######", "set -e", "set -x", f"cd {repo}", "set +x", "set -x", *steps, "set +x"]
print("\n".join(out))
PY
}

# 1. A tarball of this machine's binary, the sim rig.
runscript "TARBALL=$work/joulebench.tar.gz" RIG=sim-cpu RUNS=5 \
  "MODELS_FROM=$models_from" "WORKDIR=$work/device" > "$work/run.sh"
export LAVA_CAPTURE=$work/cases.txt
: > "$LAVA_CAPTURE"
PATH="$work/bin:$PATH" JOULEBENCH_MODELS_DIR=$work/models sh "$work/run.sh" > "$work/run.log" 2>&1 || {
  echo "lava-check: the run steps failed:"; cat "$work/run.log"; exit 1; }
"$python" - "$LAVA_CAPTURE" "$work/device/run/$SUMMARY_CSV" "$work/run.log" <<'PY' || { cat "$work/run.log"; exit 1; }
import csv, sys
cases = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
log = open(sys.argv[3]).read()
names = [c[0] for c in cases]
figures = [("fps", "fps", "fps"), ("mean_watts", "W", "mean_watts"),
           ("inferences_per_joule", "inf/J", "inferences_per_joule"),
           ("net_inferences_per_joule", "inf/J", "net_inferences_per_joule")]
want = ["joulebench-install", "joulebench-models"] + \
       [f"sim-cpu_b0_r1_s0_{f}" for f, _, _ in figures] + ["joulebench-run"]
assert names == want, f"test cases {names}, expected {want}"
assert cases[0][1:] == ["--result", "pass"] and cases[1][1:] == ["--result", "pass"], cases[:2]
# A window the rig calls invalid (a machine too busy for the sampler) fails its figures and the
# run: right for LAVA, and about this machine, not the definition.
invalid = "joulebench: invalid: " in log
if invalid:
    assert all(c[1:] == ["--result", "fail"] for c in cases[2:]), cases
    print("lava-check: the sim rig's window was invalid on this busy machine: its cases failed, as they should")
else:
    (row,) = list(csv.DictReader(open(sys.argv[2])))
    for case, (_, units, column) in zip(cases[2:6], figures):
        assert case[1:3] == ["--result", "pass"] and case[3] == "--measurement", case
        assert case[5:] == ["--units", units], case
        assert abs(float(case[4]) - float(row[column])) <= 1e-6 * max(1, abs(float(row[column]))), \
            (case, row[column])
    assert cases[6][1:] == ["--result", "pass"], cases[6]
print(f"lava-check: {len(cases)} test cases as expected: " + ", ".join(names))
PY

# 2. Not a tarball: one failed install case, and the script still ends well.
echo "not a tarball" > "$work/bad.tar.gz"
runscript "TARBALL=$work/bad.tar.gz" RIG=sim-cpu "WORKDIR=$work/device-bad" > "$work/bad.sh"
: > "$LAVA_CAPTURE"
PATH="$work/bin:$PATH" sh "$work/bad.sh" > "$work/bad.log" 2>&1 || {
  echo "lava-check: the run steps broke on a bad tarball instead of reporting it:"; cat "$work/bad.log"; exit 1; }
[ "$(cat "$LAVA_CAPTURE")" = "$(printf 'joulebench-install\t--result\tfail')" ] || {
  echo "lava-check: a bad tarball reported:"; cat "$LAVA_CAPTURE"; cat "$work/bad.log"; exit 1; }
grep -q "joulebench-lava: joulebench-install: .* is not a gzipped tar archive" "$work/bad.log" || {
  echo "lava-check: a bad tarball's failure does not say why:"; cat "$work/bad.log"; exit 1; }
echo "lava-check: lava/joulebench.yaml and lava/rpi4-job.yaml parse; the steps report the sim rig's figures, and a bad tarball as a failed install: ok"
