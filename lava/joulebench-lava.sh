#!/bin/sh
# The run step of lava/joulebench.yaml, on the device under test (POSIX sh: dash or busybox
# will do). Installs a joulebench release tarball, fetches the models, runs a rig and reports
# to LAVA through its lava-test-case helper:
#   joulebench-install, joulebench-models, joulebench-run   pass or fail
#   RIG_bB_rR_SENSOR_FIGURE                                 each figure of each summary row,
#     with --measurement and --units (from `joulebench run --export-lava`; the names are the
#     binary's: docs/src/reference/output-files.md)
# A failed step is a failed test case, and the steps after it are skipped; the script itself
# exits 0 so that LAVA's `set -e` does not cut the report short.
#
#   joulebench-lava.sh -t TARBALL [-r RIG] [-n RUNS] [-e ENGINE] [-m MODELS_FROM] [-w WORKDIR]
set -u

tarball="" rig="rpi3-cpu" runs="" engine="" models_from="" workdir="/tmp/joulebench-lava"
while getopts t:r:n:e:m:w: opt; do
  case $opt in
    t) tarball=$OPTARG ;;
    r) rig=$OPTARG ;;
    n) runs=$OPTARG ;;
    e) engine=$OPTARG ;;
    m) models_from=$OPTARG ;;
    w) workdir=$OPTARG ;;
    *) echo "joulebench-lava: usage: $0 -t TARBALL [-r RIG] [-n RUNS] [-e ENGINE] [-m MODELS_FROM] [-w WORKDIR]" >&2
       exit 2 ;;
  esac
done

case=joulebench-install
fail() {
  echo "joulebench-lava: $case: $*" >&2
  lava-test-case "$case" --result fail
  exit 0
}

[ -n "$tarball" ] || fail "no tarball given (the TARBALL parameter)"
rm -rf "$workdir"
mkdir -p "$workdir" || fail "cannot create $workdir"
archive=$workdir/joulebench.tar.gz
case $tarball in
  http://* | https://*)
    if command -v wget >/dev/null 2>&1; then
      wget -q -O "$archive" "$tarball" || fail "cannot download $tarball"
    elif command -v curl >/dev/null 2>&1; then
      curl -fsSL -o "$archive" "$tarball" || fail "cannot download $tarball"
    elif command -v python3 >/dev/null 2>&1; then
      python3 -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' \
        "$tarball" "$archive" || fail "cannot download $tarball"
    else
      fail "cannot download $tarball: no wget, curl or python3 on the device"
    fi ;;
  *) cp "$tarball" "$archive" || fail "cannot read $tarball" ;;
esac
tar -xzf "$archive" -C "$workdir" || fail "$tarball is not a gzipped tar archive"
bin=""
for candidate in "$workdir"/*/joulebench; do
  [ -x "$candidate" ] && bin=$candidate
done
[ -n "$bin" ] || fail "no joulebench binary in $tarball"
version=$("$bin" --version) || fail "the binary does not start on this device: $(uname -m), $(ldd --version 2>&1 | head -1)"
echo "joulebench-lava: $version, $bin"
lava-test-case "$case" --result pass

case=joulebench-models
if [ -n "$models_from" ]; then
  "$bin" models fetch --from "$models_from" || fail "models fetch --from $models_from failed"
else
  "$bin" models fetch || fail "models fetch failed"
fi
lava-test-case "$case" --result pass

case=joulebench-run
out=$workdir/run
cases=$workdir/lava-cases.sh
set -- run --rig "$rig" --out "$out" --export-lava "$cases"
[ -z "$runs" ] || set -- "$@" --runs "$runs"
[ -z "$engine" ] || set -- "$@" --engine "$engine"
echo "joulebench-lava: joulebench $*"
"$bin" "$@"
status=$?
# The figures are reported whatever the run's exit status: a window the rig calls invalid is a
# failed test case of its own, and the rest still count.
if [ -f "$cases" ]; then
  set -f
  while IFS= read -r line; do
    # Each line is `lava-test-case NAME --result R [--measurement X --units U]`, names made
    # of letters, digits, '_', '-' and '.' only.
    # shellcheck disable=SC2086
    set -- $line
    [ "${1:-}" = lava-test-case ] && shift && lava-test-case "$@"
  done < "$cases"
fi
[ "$status" -eq 0 ] || fail "joulebench exited with status $status"
lava-test-case "$case" --result pass
