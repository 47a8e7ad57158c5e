"""The model families, in one registry: everything vosjax knows about STM and GCSeg.

A :class:`Family` names a model family (``config.model.name``, and ``"model"`` in a model
directory's ``model.json``) and holds its Flax module class, its inference options class
(:mod:`vosjax.inference.options`) and its training hooks. Everything family-specific is
decided here once, from the config, and passed down as objects: the layers below
(:mod:`vosjax.training`, :mod:`vosjax.evaluation`, :mod:`vosjax.inference`, the models) never
look a family up.

=================  ===============================  ==================  =====================
family             model                            inference options   training objective
=================  ===============================  ==================  =====================
``stm``            :class:`~vosjax.models.stm.STM`  ``STMOptions``      STM-cycle (eq. 3-4)
``stm_original``   ``STMOriginal``                  ``STMOptions``      the same
``gcseg``          :class:`~vosjax.models.gcseg.    ``GCSegOptions``    GCSeg eq. 3 (pairs)
                   GCSeg`                                               or recurrent
=================  ===============================  ==================  =====================

Training hooks (called by :func:`vosjax.training.loop.train` with the config):

* ``init_variables(model, config) -> init(rng) -> {"params", "batch_stats"}``;
* ``loss(model, config) -> loss_fn(params, batch_stats, batch, rng) -> (loss, metrics)``,
  a pure function of arrays (jit / grad / shard over the batch's leading axis);
* ``batches(config) -> stream`` with ``batch(step) ->``
  :class:`~vosjax.data.sampler.HostBatch` (this host's share of global batch ``step``: uint8
  frames and label maps, made in the input workers) and ``state(step) -> dict`` (JSON,
  checkpointed);
* ``prepare(config) -> prepare(raw, rng, num_slots) -> batch``: the loss's batch from the raw
  one, on the device inside the jitted step (:mod:`vosjax.data.device`).

Model directories (:func:`save_model` / :func:`load_model`): :mod:`vosjax.checkpoint` stores
``{"model": family, "fields": {...}}`` and the variables; this module turns the family name
back into its class.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable

from vosjax import checkpoint, compute
from vosjax.correction import GradientCorrection
from vosjax.data.device import clip_batch_fn
from vosjax.data.pairs import gcseg_batch_fn, pair_picker
from vosjax.inference.options import GCSegOptions, STMOptions
from vosjax.models.gcseg import GCSeg, init_gcseg
from vosjax.models.stm import STM, init_stm
from vosjax.models.stm_original import STMOriginal
from vosjax.training.gcseg_objective import make_loss_fn, make_recurrent_loss_fn
from vosjax.training.input_pipeline import augment_config, build_batches
from vosjax.training.step import stm_loss_fn

# Module fields that are runtime choices (config.model.compute), not architecture.
RUNTIME_FIELDS = ("precision", "dtype", "parent", "name")


@dataclasses.dataclass(frozen=True)
class Family:
    """One model family (see the module docstring)."""
    name: str
    model: type
    options: type
    init_variables: Callable[[Any, Any], Callable]
    loss: Callable[[Any, Any], Callable]
    batches: Callable[[Any], Any]
    prepare: Callable[[Any], Callable]

    def architecture(self) -> tuple[str, ...]:
        """The model's architecture fields (what ``config.model`` and ``model.json`` hold)."""
        return tuple(f.name for f in dataclasses.fields(self.model)
                     if f.name not in RUNTIME_FIELDS)

    def build_model(self, model_cfg):
        """The Flax module described by ``config.model``: the numerics (``compute``) and the
        architecture fields, each checked against the module's fields."""
        fields = {k: v for k, v in model_cfg.items() if k not in ("name", "compute")}
        unknown = sorted(set(fields) - set(self.architecture()))
        if unknown:
            raise ValueError(f"config.model: unknown {self.model.__name__} field(s) {unknown} "
                             f"(known: {sorted(self.architecture())})")
        # Lists become tuples: the model is a static (hashed) argument of jit.
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
        return self.model(**fields, **model_numerics(model_cfg))

    def model_spec(self, model) -> dict:
        """``model.json``'s content for ``model``: the family and the architecture (the
        numerics are a runtime choice)."""
        if type(model) is not self.model:
            raise TypeError(f"a {type(model).__name__} is not a {self.name} model")
        return checkpoint.spec(self.name, {k: getattr(model, k) for k in self.architecture()})


# -- STM ----------------------------------------------------------------------------------------

def _stm_init(model, config):
    h, w = tuple(config.data.size)
    return lambda rng: init_stm(model, rng, h, w, num_objects=config.data.num_slots)


def _stm_loss(model, config):
    return stm_loss_fn(model, cycle=config.train.cycle, bootstrap=config.train.bootstrap)


def _stm_batches(config):
    return build_batches(config)


def _stm_prepare(config):
    return clip_batch_fn(augment_config(config.data))


# -- GCSeg --------------------------------------------------------------------------------------

GCSEG_OBJECTIVES = ("pairs", "recurrent")


def _gcseg_objective(train_cfg) -> str:
    if train_cfg.objective not in GCSEG_OBJECTIVES:
        raise ValueError(f"config.train.objective={train_cfg.objective!r}: expected one of "
                         f"{GCSEG_OBJECTIVES}")
    return train_cfg.objective


def _gcseg_init(model, config):
    h, w = tuple(config.data.size)
    return lambda rng: init_gcseg(model, rng, h, w)


def _gcseg_loss(model, config):
    t = config.train
    make = make_loss_fn if _gcseg_objective(t) == "pairs" else make_recurrent_loss_fn

    def loss_fn(params, batch_stats, batch, rng):
        return make(model, batch_stats, zero_prev_prob=t.zero_prev_prob,
                    reduction=t.reduction)(params, batch, rng)
    return loss_fn


def _gcseg_batches(config):
    # One object per clip (a binary problem); pairs are 3 frames (reference, t-1, t).
    overrides = dict(max_objects=1, num_slots=1)
    if _gcseg_objective(config.train) == "pairs":
        overrides.update(num_frames=3, pick=pair_picker())
    return build_batches(config, **overrides)


def _gcseg_prepare(config):
    return gcseg_batch_fn(_gcseg_objective(config.train), augment_config(config.data))


#: The registry: ``config.model.name`` / ``model.json``'s ``"model"`` -> :class:`Family`.
FAMILIES = {
    "stm": Family("stm", STM, STMOptions, _stm_init, _stm_loss, _stm_batches, _stm_prepare),
    # The original STM network: the same options, objective, init and data.
    "stm_original": Family("stm_original", STMOriginal, STMOptions, _stm_init, _stm_loss,
                           _stm_batches, _stm_prepare),
    "gcseg": Family("gcseg", GCSeg, GCSegOptions, _gcseg_init, _gcseg_loss, _gcseg_batches,
                    _gcseg_prepare),
}


def get(name: str, where: str = "config.model.name") -> Family:
    """The :class:`Family` called ``name`` (``where`` names the field in the error)."""
    if name not in FAMILIES:
        raise ValueError(f"{where}={name!r}: expected one of {sorted(FAMILIES)}")
    return FAMILIES[name]


def family_of(model) -> Family:
    """The :class:`Family` of a model instance."""
    for family in FAMILIES.values():
        if type(model) is family.model:
            return family
    raise TypeError(f"{type(model).__name__} is not a registered vosjax model "
                    f"(known: {sorted(f.model.__name__ for f in FAMILIES.values())})")


# -- models -------------------------------------------------------------------------------------

def model_numerics(model_cfg) -> dict:
    """``config.model.compute`` (a :mod:`vosjax.compute` mode) -> the modules' ``precision``
    and ``dtype`` arguments."""
    try:
        return compute.resolve(model_cfg.compute).model_kwargs()
    except ValueError as e:
        raise ValueError(f"config.model.{e}") from None


def build_model(model_cfg):
    """The Flax module described by ``config.model`` (its family's :meth:`Family.build_model`)."""
    return get(model_cfg.name).build_model(model_cfg)


def model_spec(model) -> dict:
    """``model.json``'s content for a model instance (:meth:`Family.model_spec`)."""
    return family_of(model).model_spec(model)


def model_from_spec(spec: dict, **overrides: Any):
    """The model described by a ``model.json`` spec (``overrides``: e.g. ``precision``)."""
    family = get(spec.get("model"), where="model.json: model")
    return family.model(**spec.get("fields", {}), **overrides)


def save_model(directory: str | os.PathLike, model, variables) -> None:
    """Write ``model`` and ``variables`` as a model directory (:mod:`vosjax.checkpoint`)."""
    checkpoint.save_model(directory, model_spec(model), variables)


def load_model(directory: str | os.PathLike, **overrides: Any):
    """A model directory (``python -m vosjax.convert`` / ``vosjax.export`` output, or a
    ``train.py`` workdir: its latest step) -> ``(model, variables)``."""
    spec, variables = checkpoint.read_model(directory)
    return model_from_spec(spec, **overrides), variables


# -- inference ----------------------------------------------------------------------------------

def inference_options(config, family: Family | None = None):
    """The family's inference options from ``config.eval`` (and the working size
    ``config.data.size``); ``family`` defaults to ``config.model.name``'s."""
    family = get(config.model.name) if family is None else family
    e = config.eval
    common = dict(size=tuple(config.data.size), pad=e.pad, upsample=e.upsample)
    if family.options is GCSegOptions:
        if e.correction:
            raise ValueError("config.eval.correction=True: gradient correction is an "
                             "STM-cycle feature; set it False for GCSeg")
        return GCSegOptions(**common, num_fragments=e.num_fragments,
                            adaptive_search=e.adaptive_search, seed=e.seed)
    corr = None
    if e.correction:
        corr = GradientCorrection(n_iter=e.correction_iters, rate=e.correction_rate,
                                  every=e.correction_every)
    return STMOptions(**common, num_slots=e.num_slots or None, mem_every=e.mem_every,
                      reference=e.reference, memory_slots=e.memory_slots or None,
                      correction=corr, videos_per_device=e.videos_per_device)
