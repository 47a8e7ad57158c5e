"""``evaluate.py --dataset`` specs -> videos to segment.

* ``davis2017:ROOT`` / ``davis2016:ROOT``: DAVIS layout, ``ImageSets/<year>/<split>.txt``;
* ``youtubevos:ROOT``: YouTube-VOS layout (``<split>/meta.json``);
* ``tfds:davis/480p`` / ``tfds:davis/full_resolution``: the stock TFDS builders (prepared);
* ``folder:FRAMES_DIR``: a user's video, with ``first_mask`` giving the objects.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence


class DatasetSpec(NamedTuple):
    kind: str            # davis | youtubevos | tfds | folder
    root: str
    year: str | None


def parse_spec(spec: str) -> DatasetSpec:
    kind, sep, root = spec.partition(":")
    if not sep or not root:
        raise ValueError(f"--dataset={spec!r}: expected davis2017:ROOT, davis2016:ROOT, "
                         "youtubevos:ROOT, tfds:davis/480p or folder:PATH")
    if kind in ("davis2017", "davis2016"):
        return DatasetSpec("davis", root, kind[-4:])
    if kind in ("youtubevos", "tfds", "folder"):
        return DatasetSpec(kind, root, None)
    raise ValueError(f"--dataset={spec!r}: unknown dataset kind {kind!r}")


def load_videos(spec: DatasetSpec, split: str, *, first_mask: str | None = None,
                max_objects: int | None = None) -> Sequence:
    """The ``Sequence[Video]`` named by ``spec`` (frames are decoded on demand)."""
    if spec.kind == "davis":
        from vosjax.data.davis import DavisDataset  # noqa: PLC0415
        return DavisDataset(spec.root, year=spec.year, split=split, max_objects=max_objects)
    if spec.kind == "youtubevos":
        from vosjax.data.youtube_vos import YouTubeVOSDataset  # noqa: PLC0415
        return YouTubeVOSDataset(spec.root, split=split, max_objects=max_objects)
    if spec.kind == "tfds":
        from vosjax.data.tfds_builders import tfds_davis_videos  # noqa: PLC0415
        name = spec.root
        if not name.startswith("davis/"):
            raise ValueError(f"--dataset=tfds:{name}: only davis/480p and davis/full_resolution")
        tfds_split = {"val": "validation"}.get(split, split)
        return tfds_davis_videos(name.split("/", 1)[1], tfds_split, max_objects=max_objects)
    if spec.kind == "folder":
        if not first_mask:
            raise ValueError("--dataset=folder:PATH needs --first_mask (the objects' PNG)")
        from vosjax.data.folder import load_folder_video  # noqa: PLC0415
        return [load_folder_video(spec.root, first_mask, max_objects=max_objects)]
    raise ValueError(f"unknown dataset kind {spec.kind!r}")
