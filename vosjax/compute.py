"""The numerics policy: one named mode decides the precision and dtype of every conv and matmul.

Modes (``config.model.compute``; the ``compute=`` argument of the library calls):

* ``"float32-highest"``: float32 operands, ``Precision.HIGHEST`` everywhere. The parity mode:
  the golden tests against the official PyTorch code run in it. On a CPU it costs nothing
  (XLA:CPU computes float32 convolutions in full float32 anyway).
* ``"float32"``: float32 operands, default precision: on NVIDIA GPUs since Ampere XLA may then
  use TF32 tensor cores (PyTorch's cuDNN default for convolutions, too).
* ``"bfloat16"``: bfloat16 operands for every convolution and matmul of the networks, with
  float32 parameters (the optimizer updates float32 weights), float32 accumulation of the memory
  read, and float32 softmaxes, soft aggregation and losses. The inference memory bank is stored
  in bfloat16 (half the memory).
* ``"auto"`` (the configs' default): ``"bfloat16"`` on GPU/TPU backends, ``"float32-highest"``
  on CPU (XLA:CPU's bfloat16 convolutions are slower than its float32 ones:
  ``benchmarks/results/inference_cpu.json``).

Models keep their two runtime fields (``precision``, ``dtype``); :func:`resolve` turns a mode
into them, so a model built by hand (``STM(precision="highest")``) and one built from a config
mean the same thing.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

MODES = ("auto", "float32-highest", "float32", "bfloat16")


@dataclasses.dataclass(frozen=True)
class Compute:
    """A resolved mode: ``precision`` of convs/matmuls and ``dtype`` of their operands
    (None = float32)."""
    mode: str
    precision: jax.lax.Precision
    dtype: Any

    def model_kwargs(self) -> dict:
        """``precision=`` and ``dtype=`` for :class:`~vosjax.models.stm.STM` and
        :class:`~vosjax.models.gcseg.GCSeg`."""
        return {"precision": self.precision.name.lower(), "dtype": self.dtype}


def resolve(mode: str = "auto", backend: str | None = None) -> Compute:
    """The :class:`Compute` of ``mode``; ``"auto"`` looks at ``backend`` (default: JAX's)."""
    if mode not in MODES:
        raise ValueError(f"compute={mode!r}: expected one of {MODES}")
    if mode == "auto":
        backend = backend or jax.default_backend()
        mode = "float32-highest" if backend == "cpu" else "bfloat16"
    if mode == "float32-highest":
        return Compute(mode, jax.lax.Precision.HIGHEST, None)
    if mode == "float32":
        return Compute(mode, jax.lax.Precision.DEFAULT, None)
    return Compute(mode, jax.lax.Precision.DEFAULT, jnp.bfloat16)


def mode_of(model) -> str:
    """The mode a model's ``precision``/``dtype`` fields amount to (for reports)."""
    from vosjax.models.resnet import resolve_precision

    if model.dtype is not None and jnp.dtype(model.dtype) == jnp.bfloat16:
        return "bfloat16"
    prec = resolve_precision(model.precision)
    return "float32-highest" if prec == jax.lax.Precision.HIGHEST else "float32"


__all__ = ["MODES", "Compute", "resolve", "mode_of"]
