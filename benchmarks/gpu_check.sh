#!/usr/bin/env bash
# The GPU checks behind benchmarks/results/gpu_h200.md, as one short run on a lent GPU machine (the
# repository root as working directory; results in $OUT, at most 8 files). Each part is independent
# and has its own time limit, so one that fails or runs long leaves the others' files. On an H200
# the whole run takes about 8 minutes.
#   1. The latency table against measured latency over 12 random genotypes at 512x1024, timed under
#      CUDA graphs and in eager PyTorch (benchmarks/latency_predictor.py --runtime).
#   2. Per-stage figures of the paper presets: search step, retrain and pretrain images/s, peak
#      memory, and the wall time they imply (benchmarks/gpu_stages.py).
#   3. If time is left: the table under CUDA graphs at the papers' 1024x2048.
#     OUT=/tmp/gpu bash benchmarks/gpu_check.sh
set -u
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
exec > >(tee "$OUT/gpu_check.log") 2>&1
date -u
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
for rt in cudagraphs eager; do
  echo "== latency table vs measured, $rt, 512x1024"
  timeout 100 python3 benchmarks/latency_predictor.py --device cuda --runtime "$rt" --size 512x1024 \
    --per-preset 4 --out "$OUT/latency_predictor_cuda_$rt.json" || echo "part failed: $rt ($?)"
done
# one process per preset, each with its own limit: the supernet's search step is launch-bound and
# slow (0.7-3 s at batch 2 on an H200), and the JSON is written after every stage
for p in gas-paper:70 lgcnet-paper:80 autortnet-paper:110; do
  echo "== paper stages: ${p%%:*}"
  timeout "${p##*:}" python3 benchmarks/gpu_stages.py --device cuda --presets "${p%%:*}" --warmup 1 --steps 3 \
    --rounds 2 --json "$OUT/gpu_stages_${p%%:*}.json" || echo "part failed: ${p%%:*} ($?)"
done
echo "== latency table vs measured, cudagraphs, 1024x2048"
timeout 60 python3 benchmarks/latency_predictor.py --device cuda --runtime cudagraphs --size 1024x2048 \
  --per-preset 4 --out "$OUT/latency_predictor_cuda_cudagraphs_1024x2048.json" || echo "part failed: 1024x2048 ($?)"
date -u
