#!/bin/bash
# Queue every line of a sweep file ("<name> key=value ...") as a DVC experiment, for
# slurm/queue_worker.sbatch to drain:   slurm/enqueue.sh [slurm/sweep.txt] [dvc exp run options...]
# Queued experiments see only files tracked by git or DVC: commit (or `git add`) first.
set -euo pipefail
sweep=${1:-slurm/sweep.txt}
shift || true
grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$sweep" | while read -r -a fields; do
  set_args=()
  for kv in "${fields[@]:1}"; do set_args+=(-S "$kv"); done
  dvc exp run --queue -n "${fields[0]}" "${set_args[@]}" "$@" < /dev/null
done
dvc queue status
