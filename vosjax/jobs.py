"""The jobs behind the entry points: ``train.py`` (:func:`train_and_evaluate`: train, then
score held-out videos with the trained and the untrained model) and ``evaluate.py``'s inference
mode (:func:`evaluate`: a model directory and a dataset -> PNGs, CSVs, submission zip,
frames/s). The model family is looked up here, once, from ``config.model.name`` or the model
directory, and passed down (:mod:`vosjax.families`)."""
from __future__ import annotations

import os

import jax

from vosjax import compilation_cache, families
from vosjax.atomic import write_json
from vosjax.data import datasets
from vosjax.evaluation import protocol
from vosjax.evaluation.runner import RunReport, run_videos
from vosjax.training.input_pipeline import build_videos
from vosjax.training.loop import train
from vosjax.training.step import initial_variables

#: Environment variables of a multi-host launch (``config.distributed = True``) that JAX does
#: not read itself (it reads ``JAX_COORDINATOR_ADDRESS``); unset under SLURM / Open MPI / a
#: TPU pod, where JAX finds all three on its own.
PROCESS_ENV = ("JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


def init_distributed() -> None:
    """``jax.distributed.initialize`` for ``config.distributed``: the coordinator
    ``host:port`` from ``JAX_COORDINATOR_ADDRESS`` (read by JAX) and this process's place from
    ``JAX_NUM_PROCESSES`` / ``JAX_PROCESS_ID`` when set (else the cluster's own variables);
    see the README's "Multi-host training"."""
    kw = {}
    for var, arg in zip(PROCESS_ENV, ("num_processes", "process_id")):
        value = os.environ.get(var)
        if value is None:
            continue
        try:
            kw[arg] = int(value)
        except ValueError:
            raise ValueError(f"environment variable {var}={value!r}: expected an integer") \
                from None
    if "num_processes" in kw and not 0 <= kw.get("process_id", 0) < kw["num_processes"]:
        raise ValueError(f"JAX_PROCESS_ID={kw.get('process_id')} must be in [0, "
                         f"JAX_NUM_PROCESSES={kw['num_processes']})")
    jax.distributed.initialize(**kw)


def heldout_videos(config):
    """Evaluation videos: ``config.eval.dataset`` (a ``config.data.sources`` name) with
    ``config.eval.synthetic`` for synthetic ones (a seed disjoint from training)."""
    e = config.eval
    if e.dataset == "synthetic":
        data = config.data.copy_and_resolve_references()
        with data.unlocked():
            data.synthetic = e.synthetic
        videos = build_videos("synthetic", data)
    else:
        videos = build_videos(e.dataset, config.data)
    n = e.num_videos
    return [videos[i] for i in range(min(n, len(videos)) if n else len(videos))]


def _summary(report: RunReport) -> dict:
    row = report.scores.global_row() if report.scores is not None else {}
    return {**{k: float(v) for k, v in row.items()}, "fps": report.overall_fps,
            "frames": report.frames}


def train_and_evaluate(config, workdir: str) -> dict:
    """Train per ``config`` in ``workdir``; if ``config.eval.enabled``, score the held-out
    videos with the trained and (``config.eval.compare_untrained``) the untrained model and
    write ``WORKDIR/eval.json``."""
    if config.distributed:
        init_distributed()
    compilation_cache.enable(config.compile_cache)
    family = families.get(config.model.name)
    out = train(config, workdir, family)
    if not config.eval.enabled:
        return {"train": out}
    videos = heldout_videos(config)
    opts = families.inference_options(config, family)
    model = out["model"]
    results = {"step": out["step"], "train_steps_per_s": out["steps_per_s"],
               "trained": _summary(run_videos(model, out["variables"], videos, opts))}
    if config.eval.compare_untrained:
        init = family.init_variables(model, config)
        v0 = initial_variables(init, jax.random.PRNGKey(config.seed))
        results["untrained"] = _summary(run_videos(model, v0, videos, opts))
    if jax.process_index() == 0:
        path = write_json(os.path.join(os.path.abspath(workdir), "eval.json"), results)
        _print(results, len(videos), path)
    return results


def _print(results, n, path):
    print(f"\nheld-out evaluation on {n} videos (DAVIS protocol), step {results['step']}:")
    for name in ("untrained", "trained"):
        r = results.get(name)
        if r and "J&F-Mean" in r:
            print(f"  {name:9s}  J&F {r['J&F-Mean']:.3f}  J {r['J-Mean']:.3f}  "
                  f"F {r['F-Mean']:.3f}  ({r['fps']:.1f} frames/s)")
    print(f"wrote {path}")


def evaluate(config, *, checkpoint: str, dataset: str, split: str, output: str,
        first_mask: str | None = None, overlays: bool = False, bar_chart: bool = False,
        overwrite: bool = False) -> dict:
    """Segment ``dataset`` with the model in ``checkpoint`` using ``config.eval`` settings.

    Resumes by default: videos whose outputs in ``output`` are complete are read back and
    scored, not segmented again (an interrupted run continues where it stopped);
    ``overwrite`` segments every video again. STM videos are spread over all local devices
    (``config.eval.videos_per_device`` per device); under ``jax.distributed`` each process
    segments its share and process 0 writes the CSVs, ``summary.json`` and the zip (``output``
    must be a folder every process sees)."""
    compilation_cache.enable(config.compile_cache)
    spec = datasets.parse(dataset)
    # config.model.compute decides the numerics (the checkpoint stores the architecture only).
    model, variables = families.load_model(checkpoint,
                                           **families.model_numerics(config.model))
    videos = datasets.open_videos(spec, split, davis_root=config.data.davis_root,
                                  youtubevos_root=config.data.youtubevos_root,
                                  synthetic=config.data.synthetic, static=config.data.static,
                                  first_mask=first_mask)
    opts = families.inference_options(config, families.family_of(model))
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
               # STM batches videos and corrects masks; GCSeg segments one video at a time.
               "videos_per_device": getattr(opts, "videos_per_device", 1),
               "correction": getattr(opts, "correction", None) is not None}
    if report.scores is not None:
        for path in protocol.write_csvs(report.scores, output, split):
            print(f"wrote {path}")
        print(protocol.format_table(report.scores, split))
        summary["global"] = report.scores.global_row()
        if bar_chart:
            from vosjax.evaluation.visualize import jf_bar_chart
            jf_bar_chart(report.scores.per_object_rows(),
                         os.path.join(output, f"jf_per_sequence-{split}.png"))
    if spec.kind == "youtubevos":
        root = spec.arg or config.data.youtubevos_root
        summary["submission"] = _youtubevos_zip(root, split, output, videos)
        print(f"wrote {summary['submission']}")
    write_json(os.path.join(output, "summary.json"), summary, default=float)
    return summary


def _mib(nbytes) -> str:
    return "n/a" if nbytes is None else f"{nbytes / 2**20:.1f} MiB"


def _youtubevos_zip(root, split, output, videos):
    """Zip the PNGs of the frames listed in ``meta.json`` (the server's expected layout)."""
    from vosjax.data.masks import read_label_png
    from vosjax.evaluation.submission import write_youtubevos_submission

    meta = os.path.join(root, split, "meta.json")
    preds = {}
    for v in videos:
        d = os.path.join(output, v.name)
        preds[v.name] = {os.path.splitext(f)[0]: read_label_png(os.path.join(d, f), binary=False)
                         for f in sorted(os.listdir(d)) if f.endswith(".png")}
    return write_youtubevos_submission(os.path.join(output, "submission.zip"), preds, meta)
