"""YouTube-VOS 2018 / 2019 reader.

Layout::

    <root>/<split>/meta.json
    <root>/<split>/JPEGImages/<video>/00000.jpg ...
    <root>/<split>/Annotations/<video>/00000.png ...      palette PNGs, original object ids

``meta.json`` is ``{"videos": {video: {"objects": {"<id>": {"category": str,
"frames": ["00000", "00005", ...]}}}}}``. Annotations are sparse (train: every 5th frame;
valid: only the frame where an object first appears), objects may first appear at any frame,
and ids need not be contiguous: they are remapped to ``1..N`` (sorted original ids) and mapped
back by :func:`vosjax.data.video.write_predictions`. For ``valid_all_frames`` pass
``frames_split="valid_all_frames"``: frames come from there, annotations and meta from ``split``.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence

from vosjax.data.folder import index_annotations, list_frames
from vosjax.data.images import image_size
from vosjax.data.video import Video


def read_meta(root: str | os.PathLike, split: str = "train") -> dict:
    """``{video: {original id (int): sorted frame stems}}`` from ``<root>/<split>/meta.json``."""
    path = os.path.join(os.fspath(root), split, "meta.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: YouTube-VOS split file (meta.json) not found")
    try:
        with open(path) as f:
            videos = json.load(f)["videos"]
        return {v: {int(i): sorted(o["frames"]) for i, o in d["objects"].items()}
                for v, d in sorted(videos.items())}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: malformed meta.json ({type(e).__name__}: {e})") from None


def load_youtube_vos_video(root: str | os.PathLike, name: str, objects: dict,
                           split: str = "train", frames_split: str | None = None,
                           max_objects: int | None = None, validate: bool = True) -> Video:
    """One video; ``objects`` is its entry of :func:`read_meta`."""
    root = os.fspath(root)
    frames_dir = os.path.join(root, frames_split or split, "JPEGImages", name)
    stems, paths = list_frames(frames_dir)
    ann_dir = os.path.join(root, split, "Annotations", name)
    labels = index_annotations(ann_dir, stems, frames_dir)
    where = {s: t for t, s in enumerate(stems)}
    ids = tuple(sorted(objects))
    if not ids:
        raise ValueError(f"{os.path.join(root, split, 'meta.json')}: video {name} lists no "
                         "objects")
    first = []
    for i in ids:
        stem = objects[i][0] if objects[i] else None
        if stem not in where:
            raise FileNotFoundError(f"{os.path.join(frames_dir, str(stem))}.jpg: missing frame "
                                    f"(first frame of object {i} in meta.json)")
        if where[stem] not in labels:
            raise FileNotFoundError(f"{os.path.join(ann_dir, stem)}.png: annotation of object "
                                    f"{i}'s first frame not found")
        first.append(where[stem])
    video = Video(name, stems, paths, labels, ids, tuple(first), image_size(paths[0]))
    if validate:
        video.validate()
    return video.with_objects_limit(max_objects)


class YouTubeVOSDataset(Sequence):
    """The videos of a YouTube-VOS split; ``ds[i]`` or ``ds[name]`` -> :class:`Video`."""

    def __init__(self, root: str | os.PathLike, split: str = "train",
                 frames_split: str | None = None, max_objects: int | None = None,
                 validate: bool = True):
        self.root, self.split, self.frames_split = os.fspath(root), split, frames_split
        self.max_objects, self.validate = max_objects, validate
        self.meta = read_meta(self.root, split)
        self.names = list(self.meta)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, key):
        name = key if isinstance(key, str) else self.names[key]
        return load_youtube_vos_video(self.root, name, self.meta[name], self.split,
                                      self.frames_split, self.max_objects, self.validate)
