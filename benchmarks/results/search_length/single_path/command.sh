# Does a supernet trained on single sampled paths rank networks as retraining does?
#
# benchmarks/supernet_ranking.py found that the four relaxed (DARTS) supernets of the ab13 searches rank
# the 35 FPN-level networks already retrained at Kendall tau -0.13 (95 % -0.35 to +0.10) against their
# retrained mIoU, noise ceiling 0.71: they do not rank networks as retraining does. The lever named
# there: a supernet trained on sampled single paths (single-path one-shot, Guo et al. 2020), checked
# with that script before anything is searched on it. This file trains two such supernets
# (`weight_paths: sampled`: each weight step runs one network drawn as the random controls are drawn,
# alone on the shared weights) and scores the same 35 networks on them.
#
# Budget, fixed here: the ab13 supernet's space and settings (AutoRTNet, 32 channels, 6 layers,
# aggregation at 1/8 and 1/16, the same latency table), 80 epochs x 50 weight steps x 4 images =
# 16,000 images (the fast-v3 retrain's images per network: 40 epochs x 400), SGD lr 0.05 cosine to
# 0.001; latency weight 0 and no target (the ranking question has no latency in it); the loop's last
# epoch still takes its architecture steps (the search loop always searches its last epoch; the
# alphas are reported, not used for the one-shot scores). Seeds 8 and 9, one after the other, 2
# threads, nothing else running. The ab13 supernets had 192 relaxed weight steps (768 images): this
# budget is 21x the images, so a better ranking here cannot be told apart from more training alone
# (stated, not tested; a relaxed supernet at this budget would take about 3 hours per seed here).
#
# Declared before the first run (2026-12-05, 2-vCPU Intel Xeon family 6 model 167; this file's commit
# is the record; nothing is tuned after it, no seeds added):
#   (1) supernet_ranking.py's rule (1) on the two sampled-path supernets: "ranks networks as retraining
#       does" if the tau of the mean one-shot score against retrained mIoU has its 95 % interval above
#       0; "does not" if its upper end is below half the noise ceiling; otherwise inconclusive.
#   (2) reported, not a claim: each supernet's tau, their agreement, the one-shot range, the top pick's
#       retrained rank, beside the ab13 supernets' (-0.13, -0.35 to +0.10; top picks' retrained ranks).
#   (3) what follows, stated now: if (1) says "ranks", the next step is a declared one-shot selection
#       (candidates priced at the target, the best one-shot score kept, retrained, 4 seeds, timed as
#       the other FPN-level arms); otherwise the weight-sharing route is closed at this budget and
#       selection by training stays the search that wins the FPN level.

LUT=runs/archbatch/level-fpn-archbatch/autortnet-c32-t0.9-fpn050-ab13-s8/search/latency_lut.json
for seed in 8 9; do
  workbench search --preset autortnet --run-dir runs/single_path/spos-c32-s$seed --dataset camvid \
    --data-root datasets/proxy-camvid-128x256-400 --epochs 80 --threads 2 --seed $seed --device cpu \
    --set input_size=128x256 crop_size=128x256 batch_size=4 warmup_epochs=79 steps_per_epoch=50 \
          channels=32 layers=6 "aggregation_strides=[8,16]" aggregation_channels=32 latency_weight=0 \
          weight_paths=sampled lut_path=$LUT max_val_images=8
done
python benchmarks/supernet_ranking.py runs/single_path/spos-c32-s{8,9} \
  --compare "benchmarks/results/headline_v3/compare_fpn_run1.json:searched-fpn:benchmarks/results/headline_v3/genotypes/{name}.json" \
  --compare "benchmarks/results/search_length/compare_run1.json:long:benchmarks/results/search_length/genotypes/{name}.json" \
  --compare "benchmarks/results/search_length/compare_run1.json:random:benchmarks/results/headline/random/{name}.json" \
  --compare "benchmarks/results/search_length/warmup/compare_run1.json:warm:benchmarks/results/search_length/warmup/genotypes/{name}.json" \
  --compare "benchmarks/results/search_length/weight_decay/compare_run1.json:nowd:benchmarks/results/search_length/weight_decay/genotypes/{name}.json" \
  --compare "benchmarks/results/search_length/arch_batches/compare_run1.json:ab13:benchmarks/results/search_length/arch_batches/genotypes/{name}.json" \
  --compare "benchmarks/results/selection/compare_run1.json:select:benchmarks/results/selection/genotypes/{name}.json" \
  --compare "benchmarks/results/selection/replication/compare_run1.json:select:benchmarks/results/selection/replication/genotypes/s{seed}.json" \
  --compare "benchmarks/results/selection/replication2/compare_run1.json:select:benchmarks/results/selection/replication2/genotypes/s{seed}.json" \
  --json benchmarks/results/search_length/single_path/supernet_ranking.json
