"""The fast label PNG reader returns exactly what read_label_png returns."""
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from vosjax.data.masks import read_label_png, write_palette_png
from vosjax.evaluation.labelio import decode_plain_palette_png, read_labels


def _png(width, height, rows_with_filter: bytes, colour=3) -> bytes:
    """A hand-built 8-bit PNG (palette of 4 greys for colour type 3)."""
    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    if colour == 3:
        out += chunk(b"PLTE", bytes(v for i in range(4) for v in (i * 60,) * 3))
    return out + chunk(b"IDAT", zlib.compress(rows_with_filter)) + chunk(b"IEND", b"")


def test_fast_path_matches_pil(tmp_path):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 4, (13, 29)).astype(np.uint8)
    path = tmp_path / "a.png"
    write_palette_png(path, ids)
    assert decode_plain_palette_png(path.read_bytes()) is not None  # PIL writes filter 0
    for binary in (None, False, True):
        got = read_labels(path, binary=binary)
        np.testing.assert_array_equal(got, read_label_png(path, binary=binary))
    np.testing.assert_array_equal(read_labels(path), ids)


def test_filtered_and_other_pngs_fall_back(tmp_path):
    ids = np.array([[0, 1, 2, 3], [3, 2, 1, 0], [1, 1, 2, 2]], np.uint8)
    # Row filter 1 ("Sub"): each byte stores the difference to its left neighbour.
    sub = np.diff(ids.astype(np.int16), axis=1, prepend=0) % 256
    raw = b"".join(b"\x01" + bytes(r.astype(np.uint8)) for r in sub)
    path = tmp_path / "sub.png"
    path.write_bytes(_png(4, 3, raw))
    assert decode_plain_palette_png(path.read_bytes()) is None
    np.testing.assert_array_equal(read_labels(path), ids)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), ids)
    # Unfiltered palette rows built by hand take the fast path.
    plain = tmp_path / "plain.png"
    plain.write_bytes(_png(4, 3, b"".join(b"\x00" + bytes(r) for r in ids)))
    np.testing.assert_array_equal(decode_plain_palette_png(plain.read_bytes()), ids)
    # Grayscale 0/255 (DAVIS 2016) goes through read_label_png's binary rule.
    grey = tmp_path / "grey.png"
    Image.fromarray((ids > 1).astype(np.uint8) * 255, mode="L").save(grey)
    np.testing.assert_array_equal(read_labels(grey), ids > 1)


def test_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.png"):
        read_labels(tmp_path / "nothere.png")
    bad = tmp_path / "bad.png"
    good = _png(4, 3, b"".join(b"\x00" + bytes(4) for _ in range(3)))
    bad.write_bytes(good[:60])  # truncated inside IDAT
    with pytest.raises(ValueError, match="bad.png"):
        read_labels(bad)
