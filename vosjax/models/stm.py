"""Space-Time Memory network (STM), the architecture of the official STM-Cycle code.

Layouts (no batch axis; objects are the batch axis of every per-object tensor):

* ``frame``  ``[H, W, 3]`` float32, ImageNet-normalised RGB.
* ``masks``  ``[O, H, W]`` float32 per-object soft masks (O = objects, no background channel).
* ``keys``   ``[O, N, keydim]`` and ``values`` ``[O, N, valdim]``: N memory positions, row-major
  ``(y, x)`` within a frame, frames concatenated on axis 1 in frame order.
* ``probs``  ``[O, H, W]`` each object's foreground probability.

Parameter names mirror the PyTorch module names (``Encoder_M.conv1_m`` -> ``Encoder_M/conv1_m``,
``Decoder.RF3.ResFS.conv1`` -> ``Decoder/RF3/ResFS/conv1``) so :mod:`vosjax.convert` maps a
``state_dict`` one to one. Two mask-independent parts are computed once instead of once per
object, which changes no number: ``conv1(frame)`` in the memory encoder, and the query-side
``ResFS(convFS(.))`` branches of the decoder's refinement blocks.
"""
from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from vosjax.models.layers import ResBlock, conv, resize_bilinear
from vosjax.models.resnet import ResNet, resolve_precision

# Soft aggregation clamp of the official code (float32).
PROB_EPS = 1e-7


class QueryFeatures(NamedTuple):
    """Mask-independent features of one query frame (compute once, segment many times).

    ``r3`` ``[1, H/8, W/8, C3]`` and ``r2`` ``[1, H/4, W/4, C2]`` are the skip features after the
    decoder's query-only ``convFS``/``ResFS`` branches; ``key`` ``[h*w, keydim]`` and
    ``value`` ``[h, w, valdim]`` come from ``KV_Q_r4``.
    """
    key: jax.Array
    value: jax.Array
    s3: jax.Array
    s2: jax.Array


@jax.custom_jvp
def clamp01(x):
    """``clip(x, 0, 1)`` whose gradient is 1 on the closed interval [0, 1], as ``torch.clamp``.

    ``jnp.clip`` splits the gradient at the bounds (0.5), which differs from PyTorch exactly where
    it matters: a one-hot mask has ``1 - m == 0``.
    """
    return jnp.clip(x, 0.0, 1.0)


@clamp01.defjvp
def _clamp01_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    inside = (x >= 0.0) & (x <= 1.0)
    return clamp01(x), jnp.where(inside, dx, jnp.zeros_like(dx))


def soft_aggregate(probs, num_slots: int):
    """Soft aggregation of per-object probabilities into ``num_slots + 1`` channel logits.

    ``probs`` ``[O, H, W]`` (O <= num_slots) -> logits ``[num_slots + 1, H, W]``: channel 0 is
    ``prod_o(1 - p_o)``, channel o is ``p_o``, unused slots 0; all clamped to [1e-7, 1 - 1e-7]
    and mapped by ``log(e / (1 - e))``. Callers take a softmax over axis 0.
    """
    num_objects = probs.shape[0]
    if num_objects > num_slots:
        raise ValueError(f"{num_objects} objects do not fit in num_slots={num_slots}")
    bg = jnp.prod(1.0 - probs, axis=0, keepdims=True)
    pad = jnp.zeros((num_slots - num_objects,) + probs.shape[1:], probs.dtype)
    em = jnp.clip(jnp.concatenate([bg, probs, pad], axis=0), PROB_EPS, 1.0 - PROB_EPS)
    return jnp.log(em / (1.0 - em))


class Refine(nn.Module):
    """``ResMM(ResFS(convFS(f)) + up(pm))``; :meth:`skip` is the mask-independent half."""
    planes: int
    precision: Any = None
    dtype: Any = None

    def setup(self):
        kw = dict(precision=self.precision, dtype=self.dtype)
        self.convFS = conv(self.planes, 3, bias=True, **kw)
        self.ResFS = ResBlock(**kw)
        self.ResMM = ResBlock(**kw)

    def skip(self, f):
        return self.ResFS(self.convFS(f))

    def __call__(self, s, pm):
        return self.ResMM(s + resize_bilinear(pm, s.shape[1:3], self.precision))


class Decoder(nn.Module):
    """STM decoder: ``convFM`` + ``ResMM`` on the memory read, refinement at 1/8 and 1/4,
    ``pred2`` to 2 channels and a bilinear upsample to the frame size."""
    mdim: int = 256
    precision: Any = None
    dtype: Any = None

    def setup(self):
        kw = dict(precision=self.precision, dtype=self.dtype)
        self.convFM = conv(self.mdim, 3, bias=True, **kw)
        self.ResMM = ResBlock(**kw)
        self.RF3 = Refine(self.mdim, **kw)
        self.RF2 = Refine(self.mdim, **kw)
        self.pred2 = conv(2, 3, bias=True, **kw)

    def skips(self, r3, r2):
        """Query-only branches of RF3/RF2 (independent of the memory and of the object)."""
        return self.RF3.skip(r3), self.RF2.skip(r2)

    def __call__(self, m4, s3, s2, out_hw):
        """``m4`` ``[O, h, w, 2*valdim]``; ``s3``/``s2`` from :meth:`skips` (batch 1 or O)."""
        o = m4.shape[0]
        m4 = self.ResMM(self.convFM(m4))
        m3 = self.RF3(jnp.broadcast_to(s3, (o,) + s3.shape[1:]), m4)
        m2 = self.RF2(jnp.broadcast_to(s2, (o,) + s2.shape[1:]), m3)
        p2 = self.pred2(nn.relu(m2))
        return resize_bilinear(p2, out_hw, self.precision)


class KeyValue(nn.Module):
    """3x3 key and value convolutions (with bias)."""
    keydim: int
    valdim: int
    precision: Any = None
    dtype: Any = None

    def setup(self):
        kw = dict(bias=True, precision=self.precision, dtype=self.dtype)
        self.Key = conv(self.keydim, 3, **kw)
        self.Value = conv(self.valdim, 3, **kw)

    def __call__(self, x):
        return self.Key(x), self.Value(x)


class MemoryEncoder(ResNet):
    """ResNet trunk whose stem adds ``conv1_m(mask) + conv1_bg(clamp(1 - mask, 0, 1))``."""

    def setup(self):
        super().setup()
        kw = dict(bias=False, precision=self.precision, dtype=self.dtype)
        self.conv1_m = conv(64, 7, 2, 3, **kw)
        self.conv1_bg = conv(64, 7, 2, 3, **kw)

    def encode(self, frame, masks, frame_conv=None):
        """``frame`` ``[1, H, W, 3]``, ``masks`` ``[O, H, W]`` -> features of the O objects.

        ``conv1(frame)`` is computed once and broadcast over objects; pass it as ``frame_conv``
        ``[1, H/2, W/2, 64]`` (from :meth:`frame_stem`) to reuse it across many masks.
        """
        m = masks[..., None]
        fc = self.conv1(frame) if frame_conv is None else frame_conv
        y = fc + self.conv1_m(m) + self.conv1_bg(clamp01(1.0 - m))
        c1 = nn.relu(self.bn1(y))
        return self.stages_from_stem(c1)

    def frame_stem(self, frame):
        """The mask-independent ``conv1(frame)`` ``[1, H/2, W/2, 64]`` of :meth:`encode`."""
        return self.conv1(frame)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def dot_f32(precision, dims, a, b):
    """``lax.dot_general(a, b, dims)`` accumulated and returned in float32 whatever the
    operands' dtype.

    Its gradient keeps the operands' dtype: the cotangent is cast to it before the transposed
    products (plain ``preferred_element_type`` would run them in float32 on bfloat16 operands).
    """
    return jax.lax.dot_general(a, b, dims, precision=precision,
                               preferred_element_type=jnp.float32)


def _dot_f32_fwd(precision, dims, a, b):
    return dot_f32(precision, dims, a, b), (a, b)


def _dot_f32_bwd(precision, dims, res, g):
    a, b = res
    _, vjp = jax.vjp(lambda x, y: jax.lax.dot_general(x, y, dims, precision=precision,
                                                      preferred_element_type=a.dtype), a, b)
    return vjp(g.astype(a.dtype))


dot_f32.defvjp(_dot_f32_fwd, _dot_f32_bwd)

# memory_read's two products as dot_general dimension numbers ((contract), (batch)).
_KEYS_DOT_QUERY = (((2,), (1,)), ((), ()))     # [O, N, C] x [M, C] -> [O, N, M]
_ATTN_DOT_VALUES = (((1,), (1,)), ((0,), (0,)))  # [O, N, M] x [O, N, C] -> [O, M, C]


def memory_read(mem_keys, mem_values, q_key, valid=None, precision=None):
    """STM memory read: attention over memory positions, scaled by ``1/sqrt(keydim)``.

    Args:
      mem_keys: ``[O, N, Ck]``; mem_values: ``[O, N, Cv]``; q_key: ``[M, Ck]`` (M query
        positions, shared by all objects).
      valid: optional ``[N]`` or ``[O, N]`` boolean; invalid memory positions get no weight
        (a fixed-capacity memory bank marks its empty slots this way).

    Returns:
      ``(read [O, M, Cv], attn [O, N, M])``, both float32, where ``attn`` sums to 1 over N.
    """
    ck = mem_keys.shape[-1]
    # logits[o, n, m] = <k_mem[o, n], k_q[m]> / sqrt(Ck), accumulated in float32 whatever the
    # operand dtype (a bfloat16 bank is read with float32 accumulation).
    logits = dot_f32(precision, _KEYS_DOT_QUERY, mem_keys, q_key.astype(mem_keys.dtype))
    logits = logits / math.sqrt(ck)
    if valid is not None:
        valid = jnp.broadcast_to(valid if valid.ndim == 2 else valid[None], logits.shape[:2])
        logits = jnp.where(valid[..., None], logits, -jnp.inf)
    attn = jax.nn.softmax(logits, axis=1)
    # read[o, m] = sum_n attn[o, n, m] * v_mem[o, n]
    read = dot_f32(precision, _ATTN_DOT_VALUES, attn.astype(mem_values.dtype), mem_values)
    return read, attn


class STM(nn.Module):
    """Space-Time Memory network with the official STM-Cycle parameter layout.

    Attributes:
      arch: backbone, ``resnet18|34|50|101`` (the released STM-Cycle models: R18, R50).
      keydim, valdim: memory key / value channels (128 / 512).
      mdim: decoder width (256 in the official model; smaller for CPU demos).
      precision, dtype: conv/matmul precision and operand dtype, normally set together from a
        named mode by :func:`vosjax.compute.resolve` (``STM(**resolve("bfloat16").model_kwargs(),
        ...)``). The defaults (``"highest"``, None) are the ``"float32-highest"`` parity mode;
        with ``jnp.bfloat16`` the parameters stay float32 and the softmaxes, the soft
        aggregation and the memory read's accumulation stay float32.

    Public methods (call through ``model.apply(variables, ..., method=model.<name>)``):
    :meth:`memorize`, :meth:`segment`, :meth:`encode_query`, :meth:`segment_query`,
    :meth:`encode_memory`, :meth:`read` and :meth:`decode`.
    """
    arch: str = "resnet50"
    keydim: int = 128
    valdim: int = 512
    mdim: int = 256
    precision: Any = "highest"
    dtype: Any = None
    # The memory encoder's class (a hook for variants: vosjax.models.stm_original).
    memory_encoder_cls = MemoryEncoder
    # STM-Training's loop memorizes masks over the whole (letterboxed) canvas; the original
    # STM's zeroes them outside the image content (vosjax.inference.video).
    memorizes_content_only = False

    def setup(self):
        prec = resolve_precision(self.precision)
        kw = dict(precision=prec, dtype=self.dtype)
        self.Encoder_M = self.memory_encoder_cls(self.arch, num_stages=3, **kw)
        self.Encoder_Q = ResNet(self.arch, num_stages=3, **kw)
        self.KV_M_r4 = KeyValue(self.keydim, self.valdim, **kw)
        self.KV_Q_r4 = KeyValue(self.keydim, self.valdim, **kw)
        self.Decoder = Decoder(self.mdim, **kw)

    # -- memory side ---------------------------------------------------------------------------
    def encode_memory(self, frame, masks, frame_conv=None):
        """``r4`` ``[O, H/16, W/16, C4]`` of the memory encoder for each object's mask."""
        _check_frame(frame)
        _check_masks(masks, frame)
        return self.Encoder_M.encode(frame[None], masks, frame_conv)[3]

    def memory_stem(self, frame):
        """``conv1(frame)`` of the memory encoder (mask-independent): pass it to
        :meth:`memorize` as ``frame_conv`` when memorizing one frame with many masks."""
        _check_frame(frame)
        return self.Encoder_M.frame_stem(frame[None])

    def memorize(self, frame, masks, frame_conv=None):
        """Memory keys ``[O, h*w, keydim]`` and values ``[O, h*w, valdim]`` of one frame.

        ``frame_conv``: optional precomputed :meth:`memory_stem` of ``frame`` (same result).
        """
        r4 = self.encode_memory(frame, masks, frame_conv)
        k, v = self.KV_M_r4(r4)
        o = masks.shape[0]
        return k.reshape(o, -1, self.keydim), v.reshape(o, -1, self.valdim)

    # -- query side ----------------------------------------------------------------------------
    def query_backbone(self, frame):
        """Query-encoder features ``(c1, r2, r3, r4)``, each with a batch axis of 1."""
        _check_frame(frame)
        return self.Encoder_Q(frame[None])

    def encode_query(self, frame) -> QueryFeatures:
        """Everything of the segmentation that depends on the query frame alone."""
        _, r2, r3, r4 = self.query_backbone(frame)
        k, v = self.KV_Q_r4(r4)
        s3, s2 = self.Decoder.skips(r3, r2)
        return QueryFeatures(key=k.reshape(-1, self.keydim), value=v[0], s3=s3, s2=s2)

    def read(self, keys, values, q_key, valid=None):
        """Memory read: see :func:`memory_read`."""
        return memory_read(keys, values, q_key, valid, resolve_precision(self.precision))

    def decode(self, read, query: QueryFeatures, out_hw):
        """Decoder logits ``[O, H, W, 2]`` from the read ``[O, h*w, valdim]``."""
        o = read.shape[0]
        h, w = query.value.shape[:2]
        m4 = jnp.concatenate(
            [read.reshape(o, h, w, self.valdim).astype(query.value.dtype),
             jnp.broadcast_to(query.value, (o, h, w, self.valdim))], axis=-1)
        return self.Decoder(m4, query.s3, query.s2, tuple(out_hw))

    def segment_query(self, query: QueryFeatures, keys, values, out_hw, valid=None):
        """:meth:`segment` from precomputed :class:`QueryFeatures` (e.g. a reference frame)."""
        read, _ = self.read(keys, values, query.key, valid)
        logits = self.decode(read, query, out_hw).astype(jnp.float32)
        return jax.nn.softmax(logits, axis=-1)[..., 1]

    def segment(self, frame, keys, values, valid=None):
        """Per-object foreground probabilities ``[O, H, W]`` of ``frame`` given the memory."""
        _check_memory(keys, values, self.keydim, self.valdim)
        return self.segment_query(self.encode_query(frame), keys, values, frame.shape[:2], valid)

    def __call__(self, frame, masks):
        """Memorize ``frame`` with ``masks`` and segment it from that memory (used by ``init``)."""
        keys, values = self.memorize(frame, masks)
        return self.segment(frame, keys, values)


def _check_frame(frame):
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"frame must be [H, W, 3] (normalised RGB), got shape {frame.shape}")


def _check_masks(masks, frame):
    if masks.ndim != 3 or masks.shape[1:] != frame.shape[:2]:
        raise ValueError(f"masks must be [O, H, W] with H, W = {frame.shape[:2]}, "
                         f"got shape {masks.shape}")


def _check_memory(keys, values, keydim, valdim):
    if keys.ndim != 3 or keys.shape[-1] != keydim:
        raise ValueError(f"keys must be [O, N, {keydim}], got shape {keys.shape}")
    if values.ndim != 3 or values.shape[-1] != valdim or values.shape[:2] != keys.shape[:2]:
        raise ValueError(f"values must be [O, N, {valdim}] matching keys {keys.shape}, "
                         f"got shape {values.shape}")


def init_stm(model: STM, rng, height: int = 64, width: int = 64, num_objects: int = 1):
    """Random variables for ``model`` (shapes do not depend on the image size)."""
    frame = jnp.zeros((height, width, 3), jnp.float32)
    masks = jnp.zeros((num_objects, height, width), jnp.float32)
    return model.init(rng, frame, masks)
