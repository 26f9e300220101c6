#!/usr/bin/env bash
# The GPU checks behind benchmarks/results/gpu_h200.md, as one short run on a lent GPU machine (the
# repository root as working directory; results in $OUT, at most 8 files). Each part is independent
# and has its own time limit, so one that fails or runs long leaves the others' files: at most
# about 8.5 minutes in all (the limits sum to 520 s).
#   1. The latency table against measured latency over 12 random genotypes at 512x1024, timed under
#      CUDA graphs in float16 and bfloat16 (weights and input cast: benchmarks/latency_predictor.py
#      --runtime --dtype), then float32 under CUDA graphs and in eager PyTorch.
#   2. Per-stage figures of the paper presets: search step, retrain and pretrain images/s, peak
#      memory, and the wall time they imply (benchmarks/gpu_stages.py); autortnet-paper first, the
#      one whose bf16 search, retrain and pretrain the 2026-12-04 run did not reach.
#     OUT=/tmp/gpu bash benchmarks/gpu_check.sh
set -u
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
exec > >(tee "$OUT/gpu_check.log") 2>&1
date -u
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
for rdl in cudagraphs:float16:85 cudagraphs:bfloat16:85 cudagraphs:float32:75 eager:float32:55; do
  IFS=: read -r rt dt limit <<< "$rdl"
  echo "== latency table vs measured, $rt, $dt, 512x1024"
  timeout "$limit" python3 benchmarks/latency_predictor.py --device cuda --runtime "$rt" --dtype "$dt" --size 512x1024 \
    --per-preset 4 --out "$OUT/latency_predictor_cuda_${rt}_$dt.json" || echo "part failed: $rt $dt ($?)"
done
# one process per preset, each with its own limit: the supernet's search step is launch-bound and
# slow (0.7-3 s at batch 2 on an H200), and the JSON is written after every stage
for p in autortnet-paper:150 gas-paper:35 lgcnet-paper:35; do
  echo "== paper stages: ${p%%:*}"
  timeout "${p##*:}" python3 benchmarks/gpu_stages.py --device cuda --presets "${p%%:*}" --warmup 1 --steps 3 \
    --rounds 2 --json "$OUT/gpu_stages_${p%%:*}.json" || echo "part failed: ${p%%:*} ($?)"
done
date -u
