"""Pictures of results: mask overlays (PNG per frame, animated GIF per sequence) and a
J&F-per-object bar chart, drawn with PIL only.

All files are written to a temporary name and renamed, so an interrupted run never leaves a
partial picture.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import numpy as np

from vosjax import atomic
from vosjax.data.masks import davis_palette


def overlay(image: np.ndarray, labels: np.ndarray, alpha: float = 0.5,
            contour: bool = True) -> np.ndarray:
    """Blend object colours into a frame.

    Args:
      image: ``uint8 [H, W, 3]`` RGB frame.
      labels: ``[H, W]`` object ids (0 = background; the DAVIS palette gives the colours).
      alpha: weight of the frame inside objects (1 = no colour).
      contour: draw each object's one-pixel outline in its full colour.

    Returns:
      ``uint8 [H, W, 3]``.
    """
    image, labels = np.asarray(image), np.asarray(labels)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[:2] != labels.shape:
        raise ValueError(f"overlay needs an [H, W, 3] image and [H, W] labels, got "
                         f"{image.shape} and {labels.shape}")
    colours = davis_palette()[labels.astype(np.uint8)].astype(np.float32)
    fg = labels > 0
    out = image.astype(np.float32)
    out[fg] = alpha * out[fg] + (1.0 - alpha) * colours[fg]
    if contour:
        edge = np.zeros_like(fg)
        edge[:-1] |= labels[:-1] != labels[1:]
        edge[1:] |= labels[1:] != labels[:-1]
        edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
        edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
        edge &= fg
        out[edge] = colours[edge]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def write_overlays(directory: str | os.PathLike, frames: Iterable[np.ndarray],
                   labels: Iterable[np.ndarray], names: Sequence[str], *,
                   gif_path: str | os.PathLike | None = None, alpha: float = 0.5,
                   gif_fps: float = 10.0, gif_max_side: int = 480) -> list[str]:
    """Write ``directory/<name>.png`` overlays (and an animated GIF of them) for a sequence.

    Args:
      directory: output folder (created).
      frames: ``uint8 [H, W, 3]`` RGB frames.
      labels: ``[H, W]`` object ids per frame.
      names: frame names (file stems), one per frame.
      gif_path: also write an animated GIF of all overlays here (downscaled so its longer side
        is at most ``gif_max_side``).
    Returns:
      The PNG paths written.
    """
    from PIL import Image

    os.makedirs(directory, exist_ok=True)
    paths, gif_frames = [], []
    for image, lab, name in zip(frames, labels, names, strict=True):
        pic = Image.fromarray(overlay(image, lab, alpha))
        path = os.path.join(os.fspath(directory), f"{name}.png")
        with atomic.replacing(path) as tmp:
            pic.save(tmp, format="PNG")
        paths.append(path)
        if gif_path is not None:
            scale = min(1.0, gif_max_side / max(pic.size))
            size = (max(1, round(pic.width * scale)), max(1, round(pic.height * scale)))
            gif_frames.append(pic.resize(size, Image.BILINEAR) if scale < 1 else pic)
    if gif_path is not None:
        if not gif_frames:
            raise ValueError(f"{os.fspath(gif_path)}: no frames to animate")
        write_gif(gif_path, gif_frames, fps=gif_fps)
    return paths


def write_gif(path: str | os.PathLike, pictures: Sequence, fps: float = 10.0) -> None:
    """Animated GIF (looping) of PIL images or ``uint8 [H, W, 3]`` arrays."""
    from PIL import Image

    pics = [p if isinstance(p, Image.Image) else Image.fromarray(np.asarray(p, np.uint8))
            for p in pictures]
    if not pics:
        raise ValueError(f"{os.fspath(path)}: no frames to animate")
    pics = [p.convert("RGB").quantize(colors=255, method=Image.Quantize.MEDIANCUT)
            for p in pics]
    with atomic.replacing(path) as tmp:
        pics[0].save(tmp, format="GIF", save_all=True, append_images=pics[1:],
                     duration=max(1, round(1000 / fps)), loop=0, optimize=False)


def jf_bar_chart(rows: Sequence[tuple[str, float, float]], path: str | os.PathLike, *,
                 title: str = "J&F per object", bar_width: int = 18) -> None:
    """Bar chart PNG of (J + F) / 2 per object, with J and F as thin bars beside it.

    Args:
      rows: ``(name, J-Mean, F-Mean)`` per object (``DavisScores.per_object_rows()``).
      path: PNG to write.
    """
    from PIL import Image, ImageDraw

    if not rows:
        raise ValueError(f"{os.fspath(path)}: no rows to plot")
    plot_h, top, left, right = 300, 40, 50, 20
    label_h = 8 + 7 * max(len(n) for n, _, _ in rows)
    width = left + right + len(rows) * (bar_width + 6)
    height = top + plot_h + label_h + 10
    img = Image.new("RGB", (max(width, 360), height), "white")
    draw = ImageDraw.Draw(img)
    draw.text((left, 10), title, fill="black")
    base = top + plot_h
    for tick in range(0, 11, 2):  # y axis, 0..1
        y = base - tick * plot_h // 10
        draw.line([(left - 4, y), (img.width - right, y)], fill=(225, 225, 225))
        draw.text((8, y - 6), f"{tick / 10:.1f}", fill="black")
    colours = {"jf": (31, 119, 180), "j": (255, 127, 14), "f": (44, 160, 44)}
    for i, (name, j, f) in enumerate(rows):
        x = left + i * (bar_width + 6)
        jf = (j + f) / 2.0
        for value, x0, x1, colour in ((jf, x, x + bar_width - 6, colours["jf"]),
                                      (j, x + bar_width - 6, x + bar_width - 3, colours["j"]),
                                      (f, x + bar_width - 3, x + bar_width, colours["f"])):
            value = float(np.clip(np.nan_to_num(value), 0.0, 1.0))
            draw.rectangle([x0, base - round(value * plot_h), x1 - 1, base], fill=colour)
        # Names written vertically: one rotated text image per bar.
        text = Image.new("RGB", (label_h, 12), "white")
        ImageDraw.Draw(text).text((0, 0), name, fill="black")
        img.paste(text.rotate(90, expand=True), (x + bar_width // 2 - 6, base + 4))
    legend = [("J&F", colours["jf"]), ("J", colours["j"]), ("F", colours["f"])]
    for k, (label, colour) in enumerate(legend):
        lx = img.width - right - 150 + 50 * k
        draw.rectangle([lx, 12, lx + 10, 22], fill=colour)
        draw.text((lx + 14, 10), label, fill="black")
    with atomic.replacing(path) as tmp:
        img.save(tmp, format="PNG")
