"""DAVIS region similarity J and boundary accuracy F (dense numpy definitions).

These are the measures of the semi-supervised DAVIS protocol as the davis2017-evaluation
toolkit computes them (Perazzi et al., CVPR 2016, Sec. 3 "Region similarity" and "Contour
accuracy"), written as readable, batched numpy. :mod:`vosjax.evaluation.bitplanes` computes
the same numbers on bit-packed masks, much faster; the tests check the two agree.

Conventions (all of them the toolkit's):

* J = |M ∩ G| / |M ∪ G|, and J = 1 when both masks are empty.
* The boundary map of a mask marks pixel (y, x) when the 2x2 block {(y, x), (y, x+1),
  (y+1, x), (y+1, x+1)} is not constant, with the last row and last column replicated
  outwards (so the bottom-right pixel is never a boundary).
* Boundary pixels match within ``tol = ceil(bound_th * sqrt(H^2 + W^2))`` pixels, measured
  with the disk {dx^2 + dy^2 <= tol^2}.
* precision = matched predicted boundary / predicted boundary, recall = matched ground-truth
  boundary / ground-truth boundary; an empty predicted boundary gives (P, R) = (1, 0), an
  empty ground-truth boundary (0, 1), both empty (1, 1); F = 2PR / (P + R), 0 when P + R = 0.
"""
from __future__ import annotations

import math

import numpy as np

BOUND_TH = 0.008  # DAVIS boundary tolerance, a fraction of the image diagonal


def boundary_tolerance(height: int, width: int, bound_th: float = BOUND_TH) -> int:
    """Boundary tolerance in pixels: ``ceil(bound_th * ||(H, W)||)``; ``bound_th >= 1`` is
    already a pixel count (it must then be a whole number)."""
    if bound_th >= 1:
        if bound_th != int(bound_th):
            raise ValueError(f"bound_th={bound_th}: a pixel tolerance must be a whole number")
        return int(bound_th)
    # np.linalg.norm, not math.hypot: the same rounding as the toolkit right at integers.
    return int(np.ceil(bound_th * np.linalg.norm((height, width))))


def disk_half_widths(radius: int) -> np.ndarray:
    """Half widths ``int [2r+1]`` of the disk {dx^2 + dy^2 <= r^2} per row offset -r..r:
    row dy spans dx in [-w, w] with w = floor(sqrt(r^2 - dy^2))."""
    return np.array([math.isqrt(radius * radius - dy * dy)
                     for dy in range(-radius, radius + 1)], np.int64)


def region_similarity(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Jaccard index J (Perazzi et al. 2016, Eq. 1) of binary masks ``[..., H, W]``
    -> float64 ``[...]``; 1 where both masks are empty."""
    gt, pred = np.asarray(gt, bool), np.asarray(pred, bool)
    if gt.shape != pred.shape:
        raise ValueError(f"mask shapes differ: ground truth {gt.shape}, prediction {pred.shape}")
    inter = np.count_nonzero(gt & pred, axis=(-2, -1))
    union = np.count_nonzero(gt | pred, axis=(-2, -1))
    return jaccard_from_counts(inter, union)


def jaccard_from_counts(inter: np.ndarray, union: np.ndarray) -> np.ndarray:
    """``inter / union`` as float64, 1 where ``union == 0``."""
    inter, union = np.asarray(inter, np.float64), np.asarray(union, np.float64)
    return np.where(union == 0, 1.0, inter / np.where(union == 0, 1.0, union))


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """One-pixel-wide boundary ``bool [..., H, W]`` of binary masks ``[..., H, W]`` (the
    toolkit's ``seg2bmap`` at full resolution): pixel (y, x) is on the boundary when its 2x2
    block (replicating the last row and column) is not constant."""
    m = np.asarray(mask, bool)
    pad = [(0, 0)] * (m.ndim - 2) + [(0, 1), (0, 1)]
    p = np.pad(m, pad, mode="edge")
    here = p[..., :-1, :-1]
    return (here != p[..., :-1, 1:]) | (here != p[..., 1:, :-1]) | (here != p[..., 1:, 1:])


def dilate_disk(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation ``bool [..., H, W]`` by the disk {dx^2 + dy^2 <= r^2} (pixels outside
    the image count as empty), as rows of horizontal segments."""
    m = np.asarray(mask, bool)
    h, w = m.shape[-2:]
    widths = disk_half_widths(radius)
    rows = {0: m}  # half width -> horizontally dilated mask
    for s in range(1, int(widths.max(initial=0)) + 1):
        cur = rows[s - 1].copy()
        if s < w:
            cur[..., s:] |= m[..., :w - s]
            cur[..., :w - s] |= m[..., s:]
        rows[s] = cur
    out = np.zeros_like(m)
    for dy, half in zip(range(-radius, radius + 1), widths):
        if abs(dy) >= h:
            continue
        src = rows[int(half)]
        if dy >= 0:
            out[..., :h - dy, :] |= src[..., dy:, :]
        else:
            out[..., -dy:, :] |= src[..., :h + dy, :]
    return out


def f_from_counts(n_pred: np.ndarray, n_gt: np.ndarray, pred_matched: np.ndarray,
                  gt_matched: np.ndarray) -> np.ndarray:
    """Boundary F-measure (Perazzi et al. 2016, Eq. 2: F = 2PR / (P + R)) from boundary pixel
    counts, float64, with the toolkit's empty-boundary conventions (module docstring)."""
    n_pred, n_gt = np.asarray(n_pred, np.int64), np.asarray(n_gt, np.int64)
    safe = lambda n: np.where(n == 0, 1, n).astype(np.float64)  # noqa: E731
    precision = np.where(n_pred == 0, 1.0, pred_matched / safe(n_pred))
    recall = np.where(n_gt == 0, 1.0, gt_matched / safe(n_gt))
    precision = np.where((n_pred > 0) & (n_gt == 0), 0.0, precision)
    recall = np.where((n_pred == 0) & (n_gt > 0), 0.0, recall)
    total = precision + recall
    return np.where(total == 0, 0.0, 2 * precision * recall / np.where(total == 0, 1.0, total))


def boundary_f_measure(gt: np.ndarray, pred: np.ndarray, bound_th: float = BOUND_TH,
                       ) -> np.ndarray:
    """Boundary F-measure of binary masks ``[..., H, W]`` -> float64 ``[...]``."""
    gt, pred = np.asarray(gt, bool), np.asarray(pred, bool)
    if gt.shape != pred.shape:
        raise ValueError(f"mask shapes differ: ground truth {gt.shape}, prediction {pred.shape}")
    radius = boundary_tolerance(*gt.shape[-2:], bound_th=bound_th)
    gt_b, pred_b = boundary_map(gt), boundary_map(pred)
    axes = (-2, -1)
    return f_from_counts(
        np.count_nonzero(pred_b, axis=axes), np.count_nonzero(gt_b, axis=axes),
        np.count_nonzero(pred_b & dilate_disk(gt_b, radius), axis=axes),
        np.count_nonzero(gt_b & dilate_disk(pred_b, radius), axis=axes))
