"""RGB frame I/O: decode from a path or encoded bytes, encode to JPEG/PNG bytes, read a size.

Every error names the file (or the ``name`` given for in-memory bytes).
"""
from __future__ import annotations

import io
import os

import numpy as np


def _open(source, name: str):
    from PIL import Image

    if isinstance(source, (bytes, bytearray, memoryview)):
        return Image.open(io.BytesIO(bytes(source)))
    path = os.fspath(source)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: missing frame")
    return Image.open(path)


def decode_rgb(source, name: str | None = None) -> np.ndarray:
    """A frame as ``uint8 [H, W, 3]`` from a file path or encoded JPEG/PNG bytes.

    Raises FileNotFoundError (missing file) or ValueError (unreadable image) naming the file.
    """
    return np.asarray(open_rgb(source, name), dtype=np.uint8)


def open_rgb(source, name: str | None = None):
    """:func:`decode_rgb` as a decoded RGB ``PIL.Image`` (no copy into numpy)."""
    from PIL import UnidentifiedImageError

    name = name or (os.fspath(source) if isinstance(source, (str, os.PathLike)) else "<bytes>")
    try:
        with _open(source, name) as im:
            im.load()           # the pixels stay valid after the file closes
            return im if im.mode == "RGB" else im.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise ValueError(f"{name}: unreadable image ({e})") from None


def image_size(source, name: str | None = None) -> tuple[int, int]:
    """``(H, W)`` of an image file/bytes from its header only (no decoding)."""
    from PIL import UnidentifiedImageError

    name = name or (os.fspath(source) if isinstance(source, (str, os.PathLike)) else "<bytes>")
    try:
        with _open(source, name) as im:
            w, h = im.size
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise ValueError(f"{name}: unreadable image ({e})") from None
    return int(h), int(w)


def encode_image(frame: np.ndarray, fmt: str = "jpeg", quality: int = 95) -> bytes:
    """uint8 ``[H, W, 3]`` -> encoded ``"jpeg"`` or ``"png"`` bytes."""
    from PIL import Image

    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"frame must be uint8 [H, W, 3], got {frame.dtype} {frame.shape}")
    buf = io.BytesIO()
    if fmt == "jpeg":
        Image.fromarray(frame).save(buf, format="JPEG", quality=quality)
    elif fmt == "png":
        Image.fromarray(frame).save(buf, format="PNG")
    else:
        raise ValueError(f"fmt must be 'jpeg' or 'png', got {fmt!r}")
    return buf.getvalue()
