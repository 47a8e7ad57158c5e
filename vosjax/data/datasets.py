"""Dataset specs: the one way to name a set of videos, for ``config.data.sources``,
``config.eval.dataset`` and ``evaluate.py --dataset``.

=========================  ==============================================================
spec                       videos
=========================  ==============================================================
``davis2017[:ROOT]``       a DAVIS folder (``ImageSets/<year>/<split>.txt``); without ROOT,
``davis2016[:ROOT]``       ``davis_root`` (``config.data.davis_root``)
``youtubevos[:ROOT]``      a YouTube-VOS folder (``<split>/meta.json``); without ROOT,
                           ``youtubevos_root``
``tfds:DIR``               a TFDS dataset prepared by :mod:`vosjax.data.tfds_builders` (the
                           folder holding its ``dataset_info.json``)
``tfds:davis/480p``        the stock TFDS ``davis`` builder (``480p`` or
                           ``full_resolution``; prepared beforehand)
``folder:DIR``             one video: a folder of frames, with ``first_mask`` its objects
``synthetic``              built-in synthetic videos (``synthetic``: ``config.data.synthetic``)
``static:SPEC``            clips simulated from frame 0 of each video of SPEC (GCSeg's Way-1 /
                           Way-2 pre-training; ``static``: ``config.data.static``)
=========================  ==============================================================

:func:`parse` checks a spec; :func:`open_videos` returns its ``Sequence[Video]`` (frames are
decoded on demand). ``where`` names the config field or flag in every error.
"""
from __future__ import annotations

import os
from typing import Any, Mapping, NamedTuple, Sequence

KINDS = ("davis2017", "davis2016", "youtubevos", "tfds", "folder", "synthetic", "static")
#: The stock TFDS ``davis`` builder's configs.
TFDS_DAVIS = ("davis/480p", "davis/full_resolution")
#: TFDS split names of the stock builder for the DAVIS names of the splits.
TFDS_SPLITS = {"val": "validation"}


class DatasetSpec(NamedTuple):
    """A parsed spec: ``kind`` (one of :data:`KINDS`), ``arg`` (after the first ``:``; ``""``
    when absent) and the text it came from."""
    kind: str
    arg: str
    text: str

    @property
    def year(self) -> str | None:
        """``"2017"`` / ``"2016"`` for DAVIS specs."""
        return self.kind[-4:] if self.kind.startswith("davis") else None


def parse(spec: str, where: str = "--dataset") -> DatasetSpec:
    """Check ``spec``'s form (module docstring); files are only looked at when opened."""
    kind, sep, arg = str(spec).partition(":")
    if kind not in KINDS:
        raise ValueError(f"{where}={spec!r}: unknown dataset {kind!r}; expected one of "
                         "davis2017[:ROOT], davis2016[:ROOT], youtubevos[:ROOT], tfds:DIR, "
                         "tfds:davis/480p, folder:DIR, synthetic, static:SPEC")
    if sep and not arg:
        raise ValueError(f"{where}={spec!r}: nothing after ':'")
    if kind in ("tfds", "folder", "static") and not arg:
        raise ValueError(f"{where}={spec!r}: {kind} needs an argument ({kind}:...)")
    if kind == "synthetic" and arg:
        raise ValueError(f"{where}={spec!r}: synthetic takes no argument (its settings are "
                         "config.data.synthetic)")
    if kind == "static":
        parse(arg, where)
    return DatasetSpec(kind, arg, str(spec))


def open_videos(spec: str | DatasetSpec, split: str, *, davis_root: str = "",
                youtubevos_root: str = "", synthetic: Mapping[str, Any] | None = None,
                static: Mapping[str, Any] | None = None, first_mask: str | None = None,
                max_objects: int | None = None, where: str = "--dataset") -> Sequence:
    """The ``Sequence[Video]`` named by ``spec`` (module docstring), ``split`` of it where the
    dataset has splits (``"train"``, ``"val"``, ...)."""
    s = spec if isinstance(spec, DatasetSpec) else parse(spec, where)
    if s.kind in ("davis2017", "davis2016"):
        root = s.arg or davis_root
        if not root:
            raise ValueError(f"{where}={s.text!r}: give the DAVIS folder ({s.kind}:ROOT or "
                             "config.data.davis_root)")
        from vosjax.data.davis import DavisDataset
        return DavisDataset(root, year=s.year, split=split, max_objects=max_objects)
    if s.kind == "youtubevos":
        root = s.arg or youtubevos_root
        if not root:
            raise ValueError(f"{where}={s.text!r}: give the YouTube-VOS folder "
                             "(youtubevos:ROOT or config.data.youtubevos_root)")
        from vosjax.data.youtube_vos import YouTubeVOSDataset
        return YouTubeVOSDataset(root, split=split, max_objects=max_objects)
    if s.kind == "tfds":
        from vosjax.data import tfds_builders
        if os.path.isdir(s.arg):
            return tfds_builders.load_videos(s.arg, split)
        if s.arg in TFDS_DAVIS:
            return tfds_builders.tfds_davis_videos(s.arg.split("/", 1)[1],
                                                   TFDS_SPLITS.get(split, split),
                                                   max_objects=max_objects)
        raise ValueError(f"{where}={s.text!r}: not a folder prepared by "
                         f"vosjax.data.tfds_builders, nor one of {TFDS_DAVIS}")
    if s.kind == "folder":
        if not first_mask:
            raise ValueError(f"{where}={s.text!r}: a folder video needs its first mask "
                             "(evaluate.py --first_mask)")
        from vosjax.data.folder import load_folder_video
        return [load_folder_video(s.arg, first_mask, max_objects=max_objects)]
    if s.kind == "synthetic":
        return _synthetic(synthetic, where)
    # static:SPEC: only frame 0 of each base video is used (synthetic bases render just that).
    if not static:
        raise ValueError(f"{where}={s.text!r}: needs static-clip settings "
                         "(config.data.static: num_frames, seed, way2_prob)")
    from vosjax.data.synthetic import StaticClips
    base_spec = parse(s.arg, where)
    base = (_synthetic(synthetic, where, num_frames=1) if base_spec.kind == "synthetic"
            else open_videos(base_spec, split, davis_root=davis_root,
                             youtubevos_root=youtubevos_root, synthetic=synthetic,
                             max_objects=max_objects, where=where))
    return StaticClips(base, num_frames=static["num_frames"], seed=static["seed"],
                       way2_prob=static["way2_prob"])


def _synthetic(settings, where, **overrides):
    if not settings:
        raise ValueError(f"{where}: synthetic videos need their settings "
                         "(config.data.synthetic)")
    from vosjax.data.synthetic import SyntheticVideos

    kw = dict(seed=settings["seed"], height=settings["height"], width=settings["width"],
              num_frames=settings["num_frames"], distractors=settings["distractors"])
    kw.update(overrides)
    return SyntheticVideos(settings["num_videos"], **kw)
