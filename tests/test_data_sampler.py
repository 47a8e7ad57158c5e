"""Training clip streams: determinism, resume, host sharding, gap schedule, mixing, objects per
clip, the uint8 batch format (void pixels, slot counts), and augmentation keeping labels exact
and aligned with the frames."""
import collections
import os

import numpy as np
import pytest

from vosjax.data import augment
from vosjax.data import sampler as sampler_module
from vosjax.data.augment import VOID, AugmentConfig
from vosjax.data.sampler import (
    BucketSampler,
    ClipSampler,
    SamplerConfig,
    StagedSampler,
    pick_frames,
)
from vosjax.data.synthetic import SyntheticVideos
from vosjax.data.video import video_from_arrays

SIZE = (48, 64)


def _sampler(videos=None, **kw):
    cfg = kw.pop("config", SamplerConfig(size=SIZE))
    videos = videos if videos is not None else SyntheticVideos(4, seed=0, height=40, width=60,
                                                               num_frames=8)
    kw.setdefault("process_index", 0)
    kw.setdefault("process_count", 1)
    return ClipSampler(videos, cfg, **kw)


def test_batch_is_uint8_frames_and_label_maps_with_objects_in_the_reference():
    s = _sampler(global_batch_size=3)
    hb = s.batch(0)
    assert hb.step == 0 and hb.num_slots == 5 and hb.state == s.state(1)
    b = hb.arrays
    assert set(b) == {"frames", "labels", "num_objects"}
    assert b["frames"].shape == (3, 3, 48, 64, 3) and b["frames"].dtype == np.uint8
    assert b["labels"].shape == (3, 3, 48, 64) and b["labels"].dtype == np.uint8
    assert b["num_objects"].dtype == np.int32
    # 4 bytes a pixel (float32 frames and 6-channel one-hot masks were 12 + 24).
    assert sum(a.nbytes for a in b.values()) == 3 * 3 * 48 * 64 * 4 + 3 * 4
    lab = b["labels"]
    for i, k in enumerate(b["num_objects"]):
        assert 1 <= k <= 5
        ids = set(np.unique(lab[i]).tolist())
        assert ids - {VOID} <= set(range(k + 1))                 # unused slots empty
        present = set(np.unique(lab[i, 0]).tolist())
        assert set(range(1, k + 1)) <= present                   # every object in the reference
    # The default augmentation rotates and shifts: some canvas pixels are outside the frame,
    # and they hold the mean colour.
    void = lab == VOID
    assert void.any() and (~void).mean() > 0.5
    np.testing.assert_array_equal(b["frames"][void], np.broadcast_to(augment.FILL_RGB,
                                                                     (int(void.sum()), 3)))


def test_deterministic_and_resumable():
    a = list(_sampler(seed=3).batches(0, 3))
    b = list(_sampler(seed=3).batches(2, 1))
    assert b[0].step == 2 and b[0].state == a[2].state
    for k in a[2].arrays:
        np.testing.assert_array_equal(a[2].arrays[k], b[0].arrays[k])
    c = _sampler(seed=4).batch(2)
    assert not np.array_equal(a[2].arrays["frames"], c.arrays["frames"])


def test_host_sharding_matches_single_host_stream():
    one = _sampler(seed=1, global_batch_size=4).batch(5)
    parts = [_sampler(seed=1, global_batch_size=4, process_index=p, process_count=2).batch(5)
             for p in range(2)]
    for k in one.arrays:
        np.testing.assert_array_equal(one.arrays[k],
                                      np.concatenate([p.arrays[k] for p in parts]))
    with pytest.raises(ValueError, match="divisible"):
        _sampler(global_batch_size=3, process_index=0, process_count=2)


def test_gap_schedule_and_state():
    cfg = SamplerConfig(gap_start=5, gap_increment=5, gap_every_epochs=20)
    assert [cfg.max_gap(e) for e in (0, 19, 20, 39, 40, 239)] == [5, 5, 10, 10, 15, 60]
    assert SamplerConfig(gap_max=25).max_gap(200) == 25
    s = _sampler(global_batch_size=2)            # 4 videos -> 2 steps per epoch
    assert s.state(41) == {"step": 41, "epoch": 20, "max_gap": 10, "seed": 0}
    with pytest.raises(ValueError, match="gap_every_epochs"):
        SamplerConfig(gap_every_epochs=0)


def test_pick_frames_respects_gap_and_order():
    rng = np.random.default_rng(0)
    for n, gap in [(100, 5), (100, 30), (10, 25), (3, 5)]:
        for _ in range(200):
            p = pick_frames(rng, n, 3, gap)
            d = np.diff(p)
            assert p.min() >= 0 and p.max() < n and (d >= 1).all() and (d <= gap).all()
    assert (np.diff(pick_frames(rng, 2, 3, 5)) >= 0).all()   # short video: repeats, sorted
    # The gap is reached, not only bounded.
    diffs = np.concatenate([np.diff(pick_frames(rng, 100, 3, 7)) for _ in range(300)])
    assert diffs.max() == 7


def test_uses_gap_of_current_epoch():
    vids = SyntheticVideos(1, seed=2, height=24, width=32, num_frames=60, distractors=False)
    cfg = SamplerConfig(size=(24, 32), gap_start=1, gap_increment=10, gap_every_epochs=1,
                        augment=None)
    s = _sampler(list(vids), config=cfg, global_batch_size=1)
    span0 = [np.diff(s.clip(0 + 0).frame_indices).max() for _ in range(1)]
    early = [np.diff(s.clip(i).frame_indices).max() for i in range(1)]
    late = [np.diff(s.clip(i).frame_indices).max() for i in range(5, 40)]
    assert max(span0 + early) == 1 and max(late) > 5


def test_epoch_visits_each_video_once_and_mixing_frequency():
    a = SyntheticVideos(2, seed=10, height=24, width=32, num_frames=4)
    b = SyntheticVideos(3, seed=20, height=24, width=32, num_frames=4)
    s = _sampler([(a, 5), (b, 1)], config=SamplerConfig(size=(24, 32), augment=None),
                 global_batch_size=1)
    assert s.clips_per_epoch == 13
    names = collections.Counter(s.clip(i).video for i in range(13))
    assert names == {**{f"synthetic-10-{i:05d}": 5 for i in range(2)},
                     **{f"synthetic-20-{i:05d}": 1 for i in range(3)}}
    order0 = [s.clip(i).video for i in range(13)]
    order1 = [s.clip(13 + i).video for i in range(13)]
    assert order0 != order1 and sorted(order0) == sorted(order1)


def test_at_most_max_objects_per_clip():
    lab = np.zeros((4, 30, 70), np.uint8)
    for i in range(7):
        lab[:, 5:25, 10 * i:10 * i + 8] = i + 1
    v = video_from_arrays("many", np.zeros((4, 30, 70, 3), np.uint8), lab)
    cfg = SamplerConfig(size=(30, 70), max_objects=5, augment=None)
    s = _sampler([v], config=cfg, global_batch_size=1)
    seen = set()
    for i in range(6):
        c = s.clip(i)
        assert c.num_objects == 5 and set(np.unique(c.labels)) == set(range(6))
        # Kept objects are whole original objects: each new id maps to one original column.
        seen.add(tuple(c.labels[0, 15, 10 * np.arange(7) + 4]))
    assert len(seen) > 1                                  # different subsets/orders
    with pytest.raises(ValueError, match="num_slots"):
        SamplerConfig(max_objects=5, num_slots=3)


def _coloured_video():
    """Frames whose colour encodes the label: alignment of warped frames and labels."""
    lab = np.zeros((3, 60, 90), np.uint8)
    lab[:, 10:40, 10:45] = 1
    lab[:, 30:55, 50:85] = 2
    pal = np.array([[20, 20, 20], [230, 40, 40], [40, 220, 60]], np.uint8)
    return video_from_arrays("coloured", pal[lab], lab), pal


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_augmentation_keeps_labels_exact_and_aligned(seed):
    v, pal = _coloured_video()
    aug = AugmentConfig(contrast=(1, 1), noise_std=0.0, scale=(0.8, 1.3), rotation_deg=25,
                        shear_deg=15, translate=0.15, mirror=0.5)
    s = _sampler([v], config=SamplerConfig(size=(48, 64), augment=aug), seed=seed,
                 global_batch_size=1)
    for i in range(4):
        c = s.clip(i)
        assert set(np.unique(c.labels)) <= {0, 1, 2, VOID}
        rgb = c.frames.astype(np.float64)
        inside = c.labels != VOID
        core = inside & _eroded(c.labels)
        ids = np.where(inside, c.labels, 0)
        # The sampler renumbers kept objects: recover the map from the colours, a bijection.
        orig = [0] + [int(np.argmin(np.abs(rgb[core & (c.labels == k)].mean(0) - pal)
                                    .sum(-1))) for k in range(1, c.num_objects + 1)]
        assert sorted(orig) == list(range(c.num_objects + 1))
        err = np.abs(rgb - pal[np.array(orig)[ids]]).max(-1)
        assert (err[core] < 3).mean() > 0.99        # exact colours off the boundaries
        # At boundaries bilinear mixes colours, but the nearest palette colour (the pixel
        # with the largest weight) must still be the nearest-sampled label.
        near = np.argmin(np.abs(rgb[..., None, :] - pal).sum(-1), -1)
        mismatch = (near != np.array(orig)[ids])[inside].mean()
        assert mismatch < 0.002, mismatch
        assert inside.mean() > 0.3


def _eroded(labels):
    """Pixels whose 3x3 neighbourhood has one label (per frame)."""
    p = np.pad(labels, ((0, 0), (1, 1), (1, 1)), mode="edge")
    same = np.ones(labels.shape, bool)
    h, w = labels.shape[1:]
    for dy in range(3):
        for dx in range(3):
            same &= p[:, dy:dy + h, dx:dx + w] == labels
    return same


def test_mirror_flips_frames_and_labels_together():
    v, pal = _coloured_video()
    m = augment.clip_matrices(np.random.default_rng(0),
                              AugmentConfig(scale=(1, 1), rotation_deg=0, shear_deg=0,
                                            translate=0, mirror=1.0, frame_jitter=0),
                              (60, 90), (60, 90), 1)
    x, lab = augment.warp_clip(v.load_frames([0]), v.load_labels([0]), m, (60, 90))
    np.testing.assert_array_equal(lab[0], v.load_labels([0])[0][:, ::-1])
    np.testing.assert_array_equal(x[0], pal[lab[0]])


def test_no_augmentation_is_plain_fit_and_pad():
    v, pal = _coloured_video()
    x, lab = augment.warp_clip(v.load_frames([0]), v.load_labels([0]),
                               augment.clip_matrices(None, None, (60, 90), (40, 90), 1),
                               (40, 90))
    from vosjax.data.transforms import resize_pad_labels
    want, info = resize_pad_labels(v.load_labels([0]), (40, 90))
    assert info.offsets == (0, 15)
    # The padding is outside the frame: VOID labels, the mean colour in the frame.
    pad = np.zeros((40, 90), bool)
    pad[:, :15] = pad[:, 75:] = True
    np.testing.assert_array_equal(lab[0], np.where(pad, VOID, want[0]))
    assert (x[0][pad] == augment.FILL_RGB).all()
    with pytest.raises(ValueError, match="AugmentConfig.scale"):
        AugmentConfig(scale=(1.2, 1.0))


def test_reference_frame_found_when_objects_are_mostly_off_screen():
    """A video whose object is visible in 1 of 60 frames still yields clips (reference = a frame
    with the object), deterministically; a video with no object at all raises, naming it."""
    lab = np.zeros((60, 16, 24), np.uint8)
    lab[40, 4:8, 4:8] = 1
    v = video_from_arrays("sparse", np.zeros((60, 16, 24, 3), np.uint8), lab)
    cfg = SamplerConfig(size=(16, 24), augment=None, max_retries=2)
    s = ClipSampler([v], cfg, seed=0, global_batch_size=2, process_index=0, process_count=1)
    for i in range(6):
        c = s.clip(i)
        assert c.frame_indices[0] == 40 and c.num_objects == 1
        assert list(c.frame_indices) == sorted(c.frame_indices)
    # Deterministic: a second sampler built the same way gives the same batch, whose clips
    # start at frame 40 with exactly its object (no augmentation, working size = video size).
    again = ClipSampler([v], cfg, seed=0, global_batch_size=2, process_index=0,
                        process_count=1)
    b = s.batch(1).arrays
    np.testing.assert_array_equal(b["labels"], again.batch(1).arrays["labels"])
    for clip_labels in b["labels"]:
        np.testing.assert_array_equal(clip_labels[0], lab[40])
    empty = video_from_arrays("empty", np.zeros((5, 16, 24, 3), np.uint8),
                              np.zeros((5, 16, 24), np.uint8))
    s = ClipSampler([empty], cfg, seed=0, global_batch_size=1, process_index=0, process_count=1)
    with pytest.raises(ValueError, match="empty"):
        s.clip(0)


# -- object-count buckets (config.train.slot_policy = "bucket") ---------------------------------

def test_num_objects_equals_the_clips_count_also_after_retries():
    """The count from the reference annotation alone makes the clip's random draws: equal to
    ``clip().num_objects`` also for clips whose augmentation crops every object out (retries),
    and it reads one annotation, not the clip's three."""
    lab = np.zeros((4, 40, 60), np.uint8)
    lab[:, 2:6, 2:6] = 1
    lab[:, 30:34, 50:54] = 2
    v = video_from_arrays("small", np.full((4, 40, 60, 3), 100, np.uint8), lab)
    cfg = SamplerConfig(size=(24, 32), max_objects=2, max_retries=3,
                        augment=AugmentConfig(scale=(1.5, 2.5), translate=0.5))
    s = _sampler([v], config=cfg, global_batch_size=1)
    calls, read = [], []
    real, load = sampler_module.clip_matrices, v.load_labels
    try:
        sampler_module.clip_matrices = lambda *a, **k: (calls.append(1), real(*a, **k))[1]
        object.__setattr__(v, "load_labels", lambda p: (read.append(len(p)), load(p))[1])
        retried, counts = 0, set()
        for i in range(20):
            calls.clear()
            c = s.clip(i)
            retried += len(calls) > 1
            read.clear()
            assert s.num_objects(i) == c.num_objects, i
            assert read == [1]
            counts.add(c.num_objects)
    finally:
        sampler_module.clip_matrices = real
        object.__delattr__(v, "load_labels")
    assert retried >= 5 and len(counts) >= 2, (retried, counts)


BUCKET_CFG = SamplerConfig(size=(24, 32), max_objects=3)


def _bucketed(**kw):
    kw.setdefault("seed", 1)
    kw.setdefault("global_batch_size", 4)
    return BucketSampler(_sampler(SyntheticVideos(10, seed=0, height=40, width=60, num_frames=8),
                                  config=BUCKET_CFG, **kw))


def test_bucket_batches_hold_one_object_count_and_every_clip_once():
    b, steps, batch = _bucketed(), 10, 4
    plans = [b.plan(s) for s in range(steps)]
    counts = [b.sampler.clip(g).num_objects for g in range(b.state(steps)["bucket"]["next_clip"])]
    assert len(set(counts)) == 3                              # the stream mixes 1, 2, 3
    for s, (n, clips) in enumerate(plans):
        hb = b.batch(s)
        x = hb.arrays
        assert hb.num_slots == n and x["labels"].shape == (batch, 3, 24, 32)
        assert (x["num_objects"] == n).all() and [counts[g] for g in clips] == [n] * batch
        for clip_labels in x["labels"]:                       # no empty slot
            assert set(range(1, n + 1)) <= set(np.unique(clip_labels[0]).tolist())
        np.testing.assert_array_equal(x["frames"],
                                      np.stack([b.sampler.clip(g).frames for g in clips]))
    # Every looked-at clip is emitted once or still pending; nothing else.
    emitted = [g for _, c in plans for g in c]
    pending = [g for p in b.state(steps)["bucket"]["pending"] for g in p]
    assert len(set(emitted)) == len(emitted)
    assert sorted(emitted + pending) == list(range(len(counts)))
    # The order, characterised independently: each count's clips in stream order, cut into
    # batches; batches come out in the order they are completed (their last clip).
    chunks = []
    for n in (1, 2, 3):
        of_n = [g for g, k in enumerate(counts) if k == n]
        chunks += [tuple(of_n[i:i + batch]) for i in range(0, len(of_n) - batch + 1, batch)]
    assert [c for _, c in plans] == sorted(chunks, key=lambda c: c[-1])[:steps]
    assert [_bucketed().plan(s) for s in range(steps)] == plans           # deterministic


def test_bucket_resume_equals_uninterrupted_stream():
    straight = _bucketed()
    want = [straight.batch(s).arrays for s in range(7)]
    first = _bucketed()
    for s in range(4):
        saved = first.batch(s).state
    assert saved == first.state(4)
    assert saved["bucket"]["next_clip"] > 16 and any(saved["bucket"]["pending"])
    resumed = _bucketed()
    resumed.restore(saved)
    asked, real = [], resumed.sampler.num_objects
    resumed.sampler.num_objects = lambda g: (asked.append(g), real(g))[1]
    for s in range(4, 7):
        for k in want[s]:
            np.testing.assert_array_equal(resumed.batch(s).arrays[k], want[s][k])
    assert min(asked) == saved["bucket"]["next_clip"]   # no replay of the clips before
    # ... and without it the stream is replayed: the same batches (a pure function of step).
    replayed = _bucketed()
    np.testing.assert_array_equal(replayed.batch(5).arrays["frames"], want[5]["frames"])
    with pytest.raises(ValueError, match="seed"):
        _bucketed(seed=9).restore(saved)


def test_bucket_two_hosts_concatenate_to_the_one_host_batch():
    one = _bucketed()
    hosts = [_bucketed(process_index=p, process_count=2) for p in range(2)]
    for s in range(5):
        full = one.batch(s)
        parts = [h.batch(s) for h in hosts]
        assert parts[0].num_slots == parts[1].num_slots == full.num_slots   # identical shapes
        assert parts[0].arrays["labels"].shape[0] == 2
        for k in full.arrays:
            np.testing.assert_array_equal(full.arrays[k],
                                          np.concatenate([p.arrays[k] for p in parts]))
        assert parts[0].state == parts[1].state == full.state == one.state(s + 1)


def test_staged_sampler_restores_its_bucketed_stage():
    staged = StagedSampler([(_bucketed(seed=5), 2), (_bucketed(), None)])
    want = [staged.batch(s) for s in range(6)]
    assert [b.step for b in want] == list(range(6))
    assert want[1].state == {"step": 2, "stage": 1, "stage_state": _bucketed().state(0)}
    again = StagedSampler([(_bucketed(seed=5), 2), (_bucketed(), None)])
    again.restore(want[3].state)
    assert again.stages[1]._states[2] == staged.stages[1]._states[2]
    b5 = again.batch(5)
    assert b5.num_slots == want[5].num_slots and b5.state == want[5].state
    np.testing.assert_array_equal(b5.arrays["labels"], want[5].arrays["labels"])


def test_shared_counts_are_a_memo_only(tmp_path):
    """Streams given the same folder (the input workers of one host) share the object counts:
    the second one counts nothing the first counted, and the plans are unchanged. An entry
    of another clip in the slot (an overwritten one) is not trusted."""
    from vosjax.data.sampler import CountMemo

    a, b, plain = _bucketed(), _bucketed(), _bucketed()
    a.share_counts(str(tmp_path))
    b.share_counts(str(tmp_path))
    plans = [a.plan(s) for s in range(4)]
    asked, real = [], b.sampler.num_objects
    b.sampler.num_objects = lambda g: (asked.append(g), real(g))[1]
    assert [b.plan(s) for s in range(4)] == plans == [plain.plan(s) for s in range(4)]
    assert asked == []
    memo = CountMemo(tmp_path / "counts.i64")
    assert memo.get(3) == real(3)
    memo.put(3 + memo.size, 2)                 # clip 3's slot now holds another clip
    assert memo.get(3) is None and memo.get(3 + memo.size) == 2


def test_host_batches_in_worker_processes_equal_the_stream():
    """The training input pipeline (grain, 2 worker processes, a prefetch thread) gives steps
    start..stop - 1 in order, each equal to the stream's own batch; with two workers a
    bucketed stream shares its counts through a temporary table, removed on close."""
    import glob
    import tempfile

    from vosjax.training.input_pipeline import host_batches

    stream = _bucketed()
    want = [stream.batch(s) for s in range(2, 6)]
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "vosjax-counts-*")))
    it = host_batches(_bucketed(), 2, 6, num_workers=2, prefetch=2)
    try:
        got = list(it)
        made = set(glob.glob(os.path.join(tempfile.gettempdir(), "vosjax-counts-*"))) - before
        assert len(made) == 1
    finally:
        it.close()
    assert not any(os.path.exists(d) for d in made)
    assert [b.step for b in got] == [2, 3, 4, 5]
    for g, w in zip(got, want):
        assert g.num_slots == w.num_slots and g.state == w.state
        for k in w.arrays:
            np.testing.assert_array_equal(g.arrays[k], w.arrays[k])
    with pytest.raises(ValueError, match="no step"):
        host_batches(stream, 3, 3)


KILLED_TRAINER = r"""
import multiprocessing, sys, time
sys.path.insert(0, sys.argv[1])
from test_data_sampler import _bucketed
from vosjax.training.input_pipeline import host_batches

if __name__ == "__main__":
    it = host_batches(_bucketed(), 0, 1000, num_workers=1, prefetch=1)
    next(it)
    print(" ".join(str(p.pid) for p in multiprocessing.active_children()), flush=True)
    time.sleep(600)
"""


def test_input_workers_exit_when_the_trainer_is_killed(tmp_path):
    """SIGKILL of the training process (the OOM killer, a preemption) takes its input workers
    with it: none lingers holding its output pipes and the host's cores."""
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "trainer.py"
    script.write_text(KILLED_TRAINER)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.Popen([sys.executable, str(script), os.path.join(root, "tests")], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        workers = [int(w) for w in p.stdout.readline().split()]
        assert workers, p.stderr.read()[-2000:]
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=30)             # returns once no worker holds the pipes
        deadline = time.monotonic() + 10
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(w) for w in workers)
    finally:
        if p.poll() is None:
            p.kill()


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"     # a zombie has exited
    except FileNotFoundError:
        return False
