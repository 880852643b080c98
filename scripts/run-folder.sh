# The run folder's file names for the scripts, sourced: RUN_JSON, POWER_CSV, LATENCY_CSV,
# SUMMARY_CSV, SOAK_CSV and SOAK_JSON, read from src/output/folder.rs, the one place that names
# them (its unit test `scripts_read_the_names_from_here` checks this file reads them all).
# shellcheck shell=bash
run_folder_source="$(dirname "${BASH_SOURCE[0]}")/../src/output/folder.rs"
for run_folder_name in RUN_JSON POWER_CSV LATENCY_CSV SUMMARY_CSV SOAK_CSV SOAK_JSON; do
  run_folder_value=$(sed -n "s/^pub const $run_folder_name: &str = \"\\(.*\\)\";\$/\\1/p" "$run_folder_source")
  if [ -z "$run_folder_value" ]; then
    echo "run-folder.sh: no $run_folder_name in $run_folder_source" >&2
    return 1
  fi
  printf -v "$run_folder_name" '%s' "$run_folder_value"
done
unset run_folder_source run_folder_name run_folder_value
