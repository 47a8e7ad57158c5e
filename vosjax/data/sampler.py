"""Training clip streams (paper Sec. 4.1 and the official training recipe): which clips make
global batch ``step``, and each clip's decoding and geometric augmentation (host side).

* Each epoch visits every video of the mixed dataset list once, in a seeded random order;
  mixing by frequency repeats a dataset's videos (the paper's hybrid DAVIS x5 + YouTube-VOS x1).
* A clip is ``num_frames`` (3) annotated frames in temporal order; the earliest is the
  reference. Consecutive picks are at most ``max_gap(epoch)`` annotated frames apart, the gap
  growing on a schedule (paper: +5 every 20 epochs).
* At most ``max_objects`` (5) of the objects present in the reference frame are kept,
  renumbered ``1..k``; the rest become background.
* Geometric augmentation and the keep-aspect fit + pad to 240x427 here
  (:mod:`vosjax.data.augment`); contrast, noise, normalisation and one-hot masks on the device
  inside the train step (:mod:`vosjax.data.device`).

A stream (:class:`ClipSampler`, :class:`BucketSampler`, :class:`StagedSampler`) gives
``batch(step)``, a :class:`HostBatch`: this host's share of global batch ``step`` as uint8
frames and label maps, the number of object slots the step computes, and the stream's state
after the step (what the trainer checkpoints). The input workers of
:mod:`vosjax.training.input_pipeline` each compute the steps they are given with it.

:class:`BucketSampler` regroups the stream so that every batch holds clips of one object count
(``config.train.slot_policy = "bucket"``: no update computes an empty object slot).

Determinism: clip ``g`` (a global index; plain stream: ``g = step * global_batch + host offset
+ b``) is made from ``np.random.default_rng([seed, 0, g])`` and the epoch order from ``[seed,
1, epoch]``, so a stream is a pure function of ``(seed, step)`` (and of a restored bucket
state): a resumed run reproduces it exactly and every host of a multi-host run makes its own
disjoint slice of the same global stream, whatever the host count.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

from vosjax.data.augment import VOID, AugmentConfig, clip_matrices, warp_frame, warp_labels
from vosjax.data.masks import apply_lut
from vosjax.data.transforms import WORK_SIZE
from vosjax.data.video import Video


@dataclasses.dataclass(frozen=True)
class SamplerConfig:
    """Clip sampling settings.

    num_frames: frames per clip (reference first). max_objects: objects kept per clip.
    num_slots: one-hot object channels in ``masks`` (default ``max_objects``).
    size: working (H, W). gap_start / gap_increment / gap_every_epochs / gap_max: the maximum
    gap between consecutive picks is ``min(gap_max, gap_start + gap_increment *
    (epoch // gap_every_epochs))`` annotated frames. clips_per_epoch: default = the number of
    (repeated) videos. augment: None disables augmentation. max_retries: redraws when
    augmentation crops every object out of the reference frame.
    """
    num_frames: int = 3
    max_objects: int = 5
    num_slots: int | None = None
    size: tuple[int, int] = WORK_SIZE
    gap_start: int = 5
    gap_increment: int = 5
    gap_every_epochs: int = 20
    gap_max: int | None = None
    clips_per_epoch: int | None = None
    augment: AugmentConfig | None = dataclasses.field(default_factory=AugmentConfig)
    max_retries: int = 10

    def __post_init__(self):
        for f in ("num_frames", "max_objects", "gap_start", "gap_every_epochs"):
            if getattr(self, f) < 1:
                raise ValueError(f"SamplerConfig.{f} must be >= 1, got {getattr(self, f)}")
        if self.gap_increment < 0:
            raise ValueError(f"SamplerConfig.gap_increment must be >= 0, got "
                             f"{self.gap_increment}")
        if self.num_slots is not None and self.num_slots < self.max_objects:
            raise ValueError(f"SamplerConfig.num_slots ({self.num_slots}) must be >= "
                             f"max_objects ({self.max_objects})")

    @property
    def slots(self) -> int:
        return self.num_slots if self.num_slots is not None else self.max_objects

    def max_gap(self, epoch: int) -> int:
        """The gap schedule."""
        g = self.gap_start + self.gap_increment * (int(epoch) // self.gap_every_epochs)
        return g if self.gap_max is None else min(g, self.gap_max)


def pick_frames(rng: np.random.Generator, n: int, num_frames: int, max_gap: int) -> np.ndarray:
    """Sorted positions (into ``n`` annotated frames) of a clip, consecutive picks 1..max_gap
    apart (shrunk to fit short videos; repeats only when ``n < num_frames``)."""
    if n < num_frames:
        return np.sort(rng.integers(0, n, num_frames))
    gap = max(1, min(max_gap, (n - 1) // max(1, num_frames - 1)))
    steps = rng.integers(1, gap + 1, num_frames - 1)
    start = rng.integers(0, n - int(steps.sum()))
    return start + np.concatenate([[0], np.cumsum(steps)])


@dataclasses.dataclass
class Clip:
    """One sampled clip: ``frames`` uint8 [T, H, W, 3] warped to the working size; ``labels``
    uint8 [T, H, W], ids 0..num_objects and :data:`~vosjax.data.augment.VOID` outside the
    warped source frame; the source video and the frame indices used."""
    frames: np.ndarray
    labels: np.ndarray
    num_objects: int
    video: str
    frame_indices: tuple[int, ...]


class HostBatch(NamedTuple):
    """This host's share of global batch ``step``.

    arrays: ``frames`` uint8 [B, T, H, W, 3], ``labels`` uint8 [B, T, H, W] (see :class:`Clip`),
    ``num_objects`` int32 [B] (``B`` = the host's clips). num_slots: the object slots the
    step computes (one-hot channels ``num_slots + 1``, made on the device). state: the stream's
    state *after* this step (JSON; checkpointed with the step's result)."""
    step: int
    arrays: dict
    num_slots: int
    state: dict


def collate(clips, num_slots: int, where: str = "") -> dict[str, np.ndarray]:
    """The raw batch arrays of ``clips`` (see :class:`HostBatch`); a clip with more objects
    than ``num_slots`` raises, naming its video."""
    for c in clips:
        if c.num_objects > num_slots:
            raise ValueError(f"{where}clip of {c.video} (frames {list(c.frame_indices)}) holds "
                             f"{c.num_objects} objects, more than num_slots={num_slots}")
    return {"frames": np.stack([c.frames for c in clips]),
            "labels": np.stack([c.labels for c in clips]),
            "num_objects": np.array([c.num_objects for c in clips], np.int32)}


class _Stream:
    """What the streams share: ``batch(step)`` from ``plan(step)`` (the object slots and the
    global clips of batch ``step``), ``clip_source.clip(g)`` and ``state(step)``."""

    def plan(self, step: int) -> tuple[int, tuple[int, ...]]:
        raise NotImplementedError

    def state(self, step: int) -> dict[str, Any]:
        raise NotImplementedError

    def local_clips(self, step: int) -> tuple[int, tuple[int, ...]]:
        """``(num_slots, this host's global clip indices)`` of batch ``step``."""
        n, clips = self.plan(step)
        first = self.process_index * self.local_batch_size
        return n, tuple(clips[first:first + self.local_batch_size])

    def batch(self, step: int) -> HostBatch:
        """This host's share of global batch ``step`` (:class:`HostBatch`)."""
        n, local = self.local_clips(step)
        src = self.clip_source
        clips = [src.clip(g) for g in local]
        arrays = collate(clips, n, f"step {step}: ")
        self._check(step, n, arrays)
        return HostBatch(int(step), arrays, int(n), self.state(step + 1))

    def _check(self, step, n, arrays) -> None:
        """A hook for streams that promise more about a batch (:class:`BucketSampler`)."""

    def batches(self, start_step: int = 0, num_steps: int | None = None
                ) -> Iterator[HostBatch]:
        """Batches from ``start_step`` on (forever when ``num_steps`` is None), in this process
        (the training loop uses :func:`vosjax.training.input_pipeline.host_batches`)."""
        step = start_step
        while num_steps is None or step < start_step + num_steps:
            yield self.batch(step)
            step += 1


class ClipSampler(_Stream):
    """Deterministic, resumable, host-sharded stream of augmented training clips.

    Args:
      sources: ``[(videos, repeat), ...]`` where ``videos`` is any ``Sequence[Video]``
        (:class:`~vosjax.data.davis.DavisDataset`, a YouTube-VOS dataset, a TFDS-backed
        source, a list of synthetic videos) and ``repeat`` its integer frequency; a bare
        sequence means repeat 1. The stream is pickled to the input workers: so are they.
      config: :class:`SamplerConfig`.
      seed: stream seed.
      global_batch_size: clips per step over all hosts.
      process_index / process_count: this host's slice (default: ``jax.process_index()`` /
        ``jax.process_count()``).
      pick: ``pick(rng, n, max_gap) -> positions [num_frames]`` (sorted, into the ``n``
        annotated frames of a video) choosing a clip's frames; default :func:`pick_frames`.
    """

    def __init__(self, sources, config: SamplerConfig = SamplerConfig(), seed: int = 0,
                 global_batch_size: int = 4, process_index: int | None = None,
                 process_count: int | None = None, pick=None):
        if not (isinstance(sources, list) and sources
                and all(isinstance(s, tuple) and len(s) == 2 for s in sources)):
            sources = [(sources, 1)]
        self.sources = [(vids, int(rep)) for vids, rep in sources]
        for vids, rep in self.sources:
            if rep < 0:
                raise ValueError(f"dataset repeat must be >= 0, got {rep}")
        self._items = np.array([(d, v) for d, (vids, rep) in enumerate(self.sources)
                                for _ in range(rep) for v in range(len(vids))], np.int64)
        if not len(self._items):
            raise ValueError("ClipSampler: no videos to sample from")
        if process_index is None or process_count is None:
            import jax
            process_index, process_count = jax.process_index(), jax.process_count()
        if global_batch_size % process_count:
            raise ValueError(f"global_batch_size {global_batch_size} is not divisible by "
                             f"process_count {process_count}")
        if config.slots >= VOID:
            raise ValueError(f"SamplerConfig.num_slots={config.slots}: object ids must stay "
                             f"below {VOID} (the label of pixels outside the frame)")
        self.config, self.seed = config, int(seed)
        self.global_batch_size = int(global_batch_size)
        self.process_index, self.process_count = int(process_index), int(process_count)
        self.local_batch_size = self.global_batch_size // self.process_count
        self.clips_per_epoch = config.clips_per_epoch or len(self._items)
        self._pick = pick
        self._videos: dict[tuple[int, int], Video] = {}
        self._orders: dict[int, np.ndarray] = {}

    def __getstate__(self):
        # Sent to every input worker: without the caches of decoded videos and epoch orders.
        return {**self.__dict__, "_videos": {}, "_orders": {}}

    @property
    def clip_source(self) -> "ClipSampler":
        return self

    # -- schedule -------------------------------------------------------------------------------
    def epoch_of_step(self, step: int) -> float:
        """Epoch (fractional) reached at the start of ``step``."""
        return step * self.global_batch_size / self.clips_per_epoch

    def plan(self, step: int) -> tuple[int, tuple[int, ...]]:
        """``(num_slots, global clip indices)`` of global batch ``step``: ``config.slots`` and
        clips ``step * global_batch_size + b``."""
        first = int(step) * self.global_batch_size
        return self.config.slots, tuple(range(first, first + self.global_batch_size))

    def state(self, step: int) -> dict[str, Any]:
        """What a trainer checkpoints to resume the stream (the stream restarts at ``step``);
        epoch and gap are informative."""
        epoch = int(self.epoch_of_step(step))
        return {"step": int(step), "epoch": epoch, "max_gap": self.config.max_gap(epoch),
                "seed": self.seed}

    def _order(self, epoch: int) -> np.ndarray:
        """The epoch's visiting order of the (repeated) videos, from ``[seed, 1, epoch]``."""
        order = self._orders.get(epoch)
        if order is None:
            if len(self._orders) > 4:
                self._orders.clear()
            rng = np.random.default_rng([self.seed, 1, epoch])
            n = len(self._items)
            reps = -(-self.clips_per_epoch // n)
            order = np.concatenate([rng.permutation(n) for _ in range(reps)])
            self._orders[epoch] = order
        return order

    def _video(self, d: int, v: int) -> Video:
        key = (d, v)
        if key not in self._videos:
            self._videos[key] = self.sources[d][0][v]
        return self._videos[key]

    # -- clips ----------------------------------------------------------------------------------
    def clip(self, index: int) -> Clip:
        """Global clip ``index`` of the stream (same result on every host and every run)."""
        return self._produce(index, with_frames=True)

    def num_objects(self, index: int) -> int:
        """``clip(index).num_objects`` from the reference frame's annotation alone (the clip's
        random draws, without reading or warping a frame or the other annotations): what
        :class:`BucketSampler` looks ahead with."""
        return self._produce(index, with_frames=False)

    def _pick_frames(self, rng, n: int, gap: int) -> np.ndarray:
        if self._pick is not None:
            return self._pick(rng, n, gap)
        return pick_frames(rng, n, self.config.num_frames, gap)

    def _produce(self, index: int, with_frames: bool):
        cfg = self.config
        epoch, pos = divmod(int(index), self.clips_per_epoch)
        d, v = self._items[self._order(epoch)[pos]]
        video = self._video(int(d), int(v))
        rng = np.random.default_rng([self.seed, 0, int(index)])
        ann = np.asarray(video.annotated_frames)
        if video.num_objects >= VOID:
            raise ValueError(f"{video.name}: {video.num_objects} objects; training clips need "
                             f"fewer than {VOID} (the label of pixels outside the frame)")
        if not len(ann):
            raise ValueError(f"{video.name}: no annotated frame to sample a training clip from")
        # The object count needs the reference annotation only; the draws are the same.
        load = video.load_labels if with_frames else (lambda p: video.load_labels(p[:1]))
        gap = cfg.max_gap(epoch)
        for attempt in range(cfg.max_retries + 1):
            picks = ann[self._pick_frames(rng, len(ann), gap)]
            labels = load(picks)
            present = _present(labels[0], video.num_objects)
            if len(present):
                break
        if not len(present):
            # Rare (objects off screen in most frames): start the clip at a frame known to hold
            # an object. Reads every annotation of this video once.
            has = np.flatnonzero(video.load_labels(ann).reshape(len(ann), -1).max(axis=1) > 0)
            if not len(has):
                raise ValueError(f"{video.name}: no annotated frame holds an object")
            start = int(rng.choice(has))
            sub = pick_frames(rng, len(ann) - start, cfg.num_frames, gap)
            picks = ann[start + sub - sub[0]]
            labels = load(picks)
            present = _present(labels[0], video.num_objects)
        for attempt in range(cfg.max_retries + 1):
            keep = rng.permutation(present)[:cfg.max_objects]
            aug = cfg.augment if attempt < cfg.max_retries else None
            mats = clip_matrices(rng, aug, video.hw, cfg.size, cfg.num_frames)
            # Warp the video's ids (NEAREST commutes with relabelling), then keep `keep`.
            select = _select_lut(keep, video.num_objects)
            ref_labels = apply_lut(select, warp_labels(labels[0], mats[0], cfg.size, VOID))
            ref = np.array([(ref_labels == k).any() for k in range(1, len(keep) + 1)])
            if ref.any():
                break
        count = int(ref.sum())
        if not with_frames:
            return count
        # Objects cropped out of the reference frame are dropped and the rest renumbered.
        renumber = np.zeros(VOID + 1, np.uint8)
        renumber[1:len(keep) + 1][ref] = np.arange(1, count + 1)
        renumber[VOID] = VOID
        labs = np.stack([ref_labels] + [apply_lut(select, warp_labels(lab, m, cfg.size, VOID))
                                        for lab, m in zip(labels[1:], mats[1:])])
        frames = video.load_frame_images(picks)
        x = np.stack([warp_frame(f, m, cfg.size) for f, m in zip(frames, mats)])
        return Clip(x, apply_lut(renumber, labs), count, video.name, tuple(int(p) for p in picks))


class StagedSampler:
    """Streams one after another: ``stages = [(stream, num_steps), ..., (stream, None)]``
    (e.g. pre-training on simulated clips, then videos). Step ``s`` of stage ``k`` is its
    stream's step ``s - start_k``, so the whole stream stays a pure function of the step."""

    def __init__(self, stages):
        if not stages or stages[-1][1] is not None:
            raise ValueError("StagedSampler: the last stage must be open-ended (num_steps None)")
        self.stages, self.starts, start = [], [], 0
        for sampler, steps in stages:
            if steps is not None and int(steps) < 1:
                raise ValueError(f"StagedSampler: a stage needs >= 1 step, got {steps}")
            self.stages.append(sampler)
            self.starts.append(start)
            start += int(steps or 0)

    def _locate(self, step: int):
        k = max(i for i, s in enumerate(self.starts) if s <= step)
        return k, step - self.starts[k]

    def batch(self, step: int) -> HostBatch:
        """Stage ``k``'s batch of its step ``step - start_k``, with this stream's step and
        state."""
        k, local = self._locate(int(step))
        b = self.stages[k].batch(local)
        return b._replace(step=int(step), state=self.state(int(step) + 1))

    def batches(self, start_step: int = 0, num_steps: int | None = None):
        return _Stream.batches(self, start_step, num_steps)

    def state(self, step: int) -> dict[str, Any]:
        k, local = self._locate(int(step))
        return {"step": int(step), "stage": k, "stage_state": self.stages[k].state(local)}

    def restore(self, state: dict[str, Any]) -> None:
        """Hand a checkpointed :meth:`state` to its stage's stream (one that keeps state)."""
        inner = self.stages[int(state["stage"])]
        if hasattr(inner, "restore"):
            inner.restore(state["stage_state"])

    def share_counts(self, directory: str, name: str = "counts") -> None:
        """:meth:`BucketSampler.share_counts` for each bucketed stage (a table each)."""
        for k, stage in enumerate(self.stages):
            if hasattr(stage, "share_counts"):
                stage.share_counts(directory, f"{name}-{k}")


@dataclasses.dataclass(frozen=True)
class BucketState:
    """Where the bucketed stream stands before a step: ``next_clip``, the first global clip
    not looked at yet, and ``pending[n - 1]``, the global clips with ``n`` objects waiting for
    their batch (stream order; fewer than a batch each)."""
    next_clip: int
    pending: tuple[tuple[int, ...], ...]

    @classmethod
    def initial(cls, num_buckets: int) -> "BucketState":
        return cls(0, ((),) * num_buckets)

    def to_json(self) -> dict[str, Any]:
        return {"next_clip": self.next_clip, "pending": [list(p) for p in self.pending]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "BucketState":
        return cls(int(d["next_clip"]), tuple(tuple(int(g) for g in p) for p in d["pending"]))


def next_bucket(state: BucketState, count, batch_size: int
                ) -> tuple[int, tuple[int, ...], BucketState]:
    """One step of the bucketed stream: look at global clips ``state.next_clip, ...`` in order,
    put each in the bucket of its object count ``count(g)`` (clamped to ``1..len(pending)``)
    and emit the first bucket that holds ``batch_size`` clips.

    Returns ``(n, clips, next_state)``: the object count, the ``batch_size`` global clip
    indices (stream order) and the state after the step."""
    pending = [list(p) for p in state.pending]
    g = state.next_clip
    while True:
        n = min(max(int(count(g)), 1), len(pending))
        pending[n - 1].append(g)
        g += 1
        if len(pending[n - 1]) == batch_size:
            clips = tuple(pending[n - 1])
            pending[n - 1] = []
            return n, clips, BucketState(g, tuple(tuple(p) for p in pending))


class CountMemo:
    """Object counts of global clips shared by the input worker processes of one host.

    A bucketed stream's plan needs the object count of every global clip, and each worker
    replays the plan for the steps it is given; through this table a clip is counted about
    once per host instead of once per worker. It is a memo only: slot ``g % size`` of a
    memory-mapped file holds ``(g + 1) << 8 | count``, so a missing or overwritten entry is
    counted again and no batch depends on the table.
    """

    def __init__(self, path: str, size: int = 1 << 20):
        self.path, self.size = os.fspath(path), int(size)
        if not os.path.exists(self.path):
            np.memmap(self.path, np.int64, "w+", shape=(self.size,)).flush()
        self._table = None

    def __getstate__(self):
        return {**self.__dict__, "_table": None}

    def _open(self) -> np.ndarray:
        if self._table is None:
            self._table = np.memmap(self.path, np.int64, "r+", shape=(self.size,))
        return self._table

    def get(self, g: int) -> int | None:
        v = int(self._open()[g % self.size])
        return v & 0xFF if v >> 8 == g + 1 else None

    def put(self, g: int, count: int) -> None:
        self._open()[g % self.size] = ((g + 1) << 8) | (int(count) & 0xFF)


class BucketSampler(_Stream):
    """The clips of a :class:`ClipSampler`, grouped so that every batch holds one object count.

    Why: the STM step computes every object slot of ``masks``; padding each clip to
    ``num_slots`` (5) objects when YouTube-VOS-like clips hold ~1.9 on average roughly doubles
    the FLOPs of an update (``benchmarks/results/slot_flops_cpu.json``), and trimming to the
    batch maximum still pays for the largest clip of each batch. Step ``s`` emits ``n`` and
    ``global_batch_size`` clips that all hold ``n`` objects, with ``masks`` of ``n + 1``
    channels: one compiled step per ``n <= max_objects`` and no empty slot in any update.
    Each clip's loss is the padded computation's to float rounding (empty slots only add the
    soft aggregation's 1e-7 clamp terms); the update's loss is the mean over its clips, as
    before; what changes is which clips share an update (a batch holds clips of one object
    count) and when a clip is used (it waits in its bucket until the bucket is full: on a mix
    with 4% five-object clips, ~25 steps at batch 8).

    Rule (:func:`next_bucket`): read the global clip stream in order, put each clip in the
    bucket of its object count, and emit the first bucket that reaches a full batch. Every
    clip of the stream is emitted exactly once (at most ``max_objects * (batch - 1)`` clips
    are pending at any time), in stream order within a bucket.

    Determinism and resume: the bucketed stream is a pure function of the step (replayed from
    step 0 when asked for a step with no known state); :meth:`state` adds the bucket state (the
    next clip and the pending clips, as global indices) to the checkpoint, and :meth:`restore`
    makes a resumed run continue from it at once, so it sees exactly the batches an
    uninterrupted run would.

    Several hosts: the bucketing runs on the *global* stream, so every host computes the same
    ``(n, clips)`` and materialises only its slice of the emitted global batch: identical
    shapes on every host, no communication. The price: a host needs the object count of every
    global clip, not only of its own. :meth:`ClipSampler.num_objects` gives it from the
    reference frame's annotation alone (the clip's random draws without reading or warping a
    frame or the other annotations). Each input worker replays the plan for the steps it is
    given; the workers of a host share the counts (:meth:`share_counts`, a
    :class:`CountMemo`), so a host counts each global clip about once besides producing its
    ``local_batch_size`` (the cost measured in ``benchmarks/results/input_pipeline_cpu.json``,
    ``host.*.per_worker.median_s_count``). (Many-host runs could count a 1/P share each and
    all-gather the counts; not done here: it would make the data stream a collective.)
    """

    def __init__(self, sampler: ClipSampler, keep_states: int = 8):
        self.sampler = sampler
        self.global_batch_size = sampler.global_batch_size
        self.local_batch_size = sampler.local_batch_size
        self.process_index, self.process_count = sampler.process_index, sampler.process_count
        self.num_buckets = sampler.config.max_objects
        self._keep = max(1, int(keep_states))
        self._states = {0: BucketState.initial(self.num_buckets)}
        self._plans: dict[int, tuple[int, tuple[int, ...]]] = {}
        self._counts: dict[int, int] = {}
        self._memo: CountMemo | None = None

    def share_counts(self, directory: str, name: str = "counts") -> None:
        """Share the object counts with the other processes given the same ``directory``
        (:class:`CountMemo`; the input pipeline does this for its workers)."""
        self._memo = CountMemo(os.path.join(directory, f"{name}.i64"))

    # -- the plan -------------------------------------------------------------------------------
    def _count(self, g: int) -> int:
        if g not in self._counts:
            n = self._memo.get(g) if self._memo is not None else None
            if n is None:
                n = self.sampler.num_objects(g)
                if self._memo is not None:
                    self._memo.put(g, n)
            self._counts[g] = n
        return self._counts[g]

    def plan(self, step: int) -> tuple[int, tuple[int, ...]]:
        """``(n, global clip indices)`` of global batch ``step``."""
        step = int(step)
        if step not in self._plans:
            self._run(step, step + 1)
            self._prune(step)
        return self._plans[step]

    def _run(self, first: int, stop: int) -> None:
        """The plans of steps ``first .. stop - 1`` and the states up to step ``stop``,
        replayed from the latest known state at or before ``first``."""
        start = max(k for k in self._states if k <= first)
        state = self._states[start]
        for s in range(start, stop):
            n, clips, state = next_bucket(state, self._count, self.global_batch_size)
            self._plans[s] = (n, clips)
            self._states[s + 1] = state

    def _prune(self, step: int) -> None:
        """Keep step 0, the last ``keep_states`` steps and the counts they can still need."""
        low = step + 1 - self._keep
        for d in (self._states, self._plans):
            for k in [k for k in d if 0 < k < low]:
                del d[k]
        first = min(st.next_clip for k, st in self._states.items() if k >= low or k == step + 1)
        for g in [g for g in self._counts if g < first]:
            del self._counts[g]

    # -- the stream protocol --------------------------------------------------------------------
    @property
    def clip_source(self) -> ClipSampler:
        return self.sampler

    def _check(self, step, n, arrays) -> None:
        if (np.clip(arrays["num_objects"], 1, self.num_buckets) != n).any():
            raise RuntimeError(f"BucketSampler: the clips of step {step} were counted with {n} "
                               f"objects but hold {arrays['num_objects'].tolist()} "
                               "(num_objects and clip disagree)")

    def state(self, step: int) -> dict[str, Any]:
        """The wrapped sampler's state plus ``bucket`` (:class:`BucketState` as JSON) and the
        batch size the state is for."""
        step = int(step)
        if step not in self._states:
            self._run(step, step)
            self._prune(step - 1)
        return {**self.sampler.state(step), "global_batch_size": self.global_batch_size,
                "bucket": self._states[step].to_json()}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a checkpointed :meth:`state` (no replay)."""
        if "bucket" not in state:
            return                       # not bucketed: the stream is replayed from step 0
        for key, mine in (("seed", self.sampler.seed),
                          ("global_batch_size", self.global_batch_size)):
            if state.get(key) != mine:
                raise ValueError(f"BucketSampler.restore: the checkpointed bucket state is for "
                                 f"{key}={state.get(key)}, this stream has {mine}")
        st = BucketState.from_json(state["bucket"])
        if (len(st.pending) != self.num_buckets
                or any(len(p) >= self.global_batch_size for p in st.pending)):
            raise ValueError(f"BucketSampler.restore: bucket state {state['bucket']} does not "
                             f"fit {self.num_buckets} buckets of {self.global_batch_size}")
        step = int(state["step"])
        for d in (self._states, self._plans):
            for k in [k for k in d if k >= step]:
                del d[k]
        self._states[step] = st


def _present(labels: np.ndarray, num_objects: int) -> np.ndarray:
    """Ids ``1..num_objects`` with pixels in ``labels``."""
    return np.array([k for k in range(1, num_objects + 1) if (labels == k).any()], np.int64)


def _select_lut(keep: np.ndarray, num_objects: int) -> np.ndarray:
    """``uint8 [256]``: objects ``keep`` renumbered 1..k in that order, other objects -> 0,
    :data:`~vosjax.data.augment.VOID` kept."""
    lut = np.zeros(VOID + 1, np.uint8)
    lut[keep] = np.arange(1, len(keep) + 1)
    lut[VOID] = VOID
    return lut
