"""Training batch streams built from ``config.data`` (explicit fields, no config in modules),
and the input pipeline that runs them on grain worker processes.

``config.data.sources`` is a tuple of ``(dataset, repeat)`` pairs mixed by frequency, e.g. the
paper's hybrid ``(("davis2017", 5), ("youtubevos", 1))``. Each dataset is a spec of
:mod:`vosjax.data.datasets` (the same specs as ``evaluate.py --dataset``): ``davis2017``
(``config.data.davis_root``, split ``config.data.davis_split``), ``youtubevos``
(``config.data.youtubevos_root``), ``synthetic`` (``config.data.synthetic``), ``tfds:DIR``,
``static:SPEC`` (GCSeg's static-image clips, ``config.data.static``), ...

Object slots (``config.train.slot_policy``, :data:`SLOT_POLICIES`): the STM step computes every
object channel of ``masks``, so how clips with different object counts share a batch decides
how much of an update is spent on empty slots:

* ``"bucket"`` (the paper configs): :class:`vosjax.data.sampler.BucketSampler`, every batch
  holds clips of one object count ``n`` and ``n`` slots (one compiled step per ``n``); on one
  host and on several, decided on the global stream;
* ``"trim"``: :func:`trim_slots`, batches of any counts trimmed to their largest (one host
  only: per-host trimming would give hosts different shapes; padded on several hosts);
* ``"pad"``: every clip padded to ``config.data.num_slots`` (one compiled step).

Stages: with ``config.data.pretrain_steps = N > 0`` the first ``N`` steps sample from
``config.data.pretrain_sources`` and the rest from ``config.data.sources``
(:class:`vosjax.data.sampler.StagedSampler`); one run, one compiled step.

The pipeline (:func:`host_batches`): steps ``start..stop`` are a grain ``MapDataset``; each
element is the stream's ``batch(step)`` (decode + geometric augmentation of this host's clips
of the step, uint8), computed in ``config.data.num_workers`` worker processes (grain
``mp_prefetch``: each worker takes every ``num_workers``-th step and hands its batches over in
shared memory, in step order) and buffered ``config.data.prefetch`` batches ahead in the
training process. A stream is a pure function of ``(seed, step)`` and of the state restored
from the checkpoint, so the pipeline's own state is just where it starts; the worker count
does not change a batch.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import weakref

import numpy as np

from vosjax.data import datasets
from vosjax.data.augment import AugmentConfig
from vosjax.data.sampler import BucketSampler, ClipSampler, HostBatch, SamplerConfig, StagedSampler

SLOT_POLICIES = ("bucket", "trim", "pad")


def build_videos(name: str, data_cfg):
    """A ``Sequence[Video]`` for one entry of ``config.data.sources`` (a dataset spec of
    :mod:`vosjax.data.datasets`; DAVIS reads ``config.data.davis_split``, the others their
    ``"train"`` split)."""
    spec = datasets.parse(name, where="config.data.sources")
    base = datasets.parse(spec.arg, "config.data.sources") if spec.kind == "static" else spec
    split = data_cfg.davis_split if base.year else "train"
    return datasets.open_videos(spec, split, davis_root=data_cfg.davis_root,
                                youtubevos_root=data_cfg.youtubevos_root,
                                synthetic=data_cfg.synthetic, static=data_cfg.static,
                                where="config.data.sources")


def build_sampler(data_cfg, *, seed: int, global_batch_size: int, sources=None, pick=None,
                  **overrides) -> ClipSampler:
    """The :class:`~vosjax.data.sampler.ClipSampler` described by ``config.data``.

    ``sources`` replaces ``config.data.sources``; ``pick`` chooses a clip's frames (see
    :class:`ClipSampler`); ``overrides`` replace :class:`SamplerConfig` fields (a task's
    needs, e.g. GCSeg's one object per clip)."""
    sources = data_cfg.sources if sources is None else sources
    videos = [(build_videos(name, data_cfg), int(rep)) for name, rep in sources]
    aug = augment_config(data_cfg)
    fields = dict(num_frames=data_cfg.clip_len, max_objects=data_cfg.max_objects,
                  num_slots=data_cfg.num_slots, size=tuple(data_cfg.size),
                  gap_start=data_cfg.gap_start, gap_increment=data_cfg.gap_increment,
                  gap_every_epochs=data_cfg.gap_every_epochs, augment=aug)
    fields.update(overrides)
    return ClipSampler(videos, SamplerConfig(**fields), seed=seed,
                       global_batch_size=global_batch_size, pick=pick)


def augment_config(data_cfg) -> AugmentConfig | None:
    """``config.data.augment`` (None or empty: no augmentation)."""
    aug = data_cfg.augment
    return AugmentConfig(**dict(aug)) if aug else None


def slot_policy(train_cfg) -> str:
    """``config.train.slot_policy``, validated."""
    policy = train_cfg.slot_policy
    if policy not in SLOT_POLICIES:
        raise ValueError(f"config.train.slot_policy={policy!r}: expected one of {SLOT_POLICIES}")
    return policy


def build_batches(config, **overrides):
    """The training stream of ``config``: a :class:`ClipSampler`, or a
    :class:`StagedSampler` when ``config.data.pretrain_steps > 0``; each stage wrapped in a
    :class:`BucketSampler` when ``config.train.slot_policy == "bucket"`` and its clips can
    hold more than one object. ``overrides`` go to :func:`build_sampler`."""
    d = config.data
    bucket = slot_policy(config.train) == "bucket"
    kw = dict(seed=config.seed, global_batch_size=config.train.batch_size, **overrides)

    def make(**extra):
        s = build_sampler(d, **kw, **extra)
        return BucketSampler(s) if bucket and s.config.max_objects > 1 else s

    main = make()
    steps = int(d.pretrain_steps)
    if steps <= 0:
        return main
    return StagedSampler([(make(sources=d.pretrain_sources), steps), (main, None)])


def trim_slots(batch: HostBatch) -> HostBatch:
    """``batch`` with ``num_slots`` cut to the largest object count of its clips (at least 1;
    ``config.train.slot_policy = "trim"``).

    The plain stream gives every batch ``num_slots`` object slots so that one program serves
    all batches; the slots no clip uses are empty masks that the STM step still memorizes and
    segments. Trimming them compiles one step per object count (at most ``num_slots``) and
    skips the slots no clip of the batch uses (``"bucket"`` skips all of them); the extra
    channels only add the probability clamp's ~1e-7 terms to the soft aggregation, so the loss
    is unchanged up to float rounding.
    """
    n = max(int(np.max(batch.arrays["num_objects"])), 1)
    return batch._replace(num_slots=min(n, batch.num_slots))


def host_batches(stream, start_step: int, stop_step: int, *, num_workers: int = 0,
                 prefetch: int = 2, worker_buffer: int = 2):
    """An iterator over ``stream.batch(step)`` (:class:`~vosjax.data.sampler.HostBatch`) for
    ``step = start_step .. stop_step - 1`` (see the module docstring).

    ``num_workers``: grain worker processes (0: in this process); ``prefetch``: batches
    buffered ahead by a thread of this process; ``worker_buffer``: batches each worker
    computes ahead. ``stream`` (with a restored state, if any) is pickled to every worker;
    with several workers, a bucketed stream's object counts are shared between them through
    a table in a temporary folder (:class:`~vosjax.data.sampler.CountMemo`). Close the
    iterator (``.close()``) to stop the workers. Needs ``grain``.
    """
    import grain

    if stop_step <= start_step:
        raise ValueError(f"host_batches: no step in [{start_step}, {stop_step})")
    if num_workers < 0 or prefetch < 0:
        raise ValueError(f"config.data.num_workers={num_workers} and config.data.prefetch="
                         f"{prefetch} must be >= 0")
    _absl_flags_parsed()
    memo_dir = None
    if num_workers > 1 and hasattr(stream, "share_counts"):
        import cloudpickle  # (grain's own dependency)

        memo_dir = tempfile.mkdtemp(prefix="vosjax-counts-")
        # The workers' copy (the caller's stream is left alone), its tables made here.
        stream = cloudpickle.loads(cloudpickle.dumps(stream))
        stream.share_counts(memo_dir)
    ds = grain.MapDataset.range(int(start_step), int(stop_step)).map(stream.batch)
    # One thread per process: a stream's caches (bucket plan, videos) are not thread-safe, and
    # the decoding is spread over processes instead.
    it = ds.to_iter_dataset(grain.ReadOptions(num_threads=0, prefetch_buffer_size=0))
    if num_workers > 0:
        it = it.mp_prefetch(grain.MultiprocessingOptions(
            num_workers=int(num_workers), per_worker_buffer_size=max(1, int(worker_buffer))),
            worker_init_fn=_exit_with_parent)
    if prefetch > 0:
        it = grain.experimental.ThreadPrefetchIterDataset(it, prefetch_buffer_size=int(prefetch))
    out = _Batches(iter(it), memo_dir)
    out.start_prefetch()
    return out


class _Batches:
    """:func:`host_batches`' iterator: grain's, with the arrays moved out of the workers'
    shared memory (which is then released at once, not when the last reference goes), and
    the removal of the count tables."""

    def __init__(self, it, memo_dir):
        self._it = it
        self._cleanup = (weakref.finalize(self, shutil.rmtree, memo_dir, True)
                         if memo_dir else None)

    def __iter__(self):
        return self

    def __next__(self):
        hb = next(self._it)
        return hb._replace(arrays={k: v if type(v) is np.ndarray else np.array(v)
                                   for k, v in hb.arrays.items()})

    def start_prefetch(self) -> None:
        self._it.start_prefetch()

    def close(self) -> None:
        self._it.close()
        if self._cleanup is not None:
            self._cleanup()


def _exit_with_parent(worker_index: int, worker_count: int) -> None:
    """Run in each input worker: exit when the training process is gone. A killed trainer's
    workers (SIGKILL, the OOM killer) would otherwise live on, holding its output pipes,
    memory and the host's cores."""
    del worker_index, worker_count
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="vosjax-parent-watch", daemon=True).start()


def _absl_flags_parsed() -> None:
    """grain reads absl flags (its defaults unless a program parsed the command line, as
    ``train.py`` does); outside an absl program (tests, notebooks) take the defaults."""
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
