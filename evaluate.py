"""Evaluate video object segmentation results with the DAVIS protocol.

Score an existing results folder (the semi-supervised protocol of davis2017-evaluation, same
numbers, same CSV files)::

    python evaluate.py --score --davis_root ROOT --year 2017 --split val --results DIR

writes ``DIR/global_results-<split>.csv`` and ``DIR/per-sequence_results-<split>.csv`` and
prints the tables. ``--bar_chart`` also draws ``DIR/jf_per_sequence-<split>.png``.

Run a model on a dataset, write palette PNGs at the original resolution, score when ground
truth exists and report frames/s::

    python evaluate.py --config configs/stm_cycle.py --checkpoint DIR \
        --dataset davis2017:ROOT --split val --output OUT [--overlays]

STM videos are segmented ``config.eval.videos_per_device`` at a time on every local device
(``--config.eval.videos_per_device=4``). Several hosts: run the same command on each with
``--coordinator_address HOST0:PORT --num_processes N --process_id I`` (``--output`` on a shared
filesystem); each segments its share, process 0 writes the CSVs and ``summary.json``.

``--checkpoint`` is a directory written by ``python -m vosjax.convert`` or a ``train.py``
workdir; ``--dataset`` is ``davis2017:ROOT | davis2016:ROOT | youtubevos:ROOT |
tfds:davis/480p | folder:FRAMES_DIR`` (with ``--first_mask``). Gradient correction runs when
the config says so (``--config.eval.correction=True``). Re-running the same command after an
interruption keeps the videos already complete in ``--output`` (``--overwrite`` starts over).

This file only parses flags; the work is in :mod:`vosjax.jobs` and :mod:`vosjax.evaluation`.
"""
from __future__ import annotations

import os
import sys
import time

from absl import app, flags
from ml_collections import config_flags

flags.DEFINE_boolean("score", False, "Score an existing results folder (no inference).")
flags.DEFINE_string("davis_root", None, "DAVIS folder with ImageSets/ and Annotations/480p/.")
flags.DEFINE_enum("year", "2017", ["2016", "2017"],
                  "DAVIS version: 2017 palette ids, 2016 binary masks.")
flags.DEFINE_string("split", "val", "Image set: ImageSets/<year>/<split>.txt.")
flags.DEFINE_string("results", None, "Folder of <sequence>/<frame>.png predictions; the CSVs "
                    "are written here.")
flags.DEFINE_integer("workers", None, "PNG decoding threads (default: CPUs, at most 8).")
flags.DEFINE_boolean("bar_chart", False, "Also draw a J&F-per-sequence bar chart PNG.")

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config (configs/*.py[:arg]): "
                                          "working size and config.eval inference settings.",
                                          lock_config=True)
flags.DEFINE_string("checkpoint", None, "Model directory (vosjax.convert output or a train.py "
                    "workdir).")
flags.DEFINE_string("dataset", None, "davis2017:ROOT | davis2016:ROOT | youtubevos:ROOT | "
                    "tfds:davis/480p | folder:FRAMES_DIR")
flags.DEFINE_string("output", None, "Output folder: <seq>/<frame>.png, CSVs, overlays.")
flags.DEFINE_string("first_mask", None, "With --dataset=folder:...: the objects' PNG.")
flags.DEFINE_boolean("overlays", False, "Also write overlay PNGs and a GIF per sequence.")
flags.DEFINE_boolean("overwrite", False, "Segment every video again. Default: resume, keeping "
                     "the videos whose outputs in --output are complete.")
flags.DEFINE_string("coordinator_address", None, "Several processes (hosts): HOST:PORT of "
                    "process 0, with --num_processes and --process_id (jax.distributed); 'auto' "
                    "detects them from the cluster (SLURM, Cloud TPU, ...). --output must be a "
                    "folder every host sees.")
flags.DEFINE_integer("num_processes", None, "Number of evaluation processes (hosts).")
flags.DEFINE_integer("process_id", None, "This process's index, 0 .. --num_processes - 1.")

FLAGS = flags.FLAGS


def run_score() -> None:
    """``--score``: score ``--results`` against ``--davis_root``."""
    from vosjax.evaluation import davis, protocol, visualize

    for name in ("davis_root", "results"):
        if not FLAGS[name].value:
            raise app.UsageError(f"--score needs --{name}")
    start = time.perf_counter()
    scores = davis.score_davis(FLAGS.davis_root, FLAGS.results, year=int(FLAGS.year),
                               split=FLAGS.split, workers=FLAGS.workers)
    paths = protocol.write_csvs(scores, FLAGS.results, FLAGS.split)
    print(protocol.format_table(scores, FLAGS.split))
    for path in paths:
        print(f"wrote {path}")
    if FLAGS.bar_chart:
        chart = os.path.join(FLAGS.results, f"jf_per_sequence-{FLAGS.split}.png")
        visualize.jf_bar_chart(scores.per_object_rows(), chart,
                               title=f"DAVIS {FLAGS.year} {FLAGS.split}: J&F per object")
        print(f"wrote {chart}")
    print(f"scored {len(scores.object_names)} objects in {len(scores.sequences)} sequences "
          f"in {time.perf_counter() - start:.2f} s")


def run_inference() -> None:
    """``--config --checkpoint --dataset --output``: segment, write, score, time."""
    from vosjax import jobs

    for name in ("checkpoint", "dataset", "output"):
        if not FLAGS[name].value:
            raise app.UsageError(f"inference needs --{name}")
    if _CONFIG.value is None:
        raise app.UsageError("inference needs --config (working size, config.eval settings)")
    if FLAGS.coordinator_address:
        import jax
        if FLAGS.coordinator_address == "auto":
            jax.distributed.initialize()
        elif FLAGS.num_processes is None or FLAGS.process_id is None:
            raise app.UsageError("--coordinator_address needs --num_processes and --process_id")
        else:
            jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes,
                                       FLAGS.process_id)
    jobs.evaluate(_CONFIG.value, checkpoint=FLAGS.checkpoint, dataset=FLAGS.dataset,
                  split=FLAGS.split, output=FLAGS.output, first_mask=FLAGS.first_mask,
                  overlays=FLAGS.overlays, bar_chart=FLAGS.bar_chart,
                  overwrite=FLAGS.overwrite)


def main(argv: list[str]) -> None:
    from absl import logging
    logging.set_verbosity(logging.WARNING)  # orbax logs at INFO
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    # One function per mode; each reports bad input as FileNotFoundError / ValueError, a video
    # too large for the device as a MemoryError (vosjax.inference.batch.DeviceMemoryError).
    if FLAGS.score:
        mode = run_score
    elif FLAGS.checkpoint or FLAGS.dataset:
        mode = run_inference
    else:
        raise app.UsageError("choose a mode: --score (score an existing results folder) or "
                             "--config/--checkpoint/--dataset/--output (inference + scoring)")
    try:
        mode()
    except (FileNotFoundError, ValueError, MemoryError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
