"""Pure, jitted training step over a batch (sharded over a Mesh), for any training task.

The step only needs a *loss function* ``loss_fn(params, batch_stats, batch, rng) -> (loss,
metrics)`` (a family's ``loss`` hook, :mod:`vosjax.families`); the model family lives
entirely in it.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax

from vosjax.training import sharding as shd
from vosjax.training.objective import cycle_loss
from vosjax.training.state import TrainState


def clip_batch_loss(model, params, batch_stats, batch, *, cycle: bool, bootstrap: float):
    """STM: mean over clips of the per-clip objective (eq. 3-4).

    ``batch``: ``frames`` ``[B, T, H, W, 3]``, ``masks`` ``[B, T, K, H, W]``, ``num_objects``
    ``[B]``. With B = 4 this equals the official update (4 one-clip steps, each divided by
    ``iter_size = 4``, accumulated).
    """
    variables = {"params": params, "batch_stats": batch_stats}
    per_clip = jax.vmap(
        lambda f, m, n: cycle_loss(model, variables, f, m, n, cycle=cycle, bootstrap=bootstrap)
    )(batch["frames"], batch["masks"], batch["num_objects"])
    return jnp.mean(per_clip.total), per_clip


def stm_loss_fn(model, *, cycle: bool = True, bootstrap: float = 0.4):
    """``loss_fn(params, batch_stats, batch, rng) -> (loss, metrics)`` of STM (eq. 3-4); the
    objective is deterministic, ``rng`` is unused."""
    def loss_fn(params, batch_stats, batch, rng):
        del rng
        loss, per_clip = clip_batch_loss(model, params, batch_stats, batch, cycle=cycle,
                                         bootstrap=bootstrap)
        used = jnp.maximum(jnp.sum(per_clip.cycle_used), 1)
        return loss, {"step_loss": jnp.mean(per_clip.step),
                      "cycle_loss": jnp.sum(per_clip.cycle) / used}
    return loss_fn


#: ``fold_in`` tag of the data key (:func:`train_step`'s ``prepare``) from the step's key.
DATA_KEY = 0x64617461


def train_step(state: TrainState, batch, *, loss_fn, tx, prepare=None, num_slots=None):
    """One optimizer update with ``loss_fn(params, batch_stats, batch, rng)``.

    ``rng`` is a fresh key per step split from ``state.rng`` (so resuming is exact). Non-finite
    loss or gradients leave params and optimizer state unchanged and report ``finite = False``
    (the loop stops on it: the NaN guard). Metrics: the loss function's own, plus ``loss``,
    ``grad_norm`` and ``finite``.

    ``prepare(raw, data_rng, num_slots) -> batch``, when given, first turns the input
    pipeline's raw batch into the loss's (photometric augmentation, normalisation, one-hot
    masks: :mod:`vosjax.data.device`); ``data_rng`` is ``fold_in(step_rng, DATA_KEY)`` of the
    step's key, so the augmentation, like the rest of the step, is a function of the state.
    """
    rng, step_rng = jax.random.split(state.rng)
    if prepare is not None:
        batch = prepare(batch, jax.random.fold_in(step_rng, DATA_KEY), num_slots)
    grad_fn = jax.value_and_grad(
        lambda p: loss_fn(p, state.batch_stats, batch, step_rng), has_aux=True)
    (loss, aux), grads = grad_fn(state.params)
    grad_norm = optax.tree.norm(grads)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    # lax.select, not jnp.where: jnp.where is itself jitted, and its per-shape subfunctions
    # are deduplicated differently from one trace to the next in one process (the same step
    # would lower to different text and miss the persistent compilation cache).
    keep = lambda new, old: jax.tree_util.tree_map(  # noqa: E731
        lambda a, b: jax.lax.select(jnp.broadcast_to(finite, a.shape), a, b), new, old)
    metrics = {**aux, "loss": loss, "grad_norm": grad_norm, "finite": finite}
    new_state = state.replace(step=state.step + 1, params=keep(params, state.params),
                              opt_state=keep(opt_state, state.opt_state), rng=rng)
    return new_state, metrics


def initial_variables(init_variables, rng):
    """The random variables a run seeded with ``rng`` starts from (see :func:`init_state`);
    ``init_variables(rng) -> {"params", "batch_stats"}``."""
    init_rng, _ = jax.random.split(rng)
    return init_variables(init_rng)


def init_state(init_variables, tx, rng) -> TrainState:
    """Fresh :class:`TrainState` (``rng`` seeds both the init and the state's rng)."""
    _, state_rng = jax.random.split(rng)
    variables = initial_variables(init_variables, rng)
    params = variables["params"]
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      batch_stats=variables.get("batch_stats", {}),
                      opt_state=tx.init(params), rng=state_rng)


def state_shardings(abstract_state: TrainState, mesh):
    """Shardings for every leaf of the state: FSDP rule for params/opt state, the rest
    replicated."""
    rep = shd.replicated(mesh)
    return TrainState(step=rep, params=shd.tree_shardings(abstract_state.params, mesh),
                      batch_stats=jax.tree_util.tree_map(lambda _: rep, abstract_state.batch_stats),
                      opt_state=shd.tree_shardings(abstract_state.opt_state, mesh), rng=rep)


def jit_train_step(loss_fn, tx, mesh, abstract_state, *, donate: bool = True, prepare=None):
    """``train_step`` jitted with explicit in/out shardings over ``mesh``.

    ``donate`` (default) hands the input state's buffers to the update, which writes the new
    params / optimizer state into them: one copy of the state on the device instead of two, and
    the caller must not touch the old state after the call. ``donate=False`` is for callers that
    keep it (and for measuring the difference: ``python -m benchmarks.speedups donation``).

    Without ``prepare`` the step is ``step(state, batch)`` on the loss's batch; with it (see
    :func:`train_step`), ``step(state, raw_batch, num_slots)``, ``num_slots`` a static int
    (one compiled program per object count).
    """
    st_sh = state_shardings(abstract_state, mesh)
    fn = functools.partial(train_step, loss_fn=loss_fn, tx=tx, prepare=prepare)
    if prepare is not None:
        fn = functools.partial(_prepared_step, fn)
    return jax.jit(fn, in_shardings=(st_sh, shd.batch_sharding(mesh)),
                   out_shardings=(st_sh, shd.replicated(mesh)),
                   static_argnums=(2,) if prepare is not None else (),
                   donate_argnums=(0,) if donate else ()), st_sh


def _prepared_step(step, state, batch, num_slots):
    return step(state, batch, num_slots=num_slots)


def jit_init_state(init_variables, tx, mesh):
    """``(init_fn(rng) -> sharded TrainState, state shardings, abstract state)``;
    ``init_variables(rng) -> variables`` (a task's, bound to its model and config)."""
    fn = functools.partial(init_state, init_variables, tx)
    abstract = jax.eval_shape(fn, jax.random.PRNGKey(0))
    st_sh = state_shardings(abstract, mesh)
    return jax.jit(fn, out_shardings=st_sh), st_sh, abstract
