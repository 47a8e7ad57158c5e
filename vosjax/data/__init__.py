"""Datasets and dataset specs, readers, label PNG I/O, synthetic videos, the training clip
sampler (with GCSeg's reference/target pairs) and the device-side batch preparation."""
