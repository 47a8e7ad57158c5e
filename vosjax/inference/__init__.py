"""Video inference for both model families: the options (``options``: ``STMOptions``,
``GCSegOptions``), STM propagation (official test loop) and streaming, GCSeg inference
(``gcseg``), raw videos in and labels out (``video``) and the many-video engine (``batch``).

``propagate`` / ``Propagator`` live in :mod:`vosjax.inference.propagation`; the memory bank in
:mod:`vosjax.inference.memory`; gradient correction and cycle-ERF in :mod:`vosjax.correction`.
"""
from vosjax.inference.memory import MemoryBank
from vosjax.inference.propagation import (
                                        PropagationResult,
                                        PropagationState,
                                        Propagator,
                                        StepConfig,
                                        propagate,
)

__all__ = ["propagate", "Propagator", "PropagationResult", "PropagationState", "StepConfig",
           "MemoryBank"]
