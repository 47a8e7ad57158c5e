"""Inference + scoring over a set of videos (behind ``evaluate.py`` and post-training eval).

For each :class:`~vosjax.data.video.Video`: propagate its first-frame masks, optionally write
palette PNGs at the original resolution (original object ids) and overlays, and score against
the ground truth when the video has dense labels (the DAVIS protocol).

* **STM** (both families, with gradient correction when asked):
  :func:`vosjax.inference.batch.segment_videos` segments the videos that share compiled
  programs ``devices x videos_per_device`` at a time, sharded over the local devices (one
  program per working size, object count and memory size); frames are decoded in threads
  ahead of the device and resized on it. The labels are those of
  :func:`vosjax.inference.video.segment_video` video by video (byte-identical PNGs; tested).
* **GCSeg**: one video after another on the default device
  (:func:`~vosjax.inference.video.segment_video`).

Writing PNGs / overlays and scoring run in worker threads while the device segments the next
videos. ``processes=True`` under ``jax.distributed`` (``evaluate.py --num_processes``): each
process segments a disjoint share of the videos (about equal frames) and process 0 merges the
scores, frames/s and memory figures (:mod:`vosjax.evaluation.multihost`). ``progress=True``
shows one bar over every process's frames (frames/s, ETA) on process 0.

Resumable: with ``skip_complete=True`` (``evaluate.py`` without ``--overwrite``) a video whose
output folder is complete (every frame's PNG; its overlay GIF when overlays are asked for) is
not propagated again: its PNGs are read back and scored. A video's folder is written under a
temporary name and renamed when complete, so an interrupted run leaves only complete folders.
"""
from __future__ import annotations

import collections
import dataclasses
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Sequence

import numpy as np

from vosjax.evaluation.protocol import DavisScores, score_sequence
from vosjax.inference.options import GCSegOptions, STMOptions
from vosjax.inference.video import check_options


@dataclasses.dataclass
class RunReport:
    """``scores`` (None when no video has ground truth), ``fps`` per segmented sequence (its
    frames / the wall time of the batch it was segmented in; the first batch of a program
    includes compilation), ``peak_memory`` per segmented sequence (bytes: the high-water mark
    of its device's memory when its batch ended, None where the backend does not report it,
    e.g. the CPU) and totals (``seconds``: the segmentation's wall time; with several
    processes the longest process's)."""
    scores: DavisScores | None
    fps: dict[str, float]
    frames: int
    seconds: float
    peak_memory: dict[str, int | None] = dataclasses.field(default_factory=dict)

    @property
    def overall_fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def _finish(video, labels, output_dir, overlays):
    """Write (PNGs, overlays) and score one segmented video; the score or None."""
    from vosjax.data.video import write_predictions

    if output_dir is not None:
        write_predictions(output_dir, video, labels)
        if overlays:
            from vosjax.evaluation.visualize import write_overlays
            d = os.path.join(output_dir, "overlays", video.name)
            write_overlays(d, video.load_frames(range(video.num_frames)),
                           video.to_original_ids(labels), list(video.frame_names),
                           gif_path=d + ".gif")
    return _score(video, labels)


def complete_output(video, output_dir: str, overlays: bool = False) -> bool:
    """True when ``output_dir`` already holds ``video``'s finished outputs: its folder with
    exactly one PNG per frame (and, with ``overlays``, its overlay GIF, written last)."""
    d = os.path.join(output_dir, video.name)
    if not os.path.isdir(d):
        return False
    want = {f"{n}.png" for n in video.frame_names}
    if {f for f in os.listdir(d) if f.endswith(".png")} != want:
        return False
    gif = os.path.join(output_dir, "overlays", video.name + ".gif")
    return not overlays or os.path.isfile(gif)


def _read_back(video, output_dir):
    """The labels (ids 0..N) of a complete output folder, for scoring it again."""
    from vosjax.data.masks import read_label_png

    d = os.path.join(output_dir, video.name)
    return np.stack([video.from_original_ids(read_label_png(os.path.join(d, f"{n}.png"),
                                                            binary=False))
                     for n in video.frame_names])


def _score_read_back(video, output_dir):
    return _score(video, _read_back(video, output_dir))


def _score(video, labels):
    gt = video.labels
    if gt is not None and video.num_frames >= 3:
        return score_sequence(video.name, gt, labels)
    return None


class _Writer:
    """Runs the per-video output work (write + score) in ``threads`` worker threads, at most
    ``2 * threads`` videos waiting (bounded memory); inline when ``background`` is False. A
    failure is raised when a later hand-off waits for that video, or by :meth:`results`, after
    every worker has finished (folders are written whole or not at all)."""

    def __init__(self, background: bool, threads: int = 4):
        self.pool = (ThreadPoolExecutor(threads, thread_name_prefix="vosjax-write")
                     if background else None)
        self.limit = 2 * threads
        self.done: dict[int, object] = {}
        self.pending: collections.deque = collections.deque()

    def submit(self, index: int, fn, *args) -> None:
        if self.pool is None:
            self.done[index] = fn(*args)
            return
        while len(self.pending) >= self.limit:
            self.pending.popleft().result()
        fut = self.pool.submit(fn, *args)
        self.done[index] = fut
        self.pending.append(fut)

    def shutdown(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)

    def results(self) -> dict[int, object]:
        self.shutdown()
        return {i: d.result() if isinstance(d, Future) else d for i, d in self.done.items()}


class _Progress:
    """One bar over the frames to segment (frames/s, ETA) and videos done; with a process
    group, process 0's bar counts every process's frames (read from their progress files at
    most twice a second) and every process writes its own."""

    def __init__(self, frames: int, videos: int, *, show: bool, group=None):
        self.frames, self.videos, self.done, self.videos_done = frames, videos, 0, 0
        self.group, self._last = group, 0.0
        self.bar = None
        if show:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=frames, unit="frame", desc="segmenting", smoothing=0.05,
                            dynamic_ncols=True)
        self.sync(force=True)

    def add(self, frames: int = 0, videos: int = 0) -> None:
        self.done += frames
        self.videos_done += videos
        if self.bar is not None and self.group is None:
            self.bar.update(frames)
            if videos:
                self.bar.set_postfix_str(f"videos {self.videos_done}/{self.videos}",
                                         refresh=False)
        self.sync()

    def sync(self, force: bool = False, **extra) -> None:
        if self.group is None or (not force and time.monotonic() - self._last < 0.5):
            return
        self._last = time.monotonic()
        self.group.write_progress(done=self.done, frames=self.frames,
                                  videos_done=self.videos_done, videos=self.videos, **extra)
        if self.bar is None:
            return
        rows = [r for r in self.group.read_progress() if r]
        self.bar.total = max(sum(r["frames"] for r in rows), 1)
        self.bar.n = sum(r["done"] for r in rows)
        self.bar.set_postfix_str(f"videos {sum(r['videos_done'] for r in rows)}/"
                                 f"{sum(r['videos'] for r in rows)}, processes {len(rows)}/"
                                 f"{self.group.count}", refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _stm_outputs(model, variables, videos, todo, options, mesh, on_frames):
    """(index, labels, batch seconds, batch names, peak bytes) per video, via the batched
    engine."""
    from vosjax.inference.batch import VideoSource, segment_videos

    sources = [VideoSource(videos[i].name, videos[i].num_frames, videos[i].hw,
                           tuple(videos[i].object_first),
                           lambda t, v=videos[i]: v.load_frames([t])[0],
                           lambda v=videos[i]: v.first_masks) for i in todo]
    for out in segment_videos(model, variables, sources, options, mesh=mesh,
                              on_frames=on_frames):
        yield todo[out.index], out.labels, out.seconds, out.batch, out.peak_bytes


def _one_by_one(model, variables, videos, todo, options, on_frames):
    """The same, one video after another on the default device (GCSeg)."""
    import jax

    from vosjax.inference.batch import DeviceMemoryError, is_out_of_memory, peak_bytes
    from vosjax.inference.video import segment_video

    for i in todo:
        video = videos[i]
        frames = video.load_frames(range(video.num_frames))
        start = time.perf_counter()
        try:
            result = segment_video(model, variables, frames, video.first_masks, options)
            labels = np.asarray(result.labels)   # host uint8 ids at the original size
        except jax.errors.JaxRuntimeError as e:
            if is_out_of_memory(e):
                raise DeviceMemoryError(
                    f"video {video.name!r} ({video.num_frames} frames of {video.hw[0]}x"
                    f"{video.hw[1]} at {options.size[0]}x{options.size[1]}, "
                    f"{video.num_objects} object(s)) does not fit in the memory of "
                    f"{jax.devices()[0]}; try a smaller working size (--config.data.size) or "
                    f"fewer references (--config.eval.num_fragments)") from e
            raise
        seconds = time.perf_counter() - start
        on_frames(video.num_frames)
        yield i, labels, seconds, (video.name,), peak_bytes(jax.devices()[0])


def run_videos(model, variables, videos: Sequence, options: STMOptions | GCSegOptions | None = None,
               *, output_dir: str | None = None, overlays: bool = False,
               progress: bool = False, background: bool = True,
               skip_complete: bool = False, processes: bool = False, mesh=None,
               writers: int = 4) -> RunReport:
    """Segment (and score) ``videos``; see the module docstring.

    ``background`` (default): writing a video's PNGs / overlays and scoring it run in
    ``writers`` worker threads while later videos propagate (a bounded number waiting); a
    failure there is raised by a later hand-off or at the end, after the workers have finished
    (every folder is written whole or not at all). ``False`` does it all in line.

    ``skip_complete`` (needs ``output_dir``): videos whose outputs are complete
    (:func:`complete_output`) are read back and scored instead of segmented again; they have
    no ``fps`` entry and count in neither ``frames`` nor ``seconds``.

    ``processes``: under ``jax.distributed`` with several processes, segment this process's
    share only (needs an ``output_dir`` every process sees); process 0 returns the merged
    report of all videos, the others the report of their share. ``mesh``: the devices of
    the STM engine (default: all local devices, :func:`vosjax.inference.batch.local_mesh`).
    """
    from vosjax.evaluation.multihost import ProcessGroup, share_videos

    options = STMOptions() if options is None else options
    check_options(model, options)
    videos = list(videos)    # a dataset opens (and checks) a video on every access
    group = None
    if processes:
        import jax
        if jax.process_count() > 1:
            if output_dir is None:
                raise ValueError("evaluation over several processes needs an output folder "
                                 "that every process sees")
            group = ProcessGroup.current(output_dir)
            group.start()
    rank, count = (group.rank, group.count) if group else (0, 1)
    mine = share_videos([v.num_frames for v in videos], count)[rank]
    reuse = {i for i in mine if skip_complete and output_dir is not None
             and complete_output(videos[i], output_dir, overlays)}
    todo = [i for i in mine if i not in reuse]
    bar = _Progress(sum(videos[i].num_frames for i in todo), len(todo),
                    show=progress and rank == 0, group=group)
    writer = _Writer(background, writers)
    fps, peaks, batches = {}, {}, {}
    outputs = None
    try:
        for i in sorted(reuse):
            writer.submit(i, _score_read_back, videos[i], output_dir)
        if isinstance(options, GCSegOptions):
            outputs = _one_by_one(model, variables, videos, todo, options, bar.add)
        else:
            outputs = _stm_outputs(model, variables, videos, todo, options, mesh, bar.add)
        for i, labels, seconds, batch, peak in outputs:
            video = videos[i]
            fps[video.name] = video.num_frames / seconds
            peaks[video.name] = peak
            batches[batch] = seconds
            bar.add(videos=1)
            writer.submit(i, _finish, video, labels, output_dir, overlays)
        done = writer.results()
    except BaseException as e:
        if outputs is not None:
            outputs.close()     # stops the decoding threads
        writer.shutdown()
        bar.sync(force=True, error=f"{type(e).__name__}: {e}")
        bar.close()
        raise
    frames = sum(videos[i].num_frames for i in todo)
    seconds = sum(batches.values())
    if group is not None:
        bar.sync(force=True, finished=True)
        group.put_results({"scores": done, "fps": fps, "peaks": peaks, "frames": frames,
                           "seconds": seconds})
        if rank == 0:
            parts = group.wait_results(on_poll=lambda: bar.sync())
            bar.sync(force=True, finished=True)
            done = {i: s for p in parts for i, s in p["scores"].items()}
            fps = {k: v for p in parts for k, v in p["fps"].items()}
            peaks = {k: v for p in parts for k, v in p["peaks"].items()}
            frames = sum(p["frames"] for p in parts)
            seconds = max(p["seconds"] for p in parts)
    bar.close()
    order = {v.name: i for i, v in enumerate(videos)}
    scored = [done[i] for i in sorted(done) if done[i] is not None]
    return RunReport(scores=DavisScores(tuple(scored)) if scored else None,
                     fps=dict(sorted(fps.items(), key=lambda kv: order[kv[0]])),
                     frames=frames, seconds=seconds,
                     peak_memory=dict(sorted(peaks.items(), key=lambda kv: order[kv[0]])))
