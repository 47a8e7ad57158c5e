"""``evaluate.py`` inference mode: model + dataset -> PNGs, CSVs, submission zip, frames/s."""
from __future__ import annotations

import os

from vosjax.atomic import write_json
from vosjax.evaluation import protocol
from vosjax.evaluation.datasets import load_videos, parse_spec
from vosjax.evaluation.runner import run_videos


def run(config, *, checkpoint: str, dataset: str, split: str, output: str,
        first_mask: str | None = None, overlays: bool = False, bar_chart: bool = False,
        overwrite: bool = False) -> dict:
    """Segment ``dataset`` with the model in ``checkpoint`` using ``config.eval`` settings.

    Resumes by default: videos whose outputs in ``output`` are complete are read back and
    scored, not segmented again (an interrupted run continues where it stopped);
    ``overwrite`` segments every video again. STM videos are spread over all local devices
    (``config.eval.videos_per_device`` per device); under ``jax.distributed`` each process
    segments its share and process 0 writes the CSVs, ``summary.json`` and the zip (``output``
    must be a folder every process sees)."""
    import jax  # noqa: PLC0415

    from vosjax.checkpoint import load_model  # noqa: PLC0415
    from vosjax.training.run import inference_options  # noqa: PLC0415
    from vosjax.training.tasks import model_numerics  # noqa: PLC0415

    from vosjax import compilation_cache  # noqa: PLC0415

    compilation_cache.enable(config.compile_cache)
    spec = parse_spec(dataset)
    # config.model.compute decides the numerics (the checkpoint stores the architecture only).
    model, variables = load_model(checkpoint, **model_numerics(config.model))
    videos = load_videos(spec, split, first_mask=first_mask)
    opts = inference_options(config)
    os.makedirs(output, exist_ok=True)
    report = run_videos(model, variables, videos, opts, output_dir=output, overlays=overlays,
                        progress=True, skip_complete=not overwrite, processes=True)
    if jax.process_index() != 0:    # process 0 merges and writes the results
        print(f"process {jax.process_index()} of {jax.process_count()}: segmented "
              f"{len(report.fps)} videos ({report.frames} frames, {report.overall_fps:.1f} "
              f"frames/s); process 0 writes the results in {output}")
        return {"process": jax.process_index(), "fps": report.fps}
    skipped = len(videos) - len(report.fps)
    if skipped:
        print(f"{skipped} of {len(videos)} videos already complete in {output}: read back and "
              "scored, not segmented again (--overwrite segments all)")
    print(f"{'sequence':30s} {'frames/s':>8s} {'peak device memory':>19s}")
    for name, fps in report.fps.items():
        print(f"{name:30s} {fps:8.1f} {_mib(report.peak_memory.get(name)):>19s}")
    print(f"{'overall':30s} {report.overall_fps:8.1f} frames/s ({report.frames} frames on "
          f"{jax.device_count()} device(s) in {jax.process_count()} process(es); the first "
          "batch of each program includes compilation)")
    if report.fps and all(report.peak_memory.get(n) is None for n in report.fps):
        print(f"peak device memory: n/a (the {jax.default_backend()} backend does not report "
              "it)")
    summary = {"checkpoint": os.path.abspath(checkpoint), "dataset": dataset, "split": split,
               "fps": report.fps, "overall_fps": report.overall_fps,
               "peak_device_memory_mib": {n: None if b is None else b / 2**20
                                          for n, b in report.peak_memory.items()},
               "devices": jax.device_count(), "processes": jax.process_count(),
               "videos_per_device": opts.videos_per_device,
               "correction": opts.correction is not None}
    if report.scores is not None:
        for path in protocol.write_csvs(report.scores, output, split):
            print(f"wrote {path}")
        print(protocol.format_table(report.scores, split))
        summary["global"] = report.scores.global_row()
        if bar_chart:
            from vosjax.evaluation.visualize import jf_bar_chart  # noqa: PLC0415
            jf_bar_chart(report.scores.per_object_rows(),
                         os.path.join(output, f"jf_per_sequence-{split}.png"))
    if spec.kind == "youtubevos":
        summary["submission"] = _youtubevos_zip(spec.root, split, output, videos)
        print(f"wrote {summary['submission']}")
    write_json(os.path.join(output, "summary.json"), summary, default=float)
    return summary


def _mib(nbytes) -> str:
    return "n/a" if nbytes is None else f"{nbytes / 2**20:.1f} MiB"


def _youtubevos_zip(root, split, output, videos):
    """Zip the PNGs of the frames listed in ``meta.json`` (the server's expected layout)."""
    from vosjax.data.masks import read_label_png  # noqa: PLC0415
    from vosjax.evaluation.submission import write_youtubevos_submission  # noqa: PLC0415

    meta = os.path.join(root, split, "meta.json")
    preds = {}
    for v in videos:
        d = os.path.join(output, v.name)
        preds[v.name] = {os.path.splitext(f)[0]: read_label_png(os.path.join(d, f), binary=False)
                         for f in sorted(os.listdir(d)) if f.endswith(".png")}
    return write_youtubevos_submission(os.path.join(output, "submission.zip"), preds, meta)
