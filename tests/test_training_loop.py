"""Training loop: sharded == unsharded, bit-exact resume, NaN guard, checkpoint safety.

The checkpoint tests start from copies of two shared runs of the same command (module
fixtures): one uninterrupted, one stopped after step 2."""
import dataclasses
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from loop_helpers import (
    RUN_AUGMENT,
    RUN_TRAIN,
    H,
    RandomClips,
    T,
    W,
    assert_same_variables,
    jitted,
    loop_config,
    run_config,
    tiny_config,
    train_steps,
)
from stm_helpers import numpy_variables
from vosjax.families import FAMILIES, build_model, load_model
from vosjax.families import get as get_family
from vosjax.training import sharding as shd
from vosjax.training.loop import NonFiniteLossError, build_optimizer, train

STM = FAMILIES["stm"]
_STM_PREPARE = STM.prepare


def poisoned_prepare(config):
    """The STM prepare, with a NaN frame pixel in batches flagged ``poison``."""
    real = _STM_PREPARE(config)

    def prepare(raw, rng, num_slots):
        out = real(raw, rng, num_slots)
        frames = out["frames"].at[0, 0, 0, 0, 0].set(
            jnp.where(raw["poison"][0], jnp.nan, out["frames"][0, 0, 0, 0, 0]))
        return {**out, "frames": frames}
    return prepare


# -- sharding -------------------------------------------------------------------------------------

# The sharding tests run run_config: the paper's Adam (lr 1e-5, after a 3-step warm-up from 0),
# 2-frame clips without the cycle term (the objective is the same per-clip program either way:
# the sharding is of the batch), the photometric augmentation drawn on the devices. Its 8-device
# step is the loop tests' program.

def sharding_batches(n):
    return [RandomClips(8, clip_len=2).batch(s) for s in range(n)]


@pytest.fixture(scope="module")
def one_device():
    """3 steps of :func:`run_config` on one device: the reference of the sharded runs."""
    return train_steps(run_config(), jax.devices()[:1], sharding_batches(3))


def test_sharded_equals_unsharded(one_device):
    """3 steps (2 that move the parameters: the warm-up starts at 0) on 8 devices = on 1 device,
    within 1e-5 relative (L2 over all parameters), the photometric augmentation drawn on the
    devices included.
    About 14% of this random net's gradients are exactly zero up to float noise (e.g.
    KV_M_r4/Key/bias: the memory softmax ignores a per-query constant); Adam normalises that
    noise into +-lr steps, so the comparison is over the whole vector."""
    assert jax.device_count() == 8, "conftest must fake 8 CPU devices"
    eight = train_steps(run_config(), jax.devices(), sharding_batches(3))
    np.testing.assert_array_equal(eight.params[0], one_device.params[0])     # the same init
    np.testing.assert_array_equal(eight.params[1], eight.params[0])          # lr 0 at step 1
    assert not np.array_equal(eight.params[2], eight.params[1])
    np.testing.assert_allclose(eight.metrics[-1]["loss"], one_device.metrics[-1]["loss"],
                               rtol=1e-5)
    a, b = eight.params[-1], one_device.params[-1]
    assert np.linalg.norm(a - b) <= 1e-5 * np.linalg.norm(b)
    assert np.abs(a - b).max() <= 1e-4 * np.abs(b).max()


def test_bf16_compute_keeps_float32_master_weights():
    cfg = loop_config()
    cfg.model.compute = "bfloat16"
    run = train_steps(cfg, jax.devices()[:1], [RandomClips(8, clip_len=2).batch(0)])
    assert np.isfinite(float(run.metrics[0]["loss"]))
    assert {np.asarray(x).dtype for x in jax.tree_util.tree_leaves(run.last)} == {
        np.dtype("float32")}


def test_fsdp_shards_params_and_matches(one_device):
    """A (data=2, fsdp=4) mesh splits parameters and optimizer state; 2 steps (the second moves
    the parameters) equal 1 device."""
    cfg = run_config()
    st_sh = jitted(cfg, jax.devices(), fsdp=4).shardings
    assert "fsdp" in tuple(st_sh.params["Decoder"]["convFM"]["kernel"].spec)
    mu = st_sh.opt_state[1].mu["Decoder"]["convFM"]["kernel"].spec   # Adam first moment
    assert "fsdp" in tuple(mu), mu
    fsdp = train_steps(cfg, jax.devices(), sharding_batches(2), fsdp=4)
    np.testing.assert_allclose(fsdp.metrics[-1]["loss"], one_device.metrics[1]["loss"],
                               rtol=1e-5)
    a, b = fsdp.params[-1], one_device.params[2]
    assert np.linalg.norm(b - one_device.params[1]) > 0
    assert np.linalg.norm(a - b) <= 1e-5 * np.linalg.norm(b)
    with pytest.raises(ValueError, match="fsdp=3"):
        shd.make_mesh(3)


# -- the loop: resume and checkpoint safety -------------------------------------------------------
# The loop tests use run_config (2-frame clips without the cycle term, a warm-up): a smaller
# program to compile, the same loop, and the 8-device step the sharding test and
# test_training_paths' runs compile too.

def clips(**kw):
    return RandomClips(8, clip_len=2, **kw)


STRAIGHT, STOPPED = 4, 2


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """``(workdir, result)`` of an uninterrupted run of ``STRAIGHT`` steps (copy the workdir
    before changing it)."""
    wd = tmp_path_factory.mktemp("straight") / "w"
    return wd, train(run_config(num_train_steps=STRAIGHT), str(wd), STM, sampler=clips(),
                     progress=False)


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    """The workdir of the same command run for ``STOPPED`` steps (copy it before use)."""
    wd = tmp_path_factory.mktemp("stopped") / "w"
    train(run_config(num_train_steps=STOPPED), str(wd), STM, sampler=clips(), progress=False)
    return wd


def copy_workdir(src, tmp_path):
    wd = tmp_path / "w"
    shutil.copytree(src, wd)
    return wd


def test_resume_is_bit_exact(tmp_path, straight, stopped):
    wd = copy_workdir(stopped, tmp_path)
    resumed = train(run_config(num_train_steps=STRAIGHT), str(wd), STM, sampler=clips(),
                    progress=False)
    assert_same_variables(straight[1]["variables"], resumed["variables"])
    rows = [json.loads(line) for line in open(wd / "metrics.jsonl")]
    assert [r["step"] for r in rows] == list(range(1, STRAIGHT + 1))
    assert all("loss" in r for r in rows)
    # The workdir loads as a model (latest step) for evaluation.
    model, variables = load_model(wd)
    assert model.arch == "resnet10" and model.keydim == 16
    assert_same_variables(variables, resumed["variables"])


def test_interrupted_checkpoint_write_leaves_previous_loadable(tmp_path, stopped):
    wd = copy_workdir(stopped, tmp_path)
    # What a kill during the write of step 3 leaves: orbax's temporary directory, half full.
    partial = wd / "checkpoints" / "3.orbax-checkpoint-tmp-1234"
    (partial / "state").mkdir(parents=True)
    (partial / "state" / "junk").write_bytes(b"\0" * 100)
    model, variables = load_model(wd)
    assert model.arch == "resnet10"
    out = train(run_config(num_train_steps=3), str(wd), STM, sampler=clips(), progress=False)
    assert out["step"] == 3


def test_nan_guard_stops_with_step_and_last_checkpoint(tmp_path):
    poisoned = dataclasses.replace(STM, prepare=poisoned_prepare)
    with pytest.raises(NonFiniteLossError, match=r"step 3 .*last good checkpoint: step 2"):
        train(loop_config(num_train_steps=5), str(tmp_path / "n"), poisoned,
              sampler=clips(poison_step=2), progress=False)


def test_bad_config_values_are_named(tmp_path):
    with pytest.raises(ValueError, match="config.train.batch_size=6"):
        train(loop_config(batch_size=6), str(tmp_path), STM, sampler=clips(), progress=False)
    cfg = tiny_config()
    cfg.model.compute = "float8"
    with pytest.raises(ValueError, match="config.model.compute='float8'"):
        build_model(cfg.model)
    with pytest.raises(ValueError, match="schedule='linear'"):
        build_optimizer(tiny_config(schedule="linear").train)


class OneObjectClips(RandomClips):
    """RandomClips with only object 1 present: slot 2 is padding."""

    def batch(self, step):
        b = super().batch(step)
        labels = np.where(b.arrays["labels"] == 2, 1, b.arrays["labels"]).astype(np.uint8)
        return b._replace(arrays={**b.arrays, "labels": labels,
                                  "num_objects": np.ones_like(b.arrays["num_objects"])})


def test_trim_slots_cuts_the_slots_to_the_largest_count():
    from vosjax.training.input_pipeline import trim_slots

    b = OneObjectClips(2).batch(0)
    assert b.num_slots == 2 and trim_slots(b).num_slots == 1
    assert trim_slots(b).arrays is b.arrays
    full = RandomClips(2).batch(0)                   # 2 objects in 2 slots: unchanged
    assert trim_slots(full).num_slots == 2
    none = b._replace(arrays={**b.arrays, "num_objects": np.zeros(2, np.int32)})
    assert trim_slots(none).num_slots == 1           # at least one slot


def random_variables(task, model, config):
    """Random variables of the task's model (numpy-drawn: no initialiser to compile)."""
    return numpy_variables(lambda: task.init_variables(model, config)(jax.random.PRNGKey(0)))


def test_trimmed_loss_matches_padded_loss():
    """The same raw batch prepared with 1 slot (trimmed) and 2 (padded): the same loss."""
    config = tiny_config()
    model = build_model(config.model)
    task = get_family(config.model.name)
    variables = random_variables(task, model, config)
    loss_fn = jax.jit(task.loss(model, config))
    prepare = jax.jit(task.prepare(config), static_argnums=2)
    b = OneObjectClips(2).batch(1)
    key = jax.random.PRNGKey(3)
    padded_batch, trimmed_batch = prepare(b.arrays, key, 2), prepare(b.arrays, key, 1)
    assert padded_batch["masks"].shape == (2, T, 3, H, W)
    assert trimmed_batch["masks"].shape == (2, T, 2, H, W)
    padded, m1 = loss_fn(variables["params"], variables["batch_stats"], padded_batch, None)
    trimmed, m2 = loss_fn(variables["params"], variables["batch_stats"], trimmed_batch, None)
    np.testing.assert_allclose(float(trimmed), float(padded), rtol=1e-5)
    np.testing.assert_allclose(float(m2["cycle_loss"]), float(m1["cycle_loss"]), rtol=1e-5)


# -- object-count buckets (config.train.slot_policy = "bucket") ---------------------------------

def bucket_config(clip_len=2, cycle=False, max_objects=3, num_workers=0, **train):
    """The tiny model on the real sampler: synthetic clips of 1..max_objects objects."""
    c = tiny_config(clip_len=clip_len, cycle=cycle, slot_policy="bucket", **train)
    c.data.update(dict(sources=(("synthetic", 1),), size=(H, W), clip_len=clip_len,
                       max_objects=max_objects, num_slots=max_objects, gap_start=2,
                       gap_increment=0, gap_every_epochs=1,
                       num_workers=num_workers))
    c.data.synthetic.update(dict(num_videos=16, seed=0, height=H, width=W, num_frames=6))
    return c


def test_bucketed_clip_losses_equal_the_padded_objective():
    """A bucketed batch (n slots) gives each clip the loss of the padded computation of the
    same clips (3 slots), cycle term included, to float rounding."""
    from vosjax.data.sampler import BucketSampler
    from vosjax.training.step import clip_batch_loss

    config = bucket_config(clip_len=3, cycle=True, batch_size=2)
    task = get_family(config.model.name)
    sampler = task.batches(config)
    assert isinstance(sampler, BucketSampler)
    model = build_model(config.model)
    variables = random_variables(task, model, config)
    prepare = jax.jit(task.prepare(config), static_argnums=2)
    per_clip_fn = jax.jit(lambda v, b: clip_batch_loss(model, v["params"], v["batch_stats"], b,
                                                       cycle=True, bootstrap=0.4))
    def per_clip(b):
        return per_clip_fn(variables, b)
    seen = set()
    for step in range(12):
        n, _ = sampler.plan(step)
        if n in seen or n == 3:
            continue
        seen.add(n)
        hb = sampler.batch(step)
        assert hb.num_slots == n
        key = jax.random.PRNGKey(step)
        bucketed, padded = prepare(hb.arrays, key, n), prepare(hb.arrays, key, 3)
        assert bucketed["masks"].shape[2] == n + 1 and padded["masks"].shape[2] == 4
        (lb, cb), (lp, cp) = per_clip(bucketed), per_clip(padded)
        np.testing.assert_allclose(np.asarray(cb.total), np.asarray(cp.total), rtol=1e-5)
        np.testing.assert_allclose(np.asarray(cb.cycle), np.asarray(cp.cycle), rtol=1e-5,
                                   atol=1e-7)
        np.testing.assert_allclose(float(lb), float(lp), rtol=1e-5)
        assert float(np.sum(np.asarray(cb.cycle_used))) > 0 or n == 1
    assert seen == {1, 2}


def test_bucketed_training_runs_and_resumes_exactly_on_8_devices(tmp_path):
    """The loop on the 8-device mesh with slot_policy="bucket": one compiled step per object
    count; a run resumed from its checkpoint (bucket state restored) ends with the same
    parameters as an uninterrupted one. The straight run decodes in this process, the
    interrupted one in two grain worker processes (each planning its steps): the same
    batches."""
    assert jax.device_count() == 8

    def cfg(steps, workers=0):
        """The bucketed sampler with run_config's optimiser and augmentation: its 2-object
        step is the loop tests' program, only the 1-object one is compiled here."""
        c = bucket_config(max_objects=2, num_train_steps=steps, num_workers=workers,
                          **RUN_TRAIN)
        c.data.augment = dict(RUN_AUGMENT)
        return c
    sampler = get_family(cfg(3).model.name).batches(cfg(3))
    assert {sampler.plan(s)[0] for s in range(3)} == {1, 2}     # both object counts run
    straight = train(cfg(3), str(tmp_path / "a"), STM, progress=False)
    train(cfg(2, workers=2), str(tmp_path / "b"), STM, progress=False)
    meta = json.load(open(tmp_path / "b" / "checkpoints" / "2" / "meta" / "metadata"))
    assert meta["sampler"] == sampler.state(2) and "pending" in meta["sampler"]["bucket"]
    resumed = train(cfg(3, workers=2), str(tmp_path / "b"), STM, progress=False)
    assert np.isfinite(float(resumed["metrics"]["loss"]))
    for a, b in zip(jax.tree_util.tree_leaves(straight["variables"]),
                    jax.tree_util.tree_leaves(resumed["variables"])):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_slot_policy_is_validated(tmp_path):
    from vosjax.training.input_pipeline import slot_policy

    with pytest.raises(KeyError, match="trim_slots"):   # the old field: not in the schema
        tiny_config(trim_slots=True)
    assert slot_policy(tiny_config().train) == "pad"
    with pytest.raises(ValueError, match="slot_policy='packed'"):
        train(loop_config(slot_policy="packed"), str(tmp_path), STM, sampler=clips(),
              progress=False)


def truncate_files(step_dir):
    """What a full disk or a copy cut short leaves: every file of a step cut to half."""
    for root, _, files in os.walk(step_dir):
        for name in files:
            path = os.path.join(root, name)
            os.truncate(path, os.path.getsize(path) // 2)


def test_truncated_newest_checkpoint_is_set_aside_and_resume_falls_back(tmp_path, capsys,
                                                                          straight):
    wd = copy_workdir(straight[0], tmp_path)
    newest = str(STRAIGHT)
    truncate_files(wd / "checkpoints" / newest)
    capsys.readouterr()
    with pytest.warns(RuntimeWarning, match=rf"checkpoints/{newest} cannot be read .*moved it to"
                      ) as w:
        resumed = train(run_config(num_train_steps=STRAIGHT), str(wd), STM, sampler=clips(),
                        progress=False)
    out = capsys.readouterr().out
    assert f"resuming from step {STRAIGHT - 1}: {wd / 'checkpoints' / str(STRAIGHT - 1)}" in out
    # Set aside, not deleted: the truncated files are all still there.
    aside = list((wd / "checkpoints-unreadable").iterdir())
    assert [p.name.split("-")[0] for p in aside] == [newest]
    assert str(aside[0]) in str(w[0].message)
    assert (aside[0] / "state").is_dir()
    # The newest step written again.
    assert sorted(os.listdir(wd / "checkpoints")) == [str(s) for s in range(1, STRAIGHT + 1)]
    assert_same_variables(straight[1]["variables"], resumed["variables"])
    rows = [json.loads(line) for line in open(wd / "metrics.jsonl")]
    assert [r["step"] for r in rows] == list(range(1, STRAIGHT + 1))


def test_no_readable_checkpoint_stops_naming_the_folder(tmp_path, stopped):
    from vosjax.training.checkpointing import UnreadableCheckpointError

    wd = copy_workdir(stopped, tmp_path)            # steps 1 and 2
    for step in ("1", "2"):
        truncate_files(wd / "checkpoints" / step)
    with pytest.raises(UnreadableCheckpointError,
                       match=rf"{wd / 'checkpoints'}: no checkpoint can be read .*step 2 .*step 1"):
        train(run_config(num_train_steps=3), str(wd), STM, sampler=clips(), progress=False)
    assert sorted(os.listdir(wd / "checkpoints")) == ["1", "2"]       # nothing moved
    assert not (wd / "checkpoints-unreadable").exists()


def test_half_written_metrics_line_is_repaired(tmp_path, stopped):
    from vosjax.training.metrics import repair_jsonl

    wd = copy_workdir(stopped, tmp_path)            # steps 1 and 2
    path = wd / "metrics.jsonl"
    # A kill after logging step 3 (never checkpointed) and in the middle of writing step 4.
    with open(path, "a") as f:
        f.write('{"step": 3, "loss": 1.0}\n{"step": 4, "lo')
    train(run_config(num_train_steps=4), str(wd), STM, sampler=clips(), progress=False)
    rows = [json.loads(line) for line in open(path)]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert rows[2]["loss"] != 1.0                  # step 3 logged again by the resumed run
    # The repair on its own: keeps complete rows, cuts the rest, leaves a missing file alone.
    path.write_text('{"step": 1}\n{"step": 2}\nnot json\n{"step": 3}\n')
    assert repair_jsonl(str(path)) == 2
    assert path.read_text() == '{"step": 1}\n{"step": 2}\n'
    assert repair_jsonl(str(path), max_step=1) == 1
    assert path.read_text() == '{"step": 1}\n'
    assert repair_jsonl(str(tmp_path / "absent.jsonl")) == 0
