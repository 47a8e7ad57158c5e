"""The original STM (Oh et al., ICCV 2019; seoungwugoh/STM, ``STM_weights.pth``) in vosjax.

It is :class:`~vosjax.models.stm.STM` with one difference in the memory encoder's stem. The
official inference code (``model.py``, ``Encoder_M`` / ``STM.memorize``) feeds each object's
memory encoder the frame, the object's own mask and an "other objects" channel::

    x = conv1(frame) + conv1_m(m_o) + conv1_o(clamp(sum_{j != o} m_j, 0, 1))

where STM-Training (the STM-Cycle code) feeds ``conv1_bg(clamp(1 - m_o, 0, 1))`` instead. Key /
value heads, memory read, decoder and soft aggregation are the same modules (imported from
:mod:`vosjax.models.stm`, not copied), so every public method (``memorize``, ``encode_query``,
``segment``, ``segment_query``, ...) keeps its signature: the "other" channel is computed inside
``memorize`` from the ``[O, H, W]`` masks it already receives, exactly as the official
``memorize`` computes it from its one-hot ``masks[:, 1:num_objects + 1]``. Propagation,
gradient correction (the gradient also flows through the "other" channel), cycle-ERF,
streaming, bounded memory and the cycle loss therefore run on it unchanged.

The official evaluation uses ``K = 11`` output channels (:data:`NUM_SLOTS` = 10 object slots),
480p frames zero-padded (black, before normalisation) to a multiple of 16, memory every 5
frames plus the previous frame: ``configs/stm_original.py``.
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from vosjax.models.layers import conv
from vosjax.models.resnet import ResNet
from vosjax.models.stm import STM, MemoryEncoder, clamp01

#: Object slots of the official code (``K = 11`` channels: background + 10 objects).
NUM_SLOTS = 10
#: The official code pads frames to a multiple of this (``pad_divide_by(..., 16)``).
PAD_MULTIPLE = 16


def other_objects(masks):
    """The "other objects" channel of every object: ``clamp(sum_{j != o} m_j, 0, 1)``.

    ``masks`` ``[O, H, W]`` -> ``[O, H, W]``; one object gets zeros. The clamp's gradient is
    1 on [0, 1] as ``torch.clamp`` (:func:`~vosjax.models.stm.clamp01`).
    """
    total = jnp.sum(masks, axis=0, keepdims=True)
    return clamp01(total - masks)


class OtherObjectsMemoryEncoder(MemoryEncoder):
    """ResNet trunk whose stem adds ``conv1_m(mask) + conv1_o(other objects)`` (original STM)."""

    def setup(self):
        ResNet.setup(self)      # the trunk; the stem convolutions differ from MemoryEncoder's
        kw = dict(bias=False, precision=self.precision, dtype=self.dtype)
        self.conv1_m = conv(64, 7, 2, 3, **kw)
        self.conv1_o = conv(64, 7, 2, 3, **kw)

    def encode(self, frame, masks, frame_conv=None):
        """``frame`` ``[1, H, W, 3]``, ``masks`` ``[O, H, W]`` -> features of the O objects
        (``frame_conv``: optional precomputed :meth:`frame_stem`, as the parent class)."""
        m = masks[..., None]
        fc = self.conv1(frame) if frame_conv is None else frame_conv
        y = fc + self.conv1_m(m) + self.conv1_o(other_objects(masks)[..., None])
        c1 = nn.relu(self.bn1(y))
        return self.stages_from_stem(c1)


class STMOriginal(STM):
    """The original STM network (seoungwugoh/STM): :class:`~vosjax.models.stm.STM` with the
    "other objects" memory encoder. Same attributes and public methods as ``STM``; the
    official model is ``STMOriginal("resnet50")`` (keydim 128, valdim 512, mdim 256)."""
    memory_encoder_cls = OtherObjectsMemoryEncoder
    # Its official loop crops each prediction and pads it with zeros before memorizing it
    # (vosjax.inference.video): memorized masks are zero outside the image content.
    memorizes_content_only = True


def pad_to_multiple(height: int, width: int, multiple: int = PAD_MULTIPLE) -> tuple[int, int]:
    """The official working size of a ``height x width`` frame: each side rounded up to a
    multiple of ``multiple`` (``pad_divide_by``; the content is centred, see
    :func:`vosjax.data.transforms.fit_size`)."""
    if min(height, width, multiple) <= 0:
        raise ValueError(f"sizes must be positive, got {height}x{width}, multiple={multiple}")
    return (-(-height // multiple) * multiple, -(-width // multiple) * multiple)
