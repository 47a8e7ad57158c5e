"""``train.py``'s job: train, then evaluate on held-out videos (trained vs untrained model)."""
from __future__ import annotations

import os

import jax

from vosjax import compilation_cache
from vosjax.atomic import write_json
from vosjax.evaluation.runner import InferenceOptions, RunReport, run_videos
from vosjax.training.input_pipeline import build_videos
from vosjax.training.loop import train
from vosjax.training.step import initial_variables
from vosjax.training.tasks import get_task


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


def inference_options(config) -> InferenceOptions:
    """:class:`InferenceOptions` from ``config.eval`` (and the working size ``config.data.size``)."""
    from vosjax.correction import GradientCorrection  # noqa: PLC0415

    e = config.eval
    corr = None
    if e.get("correction", False):
        corr = GradientCorrection(n_iter=e.get("correction_iters", 10),
                                  rate=e.get("correction_rate", 180.0),
                                  every=e.get("correction_every", 5))
    return InferenceOptions(size=tuple(config.data.size), pad=e.get("pad", "mean"),
                            num_slots=e.get("num_slots") or None,
                            mem_every=e.get("mem_every", 5),
                            reference=e.get("reference", "mem"),
                            upsample=e.get("upsample", "nearest"),
                            memory_slots=e.get("memory_slots") or None, correction=corr,
                            num_fragments=e.get("num_fragments", 3),
                            adaptive_search=e.get("adaptive_search", True),
                            seed=e.get("seed", 0),
                            videos_per_device=e.get("videos_per_device", 1))


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
    n = e.get("num_videos", 0)
    return [videos[i] for i in range(min(n, len(videos)) if n else len(videos))]


def _summary(report: RunReport) -> dict:
    row = report.scores.global_row() if report.scores is not None else {}
    return {**{k: float(v) for k, v in row.items()}, "fps": report.overall_fps,
            "frames": report.frames}


def train_and_evaluate(config, workdir: str) -> dict:
    """Train per ``config`` in ``workdir``; if ``config.eval.enabled``, score the held-out
    videos with the trained and (``config.eval.compare_untrained``) the untrained model and
    write ``WORKDIR/eval.json``."""
    if config.get("distributed", False):
        init_distributed()
    compilation_cache.enable(config.compile_cache)
    out = train(config, workdir)
    if not config.eval.enabled:
        return {"train": out}
    videos = heldout_videos(config)
    opts = inference_options(config)
    model = out["model"]
    results = {"step": out["step"], "train_steps_per_s": out["steps_per_s"],
               "trained": _summary(run_videos(model, out["variables"], videos, opts))}
    if config.eval.get("compare_untrained", False):
        init = get_task(config.model).init_variables(model, config)
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
