"""TFDS: the stock ``davis`` builder adapter and our own ``array_record`` builders.

No TensorFlow is needed (see docs/data.md): our builders store frames and annotations as
*encoded bytes* (the original JPEG/PNG files, or PNG for synthetic videos) in
``Tensor(shape=(), dtype=object)`` features, written to ``array_record`` and read back with
random access (``as_data_source``). :class:`TfdsVideos` turns each record into a lazy
:class:`~vosjax.data.video.Video` whose frames are decoded only when the sampler asks for them.

Importing this module imports ``tensorflow_datasets`` and registers the builders
``davis_folder``, ``youtube_vos_folder`` and ``synthetic_vos``.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from vosjax.data import images, masks
from vosjax.data.davis import DavisDataset, davis_splits
from vosjax.data.synthetic import SyntheticVideos
from vosjax.data.video import Video, video_from_arrays
from vosjax.data.youtube_vos import YouTubeVOSDataset

_BYTES = tfds.features.Tensor(shape=(), dtype=np.object_)
_INT = tfds.features.Tensor(shape=(), dtype=np.int32)


def video_features() -> tfds.features.FeaturesDict:
    """Our per-video record: encoded frames/annotations plus what :class:`Video` needs."""
    return tfds.features.FeaturesDict({
        "name": tfds.features.Text(),
        "height": _INT,
        "width": _INT,
        "binary": _INT,
        "frame_names": tfds.features.Sequence(tfds.features.Text()),
        "frames": tfds.features.Sequence(_BYTES),
        "label_frames": tfds.features.Sequence(_INT),
        "labels": tfds.features.Sequence(_BYTES),
        "object_ids": tfds.features.Sequence(_INT),
        "object_first": tfds.features.Sequence(_INT),
    })


def _encoded(src: Any, kind: str) -> bytes:
    if isinstance(src, (bytes, bytearray)):
        return bytes(src)
    if isinstance(src, np.ndarray):
        return images.encode_image(src, "png") if kind == "frame" else \
            masks.encode_palette_png(src)
    with open(os.fspath(src), "rb") as f:
        return f.read()


def video_to_example(video: Video) -> dict[str, Any]:
    """A :class:`Video` -> a record of :func:`video_features` (files copied byte for byte;
    in-memory arrays encoded as PNG)."""
    ann = video.annotated_frames
    return {
        "name": video.name, "height": video.hw[0], "width": video.hw[1],
        "binary": int(bool(video.binary)),
        "frame_names": list(video.frame_names),
        "frames": [_encoded(s, "frame") for s in video.frame_sources],
        "label_frames": list(ann),
        "labels": [_encoded(video.label_sources[t], "label") for t in ann],
        "object_ids": list(video.object_ids), "object_first": list(video.object_first),
    }


def _text(x) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


def video_from_example(ex: dict[str, Any]) -> Video:
    """A record read back (numpy, from ``as_data_source``) -> lazy :class:`Video`."""
    return Video(
        _text(ex["name"]), tuple(_text(n) for n in ex["frame_names"]), list(ex["frames"]),
        {int(t): b for t, b in zip(ex["label_frames"], ex["labels"])},
        tuple(int(i) for i in ex["object_ids"]), tuple(int(t) for t in ex["object_first"]),
        (int(ex["height"]), int(ex["width"])), binary=True if int(ex["binary"]) else None)


class TfdsVideos(Sequence):
    """``Sequence[Video]`` over a random-access TFDS data source of :func:`video_features`
    records (or of the stock ``davis`` builder with ``adapter=video_from_tfds_davis``)."""

    def __init__(self, data_source, adapter=video_from_example):
        self.data_source, self.adapter = data_source, adapter

    def __len__(self) -> int:
        return len(self.data_source)

    def __getitem__(self, i: int) -> Video:
        n = len(self.data_source)
        if not -n <= i < n:
            raise IndexError(f"video index {i} out of range for {n} videos")
        return self.adapter(self.data_source[i % n])


def host_split(split: str, process_index: int | None = None,
               process_count: int | None = None):
    """This host's even share of ``split`` (``tfds.even_splits``), for readers that should not
    see the whole split. (The :class:`~vosjax.data.sampler.ClipSampler` instead shards clip
    indices and can read the full split on every host.)"""
    if process_index is None or process_count is None:
        import jax
        process_index, process_count = jax.process_index(), jax.process_count()
    return tfds.even_splits(split, n=process_count)[process_index]


def load_videos(data_dir: str | os.PathLike, split: str = "train") -> TfdsVideos:
    """Open a prepared builder directory (``<data_dir>/<name>/<config>/<version>`` or any
    folder holding ``dataset_info.json``) for random access; no builder class needed."""
    builder = tfds.builder_from_directory(os.fspath(data_dir))
    return TfdsVideos(builder.as_data_source(split=split))


# --- the stock tfds `davis` builder --------------------------------------------------------

def video_from_tfds_davis(ex: dict[str, Any], max_objects: int | None = None) -> Video:
    """An example of the stock ``davis/480p`` or ``davis/full_resolution`` builder (features
    ``video.frames`` [T, H, W, 3], ``video.segmentations`` [T, H, W, 1] ids 0..N,
    ``metadata.video_name``) -> :class:`Video` (in memory; DAVIS annotates every frame)."""
    name = _text(ex["metadata"]["video_name"])
    frames = np.asarray(ex["video"]["frames"])
    segs = np.asarray(ex["video"]["segmentations"])
    if segs.ndim == 4:
        segs = segs[..., 0]
    if segs.shape != frames.shape[:3]:
        raise ValueError(f"tfds davis video {name}: segmentations {segs.shape} differ from "
                         f"frames {frames.shape[:3]} (annotation size != frame size)")
    video = video_from_arrays(name, frames, segs.astype(np.uint8), max_objects=max_objects)
    if not video.num_objects or min(video.object_first) != 0:
        raise ValueError(f"tfds davis video {name}: empty first mask (frame 0 has no object)")
    return video


def tfds_davis_videos(config: str = "480p", split: str = "validation",
                      data_dir: str | None = None, max_objects: int | None = None) -> TfdsVideos:
    """The stock ``davis/<config>`` dataset as ``Sequence[Video]`` via ``tfds.data_source``."""
    if config not in ("480p", "full_resolution"):
        raise ValueError(f"config must be '480p' or 'full_resolution', got {config!r}")
    ds = tfds.data_source(f"davis/{config}", split=split, data_dir=data_dir)
    return TfdsVideos(ds, lambda ex: video_from_tfds_davis(ex, max_objects))


# --- our builders ---------------------------------------------------------------------------

class _VideoBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Shared: features and writing every video of a ``Sequence[Video]`` per split."""
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}

    def __init__(self, *, file_format: str = "array_record", **kwargs):
        super().__init__(file_format=file_format, **kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(builder=self, features=video_features())

    def _videos(self, split: str) -> Sequence[Video]:
        raise NotImplementedError

    def _splits(self) -> Sequence[str]:
        raise NotImplementedError

    def _split_generators(self, dl_manager):
        del dl_manager
        return {s: self._generate_examples(self._videos(s)) for s in self._splits()}

    def _generate_examples(self, videos):
        for i in range(len(videos)):
            video = videos[i]
            yield video.name, video_to_example(video)


class DavisFolderConfig(tfds.core.BuilderConfig):
    def __init__(self, *, year: str, resolution: str, **kwargs):
        super().__init__(**kwargs)
        self.year, self.resolution = year, resolution


class DavisFolder(_VideoBuilder):
    """A DAVIS-layout folder -> ``array_record``; splits = ``ImageSets/<year>/*.txt`` (or
    ``splits=``). ``DavisFolder(root=..., config="2017-480p", data_dir=...)``."""
    BUILDER_CONFIGS = [DavisFolderConfig(name=f"{y}-{r}", year=y, resolution=r)
                       for y in ("2016", "2017") for r in ("480p", "Full-Resolution")]

    def __init__(self, *, root: str | None = None, splits: Sequence[str] | None = None,
                 **kwargs):
        self._root, self._split_names = root, splits
        super().__init__(**kwargs)

    def _splits(self):
        if self._root is None:
            raise ValueError("DavisFolder needs root= to prepare the dataset")
        if self._split_names:
            return list(self._split_names)
        return davis_splits(self._root, self.builder_config.year)

    def _videos(self, split):
        c = self.builder_config
        return DavisDataset(self._root, c.year, split, c.resolution)


class YoutubeVosFolder(_VideoBuilder):
    """A YouTube-VOS-layout folder -> ``array_record``; ``splits`` default ``("train",)``."""

    def __init__(self, *, root: str | None = None, splits: Sequence[str] = ("train",),
                 **kwargs):
        self._root, self._split_names = root, tuple(splits)
        super().__init__(**kwargs)

    def _splits(self):
        if self._root is None:
            raise ValueError("YoutubeVosFolder needs root= to prepare the dataset")
        return list(self._split_names)

    def _videos(self, split):
        return YouTubeVOSDataset(self._root, split)


class SyntheticVos(_VideoBuilder):
    """Synthetic videos (:func:`vosjax.data.synthetic.synthetic_video`) -> ``array_record``.
    ``SyntheticVos(num_videos={"train": 100}, seed=0, height=.., width=.., num_frames=..)``."""

    def __init__(self, *, num_videos: dict[str, int] | None = None, seed: int = 0,
                 video_kwargs: dict[str, Any] | None = None, **kwargs):
        self._num = dict(num_videos or {"train": 16})
        self._seed, self._kw = seed, dict(video_kwargs or {})
        super().__init__(**kwargs)

    def _splits(self):
        return list(self._num)

    def _videos(self, split):
        # Each split gets its own seed stream: (seed, split number).
        return SyntheticVideos(self._num[split], seed=(self._seed, list(self._num).index(split)),
                               **self._kw)
