#!/usr/bin/env bash
# Every training run behind docs/experiments.md, then the evaluations and the report.
# Usage: bash experiments/run.sh [RUNS_DIR]   (default runs/experiments; re-running resumes)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-runs/experiments}
SEEDS=${SEEDS:-"0 1 2"}
for seed in $SEEDS; do
  for v in baseline cycle; do
    python train.py --config "configs/experiments/stm_synthetic.py:$v" --config.seed="$seed" \
      --workdir "$RUNS/stm/$v-s$seed"
  done
done
