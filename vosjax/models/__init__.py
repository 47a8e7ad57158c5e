"""Flax linen models: ResNet trunks, STM (and GCSeg)."""
