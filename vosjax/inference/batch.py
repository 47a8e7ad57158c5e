"""Many videos at once: STM propagation of a batch of videos through one compiled step,
sharded over the local devices.

Videos whose compiled programs would be the same (:class:`BatchSpec`: original and working
size, object count, output channels, memory-bank slots, reference set, correction) are
segmented together, ``B = devices x videos_per_device`` at a time. Each program is the
``jax.vmap`` of the one-video function of :mod:`vosjax.inference.propagation` (initial state,
per-frame step, gradient correction), jitted with explicit shardings: the video axis is split
over a one-axis :class:`~jax.sharding.Mesh` (``"videos"``), the variables are replicated. The
videos of a batch advance frame by frame together; a video shorter than the batch's longest
gets zero frames after its end and its outputs there are dropped; empty places of the last
batch of a group are zero videos without objects.

Resizing is inside the programs: the step takes the uint8 frames at their original size and
returns uint8 channel ids at the original size (:mod:`vosjax.inference.resize`: the numpy
transform's numbers), so the host only decodes JPEGs and encodes PNGs. Frames are decoded in a
thread pool ahead of the device (a bounded look-ahead of ``prefetch`` frame batches), and each
step's labels are copied back while later steps run (at most ``in_flight`` steps queued).

Every video gets the programs it would get alone (same shapes but the batch axis), so its
labels are those of :func:`vosjax.inference.video.segment_video` (``tests/test_eval_many.py``:
byte-identical PNGs on 8 CPU devices with 2 videos per device, and on 2 processes). Nothing
guarantees that a backend computes a batched convolution bit for bit as an unbatched one;
XLA:CPU does here, and a GPU check is owed (this was written without one).

A batch that does not fit in device memory raises :class:`DeviceMemoryError` naming its videos
and a ``memory_slots`` cap to try.
"""
from __future__ import annotations

import collections
import dataclasses
import functools
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from vosjax.data.transforms import content_mask, fit_info, resize_pad_labels
from vosjax.inference.options import STMOptions
from vosjax.inference.propagation import (
    StepConfig,
    correction_step,
    init_state,
    propagation_step,
    video_bank_slots,
)
from vosjax.inference.resize import fit_frames, labels_at_original_size

AXIS = "videos"


class DeviceMemoryError(MemoryError):
    """A batch of videos did not fit in device memory (the message names the videos and the
    settings to change); ``__cause__`` is XLA's RESOURCE_EXHAUSTED error."""


class VideoSource(NamedTuple):
    """One video for :func:`segment_videos`, decoded on demand.

    ``start_frames``: per object (ids ``1..N`` in :func:`objects_from_annotations` order), the
    frame of its first mask; ``load_frame(t)``: uint8 ``[H, W, 3]``; ``load_annotations()``:
    ``{frame: label map [H, W]}`` as :func:`vosjax.inference.video.segment_video` takes."""
    name: str
    num_frames: int
    hw: tuple[int, int]
    start_frames: tuple[int, ...]
    load_frame: Callable[[int], np.ndarray]
    load_annotations: Callable[[], Mapping[int, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class BatchSpec:
    """What the compiled programs of a batch depend on (videos with equal specs share them)."""
    orig_hw: tuple[int, int]
    size: tuple[int, int]
    pad: str
    upsample: str
    num_objects: int
    bank_slots: int
    content: bool          # memorized masks zeroed outside the image (the original STM)
    cfg: StepConfig

    def describe(self) -> str:
        return (f"{self.orig_hw[0]}x{self.orig_hw[1]} frames at {self.size[0]}x{self.size[1]}, "
                f"{self.num_objects} object(s), {self.bank_slots} memory slots")


class VideoOutput(NamedTuple):
    """``index`` in the input list; ``labels`` uint8 ``[T, H, W]`` with the video's object ids
    (0 background) at the original size; ``seconds`` wall time of its batch (its first frame
    batch dispatched to its labels on the host; the first batch of a spec includes
    compilation); ``peak_bytes`` the high-water mark of its device's memory when its batch
    ended (``memory_stats()['peak_bytes_in_use']``; None where the backend reports none, e.g.
    the CPU); ``batch`` the names of the videos segmented with it."""
    index: int
    labels: np.ndarray
    seconds: float
    peak_bytes: int | None
    batch: tuple[str, ...]


def batch_spec(video: VideoSource, options: STMOptions, content: bool = False) -> BatchSpec:
    """The :class:`BatchSpec` of ``video`` with these options (as
    :func:`~vosjax.inference.video.segment_video` would compile them); ``content``: memorized
    masks zeroed outside the image (the original STM)."""
    o = len(video.start_frames)
    if o < 1:
        raise ValueError(f"{video.name}: no object to segment")
    k = o if options.num_slots is None else options.num_slots
    if k < o:
        raise ValueError(f"{video.name}: {o} objects do not fit in num_slots={k}")
    cfg = StepConfig(num_slots=k, mem_every=options.mem_every, reference=options.reference,
                     correction=options.correction)
    slots = video_bank_slots(video.num_frames, cfg, video.start_frames, options.memory_slots)
    return BatchSpec(orig_hw=tuple(int(v) for v in video.hw), size=options.size,
                     pad=options.pad, upsample=options.upsample,
                     num_objects=o, bank_slots=slots, content=content, cfg=cfg)


def local_mesh(devices: Sequence | None = None) -> Mesh:
    """A one-axis mesh (``"videos"``) over ``devices`` (default: this process's devices)."""
    devices = jax.local_devices() if devices is None else list(devices)
    return Mesh(np.array(devices), (AXIS,))


class _Programs(NamedTuple):
    init: Callable     # (variables, frames0 u8 [B,H,W,3], masks [B,O,h,w], active [B,O])
    step: Callable     # (variables, state, frames u8, masks, new [B,O]) -> (state, labels)
    correct: Callable  # (variables, state, apply [B], labels) -> (state, labels)


@functools.lru_cache(maxsize=32)
def _programs(model, spec: BatchSpec, mesh: Mesh) -> _Programs:
    """The three jitted, vmapped programs of ``spec`` on ``mesh``."""
    info = fit_info(spec.orig_hw, spec.size)
    content = content_mask(info, spec.size) if spec.content else None
    cfg = spec.cfg

    def fit(raw):
        return fit_frames(raw, info, spec.size, spec.pad)

    def labels(probs):
        return labels_at_original_size(probs, info, spec.upsample)

    def init_one(variables, raw, masks, active):
        state, probs0 = init_state(model, variables, fit(raw), masks, active, cfg=cfg,
                                   bank_slots=spec.bank_slots, content=content)
        return state, labels(probs0)

    def step_one(variables, state, raw, masks, new):
        state, out = propagation_step(model, variables, state, fit(raw), masks, new, cfg=cfg)
        return state, labels(out.probs)

    def correct_one(variables, state, apply, labs):
        _, corrected, _ = correction_step(model, variables, state, cfg=cfg)
        state = state._replace(prev_probs=jnp.where(apply, corrected, state.prev_probs))
        if cfg.correction.record_corrected:
            labs = jnp.where(apply, labels(corrected), labs)
        return state, labs

    rep, vid = NamedSharding(mesh, PartitionSpec()), NamedSharding(mesh, PartitionSpec(AXIS))
    init = jax.jit(jax.vmap(init_one, in_axes=(None, 0, 0, 0)),
                   in_shardings=(rep, vid, vid, vid), out_shardings=(vid, vid))
    step = jax.jit(jax.vmap(step_one, in_axes=(None, 0, 0, 0, 0)),
                   in_shardings=(rep, vid, vid, vid, vid), out_shardings=(vid, vid),
                   donate_argnums=(1,))
    correct = None
    if cfg.correction is not None:
        correct = jax.jit(jax.vmap(correct_one, in_axes=(None, 0, 0, 0)),
                          in_shardings=(rep, vid, vid, vid), out_shardings=(vid, vid),
                          donate_argnums=(1,))
    return _Programs(init, step, correct)


def plan_batches(specs: Sequence[BatchSpec], num_frames: Sequence[int],
                 batch: int) -> list[tuple[BatchSpec, list[int]]]:
    """Group video indices by spec, longest first within a group, in batches of ``batch``;
    batches ordered longest first (so a video that does not fit shows up early)."""
    groups: dict[BatchSpec, list[int]] = {}
    for i, spec in enumerate(specs):
        groups.setdefault(spec, []).append(i)
    out = []
    for spec, idx in groups.items():
        idx = sorted(idx, key=lambda i: (-num_frames[i], i))
        out += [(spec, idx[j:j + batch]) for j in range(0, len(idx), batch)]
    out.sort(key=lambda sb: (-num_frames[sb[1][0]], sb[1][0]))
    return out


class _Header(NamedTuple):
    """A batch's per-video tables (host): masks at the working size, start frames (-1: no
    object), id lookup tables."""
    masks: np.ndarray     # float32 [B, O, h, w]
    starts: np.ndarray    # int64 [B, O]
    luts: list            # per video: channel -> object id


def _header(videos, idx, spec: BatchSpec, batch: int) -> _Header:
    from vosjax.inference.video import objects_from_annotations

    o, k = spec.num_objects, spec.cfg.num_slots + 1
    masks = np.zeros((batch, o) + spec.size, np.float32)
    starts = np.full((batch, o), -1, np.int64)
    luts = []
    for b, i in enumerate(idx):
        v = videos[i]
        ids, st, m = objects_from_annotations(v.load_annotations(), v.num_frames)
        if len(ids) != o or tuple(st.tolist()) != tuple(v.start_frames):
            raise ValueError(f"{v.name}: its annotations give objects starting at "
                             f"{st.tolist()}, the video says {list(v.start_frames)}")
        if m.shape[1:] != tuple(v.hw):
            raise ValueError(f"{v.name}: annotations are {m.shape[1:]} but frames {v.hw}")
        masks[b] = resize_pad_labels(m.astype(np.uint8), spec.size)[0]
        starts[b] = st
        luts.append(np.array((0,) + ids + (0,) * (k - 1 - len(ids)),
                             np.uint8 if max(ids) <= 255 else np.int32))
    return _Header(masks, starts, luts)


def _frames_at(videos, idx, t: int, spec: BatchSpec, batch: int) -> np.ndarray:
    out = np.zeros((batch,) + spec.orig_hw + (3,), np.uint8)
    for b, i in enumerate(idx):
        if t < videos[i].num_frames:
            f = np.asarray(videos[i].load_frame(t))
            if f.shape != spec.orig_hw + (3,) or f.dtype != np.uint8:
                raise ValueError(f"{videos[i].name}: frame {t} is {f.dtype} {f.shape}, "
                                 f"expected uint8 {spec.orig_hw + (3,)}")
            out[b] = f
    return out


def is_out_of_memory(error: BaseException) -> bool:
    """True for XLA's RESOURCE_EXHAUSTED (device out of memory) runtime error."""
    return isinstance(error, jax.errors.JaxRuntimeError) and "RESOURCE_EXHAUSTED" in str(error)


def _memory_error(spec: BatchSpec, names, per_device: int, devices) -> DeviceMemoryError:
    hints = []
    if spec.bank_slots > 2:
        cap = spec.bank_slots // 2
        hints.append(f"--config.eval.memory_slots={cap} (the first frame and the {cap - 1} "
                     f"most recent memory frames; now {spec.bank_slots} slots)")
    if per_device > 1:
        hints.append(f"--config.eval.videos_per_device=1 (now {per_device})")
    hints.append(f"a smaller working size (--config.data.size, now {spec.size})")
    return DeviceMemoryError(
        f"video(s) {', '.join(repr(n) for n in names)} ({spec.describe()}, "
        f"{per_device} per device on {', '.join(map(str, devices))}) do not fit in device "
        f"memory; try {' or '.join(hints)}")


def peak_bytes(device) -> int | None:
    """``device``'s memory high-water mark (``memory_stats()['peak_bytes_in_use']``), or None
    where the backend does not report it (the CPU)."""
    try:
        stats = device.memory_stats()
    except Exception:  # noqa: BLE001 -- a backend without the query
        return None
    return int(stats["peak_bytes_in_use"]) if stats and "peak_bytes_in_use" in stats else None


def segment_videos(model, variables, videos: Sequence[VideoSource],
                   options: STMOptions | None = None, *, mesh: Mesh | None = None,
                   prefetch: int = 8, in_flight: int = 4, decode_threads: int | None = None,
                   on_frames: Callable[[int], None] | None = None) -> Iterator[VideoOutput]:
    """Segment ``videos`` with an STM model, a batch at a time (module docstring).

    ``options``: as :func:`~vosjax.inference.video.segment_video` (default
    :class:`~vosjax.inference.options.STMOptions`), ``options.videos_per_device`` videos per
    device in one program; memorized masks are zeroed outside the image for the original STM
    (``model.memorizes_content_only``). ``mesh``: a one-axis mesh (default
    :func:`local_mesh`). ``on_frames(n)`` is called as ``n`` more frames have their labels on
    the host. Yields a :class:`VideoOutput` per video as its batch ends (batch order, not
    input order).
    """
    from vosjax.inference.video import check_options, memorizes_content_only

    options = STMOptions() if options is None else options
    check_options(model, options)
    mesh = local_mesh() if mesh is None else mesh
    batch = mesh.size * options.videos_per_device
    content = memorizes_content_only(model)
    specs = [batch_spec(v, options, content) for v in videos]
    plan = plan_batches(specs, [v.num_frames for v in videos], batch)
    if not plan:
        return
    variables = jax.device_put(variables, NamedSharding(mesh, PartitionSpec()))
    threads = decode_threads or min(8, os.cpu_count() or 1)
    pool = ThreadPoolExecutor(threads, thread_name_prefix="vosjax-decode")

    def work():   # what to decode, in the order the device needs it (submitted when pulled)
        for spec, idx in plan:
            yield "header", pool.submit(_header, videos, idx, spec, batch)
            for t in range(max(videos[i].num_frames for i in idx)):
                yield t, pool.submit(_frames_at, videos, idx, t, spec, batch)

    ahead: collections.deque = collections.deque()
    items = work()

    def pull():
        while len(ahead) < max(prefetch, 2):
            nxt = next(items, None)
            if nxt is None:
                break
            ahead.append(nxt)
        return ahead.popleft()

    try:
        for spec, idx in plan:
            yield from _run_batch(model, variables, videos, spec, idx, batch, mesh,
                                  options.videos_per_device, pull, in_flight, on_frames)
    finally:
        for _, fut in ahead:
            fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def _run_batch(model, variables, videos, spec, idx, batch, mesh, per_device, pull, in_flight,
               on_frames):
    names = [videos[i].name for i in idx]
    lengths = np.array([videos[i].num_frames for i in idx] + [0] * (batch - len(idx)))
    kind, fut = pull()
    assert kind == "header"
    head = fut.result()
    progs = _programs(model, spec, mesh)
    labels_host: dict[int, np.ndarray] = {}
    pending: collections.deque = collections.deque()
    start = time.perf_counter()

    def collect(keep: int):
        while len(pending) > keep:
            t, lab = pending.popleft()
            labels_host[t] = np.asarray(lab)
            if on_frames is not None:
                on_frames(int(np.sum(lengths > t)))

    sharding = NamedSharding(mesh, PartitionSpec(AXIS))

    def put(x):   # host -> this process's devices (explicit: jit takes no sharded numpy input
        return jax.device_put(x, sharding)   # under jax.distributed)

    try:
        masks = head.masks
        active = head.starts == 0
        state = labs = None
        for t in range(int(lengths.max())):
            kind, fut = pull()
            assert kind == t
            frames = put(fut.result())
            if t == 0:
                masks = put(masks)
                state, labs = progs.init(variables, frames, masks, put(active))
            else:
                new = (head.starts == t) & (t < lengths)[:, None]
                state, labs = progs.step(variables, state, frames, masks, put(new))
                active = active | new
                if spec.cfg.corrects(t):
                    apply = (t < lengths) & ~new.any(axis=1) & active.any(axis=1)
                    if apply.any():
                        state, labs = progs.correct(variables, state, put(apply), labs)
            labs.copy_to_host_async()
            pending.append((t, labs))
            collect(in_flight)
        collect(0)
    except jax.errors.JaxRuntimeError as e:
        if is_out_of_memory(e):
            raise _memory_error(spec, names, per_device, list(mesh.devices.flat)) from e
        raise
    seconds = time.perf_counter() - start
    peaks = [peak_bytes(d) for d in mesh.devices.flat]
    stacked = np.stack([labels_host[t] for t in range(int(lengths.max()))], axis=1)
    for b, i in enumerate(idx):
        lab = head.luts[b][stacked[b, :lengths[b]]]
        yield VideoOutput(index=i, labels=lab, seconds=seconds,
                          peak_bytes=peaks[b // per_device], batch=tuple(names))
