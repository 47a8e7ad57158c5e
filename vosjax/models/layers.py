"""Small layers shared by the models (ResNet trunk, STM, GCSeg), NHWC.

* :func:`conv`: a PyTorch-style ``Conv2d`` (explicit symmetric zero padding).
* :func:`resize_bilinear`: ``F.interpolate(mode='bilinear', align_corners=False)``.
* :class:`ResBlock`: the residual block without normalisation of STM's decoder and of GCSeg's
  decoder.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax


def conv(features: int, kernel: int, stride: int = 1, padding: int | None = None, *,
         bias: bool, precision: Any, dtype: Any, name: str | None = None) -> nn.Conv:
    """A PyTorch-style ``Conv2d`` (explicit symmetric zero padding, default ``kernel // 2``)."""
    p = kernel // 2 if padding is None else padding
    return nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding=((p, p), (p, p)),
                   use_bias=bias, precision=precision, dtype=dtype, name=name)


def resize_bilinear(x, size: tuple[int, int], precision: Any = None):
    """Bilinear resize of ``[N, h, w, C]`` to ``size`` with half-pixel centres, edges clamped.

    Equals PyTorch ``F.interpolate(mode='bilinear', align_corners=False)`` for upsampling.
    """
    n, _, _, c = x.shape
    return jax.image.resize(x, (n, size[0], size[1], c), method="linear", antialias=False,
                            precision=precision)


class ResBlock(nn.Module):
    """``x + conv2(relu(conv1(relu(x))))``: two 3x3 convs with bias keeping ``x``'s channels, no
    normalisation. ``conv_names`` names the two convs' parameters (STM's ``conv1``/``conv2``,
    the PyTorch names; GCSeg's decoder keeps Flax's automatic ``Conv_0``/``Conv_1``)."""
    precision: Any = None
    dtype: Any = None
    conv_names: tuple[str, str] = ("conv1", "conv2")

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        kw = dict(bias=True, precision=self.precision, dtype=self.dtype)
        first, second = self.conv_names
        y = conv(c, 3, name=first, **kw)(nn.relu(x))
        return x + conv(c, 3, name=second, **kw)(nn.relu(y))


__all__ = ["conv", "resize_bilinear", "ResBlock"]
