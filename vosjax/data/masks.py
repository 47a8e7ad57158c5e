"""Label-map PNG I/O: DAVIS-2016 binary masks, DAVIS-2017 / YouTube-VOS palette masks.

* DAVIS-2016 annotations are 8-bit ``L`` images holding 0 / 255 (one object).
* DAVIS-2017 and YouTube-VOS annotations are palette (``P``) images holding object ids 0..N.

:func:`read_label_png` returns ``uint8 [H, W]`` object ids for both; :func:`write_palette_png`
writes ids with the DAVIS palette, the format the DAVIS and YouTube-VOS servers expect.
"""
from __future__ import annotations

import os

import numpy as np

from vosjax import atomic


def davis_palette() -> np.ndarray:
    """The 256-colour DAVIS palette ``uint8 [256, 3]`` (PASCAL VOC's bit-interleaved colours:
    id 1 is (128, 0, 0), id 2 (0, 128, 0), id 3 (128, 128, 0), ...)."""
    ids = np.arange(256)
    pal = np.zeros((256, 3), np.int64)
    for shift in range(8):
        for c in range(3):
            bit = (ids >> c) & 1
            pal[:, c] |= bit << (7 - shift)
        ids = ids >> 3
    return pal.astype(np.uint8)


def read_label_png(path: str | os.PathLike, *, binary: bool | None = None) -> np.ndarray:
    """Object ids ``uint8 [H, W]`` from an annotation PNG.

    Args:
      path: PNG file.
      binary: True for DAVIS-2016 style masks (any non-zero pixel is object 1); None decides
        from the image mode (``L``/``1`` with values in {0, 255} -> binary; ``P`` -> ids).

    Raises:
      FileNotFoundError / ValueError naming the file when it is missing or unreadable.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: annotation not found")
    return decode_label_png(path, binary=binary, name=path)


def decode_label_png(source, *, binary: bool | None = None, name: str = "<bytes>") -> np.ndarray:
    """Like :func:`read_label_png` for a file path or encoded bytes (``name`` goes into errors)."""
    import io

    from PIL import Image, UnidentifiedImageError

    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    try:
        with Image.open(source) as im:
            mode = im.mode
            if mode == "P":
                arr = np.asarray(im, dtype=np.uint8)
            elif mode in ("L", "1", "I", "I;16"):
                arr = np.asarray(im)
            elif mode in ("RGB", "RGBA"):
                arr = np.asarray(im.convert("L"))
            else:
                raise ValueError(f"{name}: unsupported annotation image mode {mode!r}")
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f"{name}: unreadable annotation image ({e})") from None
    if binary is None:
        binary = mode != "P" and set(np.unique(arr).tolist()) <= {0, 255}
    if binary:
        return (arr > 0).astype(np.uint8)
    if arr.max(initial=0) > 255:
        raise ValueError(f"{name}: object ids above 255")
    return arr.astype(np.uint8)


def encode_palette_png(labels: np.ndarray, name: str = "<labels>") -> bytes:
    """Object ids ``[H, W]`` (0..255) -> PNG bytes with the DAVIS palette; bad labels raise
    ValueError naming ``name``."""
    import io

    buf = io.BytesIO()
    _palette_image(labels, name).save(buf, format="PNG")
    return buf.getvalue()


def _palette_image(labels: np.ndarray, name: str):
    from PIL import Image

    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"{name}: labels must be [H, W], got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError(f"{name}: object ids must be in 0..255")
    im = Image.fromarray(labels.astype(np.uint8), mode="P")
    im.putpalette(davis_palette().reshape(-1).tolist())
    return im


def write_palette_png(path: str | os.PathLike, labels: np.ndarray) -> None:
    """Write object ids ``[H, W]`` (0..255) as a palette PNG with the DAVIS palette.

    The file is written to a temporary name and renamed, so a crash never leaves a partial PNG.
    """
    im = _palette_image(labels, os.fspath(path))
    with atomic.replacing(path) as tmp:
        im.save(tmp, format="PNG")


def apply_lut(lut: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``lut[labels]`` for a ``uint8 [256]`` table and uint8 ``labels`` (any shape), as a byte
    translation: about twice as fast as ``np.take``, which first widens every index."""
    lut = np.asarray(lut, np.uint8)
    if lut.shape != (256,):
        raise ValueError(f"apply_lut: the table must be uint8 [256], got {lut.shape}")
    labels = np.asarray(labels)
    if labels.dtype != np.uint8:
        raise ValueError(f"apply_lut: labels must be uint8, got {labels.dtype}")
    out = bytearray(np.ascontiguousarray(labels).tobytes()).translate(lut.tobytes())
    return np.frombuffer(out, np.uint8).reshape(labels.shape)


def one_hot(labels: np.ndarray, num_slots: int) -> np.ndarray:
    """``uint8 [..., H, W]`` ids -> float32 ``[..., num_slots + 1, H, W]`` one-hot (channel 0 =
    background). Ids above ``num_slots`` raise."""
    labels = np.asarray(labels)
    if labels.size and labels.max() > num_slots:
        raise ValueError(f"label id {int(labels.max())} exceeds num_slots={num_slots}")
    if labels.dtype.kind not in "ui":
        labels = labels.astype(np.int64)
    ids = np.arange(num_slots + 1, dtype=labels.dtype).reshape(-1, 1, 1)
    return (labels[..., None, :, :] == ids).astype(np.float32)
