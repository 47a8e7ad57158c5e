"""GCSeg through the generic trainer and evaluator: the task seam, the pair / staged / static
batch streams, the raw-video inference dispatch, and train.py + evaluate.py end to end."""
import json

import jax
import numpy as np
import pytest

from configs import base
from gcseg_tiny import TINY, tiny_model
from vosjax.data.pairs import gcseg_batch_fn, pair_picker
from vosjax.data.sampler import ClipSampler, SamplerConfig, StagedSampler
from vosjax.data.synthetic import StaticClips, SyntheticVideos
from vosjax.families import FAMILIES, inference_options
from vosjax.families import get as get_family
from vosjax.inference.options import GCSegOptions, STMOptions
from vosjax.models.gcseg import GCSeg
from vosjax.training import sharding as shd
from vosjax.training.step import jit_init_state, jit_train_step

H, W = 32, 48


def videos(n=3, frames=8, seed=0):
    return SyntheticVideos(n, seed=seed, height=H, width=W, num_frames=frames)


def pair_sampler(**kw):
    cfg = SamplerConfig(num_frames=3, max_objects=1, num_slots=1, size=(H, W), augment=None)
    return ClipSampler(videos(), cfg, seed=3, global_batch_size=4, pick=pair_picker(), **kw)


def pair_batch(stream, step, objective="pairs", key=0):
    """The loss's batch of ``stream``'s step: the raw host batch through the device prepare."""
    hb = stream.batch(step)
    prepare = jax.jit(gcseg_batch_fn(objective), static_argnums=2)
    return {k: np.asarray(v) for k, v in
            prepare(hb.arrays, jax.random.PRNGKey(key), hb.num_slots).items()}


def gcseg_config(objective="pairs"):
    c = base.get_config("gcseg")
    c.model.update(dict(compute="float32-highest", **TINY))
    c.data.size = (H, W)
    c.data.augment = None
    c.train.update(dict(objective=objective, zero_prev_prob=0.5, reduction="mean"))
    return c


# -- the task seam --------------------------------------------------------------------------------

def test_family_registry_and_named_errors():
    assert set(FAMILIES) == {"stm", "stm_original", "gcseg"}
    assert get_family("gcseg").name == "gcseg" and get_family("gcseg").options is GCSegOptions
    assert get_family("stm_original").options is STMOptions
    with pytest.raises(ValueError, match="config.model.name='maskrnn'"):
        get_family("maskrnn")
    cfg = gcseg_config()
    model = get_family(cfg.model.name).build_model(cfg.model)
    assert isinstance(model, GCSeg) and model.levels == (3, 4) and model.arch == "resnet18"
    hash(model)  # a static jit argument
    with cfg.model.unlocked():
        cfg.model.widht = 3
    with pytest.raises(ValueError, match=r"unknown GCSeg field\(s\) \['widht'\]"):
        get_family(cfg.model.name).build_model(cfg.model)
    cfg = gcseg_config(objective="cycle")
    with pytest.raises(ValueError, match="config.train.objective='cycle'"):
        get_family(cfg.model.name).loss(None, cfg)


def test_gcseg_train_step_through_the_generic_step():
    """The task's loss in the shared jitted step: equals the GCSeg objective called directly
    with the step's key, and one Adam update lowers the loss on the same batch."""
    from vosjax.training.gcseg_objective import make_loss_fn
    from vosjax.training.optim import make_optimizer

    cfg = gcseg_config()
    task = get_family(cfg.model.name)
    model = task.build_model(cfg.model)
    tx = make_optimizer(1e-3, weight_decay=0.0)
    mesh = shd.make_mesh(1, jax.devices()[:1])
    # The task's initialiser on an rbg key (as gcseg_tiny.tiny_model: threefry init compiles
    # slowly); the step under test is the generic one.
    init = task.init_variables(model, cfg)
    init_fn, _, abstract = jit_init_state(lambda rng: init(jax.random.key(0, impl="rbg")), tx,
                                          mesh)
    step_fn, _ = jit_train_step(task.loss(model, cfg), tx, mesh, abstract)
    state = init_fn(jax.random.PRNGKey(0))
    batch = pair_batch(pair_sampler(process_index=0, process_count=1), 0)
    _, step_rng = jax.random.split(state.rng)
    direct, _ = jax.jit(make_loss_fn(model, state.batch_stats, reduction="mean"))(
        state.params, batch, step_rng)
    gb = shd.global_batch(batch, shd.batch_sharding(mesh))
    state, m = step_fn(state, gb)
    assert bool(m["finite"]) and {"iou", "loss_target", "loss_aux_reference"} <= set(m)
    np.testing.assert_allclose(float(m["loss"]), float(direct), rtol=1e-5)
    losses = [float(m["loss"])]
    for _ in range(3):
        # Same batch and a fixed key: the zeroing draw differs per step, so compare the mean.
        state, m = step_fn(state, gb)
        losses.append(float(m["loss"]))
    assert int(state.step) == 4 and np.mean(losses[2:]) < losses[0]


# -- batch streams ---------------------------------------------------------------------------------

def test_pair_picker_gives_previous_and_target_adjacent():
    pick = pair_picker()
    rng = np.random.default_rng(0)
    for n in (2, 3, 12, 40):
        for _ in range(50):
            ref, prev, tgt = pick(rng, n, 999)
            assert 0 <= ref <= prev == tgt - 1 and tgt < n


def test_pair_batches_are_deterministic_binary_and_host_split():
    stream = pair_sampler(process_index=0, process_count=1)
    b = pair_batch(stream, 5)
    assert set(b) == {"target_frame", "target_mask", "prev_mask", "ref_frame", "ref_mask"}
    assert b["target_frame"].shape == (4, H, W, 3) and b["ref_mask"].shape == (4, H, W)
    for k in ("target_mask", "prev_mask", "ref_mask"):
        assert set(np.unique(b[k])) <= {0.0, 1.0}
    assert (b["ref_mask"].sum(axis=(1, 2)) > 0).all()   # the object is in the reference
    again = pair_batch(pair_sampler(process_index=0, process_count=1), 5)
    for k in b:
        np.testing.assert_array_equal(b[k], again[k])
    # Two hosts make disjoint halves of the same global batch.
    halves = [pair_sampler(process_index=i, process_count=2).batch(5).arrays for i in range(2)]
    whole = stream.batch(5).arrays
    for k in whole:
        np.testing.assert_array_equal(np.concatenate([h[k] for h in halves]), whole[k])
    # The frames are the clip's (reference, t - 1, t) frames of its video, normalised (no
    # augmentation here), and the masks its object.
    from vosjax.data.transforms import normalize
    clip = stream.clip(5 * 4)
    ref, prev, tgt = clip.frame_indices
    assert prev == tgt - 1 and ref <= prev
    np.testing.assert_allclose(b["target_frame"][0], normalize(clip.frames[2]), atol=1e-5)
    np.testing.assert_array_equal(b["ref_mask"][0], clip.labels[0] == 1)


def test_recurrent_batches_and_one_object_requirement():
    cfg = SamplerConfig(num_frames=4, max_objects=1, num_slots=1, size=(H, W), augment=None,
                        gap_start=1, gap_increment=0)
    clips = ClipSampler(videos(), cfg, seed=0, global_batch_size=2, process_index=0,
                        process_count=1)
    b = pair_batch(clips, 0, "recurrent")
    assert b["frames"].shape == (2, 4, H, W, 3) and b["masks"].shape == (2, 4, H, W)
    two = ClipSampler(videos(), SamplerConfig(num_frames=3, max_objects=2, size=(H, W),
                                              augment=None), global_batch_size=2,
                      process_index=0, process_count=1)
    with pytest.raises(ValueError, match="one-object clips"):
        pair_batch(two, 0)
    with pytest.raises(ValueError, match="objective='x'"):
        gcseg_batch_fn("x")


class Tagged:
    def __init__(self, tag):
        self.tag = tag

    def batch(self, step):
        from vosjax.data.sampler import HostBatch
        return HostBatch(step, {"x": np.array([self.tag * 1000 + step])}, 1, self.state(step + 1))

    def state(self, step):
        return {"step": step}


def test_staged_sampler_switches_at_the_step_count():
    s = StagedSampler([(Tagged(1), 3), (Tagged(2), None)])
    batches = [s.batch(i) for i in range(5)]
    assert [int(b.arrays["x"][0]) for b in batches] == [1000, 1001, 1002, 2000, 2001]
    assert [b.step for b in batches] == list(range(5))
    assert s.state(4) == {"step": 4, "stage": 1, "stage_state": {"step": 1}}
    assert batches[2].state == s.state(3) == {"step": 3, "stage": 1, "stage_state": {"step": 0}}
    with pytest.raises(ValueError, match="open-ended"):
        StagedSampler([(Tagged(1), 3)])


def test_static_clips_way1_way2():
    base = videos(n=6, frames=1, seed=5)
    clips = StaticClips(base, num_frames=4, seed=1, way2_prob=0.5)
    names = [clips[i].name for i in range(len(clips))]
    assert {n.split("-")[0] for n in names} == {"static1", "static2"}
    for i, name in enumerate(names):
        v, again = clips[i], clips[i]
        assert v.num_frames == 4 and v.hw == (H, W)
        np.testing.assert_array_equal(v.load_frames(), again.load_frames())
        labels = v.load_labels([0])[0]
        if name.startswith("static1"):  # Way-1: frame 0 is the image itself
            np.testing.assert_array_equal(v.load_frames([0])[0], base[i].load_frames([0])[0])
            np.testing.assert_array_equal(labels, base[i].load_labels([0])[0])
        assert labels.any()
    with pytest.raises(ValueError, match="num_frames=1"):
        StaticClips(base, num_frames=1)


# -- inference dispatch ----------------------------------------------------------------------------

def test_raw_video_gcseg_matches_direct_call_and_keeps_ids():
    from vosjax.data.transforms import resize_pad_frames, unpad_resize_probs
    from vosjax.inference.gcseg import segment_video as gcseg_video
    from vosjax.inference.video import segment_video

    model, variables = tiny_model(H, W)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (4, 40, 50, 3), dtype=np.uint8)
    ann = np.zeros((40, 50), np.uint8)
    ann[5:20, 5:25], ann[22:38, 30:48] = 3, 7
    opts = GCSegOptions(size=(H, W), num_fragments=2, seed=4, adaptive_search=False)
    out = segment_video(model, variables, frames, {0: ann}, opts)
    assert out.ids == (3, 7) and out.labels.shape == (4, 40, 50)
    assert out.probs.shape == (4, 3, H, W)
    assert set(np.unique(out.labels)) <= {0, 3, 7}
    assert (out.labels[0] == ann).mean() > 0.95   # frame 0: the given masks, resized back
    x, info = resize_pad_frames(frames, (H, W))
    from vosjax.data.transforms import resize_pad_labels
    small, _ = resize_pad_labels(np.stack([ann == 3, ann == 7]).astype(np.uint8), (H, W))
    direct = gcseg_video(model, variables, x, small.astype(np.float32), num_fragments=2,
                         seed=4, adaptive_search=False)
    np.testing.assert_allclose(out.probs, direct, atol=1e-6)
    lab = unpad_resize_probs(direct, info)
    np.testing.assert_array_equal(out.labels, np.array([0, 3, 7], np.uint8)[lab])
    late = {0: ann, 2: np.where(ann == 7, 9, ann).astype(np.uint8)}
    with pytest.raises(ValueError, match="GCSeg segments the objects given in frame 0"):
        segment_video(model, variables, frames, late, opts)
    with pytest.raises(TypeError, match="GCSeg model segments with GCSegOptions"):
        segment_video(model, variables, frames, {0: ann}, STMOptions(size=(H, W)))
    cfg = gcseg_config()
    cfg.eval.correction = True
    with pytest.raises(ValueError, match="gradient correction is an STM-cycle feature"):
        inference_options(cfg)


# -- train.py / evaluate.py ------------------------------------------------------------------------

# Both launches at one small size: evaluate.py reuses the inference program that train.py's
# held-out evaluation compiled (the persistent compilation cache).
SMALL = ["--config.data.size=(24, 40)", "--config.eval.num_fragments=1"]


@pytest.mark.slow  # two subprocesses compiling GCSeg train + inference: ~1 min on 2 cores
def test_train_gcseg_demo_then_evaluate_on_davis_mini(tmp_path, davis_mini):
    from test_cli import check_davis_mini_outputs, run

    wd = tmp_path / "w"
    r = run(["train.py", "--config", "configs/gcseg.py:demo", "--workdir", str(wd),
             "--config.train.num_train_steps=2", "--config.data.pretrain_steps=1",
             "--config.train.warmup_steps=1", "--config.train.batch_size=2",
             "--config.train.log_every=1",
             "--config.eval.num_videos=1", "--config.eval.synthetic.num_frames=5",
             "--config.data.synthetic.num_videos=4", *SMALL])
    assert r.returncode == 0, r.stderr[-3000:]
    ev = json.loads((wd / "eval.json").read_text())
    assert ev["step"] == 2
    for name in ("trained", "untrained"):
        row = ev[name]
        assert row["frames"] == 5
        assert row["J&F-Mean"] == pytest.approx((row["J-Mean"] + row["F-Mean"]) / 2, abs=1e-9)
    rows = [json.loads(x) for x in (wd / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in rows] == [1, 2]
    assert all(np.isfinite(x["loss"]) and "loss_aux_target" in x for x in rows)
    assert json.loads((wd / "model.json").read_text())["model"] == "gcseg"

    out = tmp_path / "out"
    r = run(["evaluate.py", "--config", "configs/gcseg.py:demo", "--checkpoint", str(wd),
             "--dataset", f"davis2016:{davis_mini}", "--split", "val", "--output", str(out),
             *SMALL])
    check_davis_mini_outputs(r, out, davis_root=davis_mini)


def test_balanced_bce_hand_values():
    import math

    import jax.numpy as jnp

    from vosjax.losses import bce_two_way

    p = np.array([[[0.75, 0.25], [0.5, 0.9]], [[0.2, 0.4], [0.6, 0.8]]], np.float32)
    y = np.array([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]], np.float32)
    logits = jnp.asarray(np.stack([np.zeros_like(p), np.log(p / (1 - p))], -1))
    got = np.asarray(bce_two_way(logits, jnp.asarray(y), "balanced"))
    fg = -math.log(0.75)
    bg = -(math.log(0.75) + math.log(0.5) + math.log(0.1)) / 3
    empty = -(math.log(0.8) + math.log(0.6) + math.log(0.4) + math.log(0.2)) / 4
    np.testing.assert_allclose(got, [(fg + bg) / 2, empty], rtol=1e-5)
