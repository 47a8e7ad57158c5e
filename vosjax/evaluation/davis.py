"""Score a results folder against a DAVIS folder (the layout davis2017-evaluation reads).

Layout::

    ROOT/ImageSets/<year>/<split>.txt          one sequence a line
    ROOT/Annotations/480p/<seq>/<frame>.png    ground truth: DAVIS-2017 palette ids (255 =
                                               void), DAVIS-2016 binary 0/255 masks
    RESULTS/<seq>/<frame>.png                  predictions: palette (or grayscale) ids

The frames of a sequence are its ground-truth PNGs in name order. Predictions are needed for
every scored frame (all but the first and the last, as in the toolkit). Every missing
sequence or frame is reported before any scoring starts; PNGs are decoded on a thread pool
while the previous sequence is scored.
"""
from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Callable, Sequence

import numpy as np

from vosjax.data.davis import davis_sequences
from vosjax.evaluation.labelio import read_labels
from vosjax.evaluation.metrics import BOUND_TH
from vosjax.evaluation.protocol import DavisScores, SequenceScores, score_sequence

YEARS = (2016, 2017)


def annotation_frames(davis_root: str | os.PathLike, sequence: str) -> list[str]:
    """Frame names (PNG stems, sorted) of ``ROOT/Annotations/480p/<sequence>``."""
    folder = os.path.join(os.fspath(davis_root), "Annotations", "480p", sequence)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder}: ground-truth folder of sequence {sequence!r} "
                                "not found")
    frames = sorted(f[:-4] for f in os.listdir(folder) if f.endswith(".png"))
    if len(frames) < 3:
        raise ValueError(f"{folder}: {len(frames)} annotated frame(s); the protocol needs at "
                         "least 3 (the first and last are not scored)")
    return frames


def check_results_complete(results_dir: str | os.PathLike,
                           frames: dict[str, list[str]]) -> None:
    """Raise FileNotFoundError listing every missing sequence folder or scored frame PNG
    (frames other than the first and last of each sequence)."""
    results_dir = os.fspath(results_dir)
    if not os.path.isdir(results_dir):
        raise FileNotFoundError(f"{results_dir}: results folder not found")
    problems = []
    for seq, names in frames.items():
        folder = os.path.join(results_dir, seq)
        if not os.path.isdir(folder):
            problems.append(f"sequence {seq!r}: folder {folder} missing")
            continue
        present = set(os.listdir(folder))
        missing = [n for n in names[1:-1] if f"{n}.png" not in present]
        if missing:
            shown = ", ".join(f"{n}.png" for n in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            problems.append(f"sequence {seq!r}: {len(missing)} frame(s) missing in {folder}: "
                            f"{shown}{more}")
    if problems:
        raise FileNotFoundError("incomplete results:\n  " + "\n  ".join(problems))


def _load_sequence(gt_futures, pred_futures, gt_paths, pred_paths) -> tuple[np.ndarray, np.ndarray]:
    """Stack decoded frames; the prediction's first and last frames are left empty."""
    gts = [f.result() for f in gt_futures]
    shape = gts[0].shape
    for path, arr in zip(gt_paths, gts):
        if arr.shape != shape:
            raise ValueError(f"{path}: ground-truth size {arr.shape[::-1]} differs from the "
                             f"sequence's first frame {shape[::-1]} (W, H)")
    gt = np.stack(gts)
    pred = np.zeros_like(gt)
    for t, (path, fut) in enumerate(zip(pred_paths, pred_futures), start=1):
        arr = fut.result()
        if arr.shape != shape:
            raise ValueError(f"{path}: prediction size {arr.shape[::-1]} (W, H) differs from "
                             f"the ground truth {shape[::-1]}")
        pred[t] = arr
    return gt, pred


def score_davis(davis_root: str | os.PathLike, results_dir: str | os.PathLike, *,
                year: int = 2017, split: str = "val", sequences: Sequence[str] | None = None,
                workers: int | None = None, bound_th: float = BOUND_TH,
                progress: Callable[[str], None] | None = None) -> DavisScores:
    """Score ``results_dir`` against the ground truth of ``davis_root``.

    Args:
      davis_root: DAVIS folder (ImageSets/, Annotations/480p/).
      results_dir: folder with ``<seq>/<frame>.png`` predictions.
      year: 2017 (palette ids) or 2016 (binary masks).
      split: image set name (``ImageSets/<year>/<split>.txt``).
      sequences: score these instead of the split's list.
      workers: PNG decoding threads (default: number of CPUs, at most 8).
      bound_th: boundary tolerance.
      progress: called with each sequence name once it is scored.
    """
    if year not in YEARS:
        raise ValueError(f"year={year}: must be one of {YEARS}")
    names = list(sequences) if sequences is not None else davis_sequences(
        davis_root, year, split)
    if not names:
        raise ValueError("no sequences to score")
    frames = {seq: annotation_frames(davis_root, seq) for seq in names}
    check_results_complete(results_dir, frames)

    def read_gt(path: str) -> np.ndarray:
        return read_labels(path, binary=(year == 2016))

    def read_pred(path: str) -> np.ndarray:
        # DAVIS-2016 results are often 0/255 grayscale: decide from the file as for the GT.
        return read_labels(path, binary=None if year == 2016 else False)

    ann = os.path.join(os.fspath(davis_root), "Annotations", "480p")
    res = os.fspath(results_dir)
    workers = workers or min(8, os.cpu_count() or 1)
    out: list[SequenceScores] = []
    pool = concurrent.futures.ThreadPoolExecutor(workers)

    def submit(seq: str):
        gt_paths = [os.path.join(ann, seq, f"{n}.png") for n in frames[seq]]
        pred_paths = [os.path.join(res, seq, f"{n}.png") for n in frames[seq][1:-1]]
        return ([pool.submit(read_gt, p) for p in gt_paths],
                [pool.submit(read_pred, p) for p in pred_paths], gt_paths, pred_paths)

    try:
        pending = submit(names[0])
        for i, seq in enumerate(names):
            current = pending
            if i + 1 < len(names):  # decode the next sequence while this one is scored
                pending = submit(names[i + 1])
            gt, pred = _load_sequence(*current)
            where = [os.path.join(res, seq, f"{n}.png") for n in frames[seq]]
            out.append(score_sequence(seq, gt, pred, frame_names=where, bound_th=bound_th))
            if progress is not None:
                progress(seq)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return DavisScores(tuple(out))
