"""Training tasks: everything the generic trainer needs to know about one model family.

The one dispatch point of :mod:`vosjax.training`: ``config.model.name`` picks a :class:`Task`
from :data:`TASKS`; the loop, the step, checkpointing and the held-out evaluation never look at
the model family themselves.

A task gives, from the (ml_collections) config:

* ``build_model(config.model) -> flax Module``;
* ``init_variables(model, config) -> init(rng) -> {"params", "batch_stats"}``;
* ``loss(model, config) -> loss_fn(params, batch_stats, batch, rng) -> (loss, metrics)``,
  a pure function of arrays (jit / grad / shard over the batch's leading axis);
* ``batches(config) -> stream`` with ``batch(step) ->``
  :class:`~vosjax.data.sampler.HostBatch` (this host's share of global batch ``step``: uint8
  frames and label maps, run in the input workers) and ``state(step) -> dict`` (JSON,
  checkpointed);
* ``prepare(config) -> prepare(raw, rng, num_slots) -> batch``: the loss's batch from the
  raw one, on the device inside the jitted step (:mod:`vosjax.data.device`).

Tasks: ``"stm"`` (STM-cycle, :mod:`vosjax.training.objective`), ``"stm_original"`` (the
original STM network, same objective) and ``"gcseg"`` (GCSeg eq. 3
on reference/target pairs, or recurrent fine-tuning, :mod:`vosjax.training.gcseg_objective`).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

from vosjax import compute


@dataclasses.dataclass(frozen=True)
class Task:
    """A model family's hooks (see the module docstring)."""
    name: str
    build_model: Callable[[Any], Any]
    init_variables: Callable[[Any, Any], Callable]
    loss: Callable[[Any, Any], Callable]
    batches: Callable[[Any], Any]
    prepare: Callable[[Any], Callable]


def model_numerics(model_cfg) -> dict:
    """``config.model.compute`` (a :mod:`vosjax.compute` mode) -> the modules' ``precision`` and
    ``dtype`` arguments."""
    try:
        return compute.resolve(model_cfg.compute).model_kwargs()
    except ValueError as e:
        raise ValueError(f"config.model.{e}") from None


# -- STM ----------------------------------------------------------------------------------------

def _stm_model(model_cfg):
    from vosjax.models.stm import STM  # noqa: PLC0415
    from vosjax.models.stm_original import STMOriginal  # noqa: PLC0415

    cls = STMOriginal if model_cfg.get("name", "stm") == "stm_original" else STM
    return cls(arch=model_cfg.arch, keydim=model_cfg.keydim, valdim=model_cfg.valdim,
               mdim=model_cfg.get("mdim", 256), **model_numerics(model_cfg))


def _stm_init(model, config):
    from vosjax.models.stm import init_stm  # noqa: PLC0415

    h, w = tuple(config.data.size)
    return lambda rng: init_stm(model, rng, h, w, num_objects=config.data.num_slots)


def _stm_loss(model, config):
    from vosjax.training.step import stm_loss_fn  # noqa: PLC0415

    return stm_loss_fn(model, cycle=config.train.cycle, bootstrap=config.train.bootstrap)


def _stm_batches(config):
    from vosjax.training.input_pipeline import build_batches  # noqa: PLC0415

    return build_batches(config)


def _stm_prepare(config):
    from vosjax.data.device import clip_batch_fn  # noqa: PLC0415
    from vosjax.training.input_pipeline import augment_config  # noqa: PLC0415

    return clip_batch_fn(augment_config(config.data))


# -- GCSeg --------------------------------------------------------------------------------------

GCSEG_OBJECTIVES = ("pairs", "recurrent")


def _gcseg_model(model_cfg):
    from vosjax.models.gcseg import GCSeg  # noqa: PLC0415

    known = {f.name for f in dataclasses.fields(GCSeg)} - {"parent", "name", "precision", "dtype"}
    fields = {k: v for k, v in model_cfg.items() if k not in ("name", "compute")}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(f"config.model: unknown GCSeg field(s) {unknown} (known: {sorted(known)})")
    # Lists become tuples: the model is a static (hashed) argument of jit.
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
    return GCSeg(**fields, **model_numerics(model_cfg))


def _gcseg_init(model, config):
    from vosjax.models.gcseg import init_gcseg  # noqa: PLC0415

    h, w = tuple(config.data.size)
    return lambda rng: init_gcseg(model, rng, h, w)


def _gcseg_loss(model, config):
    from vosjax.training.gcseg_objective import make_loss_fn, make_recurrent_loss_fn  # noqa: PLC0415

    t = config.train
    make = make_loss_fn if _gcseg_objective(t) == "pairs" else make_recurrent_loss_fn

    def loss_fn(params, batch_stats, batch, rng):
        return make(model, batch_stats, zero_prev_prob=t.zero_prev_prob,
                    reduction=t.reduction)(params, batch, rng)
    return loss_fn


def _gcseg_batches(config):
    from vosjax.data.pairs import pair_picker  # noqa: PLC0415
    from vosjax.training.input_pipeline import build_batches  # noqa: PLC0415

    _gcseg_objective(config.train)
    # One object per clip (a binary problem); pairs are 3 frames (reference, t-1, t).
    overrides = dict(max_objects=1, num_slots=1)
    if config.train.objective == "pairs":
        overrides.update(num_frames=3, pick=pair_picker())
    return build_batches(config, **overrides)


def _gcseg_prepare(config):
    from vosjax.data.pairs import gcseg_batch_fn  # noqa: PLC0415
    from vosjax.training.input_pipeline import augment_config  # noqa: PLC0415

    return gcseg_batch_fn(_gcseg_objective(config.train), augment_config(config.data))


def _gcseg_objective(train_cfg) -> str:
    if train_cfg.objective not in GCSEG_OBJECTIVES:
        raise ValueError(f"config.train.objective={train_cfg.objective!r}: expected one of "
                         f"{GCSEG_OBJECTIVES}")
    return train_cfg.objective


TASKS = {
    "stm": Task("stm", _stm_model, _stm_init, _stm_loss, _stm_batches, _stm_prepare),
    # The original STM (vosjax.models.stm_original): the same objective, init and data.
    "stm_original": Task("stm_original", _stm_model, _stm_init, _stm_loss, _stm_batches,
                         _stm_prepare),
    "gcseg": Task("gcseg", _gcseg_model, _gcseg_init, _gcseg_loss, _gcseg_batches,
                  _gcseg_prepare),
}


def get_task(model_cfg) -> Task:
    """The :class:`Task` named by ``config.model.name`` (default ``"stm"``)."""
    name = model_cfg.get("name", "stm")
    if name not in TASKS:
        raise ValueError(f"config.model.name={name!r}: expected one of {sorted(TASKS)}")
    return TASKS[name]
