"""Metrics: segmentation (confusion matrix, mIoU; agrees with the Cityscapes evaluator), DAVIS 2017
J and F (agrees with the official toolkit's rules), and the trivial baselines."""
