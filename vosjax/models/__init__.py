"""Flax linen models: ResNet trunks, STM (STM-Training and the original STM) and GCSeg."""
