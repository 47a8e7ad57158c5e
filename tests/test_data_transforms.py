"""Normalisation, keep-aspect resize + pad, and the way back to the original size."""
import numpy as np
import pytest

from vosjax.data import transforms as T


def test_normalize_matches_formula():
    x = np.array([[[0, 128, 255]]], np.uint8)
    out = T.normalize(x)
    want = (np.array([0, 128, 255], np.float32) / 255 - np.float32([0.485, 0.456, 0.406])) \
        / np.float32([0.229, 0.224, 0.225])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[0, 0], want)
    np.testing.assert_array_equal(T.denormalize(out), x)


@pytest.mark.parametrize("orig, want", [
    ((480, 854), (240, 427, ((0, 0), (0, 0)))),
    ((1080, 1920), (240, 427, ((0, 0), (0, 0)))),
    ((480, 480), (240, 240, ((0, 0), (93, 94)))),
    ((720, 960), (240, 320, ((0, 0), (53, 54)))),
    ((100, 1000), (43, 427, ((98, 99), (0, 0)))),
])
def test_fit_size(orig, want):
    assert T.fit_size(orig, (240, 427)) == want
    h, w, ((t, b), (l, r)) = T.fit_size(orig, (240, 427))
    assert h + t + b == 240 and w + l + r == 427


def test_fit_size_rejects_zero():
    with pytest.raises(ValueError, match="positive"):
        T.fit_size((0, 10))


def test_resize_pad_frames_same_size_is_exact_normalize():
    rng = np.random.default_rng(0)
    f = rng.integers(0, 256, (2, 24, 40, 3), np.uint8)
    out, info = T.resize_pad_frames(f, (24, 40))
    np.testing.assert_array_equal(out, T.normalize(f))
    assert info == T.PadInfo((24, 40), (24, 40), (0, 0))


def test_resize_pad_frames_halving_is_box_average_and_pads_with_mean():
    rng = np.random.default_rng(1)
    f = rng.integers(0, 256, (1, 20, 20, 3), np.uint8)
    out, info = T.resize_pad_frames(f, (10, 16))
    assert out.shape == (1, 10, 16, 3) and info == T.PadInfo((20, 20), (10, 10), (0, 3))
    box = f.astype(np.float64).reshape(1, 10, 2, 10, 2, 3).mean((2, 4))
    np.testing.assert_allclose(T.denormalize(out[:, :, 3:13]).astype(int), np.rint(box),
                               atol=1)
    assert np.all(out[:, :, :3] == 0) and np.all(out[:, :, 13:] == 0)


def test_labels_nearest_only_existing_ids_and_round_trip():
    rng = np.random.default_rng(2)
    lab = rng.integers(0, 4, (3, 12, 18)).astype(np.uint8)
    up = np.repeat(np.repeat(lab, 4, 1), 4, 2)         # [3, 48, 72], aspect 2:3
    small, info = T.resize_pad_labels(up, (24, 60))      # fits as 24x36, padded 12 each side
    assert info == T.PadInfo((48, 72), (24, 36), (0, 12))
    assert set(np.unique(small)) <= set(np.unique(lab))
    np.testing.assert_array_equal(small[:, :, :12], 0)
    np.testing.assert_array_equal(T.unpad_resize_labels(small, info), up)


def test_unpad_resize_probs_modes():
    lab = np.zeros((8, 8), np.uint8)
    lab[2:6, 2:6] = 1
    lab[6:, :] = 2
    probs = np.eye(3, dtype=np.float32)[lab].transpose(2, 0, 1)      # [3, 8, 8]
    canvas = np.zeros((3, 8, 12), np.float32)
    canvas[:, :, 2:10] = probs
    info = T.PadInfo((16, 16), (8, 8), (0, 2))
    near = T.unpad_resize_probs(canvas, info, "nearest")
    np.testing.assert_array_equal(near, np.repeat(np.repeat(lab, 2, 0), 2, 1))
    bil = T.unpad_resize_probs(canvas, info, "bilinear")
    assert bil.shape == (16, 16) and bil.dtype == np.uint8
    # Interiors of regions agree; only boundary pixels may differ.
    assert (bil != near).mean() < 0.1 and bil[7, 7] == 1 and bil[15, 0] == 2
    with pytest.raises(ValueError, match="mode"):
        T.unpad_resize_probs(canvas, info, "cubic")
