# Does the single-path supernet rank networks once it has trained 4x longer?
#
# command.sh (declared in d65c9cf) trained two single-path supernets on 16,000 images each: one-shot
# tau +0.06 (95 % -0.20 to +0.31) against the retrained mIoU of the 35 FPN-level networks, "does not
# rank". Its page leaves open whether a longer-trained supernet would. A single-path step costs 0.071 s
# here (benchmarks/results/weight_step.md), so 4x the images is affordable on this VM: one supernet,
# seed 8, exactly command.sh's settings with 320 epochs instead of 80 (64,000 images, 16,000 steps;
# cosine over the 320 epochs), scored on the same 35 networks.
#
# Declared before its run (2026-12-05, 2-vCPU Intel Xeon family 6 model 167; this file's commit is the
# record; nothing tuned after it, no seeds added):
#   (1) supernet_ranking.py's rule (1) on this one supernet: "ranks" if the one-shot tau's 95 % interval
#       lies above 0; "does not" if its upper end is below half the noise ceiling; otherwise inconclusive.
#   (2) reported, not a claim: its tau beside the same seed's at 16,000 images (+0.04, -0.21 to +0.28),
#       its one-shot range and top pick, and its agreement with the 16,000-image supernets.
#   (3) what follows: if (1) says "ranks", the weight-sharing route is reopened for longer budgets (a
#       one-shot selection declared and run as the next step); otherwise the conclusion of command.sh
#       stands, now at 4x the training as well.

LUT=runs/archbatch/level-fpn-archbatch/autortnet-c32-t0.9-fpn050-ab13-s8/search/latency_lut.json
workbench search --preset autortnet --run-dir runs/single_path/spos-c32-x4-s8 --dataset camvid \
  --data-root datasets/proxy-camvid-128x256-400 --epochs 320 --threads 2 --seed 8 --device cpu \
  --set input_size=128x256 crop_size=128x256 batch_size=4 warmup_epochs=319 steps_per_epoch=50 \
        channels=32 layers=6 "aggregation_strides=[8,16]" aggregation_channels=32 latency_weight=0 \
        weight_paths=sampled lut_path=$LUT max_val_images=8
python benchmarks/supernet_ranking.py runs/single_path/spos-c32-x4-s8 \
  --compare "benchmarks/results/headline_v3/compare_fpn_run1.json:searched-fpn:benchmarks/results/headline_v3/genotypes/{name}.json" \
  --compare "benchmarks/results/search_length/compare_run1.json:long:benchmarks/results/search_length/genotypes/{name}.json" \
  --compare "benchmarks/results/search_length/compare_run1.json:random:benchmarks/results/headline/random/{name}.json" \
  --compare "benchmarks/results/search_length/warmup/compare_run1.json:warm:benchmarks/results/search_length/warmup/genotypes/{name}.json" \
  --compare "benchmarks/results/search_length/weight_decay/compare_run1.json:nowd:benchmarks/results/search_length/weight_decay/genotypes/{name}.json" \
  --compare "benchmarks/results/search_length/arch_batches/compare_run1.json:ab13:benchmarks/results/search_length/arch_batches/genotypes/{name}.json" \
  --compare "benchmarks/results/selection/compare_run1.json:select:benchmarks/results/selection/genotypes/{name}.json" \
  --compare "benchmarks/results/selection/replication/compare_run1.json:select:benchmarks/results/selection/replication/genotypes/s{seed}.json" \
  --compare "benchmarks/results/selection/replication2/compare_run1.json:select:benchmarks/results/selection/replication2/genotypes/s{seed}.json" \
  --json benchmarks/results/search_length/single_path/supernet_ranking_x4.json
