"""Datasets in their real on-disk formats (Cityscapes, CamVid, DAVIS 2017) and synthetic
generators that write those same formats."""
