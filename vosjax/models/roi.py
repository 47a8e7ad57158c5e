"""Mask bounding boxes and pyramid ROI pooling with static shapes (GCSeg Fig. 3 and Fig. 6).

Everything here is ``jit``/``vmap`` friendly: a box is four traced numbers, never a Python
slice, and pooling is a weighted sum (or a masked max) over the whole feature map.

Conventions
-----------
* A box is ``[4]`` float = ``(top, bottom, left, right)`` as *fractions* of the image size,
  half-open: the mask pixels ``top*H <= y < bottom*H``. Fractions make one box valid for every
  feature level whatever its stride.
* Feature pixel ``(h, w)`` of an ``[Hf, Wf, C]`` map covers the image area
  ``[h/Hf, (h+1)/Hf) x [w/Wf, (w+1)/Wf)``. A region's weight on a feature pixel is the area
  of their overlap (in feature pixels), so the average is the exact area average of the
  piecewise-constant feature map over the region ("ROI pooling" without quantisation).
* A one-pixel box is fine: each of its cells overlaps at least one feature pixel.
* Boxes touching the image border need nothing special (the overlap is clipped by the map).
* **Empty mask** (no pixel above the threshold): :func:`mask_box` returns ``valid = False``
  and the whole-image box; :func:`pyramid_roi_pool` then returns **all-zero vectors**
  (so a mask encoder sees the same zeros as for fully masked-out features, and the
  judgement module's cosine similarity is 0, i.e. "unreliable").
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

# In "max" mode a feature pixel belongs to a region when its overlap exceeds this (in feature
# pixels); it only guards against float residue at shared edges (a one-image-pixel region at
# stride 32 still overlaps by 1/32).
MAX_MODE_MIN_OVERLAP = 1e-4
# Name scope of the area averages below: float32 HIGHEST in every compute mode (vosjax.compute).
F32_AGGREGATION = "f32_aggregation"


def mask_box(mask, threshold: float = 0.5):
    """Bounding box of ``mask > threshold``.

    Args:
      mask: ``[H, W]`` (binary or soft probabilities).
      threshold: pixels strictly above it are foreground.

    Returns:
      ``(box [4] float32 (top, bottom, left, right) as fractions of H/W, valid bool scalar)``.
      Empty mask -> ``((0, 1, 0, 1), False)``.
    """
    if mask.ndim != 2:
        raise ValueError(f"mask must be [H, W], got shape {mask.shape}")
    h, w = mask.shape
    fg = mask > threshold
    rows, cols = jnp.any(fg, axis=1), jnp.any(fg, axis=0)
    valid = jnp.any(rows)
    # argmax of a bool vector = first True; on the reversed vector = distance of the last one.
    top = jnp.argmax(rows)
    bottom = h - jnp.argmax(rows[::-1])
    left = jnp.argmax(cols)
    right = w - jnp.argmax(cols[::-1])
    box = jnp.stack([top / h, bottom / h, left / w, right / w]).astype(jnp.float32)
    return jnp.where(valid, box, jnp.array([0.0, 1.0, 0.0, 1.0], jnp.float32)), valid


def _interval_overlaps(lo, hi, size: int, grid: int):
    """Overlaps ``[grid + 1, size]`` of the grid cells of ``[lo, hi)`` (fractions) and of the
    whole interval (last row) with the ``size`` feature pixels ``[k, k+1)``."""
    edges = lo + (hi - lo) * jnp.arange(grid + 1, dtype=jnp.float32) / grid  # [grid+1]
    starts = jnp.concatenate([edges[:-1], lo[None]]) * size                  # [grid+1]
    ends = jnp.concatenate([edges[1:], hi[None]]) * size
    k = jnp.arange(size, dtype=jnp.float32)
    return jnp.clip(jnp.minimum(ends[:, None], k + 1) - jnp.maximum(starts[:, None], k), 0.0)


def pyramid_roi_pool(feats, box, valid, *, grid: int = 3, mode: str = "avg"):
    """Pool ``feats`` over the ``grid x grid`` cells of ``box`` and over the whole box.

    Args:
      feats: ``[Hf, Wf, C]`` feature map.
      box: ``[4]`` (top, bottom, left, right) fractions, see :func:`mask_box`.
      valid: bool scalar; False gives all zeros (the defined empty-mask behaviour).
      grid: cells per side (GCSeg: 3, giving 3x3 + 1 = 10 vectors).
      mode: ``"avg"`` (area-weighted mean) or ``"max"`` (max over the pixels a region touches).

    Returns:
      ``[grid*grid + 1, C]``: the cells in row-major order, then the whole box.
    """
    if feats.ndim != 3:
        raise ValueError(f"feats must be [Hf, Wf, C], got shape {feats.shape}")
    if mode not in ("avg", "max"):
        raise ValueError(f"mode={mode!r}: expected 'avg' or 'max'")
    if grid < 1:
        raise ValueError(f"grid={grid}: expected >= 1")
    hf, wf, c = feats.shape
    box = box.astype(jnp.float32)
    wy = _interval_overlaps(box[0], box[1], hf, grid)  # [g+1, Hf]; row g = whole box
    wx = _interval_overlaps(box[2], box[3], wf, grid)  # [g+1, Wf]
    f32 = feats.astype(jnp.float32)
    if mode == "avg":
        # pooled[i, j, c] = sum_hw wy[i, h] wx[j, w] F[h, w, c] / (sum_h wy[i, h] sum_w wx[j, w])
        # An exact area average, in float32 in every compute mode (named for the policy test).
        with jax.named_scope(F32_AGGREGATION):
            num = jnp.einsum("ih,jw,hwc->ijc", wy, wx, f32, precision=jax.lax.Precision.HIGHEST)
        den = wy.sum(1)[:, None] * wx.sum(1)[None, :]
        pooled = num / jnp.maximum(den, 1e-12)[..., None]
    else:
        iny, inx = wy > MAX_MODE_MIN_OVERLAP, wx > MAX_MODE_MIN_OVERLAP
        # Separable max over the rectangle: first over w per column interval j, then over h.
        colmax = jnp.max(jnp.where(inx[:, None, :, None], f32[None], -jnp.inf), axis=2)  # [j,h,c]
        pooled = jnp.max(jnp.where(iny[:, None, :, None], colmax[None], -jnp.inf), axis=2)
    regions = jnp.concatenate([pooled[:grid, :grid].reshape(grid * grid, c),
                               pooled[grid, grid][None]], axis=0)
    return jnp.where(valid, regions, 0.0).astype(feats.dtype)


def area_resize_matrix(src: int, dst: int):
    """``[dst, src]`` weights averaging ``src`` pixels onto ``dst`` cells by exact area overlap
    (same half-open fractional convention as the boxes); rows sum to 1."""
    edges = jnp.arange(src + 1, dtype=jnp.float32) * (dst / src)  # src pixel edges, dst units
    k = jnp.arange(dst, dtype=jnp.float32)[:, None]
    ov = jnp.clip(jnp.minimum(edges[None, 1:], k + 1) - jnp.maximum(edges[None, :-1], k), 0.0)
    return ov / ov.sum(axis=1, keepdims=True)


def area_downsample(masks, hw):
    """Exact area-average resampling of ``masks [N, H, W]`` to ``[N, *hw]``: a feature pixel
    gets the fraction of its area covered by the mask (for masks that are 0/1)."""
    ay = area_resize_matrix(masks.shape[1], hw[0])  # [h, H]
    ax = area_resize_matrix(masks.shape[2], hw[1])  # [w, W]
    with jax.named_scope(F32_AGGREGATION):
        return jnp.einsum("hy,nyx,wx->nhw", ay, masks.astype(jnp.float32), ax,
                          precision=jax.lax.Precision.HIGHEST)


def box_pool(feats, box, valid, *, mode: str = "avg"):
    """ROI pooling over the whole ``box`` only: ``[Hf, Wf, C] -> [C]`` (zeros when invalid)."""
    return pyramid_roi_pool(feats, box, valid, grid=1, mode=mode)[-1]


__all__ = ["mask_box", "pyramid_roi_pool", "box_pool", "area_downsample", "area_resize_matrix"]
