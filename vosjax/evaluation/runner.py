"""Inference + scoring over a set of videos (behind ``evaluate.py`` and post-training eval).

For each :class:`~vosjax.data.video.Video`: propagate its first-frame masks
(:func:`vosjax.inference.video.segment_video`: STM, with gradient correction when asked, or
GCSeg), optionally write palette PNGs at the original resolution (original object ids) and
overlays, and score against the ground truth when the video has dense labels (the DAVIS
protocol). Writing and scoring happen in a worker thread while the next video propagates.

Resumable: with ``skip_complete=True`` (``evaluate.py`` without ``--overwrite``) a video whose
output folder is complete (every frame's PNG; its overlay GIF when overlays are asked for) is
not propagated again: its PNGs are read back and scored. A video's folder is written under a
temporary name and renamed when complete, so an interrupted run leaves only complete folders.
"""
from __future__ import annotations

import dataclasses
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Sequence

import numpy as np

from vosjax.evaluation.protocol import DavisScores, score_sequence


@dataclasses.dataclass(frozen=True)
class InferenceOptions:
    """Explicit inference settings (built from ``config.eval`` by the callers)."""
    size: tuple[int, int] = (240, 427)
    # Frame padding to ``size``: "mean" colour or "black" (the official letterbox); see
    # vosjax.data.transforms.resize_pad_frames.
    pad: str = "mean"
    # Output channels minus one (None: the video's object count; the original STM uses 10).
    num_slots: int | None = None
    mem_every: int = 5
    reference: str = "mem"
    upsample: str = "nearest"
    memory_slots: int | None = None
    correction: object | None = None   # a vosjax.correction.GradientCorrection
    # GCSeg (vosjax.gcseg.inference.segment_video): references, adaptive search, draw seed.
    num_fragments: int = 3
    adaptive_search: bool = True
    seed: int = 0


@dataclasses.dataclass
class RunReport:
    """``scores`` (None when no video has ground truth), ``fps`` per sequence (frames / s of
    the propagation, the first sequence including compilation) and totals."""
    scores: DavisScores | None
    fps: dict[str, float]
    frames: int
    seconds: float

    @property
    def overall_fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def _finish(video, labels, frames, output_dir, overlays):
    """Write (PNGs, overlays) and score one segmented video; the score or None."""
    from vosjax.data.video import write_predictions  # noqa: PLC0415

    if output_dir is not None:
        write_predictions(output_dir, video, labels)
        if overlays:
            from vosjax.evaluation.visualize import write_overlays  # noqa: PLC0415
            d = os.path.join(output_dir, "overlays", video.name)
            write_overlays(d, frames, video.to_original_ids(labels),
                           list(video.frame_names), gif_path=d + ".gif")
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
    from vosjax.data.masks import read_label_png  # noqa: PLC0415

    d = os.path.join(output_dir, video.name)
    return np.stack([video.from_original_ids(read_label_png(os.path.join(d, f"{n}.png"),
                                                            binary=False))
                     for n in video.frame_names])


def _score(video, labels):
    gt = video.labels
    if gt is not None and video.num_frames >= 3:
        return score_sequence(video.name, gt, labels)
    return None


def run_videos(model, variables, videos: Sequence, options: InferenceOptions = InferenceOptions(),
               *, output_dir: str | None = None, overlays: bool = False,
               progress: bool = False, background: bool = True,
               skip_complete: bool = False) -> RunReport:
    """Segment (and score) ``videos``; see the module docstring.

    ``background`` (default): writing a video's PNGs / overlays and scoring it run in one worker
    thread while the next video propagates (at most one video waits there, so memory stays
    bounded); a failure there is raised by the next video's hand-off or at the end, after the
    worker has finished (every folder is written whole or not at all). ``False`` does it all in
    line, in order. ``fps`` times the propagation alone either way.

    ``skip_complete`` (needs ``output_dir``): videos whose outputs are complete
    (:func:`complete_output`) are read back and scored instead of segmented again; they have
    no ``fps`` entry and count in neither ``frames`` nor ``seconds``.
    """
    from vosjax.inference.video import segment_video  # noqa: PLC0415

    fps, total_frames, total_s = {}, 0, 0.0
    done: list = []        # per video: its score (None: unscored) or a Future of it
    pool = ThreadPoolExecutor(1, thread_name_prefix="vosjax-write") if background else None
    it = videos
    if progress:
        from tqdm.auto import tqdm  # noqa: PLC0415
        it = tqdm(videos, desc="videos", unit="video")
    try:
        for video in it:
            if skip_complete and output_dir is not None and complete_output(video, output_dir,
                                                                            overlays):
                done.append(_score(video, _read_back(video, output_dir)))
                continue
            frames = video.load_frames(range(video.num_frames))
            start = time.perf_counter()
            result = segment_video(model, variables, frames, video.first_masks,
                                   size=options.size, pad=options.pad,
                                   num_slots=options.num_slots, upsample=options.upsample,
                                   mem_every=options.mem_every, correction=options.correction,
                                   reference=options.reference,
                                   memory_slots=options.memory_slots,
                                   num_fragments=options.num_fragments,
                                   adaptive_search=options.adaptive_search, seed=options.seed)
            labels = np.asarray(result.labels)   # host uint8 ids at the original size
            seconds = time.perf_counter() - start
            fps[video.name] = video.num_frames / seconds
            total_frames += video.num_frames
            total_s += seconds
            args = (video, labels, frames if overlays else None, output_dir, overlays)
            if pool is None:
                done.append(_finish(*args))
                continue
            futures = [d for d in done if isinstance(d, Future)]
            if futures:
                futures[-1].result()   # the previous video is written: raises its failure
            done.append(pool.submit(_finish, *args))
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    scored = [s for s in (d.result() if isinstance(d, Future) else d for d in done)
              if s is not None]
    scores = DavisScores(scored) if scored else None
    return RunReport(scores=scores, fps=fps, frames=total_frames, seconds=total_s)
