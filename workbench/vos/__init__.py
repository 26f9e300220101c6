"""One-pass video object segmentation (OVS-Net): detection, mask-guided segmentation and
re-identification in one network, run strictly online; plus an offline back-and-forth baseline."""
