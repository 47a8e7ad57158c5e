"""Synthetic label videos and DAVIS folder layouts, for tests, benchmarks and toolkit checks.

:func:`blob_video` draws moving, wobbly blobs; :func:`perturb_video` turns ground truth into a
plausible prediction (shifts, growth, dropped objects, spurious blobs);
:func:`write_davis_layout` writes the DAVIS folder layout the scorer and the official toolkit
read. Everything is seeded, so a layout is reproducible.
"""
from __future__ import annotations

import os

import numpy as np

from vosjax.data.masks import write_palette_png


def blob_video(rng: np.random.Generator, num_frames: int, num_objects: int, height: int,
               width: int, *, void_patch: bool = False) -> np.ndarray:
    """Object ids ``uint8 [T, H, W]`` of ``num_objects`` moving blobs (later ids occlude
    earlier ones). Every object is visible in frame 0. ``void_patch`` paints a small
    rectangle of 255 (the DAVIS "void" label) into every frame."""
    labels = np.zeros((num_frames, height, width), np.uint8)
    for k in range(1, num_objects + 1):
        cy, cx = rng.uniform(0.25, 0.75) * height, rng.uniform(0.25, 0.75) * width
        vy, vx = rng.normal(0, 0.01 * height), rng.normal(0, 0.01 * width)
        ry = rng.uniform(0.06, 0.25) * height
        rx = rng.uniform(0.06, 0.25) * width
        lobes, phase = int(rng.integers(2, 6)), rng.uniform(0, 2 * np.pi)
        for t in range(num_frames):
            ty, tx = cy + vy * t, cx + vx * t
            # Only the box that can hold the blob (radius <= 1.25) is evaluated.
            y0, y1 = max(0, int(ty - 1.3 * ry)), min(height, int(ty + 1.3 * ry) + 2)
            x0, x1 = max(0, int(tx - 1.3 * rx)), min(width, int(tx + 1.3 * rx) + 2)
            y1, x1 = max(y0, y1), max(x0, x1)  # the blob may have left the frame
            yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
            dy, dx = (yy - ty) / ry, (xx - tx) / rx
            radius = 1.0 + 0.25 * np.sin(lobes * np.arctan2(dy, dx) + phase + 0.1 * t)
            inside = dy * dy + dx * dx <= radius * radius
            labels[t, y0:y1, x0:x1][inside] = k
            if t == 0 and not inside.any():  # keep every object visible in frame 0
                labels[0, int(np.clip(ty, 0, height - 1)), int(np.clip(tx, 0, width - 1))] = k
    if void_patch:
        h0, w0 = int(rng.integers(0, max(1, height - 8))), int(rng.integers(0, max(1, width - 8)))
        labels[:, h0:h0 + 8, w0:w0 + 8] = 255
    return labels


def perturb_video(rng: np.random.Generator, labels: np.ndarray, num_objects: int, *,
                  max_shift: int = 12, drop_prob: float = 0.1,
                  spurious_prob: float = 0.2) -> np.ndarray:
    """A prediction ``uint8 [T, H, W]`` made from ground truth ids ``labels [T, H, W]``: each
    object is shifted by a per-frame random offset (up to ``max_shift`` pixels), sometimes
    dropped, and random spurious blobs of random ids in 1..num_objects are added. Void (255)
    becomes background."""
    labels = np.where(labels == 255, 0, labels)
    t_len, height, width = labels.shape
    out = np.zeros_like(labels)
    for t in range(t_len):
        for k in range(1, num_objects + 1):
            if rng.random() < drop_prob:
                continue
            ys, xs = np.nonzero(labels[t] == k)
            dy, dx = rng.integers(-max_shift, max_shift + 1, size=2)
            ys, xs = ys + dy, xs + dx
            keep = (ys >= 0) & (ys < height) & (xs >= 0) & (xs < width)
            out[t, ys[keep], xs[keep]] = k
        if num_objects and rng.random() < spurious_prob:
            h = int(rng.integers(1, max(2, height // 6)))
            w = int(rng.integers(1, max(2, width // 6)))
            y0, x0 = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
            out[t, y0:y0 + h, x0:x0 + w] = rng.integers(1, num_objects + 1)
    return out


def write_label_folder(folder: str | os.PathLike, labels: np.ndarray, first: int = 0) -> None:
    """Write ``labels [T, H, W]`` as palette PNGs ``folder/00000.png`` ... (5-digit names
    starting at ``first``)."""
    os.makedirs(folder, exist_ok=True)
    for t, frame in enumerate(labels):
        write_palette_png(os.path.join(folder, f"{first + t:05d}.png"), frame)


def write_davis_layout(root: str | os.PathLike, sequences: dict[str, np.ndarray], *,
                       year: int = 2017, split: str = "val", binary_l_masks: bool = False,
                       images: bool = True) -> None:
    """Write a DAVIS folder: ``ImageSets/<year>/<split>.txt``, ``Annotations/480p/<seq>/*.png``
    and (``images``) one small placeholder ``JPEGImages/480p/<seq>/*.jpg`` per frame (the
    official toolkit counts them; their pixels are never read when scoring).

    ``binary_l_masks`` writes DAVIS-2016 style masks (mode ``L``, 0 / 255) instead of palette
    ids; every non-zero id becomes 255.
    """
    from PIL import Image  # noqa: PLC0415

    root = os.fspath(root)
    sets = os.path.join(root, "ImageSets", str(year))
    os.makedirs(sets, exist_ok=True)
    with open(os.path.join(sets, f"{split}.txt"), "w") as f:
        f.write("".join(f"{name}\n" for name in sequences))
    placeholder = None
    for name, labels in sequences.items():
        ann = os.path.join(root, "Annotations", "480p", name)
        if binary_l_masks:
            os.makedirs(ann, exist_ok=True)
            for t, frame in enumerate(labels):
                Image.fromarray(np.where(frame > 0, 255, 0).astype(np.uint8), mode="L").save(
                    os.path.join(ann, f"{t:05d}.png"))
        else:
            write_label_folder(ann, labels)
        if images:
            img_dir = os.path.join(root, "JPEGImages", "480p", name)
            os.makedirs(img_dir, exist_ok=True)
            if placeholder is None:
                placeholder = os.path.join(img_dir, "00000.jpg")
                Image.new("RGB", (8, 8)).save(placeholder)
            for t in range(len(labels)):
                target = os.path.join(img_dir, f"{t:05d}.jpg")
                if target != placeholder:
                    os.link(placeholder, target)
