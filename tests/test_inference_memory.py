"""The fixed-capacity memory bank: slot schedule by hand, the ring buffer, growth; and that a
video compiles a fixed number of programs and a capped stream keeps constant device memory."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import monitoring

from stm_helpers import random_video
from vosjax.inference import Propagator, propagate
from vosjax.inference.memory import empty_bank, grow_bank, permanent_slot, write_frame

H, W = 16, 32
P = 2          # memory positions per frame at 16x32 (stride 16)


def _frame_kv(i, p=P):
    """Keys/values of 'frame i': every entry equals i (so slots are recognisable)."""
    return jnp.full((1, p, 2), float(i)), jnp.full((1, p, 3), float(i))


def _slots(bank, p=P):
    """The frame id held by each slot (first entry of its keys)."""
    return [float(x) for x in bank.keys[0, ::p, 0]]


def test_ring_buffer_schedule_by_hand():
    assert [int(permanent_slot(w, 4)) for w in range(8)] == [0, 1, 2, 3, 1, 2, 3, 1]
    assert [int(permanent_slot(w, 1)) for w in range(3)] == [0, 0, 0]
    bank = empty_bank(1, P, 3, 2, 3)
    write = jax.jit(write_frame)
    for i, keep in enumerate([True, False, True, True, False, True]):
        bank, read = write(bank, *_frame_kv(i + 1), keep)
        read_slots = np.asarray(read[::P])
        if i == 1:     # not kept: current slot (last) holds frame 2, read with slot 0
            assert _slots(bank)[3] == 2 and read_slots.tolist() == [True, False, False, True]
    # kept frames 1, 3, 4, 6 with 3 slots: slot 0 keeps frame 1, the ring holds 4 and 6
    assert _slots(bank)[:3] == [1, 6, 4]
    assert np.asarray(bank.valid).tolist() == [True, True, True, False]
    assert int(bank.writes) == 4
    assert np.asarray(read).tolist() == [True] * 3 * P + [False] * P


def test_single_slot_keeps_only_the_first_frame():
    bank = empty_bank(1, P, 1, 2, 3)
    for i in range(3):
        bank, read = write_frame(bank, *_frame_kv(i + 1), True)
    assert _slots(bank)[0] == 1 and _slots(bank)[1] == 3      # later ones only as current
    assert np.asarray(read).tolist() == [True] * 2 * P


def test_no_permanent_slots_reads_only_current():
    bank = empty_bank(1, P, 0, 2, 3)
    bank, read = write_frame(bank, *_frame_kv(5), True)
    assert _slots(bank) == [5] and np.asarray(read).all() and int(bank.writes) == 0
    bank, read = write_frame(bank, *_frame_kv(6), True, read_current=False)
    assert not np.asarray(read).any()


def test_grow_keeps_frames_and_current_slot():
    bank = empty_bank(1, P, 2, 2, 3)
    bank, _ = write_frame(bank, *_frame_kv(1), True)
    bank, _ = write_frame(bank, *_frame_kv(2), False)
    big = grow_bank(bank, 4)
    assert _slots(big) == [1, 0, 0, 0, 2]
    assert np.asarray(big.valid).tolist() == [True, False, False, False, False]
    with pytest.raises(ValueError, match="shrink"):
        grow_bank(big, 2)
    with pytest.raises(ValueError, match="positions"):
        write_frame(bank, *_frame_kv(3, p=P + 1), True)


_COMPILED: list = []       # fun_name of every XLA compilation, once listening


def _record_compile(event, duration, **kw):
    if event == "/jax/core/compile/backend_compile_duration":
        _COMPILED.append(kw.get("fun_name"))


@pytest.fixture(scope="module")
def _listening():
    monitoring.register_event_duration_secs_listener(_record_compile)


@pytest.fixture
def compiled(_listening):
    """The names of the programs compiled during the test."""
    _COMPILED.clear()
    return _COMPILED


def test_video_compiles_two_programs(tiny, compiled):
    model, v = tiny
    names = compiled
    frames, masks = random_video(100)
    propagate(model, v, frames, masks, mem_every=5)
    model_programs = [n for n in names if n in ("jit(init_state)", "jit(propagation_step)")]
    assert sorted(model_programs) == ["jit(init_state)", "jit(propagation_step)"], names
    # Everything else is small glue (slicing a frame, stacking the outputs), never per frame.
    assert len(names) <= 10, names
    # Another length in the same bank-size bucket reuses both programs.
    names.clear()
    propagate(model, v, frames[:82], masks, mem_every=5)     # 17 kept frames: same 24-slot bank
    assert not [n for n in names if n in model_programs], names


def test_capped_bank_is_constant_over_a_long_stream(tiny, compiled):
    model, v = tiny
    names = compiled
    frames, masks = random_video(2)
    prop = Propagator(model, v, frames[0], masks, mem_every=1, memory_slots=3)
    shapes = jax.tree_util.tree_map(lambda a: a.shape, prop.state)
    for _ in range(40):               # mem_every=1: the ring wraps ~20 times
        prop.step(frames[1])
        assert jax.tree_util.tree_map(lambda a: a.shape, prop.state) == shapes
    assert names.count("jit(propagation_step)") == 1
    assert int(prop.last_memory_positions) == 3 * P
    assert int(prop.bank.writes) == 40


@pytest.mark.slow
def test_thousand_frames_flat_device_memory(tiny):
    model, v = tiny
    frames, masks = random_video(2)
    prop = Propagator(model, v, frames[0], masks, memory_slots=4)

    def live_bytes():
        jax.block_until_ready(prop.state)
        return sum(a.nbytes for a in jax.live_arrays())

    for t in range(1, 1001):
        prop.step(frames[1])
        if t == 100:
            at_100 = live_bytes()
    assert live_bytes() == at_100
