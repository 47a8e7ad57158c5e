#!/usr/bin/env bash
# Every training run behind docs/experiments.md (STM: 2 variants, then 2 fine-tunings of the
# trained baselines; GCSeg with the paper's ablation protocol: 4 module settings without
# static-image pre-training + the recurrent stage of the full model; seeds 0 1 2).
# Usage: bash experiments/run.sh [RUNS_DIR]   (default runs/experiments).
# Re-running resumes unfinished runs and skips finished ones. Then:
#   python -m experiments.stm_ablations --runs RUNS_DIR/stm --out experiments/results/stm_synthetic.json
#   python -m experiments.erf_figure --runs RUNS_DIR/stm --davis ../shared/data/davis2016-mini \
#       --out docs/figures/cycle_erf.png --json experiments/results/cycle_erf.json
#   python -m experiments.stm_ablations --runs RUNS_DIR/stm-finetune --only mem,mem+gc,first,prev \
#       --out experiments/results/stm_finetune.json
#   python -m experiments.gc_timing --run RUNS_DIR/stm/cycle-s0 --out experiments/results/gc_timing.json
#   python -m experiments.gcseg_ablations --runs RUNS_DIR/gcseg-paper --out experiments/results/gcseg_paper_protocol.json
#   python -m experiments.gcseg_judgement --run RUNS_DIR/gcseg-paper/both-s0 --out experiments/results/gcseg_judgement.json
# Suite gcseg-pretrain: the earlier GCSeg runs (200 static-image pre-training updates first,
# not the paper's ablation protocol) behind experiments/results/gcseg_synthetic.json.
# Suite gcseg-long (beyond the paper; run with SEEDS="0 1"): the full model trained 10x longer.
#   python -m experiments.gcseg_ablations --protocol long --runs RUNS_DIR/gcseg-long --out experiments/results/gcseg_long.json
#   python -m experiments.gcseg_judgement --run RUNS_DIR/gcseg-long/both-s0 --out experiments/results/gcseg_judgement_long.json
#   python -m experiments.report
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-runs/experiments}
SEEDS=${SEEDS:-"0 1 2"}
SUITES=${SUITES:-"stm finetune gcseg"}
GC=configs/experiments/gcseg_synthetic.py
run() {  # config workdir seed [more flags]
  if [ -f "$2/eval.json" ]; then echo "done: $2"; return; fi
  python train.py --config "$1" --config.seed="$3" --workdir "$2" "${@:4}"
}
for suite in $SUITES; do
  for seed in $SEEDS; do
    case $suite in
      stm) for v in baseline cycle; do
             run "configs/experiments/stm_synthetic.py:$v" "$RUNS/stm/$v-s$seed" "$seed"; done ;;
      finetune) for v in baseline cycle; do
             run "configs/experiments/stm_synthetic.py:finetune-$v" "$RUNS/stm-finetune/$v-s$seed" \
               "$seed" --config.train.init_from="$RUNS/stm/baseline-s$seed"; done ;;
      gcseg) # most informative first: the full model, its recurrent stage, then Table V.
             run "$GC:both" "$RUNS/gcseg-paper/both-s$seed" "$seed"
             run "$GC:both-recurrent" "$RUNS/gcseg-paper/both+rec-s$seed" "$seed" \
               --config.train.init_from="$RUNS/gcseg-paper/both-s$seed"
             for m in baseline reference coseg; do
               run "$GC:$m" "$RUNS/gcseg-paper/$m-s$seed" "$seed"; done ;;
      gcseg-pretrain) for m in reference coseg both; do
             run "$GC:$m-pretrain" "$RUNS/gcseg/$m-s$seed" "$seed"; done ;;
      gcseg-long) run "$GC:both-long" "$RUNS/gcseg-long/both-s$seed" "$seed" ;;
      *) echo "unknown suite $suite (stm, finetune, gcseg, gcseg-pretrain, gcseg-long)" >&2
         exit 2 ;;
    esac
  done
done
