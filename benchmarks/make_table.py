"""Generate the benchmark tables (markdown) from every JSON file in ``benchmarks/results/``.

    python benchmarks/make_table.py                  # writes benchmarks/README.md
    python benchmarks/make_table.py --stdout         # print the section only

Every figure is printed next to the device it was measured on; ratios are vosjax / official
from the same run; targets are the issue's goals (inference >= 3x on GPU, >= 1.25x on CPU;
correction overhead at most 1.15x its XLA FLOP ratio, ~2.8x for 1 object and ~3.4x for 2 at R50
240x427; training >= 4x on GPU; training MFU >= 35% in bf16 on H100/H200).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BEGIN, END = "<!-- benchmark-tables:begin -->", "<!-- benchmark-tables:end -->"

INTRO = """# Benchmarks

Scripts (each writes JSON into `benchmarks/results/`; this file is generated from them by
`python benchmarks/make_table.py`, never edited by hand):

* `inference_speed.py`: frames/s of STM propagation, vosjax vs the official STM-Training test
  loop in the same process (`--official PATH` to a checkout of lyxok1/STM-Training, branch
  `cycle`; never vendored. Without torchvision, `torchvision_standin.py` provides the ResNet
  layout). Same random weights in both (BN statistics calibrated on random input).
* `training_speed.py`: clips/s of the STM-cycle training step (3-frame clips, cycle on), vosjax's
  jitted step vs the official `train` loop (`train_batch=1`, `iter_size=B`), with XLA's FLOP
  count of the compiled step (achieved FLOP/s; MFU with `--peak-flops`).
  `training_breakdown.py`: the same update split into forward, backward and optimizer;
  `conv_kernels.py`: STM's convolutions alone in XLA and PyTorch; `profile_step.py`: a profiler
  trace of one propagated video summed by XLA op kind.
* `score_timing.py`: J&F scoring of a DAVIS-2017-val-sized set vs the davis2017-evaluation
  toolkit. `stm_step.py`: one memorize + segment step.
* `compile_count.py`, `slot_trim.py`, `correction_caching.py`, `speedups.py`: one speed-up
  each, measured before/after in the same run (`speedups.py objects|memory-read|donation|png`).
* `input_pipeline.py`: the training input pipeline (grain workers): host clips/s per worker at
  240x427 from DAVIS 480p JPEGs and from 720p frames, 1 vs 2 worker processes; the bytes a
  step sends to the device (uint8 frames and label maps vs float32 frames and one-hot masks);
  the demo config's step fed by the pipeline vs a device-resident batch.

## GPU rows: one offline command (`gpu_bench.py`)

Every GPU row comes from one command that fits a time budget (default 8 minutes; `--budget-min`)
and needs no network. On a machine with one NVIDIA GPU, from the repository root, with the
official checkout (lyxok1/STM-Training, branch `cycle`; never committed) copied into the
git-ignored `.official/` so that it travels with the working tree:

    python benchmarks/gpu_bench.py --official .official --out benchmarks/results/gpu_h200.json; python benchmarks/make_table.py

(a remote device run: carry `.official`, timeout about 600 s; then commit `gpu_h200.json` and
this file). What it does:

* refuses to run without a GPU, for JAX (`jax.default_backend()` must be `gpu`; it sets
  `JAX_PLATFORMS=cuda` when unset, so a broken CUDA plugin is an error, not a CPU fallback) and
  for PyTorch (`torch.cuda.is_available()`, checked in a child process before JAX takes the
  GPU); `--no-official` records the official rows as skipped instead;
* never downloads: vosjax's weights are random; `official.py` builds the checkout's ResNets
  with `weights=None` even with a real torchvision (the checkout asks for `pretrained=True`),
  `torchvision_standin.py` when torchvision is missing;
* imports nothing of tensorflow-datasets, ml_collections, tensorboardX or grain (tested with
  those imports blocked): a bare image with jax[cuda], flax, optax, orbax-checkpoint, chex,
  torch and torchvision runs it as is, without `pip install -e .` (the script puts the
  repository on `sys.path`). Should a pure-Python package ever be missing there, carry its
  wheel: here `pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl
  NAME==VERSION` (`.whl/` is git-ignored; carry it), there `pip install --no-index --no-deps
  --target /tmp/site .whl/*.whl` and run with `PYTHONPATH=/tmp/site`. Anything that trains
  through the input pipeline there (`train.py`, `benchmarks/input_pipeline.py`) needs grain,
  which the image lacks and which is not pure Python: carry grain's **cp312** wheel the same
  way (`grain==0.2.18`), with the dependencies the image lacks (its own check: `pip install
  --no-index --find-links .whl --dry-run grain`; typically `array-record`, also a cp312
  wheel, `cloudpickle` and `portpicker`). vosjax imports grain only when a pipeline starts
  (`host_batches`), so `gpu_bench.py` itself needs none of them;
* runs the rows in priority order (the targets first) and skips, with the reason recorded, a
  row whose expected duration (a fixed reserve until a row of its kind has run, then that
  row's duration) exceeds the time left; the JSON is rewritten (atomically) after every row,
  and a row still running when the budget ends is recorded as `cut` (exit status 3);
* records per row the device, jax / torch versions, XLA's FLOP count of the compiled programs
  (a rolled correction loop, which XLA counts once, is counted N times) and MFU against the
  matmul ceiling the same run measured for the row's numerics: bf16 rows against the bf16
  ceiling, float32 rows (vosjax's `float32` mode: TF32 allowed) against the float32 ceiling at
  default precision, never the bf16 peak. The official rows run PyTorch with its TF32
  defaults (`torch.backends.cuda.matmul.allow_tf32`, `torch.backends.cudnn.allow_tf32`
  recorded in the row) or under `torch.autocast(bfloat16)`, and take the FLOPs of vosjax's
  program of the same configuration.

Sections: (a) matmul (bf16, float32, float32-highest) and copy ceilings; (b) STM R50 240x427,
one video (T = 41), 1 and 2 objects, bf16 / float32, gradient correction off / on (N = 10
every 5): frames/s, FLOPs/frame, MFU; (c) 16 videos at once, `jax.vmap` of the per-frame step
(aggregate frames/s); (d) 480x854; (e) the training update at batch 8 (cycle on, 3-frame
clips, 2 objects in 2 slots), bf16 / float32: clips/s and MFU; (f) the official STM-Training
test loop and training loop on the same GPU.

Targets (issue 14; benchmarks, not timed tests), on one H100/H200, STM R50 240x427, 2
objects: single video bf16 >= 500 frames/s; gradient correction costs at most 1.15x its FLOP
ratio (XLA's counts give about 2.8x for 1 object, 3.4x for 2); training bf16 >= 35% MFU and
>= 4x the official clips/s on the same GPU.

`--smoke` runs every section tiny on the CPU (resnet10 at 32x48; the official rows, with
`--official` and torch installed, use resnet18; otherwise they are skipped with the reason):
a plumbing check run in CI (`tests/test_gpu_bench.py`); its figures are not speed figures
and are never committed. The GPU rows not measured yet are listed under "GPU rows owed" below
(no GPU run so far: none of them has a figure, and none is estimated).

## CPU rows

How to read the CPU rows: a 2-core machine; every row carries the 1-minute load average
during it. Measure on an idle machine: when another process holds a core, PyTorch's OpenMP
pool slows down several-fold while XLA degrades gently, which inflated our first CPU ratios
(R18, 1 object: 4.06x at load 2.8-3.7 in the inference_cpu.json of commit fb982de, 0.80x
idle). The inference and training rows below were re-measured idle (load <= 2: our own two
threads). vosjax's correction rows are not bit-comparable to the official ones
with random weights (the rate-180 descent is chaotic); `max_abs_diff_probs_to_first_correction`
is the parity check for them.
"""


def _load(results_dir):
    out = []
    for path in sorted(glob.glob(os.path.join(results_dir, "*.json"))):
        with open(path) as f:
            data = json.load(f)
        data["_file"] = os.path.basename(path)
        out.append(data)
    return out


def _fmt(x, digits=2):
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _device(d):
    threads = d.get("settings", {}).get("threads")
    extra = f", {threads} thr" if threads and d.get("backend") == "cpu" else ""
    return f"{d['device']} ({d.get('backend', 'cpu')}{extra})"


def _load_range(d):
    return f"{_fmt(d.get('load_average_start'), 1)}-{_fmt(d.get('load_average_end'), 1)}"


def _target(backend, gpu, cpu):
    return gpu if backend == "gpu" else cpu


def inference_table(files) -> list[str]:
    lines = ["## Inference (frames/s, whole videos, median after warm-up)", "",
             "| device | arch | objects | size | T | correction | dtype | vosjax fps | "
             "official fps | ratio | target | vosjax XLA compile s (compiles), first video | load | file |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for d in files:
        for r in d["rows"]:
            o, off = r["ours"], r.get("official", {})
            lines.append(
                f"| {_device(d)} | {r['arch']} | {r['objects']} | {r['size'][0]}x{r['size'][1]} "
                f"| {r['frames']} | {'N=10/5' if r['correction'] else 'off'} | {r['dtype']} "
                f"| {_fmt(o['fps'])} | {_fmt(off.get('fps'))} | {_fmt(r.get('speedup'))}x "
                f"| >= {_target(d['backend'], '3', '1.25')}x "
                f"| {_fmt(o.get('xla_compile_s_first_video'), 1)} ({o.get('compiles_first_video')}) "
                f"| {_fmt(r.get('load_average_start'), 1)}-{_fmt(r.get('load_average_end'), 1)} "
                f"| {d['_file']} |")
    return lines


def overhead_table(files) -> list[str]:
    lines = ["## Correction overhead (fps without / fps with correction, N=10 every 5)", "",
             "| device | arch | objects | dtype | vosjax | official | target (vosjax) | paper |",
             "|---|---|---|---|---|---|---|---|"]
    for d in files:
        by = {}
        for r in d["rows"]:
            by.setdefault((r["arch"], r["objects"], r["dtype"]), {})[r["correction"]] = r
        for (arch, obj, dtype), pair in by.items():
            if set(pair) != {True, False}:
                continue
            ours = pair[False]["ours"]["fps"] / pair[True]["ours"]["fps"]
            off = (pair[False]["official"]["fps"] / pair[True]["official"]["fps"]
                   if "official" in pair[True] else None)
            lines.append(f"| {_device(d)} | {arch} | {obj} | {dtype} | {_fmt(ours)}x "
                         f"| {_fmt(off)}x | <= 1.15x FLOP ratio | 4.1x (TITAN Xp) |")
    return lines


def memory_table(files) -> list[str]:
    rows = [(d, m) for d in files for m in d.get("memory", [])]
    if not rows:
        return []
    lines = ["## Peak memory over video length (fresh process per cell, steady-state video)", "",
             "| device | arch | objects | T | implementation | before video (MiB) | "
             "peak (MiB) | file |", "|---|---|---|---|---|---|---|---|"]
    for d, m in rows:
        mib = lambda b: None if b is None else b / 2 ** 20  # noqa: E731
        before = mib(m.get("rss_before_bytes"))
        peak = mib(m.get("peak_rss_bytes", m.get("peak_device_bytes")))
        kind = "RSS" if "peak_rss_bytes" in m else "device"
        lines.append(f"| {_device(d)} | {m['arch']} | {m['objects']} | {m['frames']} "
                     f"| {m['impl']} | {_fmt(before, 0)} | {_fmt(peak, 0)} ({kind}) "
                     f"| {d['_file']} |")
    return lines


def training_table(files) -> list[str]:
    lines = ["## Training (clips/s, 3-frame clips, cycle on; median update after warm-up)", "",
             "| device | arch | batch | objects / vosjax slots | dtype | vosjax clips/s "
             "| official clips/s | ratio | target | XLA GFLOP/update | achieved GFLOP/s | MFU "
             "| compile s | load | file |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for d in files:
        for r in d["rows"]:
            o, off = r["ours"], r.get("official", {})
            mfu = o.get("mfu")
            mfu_s = f"{100 * mfu:.1f}% (target >= 35% bf16 H100/H200)" if mfu is not None else "-"
            lines.append(
                f"| {_device(d)} | {r['arch']} | {r['batch']} | {r['objects']} / "
                f"{r['num_slots']} | {r['dtype']} | {_fmt(o['clips_per_s'], 3)} "
                f"| {_fmt(off.get('clips_per_s'), 3)} | {_fmt(r.get('speedup'))}x "
                f"| {'>= 4x' if d['backend'] == 'gpu' else '-'} | {_fmt(o['flops'] / 1e9, 1)} "
                f"| {_fmt(o['achieved_flops_per_s'] / 1e9, 1)} | {mfu_s} "
                f"| {_fmt(o.get('xla_compile_s'), 1)} "
                f"| {_fmt(r.get('load_average_start'), 1)}-{_fmt(r.get('load_average_end'), 1)} "
                f"| {d['_file']} |")
    return lines


def scoring_table(files) -> list[str]:
    if not files:
        return []
    lines = ["## J&F scoring (DAVIS-2017-val-sized set: 30 sequences, 1,999 frames, 60 objects)",
             "", "| device | vosjax s | toolkit s | ratio | max abs diff (CSV) | file |",
             "|---|---|---|---|---|---|"]
    for d in files:
        lines.append(f"| {d['machine']['cpu']} (cpu, {d['machine']['logical_cpus']} thr) "
                     f"| {_fmt(d['seconds_ours'])} | {_fmt(d['seconds_toolkit'])} "
                     f"| {_fmt(d['speedup'], 1)}x | {d.get('max_abs_diff_csv')} | {d['_file']} |")
    return lines


def compile_table(files) -> list[str]:
    if not files:
        return []
    lines = ["## Compilations per video length (tiny STM, 64x96, 2 objects; each length's first "
             "video, earlier lengths already compiled)", "",
             "| device | run | compiles (XLA s) per length | load | file |", "|---|---|---|---|---|"]
    for d in files:
        for label, r in d["runs"].items():
            cells = ", ".join(f"T={x['frames']}: {x['compiles']} ({x['compile_s']:.2f})"
                              for x in r["rows"])
            lines.append(f"| {r['device']} | {label}: {r.get('note', '')} | {cells} | "
                         f"{_load_range(r)} | {d['_file']} |")
    return lines


def slot_trim_table(files) -> list[str]:
    if not files:
        return []
    lines = ['## Trimming unused object slots in training (`config.train.slot_policy="trim"`; '
             "same batches, alternated)", "",
             "| device | config | batches by max objects | padded clips/s | trimmed clips/s | "
             "speed-up | load | file |", "|---|---|---|---|---|---|---|---|"]
    for d in files:
        c = d["config"]
        lines.append(f"| {d['device']} | {c['arch']} {c['size'][0]}x{c['size'][1]}, batch "
                     f"{c['batch']}, {c['num_slots']} slots, cycle {'on' if c['cycle'] else 'off'}"
                     f" | {d['batch_max_objects']} | {d['padded']['clips_per_s']:.2f} | "
                     f"{d['trimmed']['clips_per_s']:.2f} | {d['speedup']:.2f}x | "
                     f"{_load_range(d)} | {d['_file']} |")
    return lines


def unroll_table(files) -> list[str]:
    """``correction_speed.py --unroll-only``: one correction, rolled vs unrolled loop."""
    files = [d for d in files if d.get("correction_unroll")]
    if not files:
        return []
    lines = ["## Correction loop: `lax.fori_loop` rolled vs unrolled (one correction; the "
             "default `unroll` is chosen per backend)", "",
             "| device | arch | size | objects | unroll | compile s | median s | load | file |",
             "|---|---|---|---|---|---|---|---|---|"]
    for d in files:
        c = d["config"]
        for r in d["correction_unroll"]:
            lines.append(f"| {d['device']} | {c['arch']} | {c['size'][0]}x{c['size'][1]} | "
                         f"{c['objects']} | {r['unroll']} | {r['compile_s']:.1f} | "
                         f"{r['median_s']:.2f} | {_fmt(d['load_average_start'][0], 1)}-"
                         f"{_fmt(d['load_average_end'][0], 1)} | {d['_file']} |")
    return lines


def caching_table(files) -> list[str]:
    if not files:
        return []
    lines = ["## Correction: mask-independent features cached vs recomputed (one correction, "
             "random weights)", "",
             "| device | arch | size | objects | N | recomputed s | cached s | speed-up | max abs "
             "diff | load | file |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for d in files:
        c = d["config"]
        lines.append(f"| {d['device']} | {c['arch']} | {c['size'][0]}x{c['size'][1]} | "
                     f"{c['objects']} | {c['n_iter']} | {d['median_s']['before']:.3f} | "
                     f"{d['median_s']['after']:.3f} | {d['speedup']:.2f}x | "
                     f"{d['max_abs_diff']:.1e} | {_load_range(d)} | {d['_file']} |")
    return lines


def breakdown_table(files) -> list[str]:
    """``training_breakdown.py``: forward / backward / update seconds per implementation."""
    if not files:
        return []
    lines = ["## Training update broken down (one 3-frame clip, cycle on; backward = "
             "forward+backward minus forward)", "",
             "| device | arch | size | objects | part | vosjax s | official s | ratio | load | "
             "file |", "|---|---|---|---|---|---|---|---|---|---|"]
    for d in files:
        c = d["settings"]
        for part in ("forward", "backward", "forward_backward", "update"):
            lines.append(f"| {_device(d)} | {c['arch']} | {c['size'][0]}x{c['size'][1]} | "
                         f"{c['objects']} | {part.replace('_', ' + ')} | "
                         f"{d['ours']['median_s'][part]:.2f} | "
                         f"{d['official']['median_s'][part]:.2f} | {d['speedup'][part]:.2f}x | "
                         f"{_load_range(d)} | {d['_file']} |")
    return lines


def profile_table(files) -> list[str]:
    """``profile_step.py``: the op kinds that take a propagation's time."""
    if not files:
        return []
    lines = ["## Where propagation time goes (profiler trace of one video, summed op time)", "",
             "| device | arch | size | T | op kinds (share) | costliest op (layer, s) | file |",
             "|---|---|---|---|---|---|---|"]
    for d in files:
        c = d["settings"]
        kinds = ", ".join(f"{k['kind']} {100 * k['share']:.1f}%" for k in d["kinds"][:4])
        top = d["top_ops"][0]
        lines.append(f"| {d['device']} | {c['arch']} | {c['size'][0]}x{c['size'][1]} | "
                     f"{c['frames']} | {kinds} | {top['op']} ({top['layer']}, {top['s']:.2f}) | "
                     f"{d['_file']} |")
    return lines


def conv_table(files) -> list[str]:
    """``conv_kernels.py``: one convolution alone, XLA vs PyTorch (ms; time ratio)."""
    if not files:
        return []
    lines = ["## Convolutions alone, XLA vs PyTorch (what bounds the rows above; ms, XLA/PyTorch "
             "time)", "",
             "| device | layer | input | kernel | forward | grad input | grad kernel | "
             "grad both | load | file |", "|---|---|---|---|---|---|---|---|---|---|"]
    for d in files:
        for r in d["rows"]:
            cells = [f"{r[p]['jax']['ms']:.1f} / {r[p]['torch']['ms']:.1f} "
                     f"({r[p]['jax_over_torch_time']:.2f}x)"
                     for p in ("forward", "grad_input", "grad_kernel", "grad_both")]
            k = r["kernel"]
            lines.append(f"| {d['device']} | {r['layer']} | {'x'.join(map(str, r['input']))} | "
                         f"{k[0]}x{k[1]} {k[2]}->{k[3]} /{r['stride']} | {' | '.join(cells)} | "
                         f"{_fmt(r['load_average'], 1)} | {d['_file']} |")
    return lines


SPEEDUPS = {"speedup_objects": "objects batched", "speedup_memory-read": "memory read",
            "speedup_donation": "donated buffers", "speedup_png": "PNG writing off the path"}


def speedups_table(files) -> list[str]:
    """Rows of ``speedups.py`` (before/after timed alternately in one run)."""
    if not files:
        return []
    lines = ["## Speed-ups before/after (`speedups.py`; alternated in one run, medians)", "",
             "| device | speed-up | setting | before | after | before s | after s | ratio | "
             "max abs diff | peak MiB before / after (device, else RSS) | load | file |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for d in sorted(files, key=lambda d: list(SPEEDUPS).index(d["benchmark"])):
        for r in d["rows"]:
            rss = r.get("peak_device_mib") or r.get("peak_rss_mib")
            rss = f"{rss['before']:.0f} / {rss['after']:.0f}" if rss else "-"
            lines.append(f"| {d['device']} | {SPEEDUPS[d['benchmark']]} | {r['setting']} | "
                         f"{r['before_label']} | {r['after_label']} | "
                         f"{r['before']['median_s']:.4g} | {r['after']['median_s']:.4g} | "
                         f"{r['speedup']:.2f}x | {r['max_abs_diff']:.1e} | {rss} | "
                         f"{_fmt(r['load_average'], 1)} | {d['_file']} |")
    return lines


def _gpu_value(r):
    if "frames_per_s" in r:
        return f"{r['frames_per_s']:.4g} frames/s"
    if "clips_per_s" in r:
        return f"{r['clips_per_s']:.4g} clips/s"
    if r.get("section") == "ceilings":
        m = r["matmul"]
        return ("matmul TFLOP/s: " + ", ".join(f"{k} {v['flops_per_s'] / 1e12:.3g}"
                                               for k, v in m.items())
                + f"; copy {r['copy']['bytes_per_s'] / 1e9:.3g} GB/s")
    return "-"


def gpu_bench_table(files) -> list[str]:
    """Rows of ``gpu_bench.py`` (the one GPU command); smoke files are labelled as such."""
    if not files:
        return []
    lines = ["## GPU benchmark (`gpu_bench.py`; one command, rows in priority order)", "",
             "| device | run | section | row | status | speed | GFLOP per frame / update | "
             "MFU (ceiling) | vosjax / official | versions | file |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for d in files:
        run = ("smoke (CPU plumbing check, not a speed figure)" if d.get("smoke")
               else f"budget {d.get('budget_s', 0) / 60:.0f} min")
        for r in d["rows"]:
            flops = r.get("flops_per_frame", r.get("flops_per_update"))
            mfu = (f"{100 * r['mfu']:.1f}% ({r['mfu_ceiling']})" if r.get("mfu") is not None
                   else "-")
            status = r["status"] if r["status"] == "ok" else f"{r['status']}: {r.get('reason')}"
            v = r.get("versions", {})
            vers = f"jax {v.get('jax')}, torch {v.get('torch') or '-'}"
            lines.append(f"| {r.get('device', d['device'])} | {run} | {r['section']} | "
                         f"{r['name']} | {status} | "
                         f"{_gpu_value(r) if r['status'] == 'ok' else '-'} | "
                         f"{_fmt(flops / 1e9 if flops else None, 2)} | {mfu} | "
                         f"{_fmt(r.get('vosjax_speedup'), 2)} | {vers} | {d['_file']} |")
    for d in files:
        t = d.get("targets_measured") or {}
        if d.get("smoke") or not t:
            continue
        lines += ["", f"Targets ({d['device']}, {d['_file']}):", ""]
        for name, text in d.get("targets", {}).items():
            got = t.get(name, {})
            shown = ", ".join(f"{k} {_fmt(v, 3)}" for k, v in got.items()
                              if k not in ("met", "target"))
            met = {True: "met", False: "not met", None: "not measured"}[got.get("met")]
            lines.append(f"* {text}: {met} ({shown or '-'})")
    return lines


def gpu_owed(files) -> list[str]:
    """The rows of ``gpu_bench.py`` that no GPU run has measured yet."""
    sys.path.insert(0, HERE)
    import gpu_bench  # noqa: PLC0415

    done = {r["name"] for d in files if not d.get("smoke") and d.get("backend") != "cpu"
            for r in d["rows"] if r["status"] == "ok"}
    owed = [j for j in gpu_bench.jobs(gpu_bench.FULL, False) if j.name not in done]
    if not owed:
        return []
    return ["## GPU rows owed (no GPU run has measured them yet)", "",
            *[f"* {SECTION_NAMES.get(j.section, j.section)}: {j.name}" for j in owed]]


SECTION_NAMES = {"ceilings": "(a) ceilings", "inference": "(b) one video",
                 "videos": "(c) many videos", "480p": "(d) 480p", "training": "(e) training",
                 "official": "(f) official"}


def slot_flops_table(files) -> list[str]:
    if not files:
        return []
    lines = ["## Object slots in a training update (`config.train.slot_policy`; XLA FLOPs)", "",
             "| device | config | object-count mix | policy | TFLOP per update | vs unpadded | "
             "file |", "|---|---|---|---|---|---|---|"]
    for d in files:
        c, mix = d["config"], d["object_count_mix"]
        for name, p in d["policies"].items():
            lines.append(f"| {d['device']} | {c['arch']} {c['size'][0]}x{c['size'][1]}, "
                         f"{c['clip_len']} frames, batch {c['batch']}, {c['num_slots']} slots | "
                         f"assumed, mean {mix['mean']} | {name} | {p['tflop_per_update']:.2f} | "
                         f"{p['ratio_to_unpadded']:.2f}x | {d['_file']} |")
    return lines


def input_pipeline_table(files) -> list[str]:
    """``input_pipeline.py``: host clips/s, bytes a step sends, demo step vs resident batch."""
    if not files:
        return []
    lines = ["## Training input pipeline (`input_pipeline.py`; grain workers, medians)", "",
             "| device | frames | size | one process: s/clip (clips/s) | of which 3 JPEG "
             "decodes | object count | pipeline clips/s by workers | 2 / 1 workers | load | "
             "file |", "|---|---|---|---|---|---|---|---|---|---|"]
    for d in files:
        for name, r in (d.get("host") or {}).items():
            if not isinstance(r, dict) or "per_worker" not in r:
                continue
            w = r["per_worker"]
            piped = ", ".join(f"{p['workers']}: {p['clips_per_s']:.1f}" for p in r["pipeline"])
            lines.append(
                f"| {d['device']} | {name} ({r['frame_hw'][1]}x{r['frame_hw'][0]} JPEG) | "
                f"{r['size'][0]}x{r['size'][1]} | {w['median_s_per_clip'] * 1e3:.1f} ms "
                f"({w['clips_per_s']:.1f}) | {w['median_s_decode_3_jpegs'] * 1e3:.1f} ms | "
                f"{w['median_s_count'] * 1e3:.1f} ms | {piped} | "
                f"{_fmt(r.get('scaling_2_over_1'), 2)}x | "
                f"{d.get('load_average_start')}-{d.get('load_average_after_host')} | "
                f"{d['_file']} |")
    best = max(((r["per_worker"]["clips_per_s"], d) for d in files
                for name, r in (d.get("host") or {}).items()
                if name == "480p" and isinstance(r, dict)), default=None, key=lambda x: x[0])
    if best is not None:
        rate, d = best
        lines += ["", f"Target (issue 15): >= 40 clips/s per worker process at 240x427 from "
                  f"480p JPEGs: {'met' if rate >= 40 else 'not met'} (best {rate:.2f} clips/s, "
                  f"{d['_file']}, load {d.get('load_average_start')}-"
                  f"{d.get('load_average_after_host')}). Where a clip's time goes is in the "
                  "columns: the 3 JPEG decodes, and 3 bilinear affine warps in PIL (about "
                  "4 ms each here, most of the rest)."]
    for d in files:
        b = d.get("bytes")
        if b:
            lines += ["", f"Bytes a step sends to the device ({d['_file']}): batch of "
                      f"{b['batch']} clips at 240x427, {b['num_slots']} slots: "
                      f"{b['before_MiB']:.1f} MiB before (float32 frames + float32 one-hot "
                      f"masks), {b['after_MiB']:.2f} MiB now (uint8 frames + uint8 label maps + "
                      f"int32 counts): {b['ratio']:.1f}x less."]
        st = d.get("step")
        if st:
            m = st["median_s"]
            lines += ["", f"Demo step ({st['config']}, {st['arch']} {st['size'][0]}x"
                      f"{st['size'][1]}, batch {st['batch']}, {st['num_workers']} worker, "
                      f"prefetch {st['prefetch']}; {d['device']}, {d['_file']}; alternated, "
                      f"medians): {m['pipeline']:.3f} s fed by the pipeline vs "
                      f"{m['resident']:.3f} s on a device-resident raw batch: "
                      f"{st['pipeline_over_resident']:.3f}x (target <= 1.05x: "
                      f"{'met' if st['within_5_percent'] else 'not met'}); "
                      f"{m['resident_prepared']:.3f} s on an already prepared batch (the "
                      f"on-device augmentation, normalisation and one-hot: "
                      f"{st['on_device_prep_over_prepared']:.3f}x). The first "
                      f"{st['warmup_steps']} pipeline steps (the worker rendering the synthetic "
                      f"videos) not timed: median {st['warmup_median_s']:.3f} s."]
    return lines


def build_section(results_dir) -> str:
    data = _load(results_dir)
    pick = lambda kind: [d for d in data if d.get("benchmark") == kind]  # noqa: E731
    parts = [gpu_bench_table(pick("gpu_bench")), gpu_owed(pick("gpu_bench")), inference_table(pick("inference")), overhead_table(pick("inference")),
             memory_table(pick("inference")), training_table(pick("training")),
             breakdown_table(pick("training_breakdown")), profile_table(pick("profile_step")),
             conv_table(pick("conv_kernels")),
             scoring_table([d for d in data if "seconds_toolkit" in d]),
             compile_table(pick("compile_count")), slot_trim_table(pick("slot_trim")),
             slot_flops_table(pick("slot_flops")), input_pipeline_table(pick("input_pipeline")),
             caching_table(pick("correction_caching")), unroll_table(data),
             speedups_table([d for d in data if d.get("benchmark") in SPEEDUPS])]
    body = "\n\n".join("\n".join(p) for p in parts if p)
    return f"{BEGIN}\n{body}\n{END}\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--results", default=os.path.join(HERE, "results"))
    p.add_argument("--out", default=os.path.join(HERE, "README.md"),
                   help="file to write; an existing marked section is replaced in place")
    p.add_argument("--stdout", action="store_true")
    args = p.parse_args(argv)
    section = build_section(args.results)
    if args.stdout:
        sys.stdout.write(section)
        return
    text = INTRO + "\n" + section
    if os.path.exists(args.out):
        with open(args.out) as f:
            old = f.read()
        if BEGIN in old and END in old:
            text = old[:old.index(BEGIN)] + section + old[old.index(END) + len(END) + 1:]
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
