#!/usr/bin/env bash
# The GPU rows of benchmarks/README.md, in parts that each fit in a 10-minute run.
#
#   bash benchmarks/gpu_suite.sh PART OFFICIAL [DEST]
#
# PART      inference-r18 | inference-r50 | inference-480p | training | kernels | all
# OFFICIAL  a checkout of lyxok1/STM-Training, branch `cycle` (never committed here)
# DEST      folder for the JSON files (default benchmarks/results); then run
#           `python benchmarks/make_table.py` where the repository is.
#
# Environment: PYTHON (default python3, with jax[cuda], flax, optax and torch), PEAK_FLOPS for
# the MFU column (default 989e12: H100 / H200 SXM dense bf16), DEVICE (default gpu),
# SMOKE=1 for a tiny CPU run of every command (checks the plumbing, not for the tables).
#
# float32 rows use --precision highest in vosjax (no TF32; the parity setting) while PyTorch
# keeps its default (TF32 convolutions on Ampere and later): the bf16 rows compare like for
# like.
set -euo pipefail

part=${1:?PART: inference-r18 | inference-r50 | inference-480p | training | kernels | all}
official=${2:?OFFICIAL: path to an STM-Training checkout}
dest=${3:-benchmarks/results}
py=${PYTHON:-python3}
device=${DEVICE:-gpu}
peak=${PEAK_FLOPS:-989e12}
cd "$(dirname "$0")/.."
mkdir -p "$dest"
export PYTHONUNBUFFERED=1

size=(--size 240 427)
size480=(--size 480 854)
frames=(--frames 41 --repeats 3)
train=(--repeats 5)
kern=()
spd=(--repeats 5)
if [[ "${SMOKE:-0}" == 1 ]]; then
  device=cpu
  export JAX_PLATFORMS=cpu
  spd=(--repeats 1 --steps 1 --frames 6 --read-sizes 32x48 --read-frames 1)
  size=(--size 32 48)
  size480=(--size 48 64)
  frames=(--frames 7 --repeats 1)
  train=(--repeats 1 --size 32 48)
  kern=(--scale 0.1 --repeats 1)
fi
suffix=$([[ "${SMOKE:-0}" == 1 ]] && echo smoke || echo "$device")

inference() {   # arch, out name, extra args
  "$py" benchmarks/inference_speed.py --official "$official" --device "$device" \
    --arch "$1" --objects 1 3 --correction off on --dtype float32 bfloat16 \
    "${frames[@]}" "${@:3}" --out "$dest/$2_$suffix.json"
}

run_part() {
  case "$1" in
    inference-r18) inference resnet18 inference_r18 "${size[@]}" ;;
    inference-r50) inference resnet50 inference_r50 "${size[@]}" ;;
    inference-480p)
      "$py" benchmarks/inference_speed.py --official "$official" --device "$device" \
        --rows resnet18:1:off resnet50:1:off resnet18:1:on --dtype float32 bfloat16 \
        "${size480[@]}" "${frames[@]}" --out "$dest/inference_480p_$suffix.json" ;;
    training)
      "$py" benchmarks/training_speed.py --official "$official" --device "$device" \
        --arch resnet50 --batch 1 4 8 --objects 2 --num-slots 2 --dtype float32 bfloat16 \
        --peak-flops "$peak" "${train[@]}" --out "$dest/training_$suffix.json" ;;
    kernels)
      "$py" benchmarks/conv_kernels.py --device "$device" "${kern[@]}" \
        --out "$dest/conv_kernels_$suffix.json"
      for which in objects memory-read donation; do
        "$py" benchmarks/speedups.py "$which" "${size[@]}" "${spd[@]}" \
          --out "$dest/speedup_${which//-/_}_$suffix.json"
      done ;;
    *) echo "unknown PART $1" >&2; exit 2 ;;
  esac
}

if [[ "$part" == all ]]; then
  for p in inference-r18 inference-r50 inference-480p training kernels; do run_part "$p"; done
else
  run_part "$part"
fi
