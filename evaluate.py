"""Evaluate video object segmentation results with the DAVIS protocol.

Score an existing results folder (the semi-supervised protocol of davis2017-evaluation, same
numbers, same CSV files)::

    python evaluate.py --score --davis-root ROOT --year 2017 --split val --results DIR

writes ``DIR/global_results-<split>.csv`` and ``DIR/per-sequence_results-<split>.csv`` and
prints the tables. ``--bar-chart`` also draws ``DIR/jf_per_sequence-<split>.png``.

This file only parses flags; the work is in :mod:`vosjax.evaluation`.
"""
from __future__ import annotations

import os
import sys
import time

from absl import app, flags

flags.DEFINE_boolean("score", False, "Score an existing results folder (no inference).")
flags.DEFINE_string("davis-root", None, "DAVIS folder with ImageSets/ and Annotations/480p/.")
flags.DEFINE_enum("year", "2017", ["2016", "2017"],
                  "DAVIS version: 2017 palette ids, 2016 binary masks.")
flags.DEFINE_string("split", "val", "Image set: ImageSets/<year>/<split>.txt.")
flags.DEFINE_string("results", None, "Folder of <sequence>/<frame>.png predictions; the CSVs "
                    "are written here.")
flags.DEFINE_integer("workers", None, "PNG decoding threads (default: CPUs, at most 8).")
flags.DEFINE_boolean("bar-chart", False, "Also draw a J&F-per-sequence bar chart PNG.")

FLAGS = flags.FLAGS


def run_score() -> None:
    """``--score``: score ``--results`` against ``--davis-root``."""
    from vosjax.evaluation import davis, protocol, visualize  # noqa: PLC0415

    for name in ("davis-root", "results"):
        if not FLAGS[name].value:
            raise app.UsageError(f"--score needs --{name}")
    start = time.perf_counter()
    scores = davis.score_davis(FLAGS["davis-root"].value, FLAGS.results, year=int(FLAGS.year),
                               split=FLAGS.split, workers=FLAGS.workers)
    paths = protocol.write_csvs(scores, FLAGS.results, FLAGS.split)
    print(protocol.format_table(scores, FLAGS.split))
    for path in paths:
        print(f"wrote {path}")
    if FLAGS["bar-chart"].value:
        chart = os.path.join(FLAGS.results, f"jf_per_sequence-{FLAGS.split}.png")
        visualize.jf_bar_chart(scores.per_object_rows(), chart,
                               title=f"DAVIS {FLAGS.year} {FLAGS.split}: J&F per object")
        print(f"wrote {chart}")
    print(f"scored {len(scores.object_names)} objects in {len(scores.sequences)} sequences "
          f"in {time.perf_counter() - start:.2f} s")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    # One function per mode; each reports bad input as FileNotFoundError / ValueError.
    if FLAGS.score:
        mode = run_score
    else:
        raise app.UsageError("choose a mode: --score (score an existing results folder)")
    try:
        mode()
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
