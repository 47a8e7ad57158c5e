"""The compiled working-size fit (vosjax.inference.resize) against the numpy transform."""
import functools

import jax
import numpy as np
import pytest

from vosjax.data import transforms
from vosjax.inference import resize


def _fit(frames, size, pad):
    x, info = transforms.resize_pad_frames(frames, size, pad)
    y = jax.jit(functools.partial(resize.fit_frames, info=info, size=size, pad=pad))(frames)
    return x, np.asarray(y), info


@pytest.mark.parametrize("hw, size, pad", [((48, 80), (24, 40), "mean"),    # exact halving
                                           ((24, 35), (24, 40), "black"),   # padded, no resize
                                           ((24, 40), (24, 40), "mean")])   # nothing to do
def test_fit_is_bit_identical_without_inexact_interpolation(hw, size, pad):
    frames = np.random.default_rng(0).integers(0, 256, (2, *hw, 3), dtype=np.uint8)
    x, y, _ = _fit(frames, size, pad)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_array_equal(x.view(np.uint32), y.view(np.uint32))


@pytest.mark.parametrize("pad", ["mean", "black"])
def test_fit_with_interpolation_and_ids_back(pad):
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (2, 37, 53, 3), dtype=np.uint8)
    size = (24, 40)
    x, y, info = _fit(frames, size, pad)
    assert info.offsets != (0, 0)            # resized and padded
    np.testing.assert_allclose(y, x, rtol=0, atol=2e-6)   # fused multiply-adds: last bits
    # The padding is the fill exactly.
    fill = -transforms.IMAGENET_MEAN / transforms.IMAGENET_STD if pad == "black" else 0
    top = info.offsets[0]
    np.testing.assert_array_equal(y[:, :top], np.broadcast_to(fill, y[:, :top].shape))
    probs = rng.random((2, 3, *size)).astype(np.float32)
    for mode in ("nearest", "bilinear"):
        want = transforms.unpad_resize_probs(probs, info, mode)
        got = jax.jit(functools.partial(resize.labels_at_original_size, info=info,
                                        mode=mode))(probs)
        assert got.dtype == np.uint8 and got.shape == (2, 37, 53)
        np.testing.assert_array_equal(np.asarray(got), want)
    with pytest.raises(ValueError, match="mode"):
        resize.labels_at_original_size(probs, info, "cubic")
    with pytest.raises(ValueError, match=r"frames must be \[\.\.\., 37, 53, 3\]"):
        resize.fit_frames(frames[:, :30], info, size, pad)
