"""A user's own video: a folder of frames plus one first-frame mask; and the folder helpers the
DAVIS and YouTube-VOS readers share."""
from __future__ import annotations

import os

from vosjax.data import images, masks
from vosjax.data.video import Video, objects_in

FRAME_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def list_frames(frames_dir: str | os.PathLike) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Sorted frame stems and paths of the images in a folder. A missing or empty folder
    raises FileNotFoundError naming it; a gap in numeric names (00000, 00002) raises naming
    the missing frame file."""
    frames_dir = os.fspath(frames_dir)
    if not os.path.isdir(frames_dir):
        raise FileNotFoundError(f"{frames_dir}: frames folder not found")
    files = sorted(f for f in os.listdir(frames_dir) if f.lower().endswith(FRAME_EXTS))
    if not files:
        raise FileNotFoundError(f"{frames_dir}: no frames ({'/'.join(FRAME_EXTS)}) in folder")
    stems = tuple(os.path.splitext(f)[0] for f in files)
    if len(set(stems)) != len(stems):
        raise ValueError(f"{frames_dir}: two frame files share a name stem")
    return stems, tuple(os.path.join(frames_dir, f) for f in files)


def check_consecutive(stems, paths) -> None:
    """For dense videos (DAVIS): numeric stems must have no gap; names the missing frame."""
    if not all(s.isdigit() for s in stems):
        return
    nums = [int(s) for s in stems]
    for a, b, p in zip(nums, nums[1:], paths):
        if b != a + 1:
            width = len(stems[0])
            missing = os.path.join(os.path.dirname(p),
                                   f"{a + 1:0{width}d}{os.path.splitext(p)[1]}")
            raise FileNotFoundError(f"{missing}: missing frame (frames jump from {a} to {b})")


def index_annotations(ann_dir: str | os.PathLike, stems, frames_dir: str) -> dict[int, str]:
    """``{frame index: png path}`` for the PNGs in ``ann_dir`` (empty if the folder is absent).
    A PNG whose frame is absent raises FileNotFoundError naming the missing frame."""
    ann_dir = os.fspath(ann_dir)
    if not os.path.isdir(ann_dir):
        return {}
    where = {s: t for t, s in enumerate(stems)}
    out = {}
    for f in sorted(os.listdir(ann_dir)):
        stem, ext = os.path.splitext(f)
        if ext.lower() != ".png":
            continue
        if stem not in where:
            raise FileNotFoundError(f"{os.path.join(frames_dir, stem)}.*: missing frame for "
                                    f"annotation {os.path.join(ann_dir, f)}")
        out[where[stem]] = os.path.join(ann_dir, f)
    return out


def first_frame_objects(path: str, binary: bool | None) -> tuple[int, ...]:
    """Object ids of a first-frame annotation; an empty mask raises ValueError naming it."""
    ids = objects_in(masks.read_label_png(path, binary=binary), binary)
    if not ids:
        raise ValueError(f"{path}: empty first mask (no object pixels)")
    return ids


def load_folder_video(frames_dir: str | os.PathLike, first_mask: str | os.PathLike,
                      name: str | None = None, mask_frame: int | None = None,
                      max_objects: int | None = None, validate: bool = True) -> Video:
    """A video from a folder of frames (sorted by name) and one annotation PNG.

    Args:
      frames_dir: folder of ``.jpg``/``.png``/... frames.
      first_mask: palette or 0/255 PNG giving the objects to track.
      name: video name (default: the folder's name).
      mask_frame: index of the frame the mask belongs to (default: the frame with the mask's
        file stem, else 0).
      max_objects: raise if the mask holds more objects (the model's slots).
      validate: check every frame's size from its header.
    """
    frames_dir, first_mask = os.fspath(frames_dir), os.fspath(first_mask)
    stems, paths = list_frames(frames_dir)
    if mask_frame is None:
        stem = os.path.splitext(os.path.basename(first_mask))[0]
        mask_frame = stems.index(stem) if stem in stems else 0
    if not 0 <= mask_frame < len(stems):
        raise ValueError(f"{first_mask}: mask_frame {mask_frame} outside 0..{len(stems) - 1}")
    ids = first_frame_objects(first_mask, None)
    hw = images.image_size(paths[mask_frame])
    video = Video(name or os.path.basename(os.path.normpath(frames_dir)), stems, paths,
                  {mask_frame: first_mask}, ids, (mask_frame,) * len(ids), tuple(hw))
    if validate:
        video.validate()
    return video.with_objects_limit(max_objects)
