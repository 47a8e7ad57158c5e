"""Fixed-capacity STM memory bank (a pytree with static shapes) and its write schedule.

The official test loop keeps a growing Python list of memory tensors and concatenates it every
frame. Here the bank has ``num_slots`` permanent frame slots plus one *current* slot (the last)
for the previous frame, which is always read but only sometimes kept. Every array has a shape
fixed at creation, so a whole video runs through one compiled step function.

Layout (``P = h * w`` memory positions per frame, ``S = num_slots``)::

    keys    [O, (S + 1) * P, keydim]   slot s occupies positions s*P .. (s+1)*P - 1
    values  [O, (S + 1) * P, valdim]
    valid   [S + 1] bool               which permanent slots hold a frame (current slot: False)
    writes  int32 scalar               permanent writes so far

Permanent writes fill slots 0, 1, 2, ... in frame order, so with enough slots the memory read
sees the frames in the official order. With a cap (fewer slots than permanent frames) slot 0
keeps the first frame and slots 1 .. S-1 form a ring buffer over the most recent ones.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class MemoryBank(NamedTuple):
    """See the module docstring for the layout."""
    keys: jax.Array
    values: jax.Array
    valid: jax.Array
    writes: jax.Array

    @property
    def num_slots(self) -> int:
        """Permanent slots S (the bank holds S + 1 frame slots including the current one)."""
        return self.valid.shape[0] - 1

    @property
    def positions_per_slot(self) -> int:
        return self.keys.shape[1] // self.valid.shape[0]


def empty_bank(num_objects: int, positions: int, num_slots: int, keydim: int, valdim: int,
               dtype=jnp.float32) -> MemoryBank:
    """An empty bank for ``num_objects`` objects, ``positions`` (= h*w) per frame."""
    if num_slots < 0:
        raise ValueError(f"num_slots must be >= 0, got {num_slots}")
    n = (num_slots + 1) * positions
    return MemoryBank(keys=jnp.zeros((num_objects, n, keydim), dtype),
                      values=jnp.zeros((num_objects, n, valdim), dtype),
                      valid=jnp.zeros((num_slots + 1,), bool),
                      writes=jnp.zeros((), jnp.int32))


def permanent_slot(writes, num_slots: int):
    """Slot of the permanent write number ``writes`` (0-based): the first frame goes to slot 0
    and stays; later frames cycle through slots 1 .. S-1 (a ring buffer of the most recent)."""
    if num_slots <= 1:
        return jnp.zeros((), jnp.int32)
    return jnp.where(writes == 0, 0, 1 + (writes - 1) % (num_slots - 1)).astype(jnp.int32)


def write_frame(bank: MemoryBank, keys, values, permanent, read_current: bool = True):
    """Store one frame's ``keys`` ``[O, P, kd]`` / ``values`` ``[O, P, vd]`` and say what to read.

    ``permanent`` (traced bool): the frame goes to its permanent slot (and is read from there);
    otherwise it goes to the current slot. With ``num_slots == 1`` only the first permanent write
    is kept (the slot holds the first frame), and with ``num_slots == 0`` nothing is permanent.

    Returns ``(bank, read_valid)`` with ``read_valid`` ``[(S + 1) * P]`` bool: the permanent
    frames plus, if ``read_current``, the frame just written.
    """
    s = bank.num_slots
    p = keys.shape[1]
    if p != bank.positions_per_slot:
        raise ValueError(f"memory frame has {p} positions, the bank holds "
                         f"{bank.positions_per_slot} per slot")
    permanent = jnp.asarray(permanent, bool)
    if s == 0:
        permanent = jnp.zeros((), bool)
    elif s == 1:
        permanent = permanent & (bank.writes == 0)
    target = jnp.where(permanent, permanent_slot(bank.writes, s), s)
    start = (0, target * p, 0)
    new_keys = jax.lax.dynamic_update_slice(bank.keys, keys.astype(bank.keys.dtype), start)
    new_values = jax.lax.dynamic_update_slice(bank.values, values.astype(bank.values.dtype), start)
    is_target = jnp.arange(s + 1) == target
    valid = bank.valid | (is_target & permanent)
    read_slots = valid | (is_target & read_current)
    bank = MemoryBank(new_keys, new_values, valid, bank.writes + permanent.astype(jnp.int32))
    return bank, jnp.repeat(read_slots, p, total_repeat_length=(s + 1) * p)


def grow_bank(bank: MemoryBank, num_slots: int) -> MemoryBank:
    """The same bank with ``num_slots`` permanent slots (>= the current number); the current
    slot stays last. Used by the streaming API when an uncapped bank runs full."""
    s, p = bank.num_slots, bank.positions_per_slot
    if num_slots < s:
        raise ValueError(f"cannot shrink a bank from {s} to {num_slots} slots")
    extra = (num_slots - s) * p

    def pad(x):
        perm, cur = x[:, :s * p], x[:, s * p:]
        return jnp.concatenate([perm, jnp.zeros((x.shape[0], extra, x.shape[2]), x.dtype), cur],
                               axis=1)

    valid = jnp.concatenate([bank.valid[:s], jnp.zeros((num_slots - s,), bool), bank.valid[s:]])
    return MemoryBank(pad(bank.keys), pad(bank.values), valid, bank.writes)
