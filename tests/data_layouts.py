"""Tiny DAVIS-2017 and YouTube-VOS folder layouts written by the data tests (tmp_path); the DAVIS
one through :func:`vosjax.data.synthetic.write_davis_layout`."""
import json
import os

import numpy as np
from PIL import Image

from vosjax.data.masks import write_palette_png
from vosjax.data.synthetic import write_davis_layout

H, W = 24, 32


def frame_image(seed: int) -> np.ndarray:
    """A smooth (JPEG-friendly) colour gradient that differs per seed."""
    c0, c1 = np.random.default_rng(seed).uniform(20, 235, (2, 3))
    ramp = (np.arange(H)[:, None, None] / H + np.arange(W)[None, :, None] / W) / 2
    return np.rint(c0 * (1 - ramp) + c1 * ramp).astype(np.uint8)


def blocks(ids_boxes, t: int = 0) -> np.ndarray:
    """Label map with rectangles ``{id: (y0, x0)}`` of 6x8 pixels, shifted right by ``t``."""
    lab = np.zeros((H, W), np.uint8)
    for i, (y, x) in ids_boxes.items():
        lab[y:y + 6, x + t:x + t + 8] = i
    return lab


def make_davis2017(root, seqs=("alpha", "beta"), num_frames=4, year="2017", split="val"):
    """Sequence ``alpha`` has objects 1, 2; ``beta`` has object 1. JPEG frames, palette PNGs.
    Returns {seq: (labels [T, H, W])}."""
    labels, frames = {}, {}
    for k, seq in enumerate(seqs):
        objs = {1: (2, 2), 2: (14, 16)} if k == 0 else {1: (8, 10)}
        labels[seq] = np.stack([blocks(objs, t) for t in range(num_frames)])
        frames[seq] = np.stack([frame_image(100 * k + t) for t in range(num_frames)])
    write_davis_layout(root, labels, year=year, split=split, frames=frames)
    return labels


def make_youtube_vos(root, split="train"):
    """One video ``vid1`` with frames 00000, 00005, 00010, 00015 (annotated every frame);
    original ids 2 and 7 (non-contiguous); object 7 first appears at 00010.
    Returns the original-id labels [4, H, W]."""
    fd = os.path.join(root, split, "JPEGImages", "vid1")
    ad = os.path.join(root, split, "Annotations", "vid1")
    os.makedirs(fd)
    os.makedirs(ad)
    names = ["00000", "00005", "00010", "00015"]
    labs = []
    for t, n in enumerate(names):
        Image.fromarray(frame_image(t)).save(os.path.join(fd, f"{n}.jpg"), quality=95)
        objs = {2: (2, 2)} if t < 2 else {2: (2, 2), 7: (14, 12)}
        lab = blocks(objs, t)
        write_palette_png(os.path.join(ad, f"{n}.png"), lab)
        labs.append(lab)
    meta = {"videos": {"vid1": {"objects": {
        "2": {"category": "cat", "frames": names},
        "7": {"category": "dog", "frames": names[2:]}}}}}
    with open(os.path.join(root, split, "meta.json"), "w") as f:
        json.dump(meta, f)
    return np.stack(labs)
