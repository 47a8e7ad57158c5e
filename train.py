"""Train a vosjax model (flags only; the work is in vosjax.jobs).

    python train.py --config configs/demo.py --workdir /tmp/vosjax-demo
    python train.py --config configs/stm_cycle.py:r50 --workdir runs/x \
        --config.train.num_train_steps=100

Re-running the same command resumes from the latest checkpoint in ``--workdir``.
"""
from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py[:arg]).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, metrics and the trained model.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from absl import logging
    logging.set_verbosity(logging.WARNING)  # orbax logs every checkpoint step at INFO
    from vosjax.jobs import train_and_evaluate
    train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
    app.run(main)
