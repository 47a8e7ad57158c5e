"""Datasets, readers, label PNG I/O, synthetic videos and the training clip sampler."""
