"""Training: the STM-cycle objective, sharded train step, checkpoints and the loop."""
