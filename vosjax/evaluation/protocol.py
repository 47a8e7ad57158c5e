"""The semi-supervised DAVIS protocol on label maps: per-object J/F rows, Mean / Recall /
Decay statistics, global means, and the toolkit's CSV files.

Rules (those of davis2017-evaluation, semi-supervised task):

* The objects of a sequence are ids 1..N with N the largest id in the first ground-truth
  frame; 255 is "void" and counts as background; ground-truth ids above N are ignored.
* The first and the last frame are not scored.
* A prediction may omit objects (they score as empty masks) but must not hold an id above N.
* Each object is one row ``<sequence>_<k>``; global J / F means are means over all objects of
  all sequences, and J&F-Mean is their average.
"""
from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Sequence

import numpy as np

from vosjax import atomic
from vosjax.evaluation.bitplanes import sequence_scores
from vosjax.evaluation.metrics import BOUND_TH

VOID_ID = 255
GLOBAL_COLUMNS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")
SEQUENCE_COLUMNS = ("Sequence", "J-Mean", "F-Mean")
DECAY_BINS = 4


def decay_bin_edges(num_frames: int) -> np.ndarray:
    """Start indices of the toolkit's 4 decay bins, ``[5]``: bin i is frames
    ``[edges[i], edges[i + 1]]`` (inclusive, so neighbouring bins share a frame).

    Kept exactly as the toolkit computes it, including its cast to uint8: with more than 256
    scored frames the indices wrap, the last bin can come out empty and that object's Decay
    is NaN, as in the toolkit (DAVIS sequences have at most 104 frames)."""
    edges = np.round(np.linspace(1, num_frames, DECAY_BINS + 1) + 1e-10) - 1
    return edges.astype(np.uint8)


def object_statistics(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, Recall (fraction of frames > 0.5) and Decay (mean of the first quarter minus
    mean of the last quarter) of per-frame scores ``[O, T]`` -> three float64 ``[O]``."""
    values = np.asarray(values, np.float64)
    if values.ndim != 2 or values.shape[1] == 0:
        raise ValueError(f"per-frame scores must be [objects, frames>0], got {values.shape}")
    e = decay_bin_edges(values.shape[1])
    with warnings.catch_warnings():  # an empty last bin (see decay_bin_edges) gives NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(values, axis=1)
        recall = np.nanmean(values > 0.5, axis=1)
        first = np.nanmean(values[:, e[0]:e[1] + 1], axis=1)
        last = np.nanmean(values[:, e[3]:e[4] + 1], axis=1)
    return mean, recall, first - last


@dataclasses.dataclass(frozen=True)
class SequenceScores:
    """Per-frame scores of one sequence: ``j``, ``f`` float64 ``[objects, scored frames]``
    (the first and last frames excluded)."""
    name: str
    j: np.ndarray
    f: np.ndarray

    @property
    def object_names(self) -> list[str]:
        return [f"{self.name}_{k}" for k in range(1, len(self.j) + 1)]


def num_objects(first_gt: np.ndarray) -> int:
    """N, the largest object id of the first ground-truth frame (void 255 excluded)."""
    ids = np.where(first_gt == VOID_ID, 0, first_gt)
    return int(ids.max(initial=0))


def check_prediction_ids(pred: np.ndarray, n_objects: int, where: Sequence[str]) -> None:
    """Raise ValueError naming the first frame of ``pred [T, H, W]`` (``where[t]`` names frame
    t) whose ids exceed ``n_objects``."""
    peaks = pred.reshape(len(pred), -1).max(axis=1, initial=0)
    bad = np.flatnonzero(peaks > n_objects)
    if len(bad):
        t = int(bad[0])
        raise ValueError(
            f"{where[t]}: object id {int(peaks[t])} in the prediction, but the ground truth "
            f"has {n_objects} object(s) (ids 1..{n_objects} of its first frame)")


def score_sequence(name: str, gt: np.ndarray, pred: np.ndarray, *,
                   frame_names: Sequence[str] | None = None,
                   bound_th: float = BOUND_TH) -> SequenceScores:
    """Score one sequence with the DAVIS protocol (module docstring).

    Args:
      name: sequence name (rows are ``<name>_<k>``).
      gt: ``uint8 [T, H, W]`` ground-truth ids (255 = void), T >= 3.
      pred: ``uint8 [T, H, W]`` predicted ids; frames 0 and T-1 are ignored.
      frame_names: names used in error messages for each frame (default ``<name>/<t>``).
      bound_th: boundary tolerance.
    """
    gt, pred = np.asarray(gt), np.asarray(pred)
    if gt.ndim != 3 or len(gt) < 3:
        raise ValueError(f"{name}: ground truth must be [T>=3, H, W] (the first and last frames"
                         f" are not scored), got shape {gt.shape}")
    if pred.shape != gt.shape:
        raise ValueError(f"{name}: prediction shape {pred.shape} differs from the ground "
                         f"truth {gt.shape}")
    where = list(frame_names) if frame_names is not None else [
        f"{name}/{t:05d}" for t in range(len(gt))]
    n_obj = num_objects(gt[0])
    check_prediction_ids(pred[1:-1], n_obj, where[1:-1])
    j, f = sequence_scores(gt[1:-1], pred[1:-1], n_obj, bound_th)
    return SequenceScores(name, j, f)


@dataclasses.dataclass(frozen=True)
class DavisScores:
    """Per-object statistics of a set of sequences (rows in sequence order)."""
    sequences: tuple[SequenceScores, ...]

    @property
    def object_names(self) -> list[str]:
        return [n for s in self.sequences for n in s.object_names]

    def stat(self, metric: str, stat: str) -> np.ndarray:
        """``metric`` in {"J", "F"}, ``stat`` in {"M", "R", "D"} -> float64 ``[objects]``."""
        index = "MRD".index(stat)
        parts = [object_statistics(getattr(s, metric.lower()))[index]
                 for s in self.sequences if len(s.j)]
        return np.concatenate(parts) if parts else np.zeros(0)

    def global_row(self) -> dict[str, float]:
        """The global table: means over all objects (toolkit column names)."""
        if not self.object_names:
            raise ValueError("no objects to score (every first ground-truth frame is empty)")
        m = {f"{metric}-{label}": float(np.mean(self.stat(metric, s)))
             for metric in "JF" for s, label in (("M", "Mean"), ("R", "Recall"),
                                                  ("D", "Decay"))}
        return {"J&F-Mean": (m["J-Mean"] + m["F-Mean"]) / 2.0, **m}

    def per_object_rows(self) -> list[tuple[str, float, float]]:
        """``(object name, J-Mean, F-Mean)`` per object."""
        return list(zip(self.object_names, self.stat("J", "M").tolist(),
                        self.stat("F", "M").tolist()))


def _fmt(value: float) -> str:
    return "" if np.isnan(value) else "%.3f" % value


def csv_texts(scores: DavisScores) -> tuple[str, str]:
    """The contents of ``global_results-<split>.csv`` and ``per-sequence_results-<split>.csv``
    as the toolkit writes them (values with 3 decimals)."""
    row = scores.global_row()
    glob = ",".join(GLOBAL_COLUMNS) + "\n" + ",".join(_fmt(row[c]) for c in GLOBAL_COLUMNS)
    per = [",".join(SEQUENCE_COLUMNS)] + [f"{n},{_fmt(j)},{_fmt(f)}"
                                         for n, j, f in scores.per_object_rows()]
    return glob + "\n", "\n".join(per) + "\n"


def csv_paths(directory: str | os.PathLike, split: str) -> tuple[str, str]:
    """Paths of the global and per-sequence CSVs in ``directory``."""
    d = os.fspath(directory)
    return (os.path.join(d, f"global_results-{split}.csv"),
            os.path.join(d, f"per-sequence_results-{split}.csv"))


def write_csvs(scores: DavisScores, directory: str | os.PathLike, split: str) -> tuple[str, str]:
    """Write both CSVs into ``directory`` (temporary files renamed into place once both are
    complete); returns their paths."""
    glob_path, per_path = paths = csv_paths(directory, split)
    glob_text, per_text = csv_texts(scores)
    # Both files are written before either is renamed (the global CSV first).
    with atomic.replacing(per_path) as per_tmp, atomic.replacing(glob_path) as glob_tmp:
        for tmp, text in ((glob_tmp, glob_text), (per_tmp, per_text)):
            with open(tmp, "w") as f:
                f.write(text)
    return paths


def format_table(scores: DavisScores, split: str) -> str:
    """Human-readable global and per-object tables."""
    row = scores.global_row()
    widths = [max(len(c), 6) for c in GLOBAL_COLUMNS]
    lines = [f"---------- Global results for {split} ----------",
             " ".join(c.rjust(w) for c, w in zip(GLOBAL_COLUMNS, widths)),
             " ".join(_fmt(row[c]).rjust(w) for c, w in zip(GLOBAL_COLUMNS, widths)),
             "", f"---------- Per sequence results for {split} ----------"]
    rows = scores.per_object_rows()
    name_w = max([len(SEQUENCE_COLUMNS[0])] + [len(n) for n, _, _ in rows])
    lines.append(f"{SEQUENCE_COLUMNS[0]:>{name_w}} {'J-Mean':>6} {'F-Mean':>6}")
    lines += [f"{n:>{name_w}} {_fmt(j):>6} {_fmt(f):>6}" for n, j, f in rows]
    return "\n".join(lines)
