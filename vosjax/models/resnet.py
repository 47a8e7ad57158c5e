"""ResNet-18/34/50/101 trunks in Flax linen, NHWC, with torchvision's parameter layout.

Parameter names follow the STM naming of torchvision's ResNet (``conv1``, ``bn1``, ``res2`` ..
``res5`` for ``layer1`` .. ``layer4``; blocks ``res3_0``; shortcut ``downsample_0`` (conv) and
``downsample_1`` (BN)) so a PyTorch ``state_dict`` maps onto the Flax tree mechanically
(see :mod:`vosjax.convert`).

BatchNorm is frozen: it always normalises with the running statistics (eps 1e-5), as the
official STM training never leaves eval mode. Its affine ``scale``/``bias`` are ordinary
parameters; ``mean``/``var`` live in the ``batch_stats`` collection and are never updated.
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax

from vosjax.models.layers import conv

# arch -> (block kind, blocks per stage)
# ``resnet10`` (one basic block per stage) is not a torchvision model: a small trunk for CPU
# tests and demos.
ARCHS: dict[str, tuple[str, tuple[int, int, int, int]]] = {
    "resnet10": ("basic", (1, 1, 1, 1)),
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
}

# Channel multiplier of a stage's output relative to (64, 128, 256, 512).
EXPANSION = {"basic": 1, "bottleneck": 4}


def stage_channels(arch: str) -> tuple[int, int, int, int]:
    """Output channels of ``res2`` .. ``res5`` for ``arch`` (e.g. 64/128/256/512 for R18)."""
    kind, _ = _arch(arch)
    e = EXPANSION[kind]
    return (64 * e, 128 * e, 256 * e, 512 * e)


def _arch(arch: str):
    if arch not in ARCHS:
        raise ValueError(f"arch={arch!r}: expected one of {sorted(ARCHS)}")
    return ARCHS[arch]


def frozen_bn(dtype: Any) -> nn.BatchNorm:
    """BatchNorm in eval mode (running statistics, eps 1e-5), as the official code always runs."""
    return nn.BatchNorm(use_running_average=True, epsilon=1e-5, momentum=0.9, dtype=dtype)


class BasicBlock(nn.Module):
    """torchvision ``BasicBlock``: ``relu(bn2(conv2(relu(bn1(conv1 x)))) + shortcut(x))``."""
    planes: int
    stride: int = 1
    downsample: bool = False
    precision: Any = None
    dtype: Any = None

    def setup(self):
        kw = dict(precision=self.precision, dtype=self.dtype)
        self.conv1 = conv(self.planes, 3, self.stride, bias=False, **kw)
        self.bn1 = frozen_bn(self.dtype)
        self.conv2 = conv(self.planes, 3, 1, bias=False, **kw)
        self.bn2 = frozen_bn(self.dtype)
        if self.downsample:
            self.downsample_0 = conv(self.planes, 1, self.stride, 0, bias=False, **kw)
            self.downsample_1 = frozen_bn(self.dtype)

    def __call__(self, x):
        y = nn.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        sc = self.downsample_1(self.downsample_0(x)) if self.downsample else x
        return nn.relu(y + sc)


class Bottleneck(nn.Module):
    """torchvision ``Bottleneck`` (v1.5: the stride sits on the 3x3 conv), expansion 4."""
    planes: int
    stride: int = 1
    downsample: bool = False
    precision: Any = None
    dtype: Any = None

    def setup(self):
        kw = dict(precision=self.precision, dtype=self.dtype)
        self.conv1 = conv(self.planes, 1, 1, 0, bias=False, **kw)
        self.bn1 = frozen_bn(self.dtype)
        self.conv2 = conv(self.planes, 3, self.stride, bias=False, **kw)
        self.bn2 = frozen_bn(self.dtype)
        self.conv3 = conv(self.planes * 4, 1, 1, 0, bias=False, **kw)
        self.bn3 = frozen_bn(self.dtype)
        if self.downsample:
            self.downsample_0 = conv(self.planes * 4, 1, self.stride, 0, bias=False, **kw)
            self.downsample_1 = frozen_bn(self.dtype)

    def __call__(self, x):
        y = nn.relu(self.bn1(self.conv1(x)))
        y = nn.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        sc = self.downsample_1(self.downsample_0(x)) if self.downsample else x
        return nn.relu(y + sc)


class ResNet(nn.Module):
    """A ResNet trunk returning the stride 2/4/8/16(/32) features ``(c1, r2, r3, r4[, r5])``.

    Attributes:
      arch: ``resnet18`` | ``resnet34`` | ``resnet50`` | ``resnet101`` (or ``resnet10``, a
        one-block-per-stage trunk for tests and CPU demos).
      num_stages: 3 stops after ``res4`` (``layer3``, stride 16) as STM does; 4 adds ``res5``.
      precision: ``jax.lax.Precision`` (or its name) for every conv; ``"highest"`` for parity.
      dtype: compute dtype (None: the input's, normally float32; ``bfloat16`` for fast modes).

    Input ``x`` is ``[N, H, W, C]`` (ImageNet-normalised RGB for ``C == 3``). ``stem_extra``, if
    given, is added to ``conv1(x)`` before ``bn1``; the STM memory encoder uses it for its mask
    convolutions.
    """
    arch: str = "resnet50"
    num_stages: int = 3
    precision: Any = None
    dtype: Any = None

    def setup(self):
        kind, blocks = _arch(self.arch)
        if self.num_stages not in (3, 4):
            raise ValueError(f"num_stages={self.num_stages}: expected 3 or 4")
        block_cls = BasicBlock if kind == "basic" else Bottleneck
        exp = EXPANSION[kind]
        kw = dict(precision=self.precision, dtype=self.dtype)
        self.conv1 = conv(64, 7, 2, 3, bias=False, **kw)
        self.bn1 = frozen_bn(self.dtype)
        stages = []
        in_ch = 64
        for s, (planes, n) in enumerate(zip((64, 128, 256, 512), blocks[: self.num_stages])):
            stride = 1 if s == 0 else 2
            stage = []
            for b in range(n):
                st = stride if b == 0 else 1
                ds = b == 0 and (st != 1 or in_ch != planes * exp)
                # setattr registers the block under this exact (torch-mirroring) name.
                setattr(self, f"res{s + 2}_{b}", block_cls(planes, st, ds, **kw))
                stage.append(f"res{s + 2}_{b}")
                in_ch = planes * exp
            stages.append(tuple(stage))
        self._stage_names = tuple(stages)

    def stem(self, x, stem_extra=None):
        """``conv1`` (+ ``stem_extra``), ``bn1``, ReLU: the stride-2 feature ``c1``."""
        y = self.conv1(x)
        if stem_extra is not None:
            y = y + stem_extra
        return nn.relu(self.bn1(y))

    def stages_from_stem(self, c1):
        """Max-pool (3x3, stride 2, pad 1 with -inf) then the residual stages."""
        x = nn.max_pool(c1, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        feats = [c1]
        for stage in self._stage_names:
            for block in stage:
                x = getattr(self, block)(x)
            feats.append(x)
        return tuple(feats)

    def __call__(self, x, stem_extra=None):
        return self.stages_from_stem(self.stem(x, stem_extra))


def resolve_precision(precision: Any):
    """Accept ``None``, a ``jax.lax.Precision`` or its name (``"highest"``, ``"default"``...)."""
    if precision is None or isinstance(precision, jax.lax.Precision):
        return precision
    if isinstance(precision, str):
        try:
            return jax.lax.Precision[precision.upper()]
        except KeyError:
            raise ValueError(f"precision={precision!r}: expected default, high or "
                             "highest") from None
    raise ValueError(f"precision={precision!r}: expected a jax.lax.Precision or its name")


def init_shapes(module: nn.Module, *args: Sequence[Any], method=None):
    """Abstract variable shapes of ``module`` (no FLOPs, no memory): ``jax.eval_shape`` of init."""
    return jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), *args, method=method))


__all__ = ["ARCHS", "ResNet", "BasicBlock", "Bottleneck", "stage_channels", "resolve_precision",
           "init_shapes", "frozen_bn"]
