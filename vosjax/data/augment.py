"""Training augmentation, host side: one affine warp per frame straight from the decoded frame
into the working-size canvas (keep-aspect fit + random crop/scale/shear/rotation/mirror).
Labels go through the same matrix with NEAREST sampling, so they stay exact ids and aligned
with the frame. Everything here is uint8 in, uint8 out (what the input workers send to the
device); the photometric part (contrast, additive noise), the normalisation and the one-hot
masks run on the device inside the jitted train step (:mod:`vosjax.data.device`).

Coordinates are continuous pixel coordinates (pixel ``i`` spans ``[i, i + 1)``), ``(x, y)``
order; a matrix maps *output* canvas coordinates to *input* image coordinates (what PIL's
``Image.transform(AFFINE)`` expects). Canvas pixels whose NEAREST sample falls outside the
source frame get the label :data:`VOID`: background for the masks, and the device sets their
normalised frame value to 0 (the mean colour; the uint8 frame holds the mean colour there).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from vosjax.data.transforms import IMAGENET_MEAN, fit_size


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Random augmentation ranges.

    Clip-level values are shared by the clip's frames; each frame adds its own jitter of
    ``frame_jitter`` times the clip-level range (the motion between frames).

    scale: zoom range (> 1 crops in). rotation_deg / shear_deg: symmetric ranges.
    translate: shift range as a fraction of the canvas size. mirror: horizontal-flip
    probability. contrast: per-frame contrast factor range. noise_std: the std of additive
    Gaussian noise (intensity units 0..1) is drawn per frame from ``[0, noise_std]``.
    (``contrast`` and ``noise_std`` are applied on the device: :func:`vosjax.data.device.
    photometric`.)
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


#: Label of canvas pixels outside the warped source frame (see the module docstring). Object
#: ids must stay below it.
VOID = 255
#: The uint8 colour of canvas pixels outside the source frame: the ImageNet mean.
FILL_RGB = tuple(int(v) for v in np.rint(IMAGENET_MEAN * 255))


def warp_frame(frame, m: np.ndarray, out_hw) -> np.ndarray:
    """Bilinear warp of ``uint8 [H, W, 3]`` (or an RGB ``PIL.Image``) by canvas->input matrix
    ``m`` -> ``uint8 [h, w, 3]`` (:data:`FILL_RGB` outside the source frame).

    Strong downscales first box-reduce the frame by an integer factor (anti-aliasing).
    """
    from PIL import Image

    h, w = out_hw
    im = (frame if isinstance(frame, Image.Image)
          else Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8)))
    step = np.sqrt(abs(np.linalg.det(m[:2, :2])))
    k = int(step) if step >= 2 else 1
    if k > 1:
        im = im.reduce(k)
        m = np.diag([1 / k, 1 / k, 1.0]) @ m
    coeffs = tuple(m[:2].reshape(-1).tolist())
    out = im.transform((w, h), Image.Transform.AFFINE, coeffs, Image.Resampling.BILINEAR,
                       fillcolor=FILL_RGB)
    return np.asarray(out)


def warp_labels(labels: np.ndarray, m: np.ndarray, out_hw, fill: int = 0) -> np.ndarray:
    """NEAREST warp of ``uint8 [H, W]`` ids by canvas->input matrix ``m`` (``fill`` outside
    the source, e.g. :data:`VOID`)."""
    from PIL import Image

    h, w = out_hw
    im = Image.fromarray(np.ascontiguousarray(labels, dtype=np.uint8), mode="L")
    out = im.transform((w, h), Image.Transform.AFFINE, tuple(m[:2].reshape(-1).tolist()),
                       Image.Resampling.NEAREST, fillcolor=int(fill))
    return np.asarray(out)


def warp_clip(frames: np.ndarray, labels: np.ndarray, mats: np.ndarray, out_hw):
    """Warp a clip: ``uint8 [T, H, W, 3]`` frames and ``uint8 [T, H, W]`` ids (< :data:`VOID`)
    with ``[T, 3, 3]`` matrices -> (``uint8 [T, h, w, 3]``, ``uint8 [T, h, w]`` with
    :data:`VOID` outside the source frame)."""
    x = np.stack([warp_frame(f, m, out_hw) for f, m in zip(frames, mats)])
    labs = np.stack([warp_labels(lab, m, out_hw, VOID) for lab, m in zip(labels, mats)])
    return x, labs
