"""DAVIS 2016 / 2017 reader (480p and Full-Resolution).

Layout::

    <root>/JPEGImages/<resolution>/<seq>/00000.jpg ...
    <root>/Annotations/<resolution>/<seq>/00000.png ...
    <root>/ImageSets/<year>/<split>.txt          one sequence name per line

DAVIS-2016 masks are 0/255 ``L`` images (one object); with ``year="2016"`` any non-zero id is
the single object, so DAVIS-2016 evaluated on DAVIS-2017 annotations merges its objects, as the
2016 benchmark does. DAVIS-2017 masks are palette images with ids 0..N. Every object is given in
the first frame; train/val annotate every frame, test-dev only the first.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

from vosjax.data.folder import (
    check_consecutive,
    first_frame_objects,
    index_annotations,
    list_frames,
)
from vosjax.data.images import image_size
from vosjax.data.video import Video

RESOLUTIONS = ("480p", "Full-Resolution")


def davis_splits(root: str | os.PathLike, year: str = "2017") -> list[str]:
    """Sorted split names of ``ImageSets/<year>/*.txt`` (FileNotFoundError naming the folder)."""
    sets = os.path.join(os.fspath(root), "ImageSets", str(year))
    if not os.path.isdir(sets):
        raise FileNotFoundError(f"{sets}: DAVIS split folder not found")
    return sorted(f[:-4] for f in os.listdir(sets) if f.endswith(".txt"))


def davis_sequences(root: str | os.PathLike, year: str = "2017", split: str = "val") -> list[str]:
    """Sequence names of ``ImageSets/<year>/<split>.txt`` (blank lines skipped); a missing or
    empty file raises naming it."""
    path = os.path.join(os.fspath(root), "ImageSets", str(year), f"{split}.txt")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: DAVIS split file not found (the DAVIS root is the "
                                "folder holding ImageSets/ and Annotations/)")
    with open(path) as f:
        names = [line.strip() for line in f if line.strip()]
    if not names:
        raise ValueError(f"{path}: split file lists no sequences")
    return names


def davis_frames(root: str | os.PathLike, name: str,
                 resolution: str = "480p") -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Frame stems and paths of ``JPEGImages/<resolution>/<name>`` (sorted, no numbering gap);
    a missing folder or frame raises naming it."""
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {resolution!r}")
    stems, paths = list_frames(os.path.join(os.fspath(root), "JPEGImages", resolution, name))
    check_consecutive(stems, paths)
    return stems, paths


def load_davis_video(root: str | os.PathLike, name: str, resolution: str = "480p",
                     year: str = "2017", max_objects: int | None = None,
                     validate: bool = True) -> Video:
    """One DAVIS sequence as a :class:`Video` (frames and annotations decoded lazily)."""
    root = os.fspath(root)
    stems, paths = davis_frames(root, name, resolution)
    frames_dir = os.path.dirname(paths[0])
    ann_dir = os.path.join(root, "Annotations", resolution, name)
    labels = index_annotations(ann_dir, stems, frames_dir)
    if 0 not in labels:
        raise FileNotFoundError(f"{os.path.join(ann_dir, stems[0])}.png: first-frame "
                                "annotation not found")
    binary = True if str(year) == "2016" else None
    ids = first_frame_objects(labels[0], binary)
    video = Video(name, stems, paths, labels, ids, (0,) * len(ids), image_size(paths[0]),
                  binary=binary)
    if validate:
        video.validate()
    return video.with_objects_limit(max_objects)


class DavisDataset(Sequence):
    """The sequences of one DAVIS split; ``ds[i]`` or ``ds["blackswan"]`` -> :class:`Video`.

    Videos are opened (and validated) on access; nothing is decoded until asked.
    """

    def __init__(self, root: str | os.PathLike, year: str = "2017", split: str = "val",
                 resolution: str = "480p", max_objects: int | None = None,
                 validate: bool = True):
        self.root, self.year, self.split = os.fspath(root), str(year), split
        self.resolution, self.max_objects, self.validate = resolution, max_objects, validate
        self.names = davis_sequences(self.root, self.year, split)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, key):
        name = key if isinstance(key, str) else self.names[key]
        return load_davis_video(self.root, name, self.resolution, self.year,
                                self.max_objects, self.validate)
