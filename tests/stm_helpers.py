"""Test helpers for inference / correction tests.

* :func:`tiny_stm`: a small STM (R10 trunk, keydim 16, valdim 32, decoder width 32) with
  random variables built without compiling the model: shapes from ``jax.eval_shape`` of the
  initialiser, values drawn with numpy like Flax's defaults (LeCun-normal kernels, zero
  biases, identity BatchNorm).
* :func:`numpy_variables`: the same numpy draw for any model's initialiser.
* :func:`random_video`: random frames and two box-shaped objects.
* :func:`official_loop`: the official mask-gradient loop (eq. 5) written step by step.
The fixtures ``tiny`` (:func:`tiny_stm`) and ``clip`` (3 frames, 2 objects, 16x32 device
arrays) are in ``conftest.py``.
"""
import functools

import jax
import numpy as np

from vosjax.losses import cross_entropy_loss, iou_loss
from vosjax.models.stm import STM, init_stm, soft_aggregate


def tiny_stm(seed: int = 0, model_cls=STM):
    """``model_cls``: :class:`STM` or a variant with the same fields (``STMOriginal``)."""
    model = model_cls("resnet10", keydim=16, valdim=32, mdim=32)
    return model, numpy_variables(lambda: init_stm(model, jax.random.PRNGKey(0), 32, 32), seed)


def numpy_variables(init, seed: int = 0):
    """Random variables of the shapes ``init()`` returns (traced with ``jax.eval_shape``, never
    compiled), drawn with numpy like Flax's defaults: LeCun-normal kernels, zero biases,
    identity BatchNorm."""
    shapes = jax.eval_shape(init)
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        name = jax.tree_util.keystr(path)
        if name.endswith("['kernel']"):
            fan_in = int(np.prod(leaf.shape[:-1]))
            return (rng.normal(size=leaf.shape) / np.sqrt(fan_in)).astype(np.float32)
        if name.endswith("['scale']") or name.endswith("['var']"):
            return np.ones(leaf.shape, np.float32)
        return np.zeros(leaf.shape, np.float32)

    return jax.tree_util.tree_map_with_path(fill, shapes)


def random_video(t: int, h: int = 16, w: int = 32, seed: int = 0):
    """``frames`` ``[t, h, w, 3]`` float32 noise and ``masks`` ``[2, h, w]`` (two boxes)."""
    rng = np.random.default_rng(seed)
    frames = rng.normal(size=(t, h, w, 3)).astype(np.float32)
    masks = np.zeros((2, h, w), np.float32)
    masks[0, h // 8:h // 2, w // 10:w * 3 // 8] = 1
    masks[1, h // 2 + 1:h - 1, w // 2 + 2:w - 2] = 1
    return frames, masks


def _official_loss(model, v, frame, m, ref_frame, ref_probs, o):
    """memorize(frame, m) -> segment(ref_frame) -> softmax -> CE + IoU, as the official loop."""
    k, val = model.apply(v, frame, m, method=model.memorize)
    ps = model.apply(v, ref_frame, k, val, method=model.segment)
    f = jax.nn.softmax(soft_aggregate(ps, ref_probs.shape[0] - 1), axis=0)[None]
    return cross_entropy_loss(f, ref_probs[None], o) + iou_loss(f, ref_probs[None], o)[0]


@functools.lru_cache(maxsize=None)
def _official_value_and_grad(model):
    """jit(value_and_grad) of the official loss w.r.t. the mask; frames are arguments so one
    compilation serves every test here."""
    def loss(m, v, frame, ref_frame, ref_probs):
        return _official_loss(model, v, frame, m, ref_frame, ref_probs, m.shape[0])
    return jax.jit(jax.value_and_grad(loss))


def official_loop(model, v, frame, m, ref_frame, ref_probs, n, rate):
    vg = _official_value_and_grad(model)
    losses = []
    for _ in range(n):
        loss, g = vg(m, v, frame, ref_frame, ref_probs)
        losses.append(float(loss))
        m = m - rate * g
    return m, np.array(losses)
