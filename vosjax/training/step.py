"""Pure, jitted training step over a batch of clips (vmap over clips, sharded over a Mesh)."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax

from vosjax.training import sharding as shd
from vosjax.training.objective import cycle_loss
from vosjax.training.state import TrainState


def clip_batch_loss(model, params, batch_stats, batch, *, cycle: bool, bootstrap: float):
    """Mean over clips of the per-clip objective (eq. 3-4).

    ``batch``: ``frames`` ``[B, T, H, W, 3]``, ``masks`` ``[B, T, K, H, W]``, ``num_objects``
    ``[B]``. With B = 4 this equals the official update (4 one-clip steps, each divided by
    ``iter_size = 4``, accumulated).
    """
    variables = {"params": params, "batch_stats": batch_stats}
    per_clip = jax.vmap(
        lambda f, m, n: cycle_loss(model, variables, f, m, n, cycle=cycle, bootstrap=bootstrap)
    )(batch["frames"], batch["masks"], batch["num_objects"])
    return jnp.mean(per_clip.total), per_clip


def train_step(state: TrainState, batch, *, model, tx, cycle: bool = True,
               bootstrap: float = 0.4):
    """One optimizer update. Non-finite loss or gradients leave params and optimizer state
    unchanged and report ``finite = False`` (the loop stops on it: the NaN guard)."""
    rng, _ = jax.random.split(state.rng)
    loss_fn = functools.partial(clip_batch_loss, model, batch_stats=state.batch_stats,
                                batch=batch, cycle=cycle, bootstrap=bootstrap)
    (loss, per_clip), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    grad_norm = optax.tree.norm(grads)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    keep = lambda new, old: jax.tree_util.tree_map(  # noqa: E731
        lambda a, b: jnp.where(finite, a, b), new, old)
    used = jnp.maximum(jnp.sum(per_clip.cycle_used), 1)
    metrics = {
        "loss": loss,
        "step_loss": jnp.mean(per_clip.step),
        "cycle_loss": jnp.sum(per_clip.cycle) / used,
        "grad_norm": grad_norm,
        "finite": finite,
    }
    new_state = state.replace(step=state.step + 1, params=keep(params, state.params),
                              opt_state=keep(opt_state, state.opt_state), rng=rng)
    return new_state, metrics


def initial_variables(model, rng, example_frame_hw, num_slots: int):
    """The random variables a run seeded with ``rng`` starts from (see :func:`init_state`)."""
    from vosjax.models.stm import init_stm  # noqa: PLC0415

    init_rng, _ = jax.random.split(rng)
    return init_stm(model, init_rng, *example_frame_hw, num_objects=num_slots)


def init_state(model, tx, rng, example_frame_hw, num_slots: int) -> TrainState:
    """Fresh :class:`TrainState` (random init; ``rng`` seeds both init and the state's rng)."""
    _, state_rng = jax.random.split(rng)
    variables = initial_variables(model, rng, example_frame_hw, num_slots)
    params = variables["params"]
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      batch_stats=variables.get("batch_stats", {}),
                      opt_state=tx.init(params), rng=state_rng)


def state_shardings(abstract_state: TrainState, mesh):
    """Shardings for every leaf of the state: FSDP rule for params/opt state, the rest replicated."""
    rep = shd.replicated(mesh)
    return TrainState(step=rep, params=shd.tree_shardings(abstract_state.params, mesh),
                      batch_stats=jax.tree_util.tree_map(lambda _: rep, abstract_state.batch_stats),
                      opt_state=shd.tree_shardings(abstract_state.opt_state, mesh), rng=rep)


def jit_train_step(model, tx, mesh, abstract_state, *, cycle=True, bootstrap=0.4):
    """``train_step`` jitted with explicit in/out shardings over ``mesh`` and the state donated."""
    st_sh = state_shardings(abstract_state, mesh)
    fn = functools.partial(train_step, model=model, tx=tx, cycle=cycle, bootstrap=bootstrap)
    return jax.jit(fn, in_shardings=(st_sh, shd.batch_sharding(mesh)),
                   out_shardings=(st_sh, shd.replicated(mesh)), donate_argnums=(0,)), st_sh


def jit_init_state(model, tx, mesh, frame_hw, num_slots: int):
    """``(init_fn(rng) -> sharded TrainState, state shardings, abstract state)``."""
    fn = functools.partial(init_state, model, tx, example_frame_hw=frame_hw, num_slots=num_slots)
    abstract = jax.eval_shape(fn, jax.random.PRNGKey(0))
    st_sh = state_shardings(abstract, mesh)
    return jax.jit(fn, out_shardings=st_sh), st_sh, abstract
