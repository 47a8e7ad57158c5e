"""Many videos at once (``vosjax.inference.batch``, evaluate.py's engine) against one video after
another with the frames resized on the host, on real DAVIS 480p frames.

* ``one by one``: what ``segment_video`` did before the engine, per video: decode every JPEG,
  numpy keep-aspect resize to the working size, ``propagate``, numpy resize back.
* ``engine, N per device``: :func:`vosjax.inference.batch.segment_videos` on the local devices
  (frames decoded in threads ahead of the device, resized inside the step, uint8 labels back).

Each setting runs once to compile, then ``--repeats`` timed runs (medians), alternating. The
labels must be identical (480p halved to 240x427 is an exact resize). Writes
``benchmarks/results/many_videos_<backend>.json``::

    python -m benchmarks.many_videos --davis ../shared/data/davis2016-mini
"""
from __future__ import annotations

import argparse
import time

from benchmarks import harness


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--davis", required=True, help="DAVIS-2016 folder (davis2016-mini works)")
    p.add_argument("--arch", default="resnet10", help="resnet10 (small dims) | resnet18 | ...")
    harness.add_size(p)
    p.add_argument("--frames", type=int, default=0, help="first N frames per video (0: all)")
    p.add_argument("--per-device", type=int, nargs="+", default=[1, 3])
    harness.add_repeats(p, 2, "timed runs of every setting")
    harness.add_out(p, "many_videos_{backend}.json")
    args = p.parse_args(argv)

    import jax
    import numpy as np

    from vosjax.data.davis import DavisDataset
    from vosjax.data.transforms import resize_pad_frames, resize_pad_labels, unpad_resize_probs
    from vosjax.data.video import Video
    from vosjax.inference.batch import VideoSource, segment_videos
    from vosjax.inference.options import STMOptions
    from vosjax.inference.propagation import propagate
    from vosjax.models.stm import STM, init_stm

    backend = jax.default_backend()
    ds = DavisDataset(args.davis, year="2016", split="val")
    videos = []
    for v in ds:
        n = min(args.frames or v.num_frames, v.num_frames)
        videos.append(Video(v.name, v.frame_names[:n], v.frame_sources[:n],
                            {t: s for t, s in v.label_sources.items() if t < n},
                            v.object_ids, v.object_first, v.hw, v.binary))
    frames = sum(v.num_frames for v in videos)
    dims = dict(keydim=16, valdim=32, mdim=32) if args.arch == "resnet10" else {}
    model = STM(args.arch, **dims)
    variables = init_stm(model, jax.random.PRNGKey(0), 64, 64)
    size = tuple(args.size)

    def one_by_one():
        labels = {}
        for v in videos:
            ann = v.first_masks[0]
            x, info = resize_pad_frames(v.load_frames(), size)
            small = resize_pad_labels((ann == 1)[None].astype(np.uint8), size)[0]
            probs = propagate(model, variables, x, small.astype(np.float32)).probs
            labels[v.name] = unpad_resize_probs(probs, info)
        return labels

    def engine(per_device):
        sources = [VideoSource(v.name, v.num_frames, v.hw, tuple(v.object_first),
                               lambda t, v=v: v.load_frames([t])[0], lambda v=v: v.first_masks)
                   for v in videos]
        return {videos[o.index].name: o.labels
                for o in segment_videos(model, variables, sources,
                                        STMOptions(size=size, videos_per_device=per_device))}

    settings = [("one by one (host resize)", one_by_one)] + [
        (f"engine, {k} per device", lambda k=k: engine(k)) for k in args.per_device]
    ref = None
    times: dict[str, list[float]] = {name: [] for name, _ in settings}
    for rep in range(args.repeats + 1):            # run 0 compiles
        for name, fn in settings:
            start = time.perf_counter()
            labels = fn()
            if rep:
                times[name].append(time.perf_counter() - start)
            ref = ref or labels
            same = all(np.array_equal(labels[k], ref[k]) for k in ref)
            if not same:
                raise SystemExit(f"{name}: labels differ from the one-by-one path")
    run = harness.Run("many_videos", backend, __file__, argv,
                      settings={"arch": args.arch, "size": list(size),
                                "devices": jax.local_device_count(), "videos": len(videos),
                                "frames": frames})
    base = np.median(times[settings[0][0]])
    for name, _ in settings:
        med = float(np.median(times[name]))
        run.add_row({"setting": name, **harness.summary(times[name]),
                     "frames_per_s": round(frames / med, 2),
                     "speedup_vs_one_by_one": round(base / med, 3)}, show=False)
        print(f"{name:28s} {frames / med:8.2f} frames/s  x{base / med:.2f}", flush=True)
    run.write(harness.out_path(args, backend), labels_identical=True)
    return run.result


if __name__ == "__main__":
    main()
