"""Training augmentation: one affine warp per frame straight from the decoded frame into the
working-size canvas (keep-aspect fit + random crop/scale/shear/rotation/mirror), then contrast
and additive noise. Labels go through the same matrix with NEAREST sampling, so they stay
exact ids and aligned with the frame.

Coordinates are continuous pixel coordinates (pixel ``i`` spans ``[i, i + 1)``), ``(x, y)``
order; a matrix maps *output* canvas coordinates to *input* image coordinates (what PIL's
``Image.transform(AFFINE)`` expects). The canvas outside the warped frame is padded with 0 in
the normalised frame (the mean colour) and background in the labels.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from vosjax.data.transforms import IMAGENET_MEAN, IMAGENET_STD, fit_size


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Random augmentation ranges.

    Clip-level values are shared by the clip's frames; each frame adds its own jitter of
    ``frame_jitter`` times the clip-level range (the motion between frames).

    scale: zoom range (> 1 crops in). rotation_deg / shear_deg: symmetric ranges.
    translate: shift range as a fraction of the canvas size. mirror: horizontal-flip
    probability. contrast: per-frame contrast factor range. noise_std: the std of additive
    Gaussian noise (intensity units 0..1) is drawn per frame from ``[0, noise_std]``.
    """
    scale: tuple[float, float] = (0.9, 1.3)
    rotation_deg: float = 15.0
    shear_deg: float = 10.0
    translate: float = 0.1
    mirror: float = 0.5
    frame_jitter: float = 0.25
    contrast: tuple[float, float] = (0.8, 1.2)
    noise_std: float = 0.03

    def __post_init__(self):
        lo, hi = self.scale
        if not 0 < lo <= hi:
            raise ValueError(f"AugmentConfig.scale must satisfy 0 < lo <= hi, got {self.scale}")
        if not 0 <= self.mirror <= 1:
            raise ValueError(f"AugmentConfig.mirror must be a probability, got {self.mirror}")
        clo, chi = self.contrast
        if not 0 <= clo <= chi:
            raise ValueError(f"AugmentConfig.contrast must satisfy 0 <= lo <= hi, got "
                             f"{self.contrast}")
        for f in ("rotation_deg", "shear_deg", "translate", "frame_jitter", "noise_std"):
            if getattr(self, f) < 0:
                raise ValueError(f"AugmentConfig.{f} must be >= 0, got {getattr(self, f)}")


def fit_matrix(in_hw, out_hw) -> np.ndarray:
    """3x3 matrix mapping canvas coordinates to input coordinates for the plain keep-aspect
    fit + centred padding of :func:`vosjax.data.transforms.fit_size`."""
    new_h, new_w, ((top, _), (left, _)) = fit_size(in_hw, out_hw)
    sx, sy = in_hw[1] / new_w, in_hw[0] / new_h
    return np.array([[sx, 0, -left * sx], [0, sy, -top * sy], [0, 0, 1]], np.float64)


def random_affine(rng: np.random.Generator, cfg: AugmentConfig, out_hw, amount: float,
                   mirror: bool) -> np.ndarray:
    """Random canvas->canvas matrix (the inverse of the forward augmentation)."""
    h, w = out_hw
    lo, hi = cfg.scale
    if amount < 1:       # per-frame jitter around 1
        lo, hi = 1 + (lo - 1) * amount, 1 + (hi - 1) * amount
    s = np.exp(rng.uniform(np.log(lo), np.log(hi)))
    rot = np.deg2rad(rng.uniform(-1, 1) * cfg.rotation_deg * amount)
    shear = np.tan(np.deg2rad(rng.uniform(-1, 1) * cfg.shear_deg * amount))
    tx, ty = rng.uniform(-1, 1, 2) * cfg.translate * amount * np.array([w, h])
    c, si = np.cos(rot), np.sin(rot)
    fwd = np.array([[c, -si], [si, c]]) @ np.array([[1, shear], [0, 1]]) * s
    if mirror:
        fwd = fwd @ np.diag([-1.0, 1.0])
    centre = np.array([w / 2, h / 2])
    m = np.eye(3)
    m[:2, :2] = fwd
    m[:2, 2] = centre + np.array([tx, ty]) - fwd @ centre
    return np.linalg.inv(m)


def clip_matrices(rng: np.random.Generator, cfg: AugmentConfig | None, in_hw, out_hw,
                  num_frames: int) -> np.ndarray:
    """``[T, 3, 3]`` canvas->input matrices: fit, then clip-level and per-frame augmentation
    (``cfg=None``: the plain fit for every frame)."""
    base = fit_matrix(in_hw, out_hw)
    if cfg is None:
        return np.broadcast_to(base, (num_frames, 3, 3)).copy()
    mirror = bool(rng.random() < cfg.mirror)
    clip = random_affine(rng, cfg, out_hw, 1.0, mirror)
    return np.stack([base @ clip @ random_affine(rng, cfg, out_hw, cfg.frame_jitter, False)
                     for _ in range(num_frames)])


_FILL_RGB = tuple(int(v) for v in np.rint(IMAGENET_MEAN * 255))


def warp_frame(frame: np.ndarray, m: np.ndarray, out_hw) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear warp of ``uint8 [H, W, 3]`` by canvas->input matrix ``m`` ->
    (``uint8 [h, w, 3]``, ``bool [h, w]`` valid = inside the source frame).

    Strong downscales first box-reduce the frame by an integer factor (anti-aliasing).
    """
    from PIL import Image  # noqa: PLC0415

    h, w = out_hw
    im = Image.fromarray(np.ascontiguousarray(frame)).convert("RGBA")
    step = np.sqrt(abs(np.linalg.det(m[:2, :2])))
    k = int(step) if step >= 2 else 1
    if k > 1:
        im = im.reduce(k)
        m = np.diag([1 / k, 1 / k, 1.0]) @ m
    coeffs = tuple(m[:2].reshape(-1).tolist())
    out = im.transform((w, h), Image.Transform.AFFINE, coeffs, Image.Resampling.BILINEAR,
                       fillcolor=_FILL_RGB + (0,))
    arr = np.asarray(out)
    return arr[..., :3], arr[..., 3] > 0


def warp_labels(labels: np.ndarray, m: np.ndarray, out_hw) -> np.ndarray:
    """NEAREST warp of ``uint8 [H, W]`` ids by canvas->input matrix ``m`` (0 outside)."""
    from PIL import Image  # noqa: PLC0415

    h, w = out_hw
    im = Image.fromarray(np.ascontiguousarray(labels, dtype=np.uint8), mode="L")
    out = im.transform((w, h), Image.Transform.AFFINE, tuple(m[:2].reshape(-1).tolist()),
                       Image.Resampling.NEAREST, fillcolor=0)
    return np.asarray(out)


def photometric(frames01: np.ndarray, rng: np.random.Generator,
                cfg: AugmentConfig | None) -> np.ndarray:
    """Per-frame contrast (around the frame's mean) and additive Gaussian noise on float32
    ``[T, h, w, 3]`` in 0..1; clipped to 0..1."""
    if cfg is None:
        return frames01
    c, std, noise = photometric_draws(rng, cfg, frames01.shape)
    mean = frames01.mean(axis=(1, 2, 3), keepdims=True, dtype=np.float32)
    x = frames01 * c
    x += (1 - c) * mean
    noise *= std
    x += noise
    return np.clip(x, 0, 1, out=x)


def photometric_draws(rng: np.random.Generator, cfg: AugmentConfig, shape):
    """The random draws of :func:`photometric` for frames of ``shape`` ``[T, h, w, 3]``, in its
    order: contrast ``[T, 1, 1, 1]``, noise std ``[T, 1, 1, 1]``, unit noise ``shape``. A caller
    that skips the frames (the sampler's object count) draws them to keep ``rng`` in step."""
    t = shape[0]
    c = rng.uniform(*cfg.contrast, size=(t, 1, 1, 1)).astype(np.float32)
    std = rng.uniform(0, cfg.noise_std, size=(t, 1, 1, 1)).astype(np.float32)
    return c, std, rng.standard_normal(shape, dtype=np.float32)


def warp_clip(frames: np.ndarray, labels: np.ndarray, mats: np.ndarray, out_hw,
              rng: np.random.Generator | None = None, cfg: AugmentConfig | None = None):
    """Warp a clip: ``uint8 [T, H, W, 3]`` frames and ``uint8 [T, H, W]`` ids with ``[T, 3, 3]``
    matrices -> (normalised float32 ``[T, h, w, 3]`` with 0 padding, ``uint8 [T, h, w]``)."""
    warped = [warp_frame(f, m, out_hw) for f, m in zip(frames, mats)]
    x = np.stack([a for a, _ in warped]).astype(np.float32)
    x *= np.float32(1 / 255)
    valid = np.stack([v for _, v in warped])[..., None]
    if cfg is not None:
        x = photometric(x, rng, cfg)
    x -= IMAGENET_MEAN
    x *= 1 / IMAGENET_STD
    x *= valid
    labs = np.stack([warp_labels(lab, m, out_hw) for lab, m in zip(labels, mats)])
    return x, labs
