"""Training clip streams built from ``config.data`` (explicit fields, no config in modules).

``config.data.sources`` is a tuple of ``(dataset, repeat)`` pairs mixed by frequency, e.g. the
paper's hybrid ``(("davis2017", 5), ("youtubevos", 1))``. Dataset names:

* ``davis2017`` / ``davis2016``: a DAVIS folder at ``config.data.davis_root`` (train split);
* ``youtubevos``: a YouTube-VOS folder at ``config.data.youtubevos_root`` (train split);
* ``synthetic``: built-in synthetic videos (``config.data.synthetic``), no files needed;
* ``tfds:DIR``: videos written by :mod:`vosjax.data.tfds_builders` (array_record).
"""
from __future__ import annotations

from vosjax.data.augment import AugmentConfig
from vosjax.data.sampler import ClipSampler, SamplerConfig


def build_videos(name: str, data_cfg):
    """A ``Sequence[Video]`` for one entry of ``config.data.sources``."""
    if name in ("davis2017", "davis2016"):
        root = data_cfg.get("davis_root")
        if not root:
            raise ValueError(f"config.data.davis_root is required for source {name!r}")
        from vosjax.data.davis import DavisDataset  # noqa: PLC0415
        return DavisDataset(root, year=name[-4:], split=data_cfg.get("davis_split", "train"))
    if name == "youtubevos":
        root = data_cfg.get("youtubevos_root")
        if not root:
            raise ValueError("config.data.youtubevos_root is required for source 'youtubevos'")
        from vosjax.data.youtube_vos import YouTubeVOSDataset  # noqa: PLC0415
        return YouTubeVOSDataset(root, split="train")
    if name == "synthetic":
        from vosjax.data.synthetic import SyntheticVideos  # noqa: PLC0415
        s = data_cfg.synthetic
        return SyntheticVideos(s.num_videos, seed=s.seed, height=s.height, width=s.width,
                               num_frames=s.num_frames, distractors=s.distractors)
    if name.startswith("tfds:"):
        from vosjax.data.tfds_builders import load_videos  # noqa: PLC0415
        return load_videos(name[len("tfds:"):], "train")
    raise ValueError(f"config.data.sources: unknown dataset {name!r} (davis2017, davis2016, "
                     "youtubevos, synthetic, tfds:DIR)")


def build_sampler(data_cfg, *, seed: int, global_batch_size: int) -> ClipSampler:
    """The :class:`~vosjax.data.sampler.ClipSampler` described by ``config.data``."""
    sources = [(build_videos(name, data_cfg), int(rep)) for name, rep in data_cfg.sources]
    aug = AugmentConfig(**dict(data_cfg.augment)) if data_cfg.get("augment") else None
    cfg = SamplerConfig(num_frames=data_cfg.clip_len, max_objects=data_cfg.max_objects,
                        num_slots=data_cfg.num_slots, size=tuple(data_cfg.size),
                        gap_start=data_cfg.gap_start, gap_increment=data_cfg.gap_increment,
                        gap_every_epochs=data_cfg.gap_every_epochs, augment=aug)
    return ClipSampler(sources, cfg, seed=seed, global_batch_size=global_batch_size,
                       num_workers=data_cfg.get("num_workers", 1))
