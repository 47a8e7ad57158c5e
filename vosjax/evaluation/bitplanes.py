"""Fast exact J and F for whole sequences on bit-packed masks.

Each object's masks ``[T, H, W]`` are packed 64 pixels to a ``uint64`` word (most significant
bit first), cropped to the rows and words that hold any of the object (in ground truth or
prediction), and the boundary maps, disk dilations and match counts of
:mod:`vosjax.evaluation.metrics` are evaluated with word shifts, ORs and popcounts, for all
frames at once. The numbers are identical to the dense definitions (and so to the DAVIS
toolkit): the disk is applied as rows of horizontal segments, which is exactly the set
{dx^2 + dy^2 <= r^2}, and cropping only drops pixels where neither mask can have a boundary.
"""
from __future__ import annotations

import numpy as np

from vosjax.evaluation.metrics import (
    BOUND_TH,
    boundary_tolerance,
    disk_half_widths,
    f_from_counts,
    jaccard_from_counts,
)


def pack_masks(mask: np.ndarray) -> np.ndarray:
    """``bool [T, H, W]`` -> ``uint64 [T, H, W // 64 + 1]``: pixel x of a row is bit
    ``63 - x % 64`` of word ``x // 64``; the bits from column W on are 0 (there is always at
    least one spare bit, used by :func:`replicate_edges`)."""
    t_len, height, width = mask.shape
    n_words = width // 64 + 1
    packed = np.packbits(mask, axis=-1)  # big bit order: pixel 8j is bit 7 of byte j
    buf = np.zeros((t_len, height, n_words * 8), np.uint8)
    buf[..., :packed.shape[-1]] = packed
    return buf.view(">u8").astype(np.uint64)


def popcount(words: np.ndarray) -> np.ndarray:
    """Set bits of ``uint64 [T, ...]`` per leading index -> int64 ``[T]``."""
    return np.bitwise_count(words).reshape(len(words), -1).sum(axis=1, dtype=np.int64)


def replicate_edges(words: np.ndarray, width: int) -> np.ndarray:
    """Packed ``[T, H, n]`` -> ``[T, H + 1, n]`` with the last row repeated below and column
    ``width - 1`` copied into column ``width`` (the toolkit's edge handling in ``seg2bmap``)."""
    out = np.concatenate([words, words[:, -1:]], axis=1)
    last_word, last_bit = divmod(width - 1, 64)
    pad_word, pad_bit = divmod(width, 64)
    bit = (out[..., last_word] >> np.uint64(63 - last_bit)) & np.uint64(1)
    out[..., pad_word] |= bit << np.uint64(63 - pad_bit)
    return out


def _east(x: np.ndarray, s: int) -> np.ndarray:
    """Pixel x takes the value of pixel x + s (0 < s < 64); zeros come in at the right."""
    out = x << np.uint64(s)
    out[..., :-1] |= x[..., 1:] >> np.uint64(64 - s)
    return out


def _west(x: np.ndarray, s: int) -> np.ndarray:
    """Pixel x takes the value of pixel x - s (0 < s < 64); zeros come in at the left."""
    out = x >> np.uint64(s)
    out[..., 1:] |= x[..., :-1] << np.uint64(64 - s)
    return out


def _column_mask(width: int, first_word: int, last_word: int) -> np.ndarray:
    """Words ``[first_word, last_word)`` with the bits of columns < ``width`` set."""
    valid = np.clip(width - 64 * np.arange(first_word, last_word), 0, 64)
    return np.array([(0xFFFFFFFFFFFFFFFF << (64 - int(n))) & 0xFFFFFFFFFFFFFFFF
                     for n in valid], np.uint64)


def packed_boundary(ext: np.ndarray, rows: slice, colmask: np.ndarray) -> np.ndarray:
    """Boundary map (``metrics.boundary_map``) of the rows ``rows`` of edge-replicated packed
    masks ``ext [T, H + 1, n]`` (already cropped to the words of ``colmask``)."""
    here = ext[:, rows]
    below = ext[:, rows.start + 1:rows.stop + 1]
    b = (here ^ _east(here, 1)) | (here ^ below) | (here ^ _east(below, 1))
    return b & colmask


def packed_dilate(b: np.ndarray, radius: int) -> np.ndarray:
    """Disk dilation (``metrics.dilate_disk``) of packed maps ``b [T, h, n]``; ``radius``
    must be < 64 when ``n`` > 1 (word shifts)."""
    if radius == 0:
        return b.copy()
    if radius > 63:
        raise ValueError(f"boundary tolerance {radius} px is above the packed limit of 63")
    widths = disk_half_widths(radius)
    segments = {0: b}  # half width -> horizontally dilated maps

    def segment(s: int) -> np.ndarray:
        if s not in segments:
            # Segments of half width a, shifted by +-(s - a), cover [-s, s] without gaps when
            # s - a <= 2a + 1.
            a = max(k for k in segments if k < s)
            if s - a > 2 * a + 1:
                segment(-(-(s - 1) // 3))  # the smallest usable base, ceil((s - 1) / 3)
                a = max(k for k in segments if k < s)
            base = segments[a]
            segments[s] = base | _east(base, s - a) | _west(base, s - a)
        return segments[s]

    h = b.shape[1]
    out = segment(int(widths[radius])).copy()  # dy = 0 has the widest row
    for dy in range(1, min(radius, h - 1) + 1):
        seg = segment(int(widths[radius + dy]))
        out[:, :h - dy] |= seg[:, dy:]
        out[:, dy:] |= seg[:, :h - dy]
    return out


def _crop_counts(g: np.ndarray, p: np.ndarray, width: int, radius: int) -> np.ndarray:
    """Boundary counts ``int64 [4, T]`` (predicted, ground truth, matched predicted, matched
    ground truth) of edge-replicated packed masks ``[T, H + 1, n]``, computed on the rows and
    words that hold any of either mask (boundary pixels lie in rows [first - 1, last] and
    words [first - 1, last + 1] of the content)."""
    counts = np.zeros((4, len(g)), np.int64)
    content = g | p
    row_any = np.flatnonzero(content.any(axis=(0, 2)))
    if not len(row_any):  # both empty: no boundary at all
        return counts
    word_any = np.flatnonzero(content.any(axis=(0, 1)))
    rows = slice(max(0, row_any[0] - 1), min(g.shape[1] - 1, row_any[-1] + 1))
    w0, w1 = max(0, word_any[0] - 1), min(g.shape[2], word_any[-1] + 2)
    colmask = _column_mask(width, w0, w1)
    gb = packed_boundary(g[..., w0:w1], rows, colmask)
    pb = packed_boundary(p[..., w0:w1], rows, colmask)
    counts[0], counts[1] = popcount(pb), popcount(gb)
    counts[2] = popcount(pb & packed_dilate(gb, radius))
    counts[3] = popcount(gb & packed_dilate(pb, radius))
    return counts


def sequence_scores(gt: np.ndarray, pred: np.ndarray, num_objects: int,
                    bound_th: float = BOUND_TH, chunk: int = 4,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Per-object, per-frame J and F of one sequence.

    Args:
      gt: ``uint8 [T, H, W]`` ground-truth ids (0 background, 1..num_objects objects; any
        other value counts as background).
      pred: ``uint8 [T, H, W]`` predicted ids.
      num_objects: objects scored (ids 1..num_objects).
      bound_th: boundary tolerance (fraction of the diagonal, or pixels when >= 1).
      chunk: frames cropped together for F (objects move: small chunks crop tighter).

    Returns:
      ``(J, F)``, float64 ``[num_objects, T]`` each.
    """
    if gt.shape != pred.shape or gt.ndim != 3:
        raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} must be equal "
                         "[T, H, W] shapes")
    t_len, height, width = gt.shape
    radius = boundary_tolerance(height, width, bound_th)
    j_out = np.zeros((num_objects, t_len))
    f_out = np.zeros((num_objects, t_len))
    for k in range(1, num_objects + 1):
        g, p = pack_masks(gt == k), pack_masks(pred == k)
        j_out[k - 1] = jaccard_from_counts(popcount(g & p), popcount(g | p))
        g, p = replicate_edges(g, width), replicate_edges(p, width)
        counts = np.concatenate([_crop_counts(g[t:t + chunk], p[t:t + chunk], width, radius)
                                 for t in range(0, t_len, chunk)], axis=1)
        f_out[k - 1] = f_from_counts(*counts)
    return j_out, f_out
