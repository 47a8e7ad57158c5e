"""Server submission zips from predicted label maps.

* YouTube-VOS: ``Annotations/<video>/<frame>.png`` for exactly the frames listed in the
  split's ``meta.json`` (the union of its objects' frames), palette PNGs.
* DAVIS test-dev / test-challenge (CodaLab): ``<sequence>/<frame>.png`` folders at the zip
  root, every frame of every sequence.

:class:`SubmissionZip` takes one sequence at a time (so a whole split never has to sit in
memory), checks that nothing expected is missing when it is closed, and only then renames its
temporary file to the final name: an interrupted or incomplete submission leaves no zip.
"""
from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from vosjax import atomic
from vosjax.data.davis import davis_frames, davis_sequences
from vosjax.data.masks import encode_palette_png

LAYOUTS = ("youtubevos", "davis")


def youtubevos_expected_frames(meta: str | os.PathLike | Mapping) -> dict[str, list[str]]:
    """``{video: sorted frame names}`` to submit, from a YouTube-VOS ``meta.json`` (path or
    parsed): the union of the frames listed for the video's objects."""
    if not isinstance(meta, Mapping):
        path = os.fspath(meta)
        try:
            with open(path) as f:
                meta = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: cannot read the YouTube-VOS meta.json ({e})") from None
    videos = meta.get("videos")
    if not isinstance(videos, Mapping):
        raise ValueError("meta.json: no 'videos' mapping")
    out = {}
    for video, info in videos.items():
        frames = set()
        for obj in info.get("objects", {}).values():
            frames.update(obj.get("frames", []))
        out[video] = sorted(frames)
    return out


def davis_expected_frames(davis_root: str | os.PathLike, split: str = "test-dev",
                          year: int = 2017) -> dict[str, list[str]]:
    """``{sequence: frame names}`` of a DAVIS split: every frame of ``JPEGImages/480p/<seq>``,
    as :func:`vosjax.data.davis.load_davis_video` reads them."""
    return {seq: list(davis_frames(davis_root, seq)[0])
            for seq in davis_sequences(davis_root, year, split)}


class SubmissionZip:
    """A submission zip built one sequence at a time.

    Args:
      path: the zip to write (replaced only when :meth:`close` succeeds).
      layout: ``"youtubevos"`` (``Annotations/<video>/<frame>.png``, only expected frames) or
        ``"davis"`` (``<sequence>/<frame>.png``, every frame given).
      expected: ``{sequence: frame names}`` that must all be present at :meth:`close`;
        required for YouTube-VOS (:func:`youtubevos_expected_frames`), optional for DAVIS
        (:func:`davis_expected_frames`).

    Use as a context manager; an exception inside the block discards the temporary zip.
    """

    def __init__(self, path: str | os.PathLike, layout: str,
                 expected: Mapping[str, Sequence[str]] | None = None):
        if layout not in LAYOUTS:
            raise ValueError(f"layout={layout!r}: must be one of {LAYOUTS}")
        if layout == "youtubevos" and expected is None:
            raise ValueError("a YouTube-VOS submission needs the expected frames of meta.json")
        self.path = os.fspath(path)
        self.layout = layout
        self.expected = {k: list(v) for k, v in expected.items()} if expected else None
        self.written: dict[str, list[str]] = {}
        self._failed: Exception | None = None
        self._out = atomic.replacing(self.path)
        self._zip = zipfile.ZipFile(self._out.tmp, "w", zipfile.ZIP_STORED)

    def add_sequence(self, name: str,
                     frames: Mapping[str, np.ndarray] | Iterable[tuple[str, np.ndarray]]) -> None:
        """Add one sequence's predictions: ``{frame name: ids [H, W]}`` or ``(name, ids)``
        pairs. For YouTube-VOS, frames not listed in meta.json are skipped and every listed
        frame must be among them."""
        try:
            self._add(name, frames)
        except Exception as e:
            self._failed = e  # the zip may hold part of this sequence: never finish it
            raise

    def _add(self, name, frames) -> None:
        if self._failed is not None:
            raise ValueError(f"{self.path}: an earlier sequence failed ({self._failed})")
        if name in self.written:
            raise ValueError(f"sequence {name!r} added twice")
        if self.expected is not None and name not in self.expected:
            raise ValueError(f"sequence {name!r} is not part of this split")
        items = frames.items() if isinstance(frames, Mapping) else frames
        wanted = set(self.expected[name]) if self.layout == "youtubevos" else None
        prefix = f"Annotations/{name}" if self.layout == "youtubevos" else name
        done = []
        for frame, labels in items:
            if wanted is not None and frame not in wanted:
                continue
            data = encode_palette_png(labels, name=f"{name}/{frame}")
            self._zip.writestr(f"{prefix}/{frame}.png", data)
            done.append(frame)
        if self.expected is not None:
            missing = sorted(set(self.expected[name]) - set(done))
            if missing:
                raise ValueError(f"sequence {name!r}: {len(missing)} expected frame(s) missing: "
                                 f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
        self.written[name] = done

    def close(self) -> str:
        """Check completeness, finish the zip and move it into place; returns its path."""
        self._zip.close()
        if self._failed is not None:
            self.discard()
            raise ValueError(f"{self.path}: not written, a sequence failed ({self._failed})")
        missing = sorted(set(self.expected or ()) - set(self.written))
        if missing:
            self.discard()
            raise ValueError(f"{self.path}: {len(missing)} sequence(s) missing from the "
                             f"submission: {', '.join(missing[:10])}"
                             f"{' ...' if len(missing) > 10 else ''}")
        return self._out.commit()

    def discard(self) -> None:
        """Drop the temporary zip (nothing is written at ``path``)."""
        self._zip.close()
        self._out.discard()

    def __enter__(self) -> SubmissionZip:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()


def write_youtubevos_submission(path: str | os.PathLike,
                                predictions: Mapping[str, Mapping[str, np.ndarray]],
                                meta: str | os.PathLike | Mapping) -> str:
    """Zip ``{video: {frame: ids [H, W]}}`` as a YouTube-VOS submission (frames of
    ``meta``); returns the zip path."""
    with SubmissionZip(path, "youtubevos", youtubevos_expected_frames(meta)) as sub:
        for video, frames in predictions.items():
            sub.add_sequence(video, frames)
    return os.fspath(path)


def write_davis_submission(path: str | os.PathLike,
                           predictions: Mapping[str, Mapping[str, np.ndarray]],
                           expected: Mapping[str, Sequence[str]] | None = None) -> str:
    """Zip ``{sequence: {frame: ids [H, W]}}`` as a DAVIS test-dev submission (sequence
    folders at the zip root); ``expected`` (:func:`davis_expected_frames`) checks that every
    frame is there. Returns the zip path."""
    with SubmissionZip(path, "davis", expected) as sub:
        for seq, frames in predictions.items():
            sub.add_sequence(seq, frames)
    return os.fspath(path)
