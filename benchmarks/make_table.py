"""Generate benchmarks/README.md (its prose and every table) from the result files in
``benchmarks/results/``.

    python -m benchmarks.make_table                  # writes benchmarks/README.md
    python -m benchmarks.make_table --stdout         # print the tables only

Every file follows the one schema of :mod:`benchmarks.harness` and is rendered by the tables
of its ``benchmark`` field (:data:`TABLES`); a file of an unknown benchmark is an error, so no
result goes unrendered. Every figure is printed next to the device it was measured on; ratios
are vosjax / official from the same run; targets are the issue's goals (inference >= 3x on
GPU, >= 1.25x on CPU; correction overhead at most 1.15x its XLA FLOP ratio, ~2.8x for 1 object
and ~3.4x for 2 at R50 240x427; training >= 4x on GPU; training MFU >= 35% in bf16 on
H100/H200).
"""
from __future__ import annotations

import argparse
import os
import sys

from benchmarks import harness
from vosjax import atomic

HERE = os.path.dirname(os.path.abspath(__file__))
BEGIN, END = "<!-- benchmark-tables:begin -->", "<!-- benchmark-tables:end -->"

INTRO = """# Benchmarks

A package run from the repository root as `python -m benchmarks.NAME` (`python -m` puts the
root on the module path: no `pip install -e .` needed). Each benchmark writes one JSON file
into `benchmarks/results/`; this file is generated from them by `python -m
benchmarks.make_table`, never edited by hand.

## Layout

* `harness.py`: what every benchmark shares. Its command-line pieces (`--size HxW`, `--arch`,
  `--repeats`, `--out`, `--device` / `--threads`, `--official`), one timing loop (a warm-up
  call, then timed calls that block until the device is done: median, min and every run;
  XLA compilations counted on request; several implementations alternated so that machine
  load touches all alike), the machine and load record, and the one result schema: `{"schema":
  1, "benchmark", "command", "date", "machine": {"device", "backend", "cpu", "logical_cpus",
  "versions", "load_average": {"start", "end"}}, "settings", "rows": [...]}` plus fields of
  that benchmark. Files are checked when written and when read; `make_table.py` picks each
  file's tables by its `benchmark` field.
* `workloads.py`: the synthetic videos and training clips, and vosjax's propagation and
  training update driven like the official code.
* `official/`: the adapters of the official code, never vendored (checkouts passed on the
  command line, imported by path): `stm_training.py` (lyxok1/STM-Training, branch `cycle`: its
  model, test loop and training update; offline ResNets), `stm_original.py` (seoungwugoh/STM,
  for `golden_stm_original.py`), `torchvision_standin.py` (the ResNet layout without
  torchvision), `davis_toolkit.py` (the davis2017-evaluation toolkit, run with its own Python).
* Before/after speed-ups (`speedups.py objects|memory-read|donation|png`, `compile_count.py`,
  `slot_trim.py`, `correction_caching.py`) write rows of one shape: `setting`,
  `before_label`, `after_label`, `metric` (the field compared), `before`, `after`, `speedup`
  (> 1: after is faster), `max_abs_diff` (after vs before outputs).

Benchmarks:

* `input_pipeline`: the training input pipeline (grain workers): host clips/s per worker at
  240x427 from DAVIS 480p JPEGs and from 720p frames, 1 vs 2 worker processes; the bytes a
  step sends to the device (uint8 frames and label maps vs float32 frames and one-hot masks);
  the demo config's step fed by the pipeline vs a device-resident batch.
* `inference_speed`: frames/s of STM propagation, vosjax vs the official STM-Training test
  loop in the same process (`--official PATH` to a checkout of lyxok1/STM-Training, branch
  `cycle`; never vendored. Without torchvision, `official/torchvision_standin.py` provides the
  ResNet layout). Same random weights in both (BN statistics calibrated on random input).
* `training_speed`: clips/s of the STM-cycle training step (3-frame clips, cycle on), vosjax's
  jitted step vs the official `train` loop (`train_batch=1`, `iter_size=B`), with XLA's FLOP
  count of the compiled step (achieved FLOP/s; MFU with `--peak-flops`).
  `training_breakdown`: the same update split into forward, backward and optimizer;
  `conv_kernels`: STM's convolutions alone in XLA and PyTorch; `profile_step`: a profiler
  trace of one propagated video summed by XLA op kind.
* `score_timing`: J&F scoring of a DAVIS-2017-val-sized set vs the davis2017-evaluation
  toolkit; `toolkit_compare`: vosjax's scores against the toolkit's on awkward generated
  data. `stm_step`: one memorize + segment step.
* `compile_count`, `slot_trim`, `slot_flops`, `correction_caching`, `correction_speed`,
  `speedups`: one speed-up or cost each (`correction_speed --unroll-only`: the correction loop
  rolled vs unrolled).
* `golden_stm_original` (golden outputs of the original STM for
  `tests/test_golden_stm_original.py`) and `stm_original_padding` (the original STM on padded
  frames) are parity tools, not timings.

Result files written before the package layout record commands that ran the scripts by path
(`benchmarks/NAME.py`) with `--size H W`; today they run as `python -m benchmarks.NAME` with
`--size HxW`. Those older files were converted to the schema by moving and renaming fields
only (`results/convert_to_schema1.py` of commit 40fad1d; its `check_schema1.py` found all 1,912
values of the 19 files unchanged): every figure, command, date and machine field is as measured
(`null` where an older file did not record it, e.g. the command of `scoring_cpu.json`).

## GPU rows: one offline command (`gpu_bench`)

Every GPU row comes from one command that fits a time budget (default 8 minutes; `--budget-min`)
and needs no network. On a machine with one NVIDIA GPU, from the repository root, with the
official checkout (lyxok1/STM-Training, branch `cycle`; never committed) copied into the
git-ignored `.official/` so that it travels with the working tree:

    python -m benchmarks.gpu_bench --official .official \
        --out benchmarks/results/gpu_h200.json
    python -m benchmarks.make_table

(a remote device run: carry `.official`, timeout about 600 s; then commit `gpu_h200.json` and
this file). What it does:

* refuses to run without a GPU, for JAX (`jax.default_backend()` must be `gpu`; it sets
  `JAX_PLATFORMS=cuda` when unset, so a broken CUDA plugin is an error, not a CPU fallback) and
  for PyTorch (`torch.cuda.is_available()`, checked in a child process before JAX takes the
  GPU); `--no-official` records the official rows as skipped instead;
* never downloads: vosjax's weights are random; `official/stm_training.py` builds the
  checkout's ResNets with `weights=None` even with a real torchvision (the checkout asks for
  `pretrained=True`), `official/torchvision_standin.py` when torchvision is missing;
* imports nothing of tensorflow-datasets, ml_collections, tensorboardX or grain (tested with
  those imports blocked): a bare image with jax[cuda], flax, optax, orbax-checkpoint, chex,
  torch and torchvision runs it as is, without `pip install -e .` (`python -m` from the
  repository root puts the root on the module path). Should a pure-Python package ever be
  missing there, carry its wheel: here `pip download --no-deps --only-binary=:all:
  --python-version 3.12 -d .whl NAME==VERSION` (`.whl/` is git-ignored; carry it), there `pip
  install --no-index --no-deps --target /tmp/site .whl/*.whl` and run with
  `PYTHONPATH=/tmp/site`. Anything that trains through the input pipeline there
  (`train.py`, `python -m benchmarks.input_pipeline`) needs grain, which the image lacks and
  which is not pure Python: carry grain's **cp312** wheel the same way (`grain==0.2.18`), with
  the dependencies the image lacks (its own check: `pip install --no-index --find-links .whl
  --dry-run grain`; typically `array-record`, also a cp312 wheel, `cloudpickle` and
  `portpicker`). vosjax imports grain only when a pipeline starts (`host_batches`), so
  `gpu_bench` itself needs none of them;
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


def _fmt(x, digits=2):
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _machine(d):
    return d["machine"]


def _device(d):
    m = _machine(d)
    threads = d["settings"].get("threads")
    extra = f", {threads} thr" if threads and m["backend"] == "cpu" else ""
    return f"{m['device']} ({m['backend']}{extra})"


def _ratio(x):
    return "-" if x is None else f"{_fmt(x)}x"


def _range(load):
    """A ``{"start", "end"}`` load record as ``start-end`` (one of them if only one)."""
    start, end = load.get("start"), load.get("end")
    if start is None or end is None:
        return _fmt(end if start is None else start, 1)
    return f"{_fmt(start, 1)}-{_fmt(end, 1)}"


def _target(backend, gpu, cpu):
    return gpu if backend == "gpu" else cpu


def inference_table(files) -> list[str]:
    lines = ["## Inference (frames/s, whole videos, median after warm-up)", "",
             "| device | arch | objects | size | T | correction | dtype | vosjax fps | "
             "official fps | ratio | target | vosjax XLA compile s (compiles), first video | "
             "load | file |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for d in files:
        for r in d["rows"]:
            o, off = r["ours"], r.get("official", {})
            lines.append(
                f"| {_device(d)} | {r['arch']} | {r['objects']} | {r['size'][0]}x{r['size'][1]} "
                f"| {r['frames']} | {'N=10/5' if r['correction'] else 'off'} | {r['dtype']} "
                f"| {_fmt(o['fps'])} | {_fmt(off.get('fps'))} | {_fmt(r.get('speedup'))}x "
                f"| >= {_target(_machine(d)['backend'], '3', '1.25')}x "
                f"| {_fmt(o.get('xla_compile_s_warmup'), 1)} ({o.get('compiles_warmup')}) "
                f"| {_range(r['load_average'])} | {d['_file']} |")
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
                f"| {'>= 4x' if _machine(d)['backend'] == 'gpu' else '-'} "
                f"| {_fmt(o['flops'] / 1e9, 1)} "
                f"| {_fmt(o['achieved_flops_per_s'] / 1e9, 1)} | {mfu_s} "
                f"| {_fmt(o.get('xla_compile_s_warmup'), 1)} "
                f"| {_range(r['load_average'])} | {d['_file']} |")
    return lines


def breakdown_table(files) -> list[str]:
    """``training_breakdown``: forward / backward / update seconds per implementation."""
    lines = ["## Training update broken down (one 3-frame clip, cycle on; backward = "
             "forward+backward minus forward)", "",
             "| device | arch | size | objects | part | vosjax s | official s | ratio | load | "
             "file |", "|---|---|---|---|---|---|---|---|---|---|"]
    for d in files:
        c = d["settings"]
        for r in d["rows"]:
            ours, off = r["ours"] or {}, r["official"] or {}
            lines.append(f"| {_device(d)} | {c['arch']} | {c['size'][0]}x{c['size'][1]} | "
                         f"{c['objects']} | {r['part'].replace('_', ' + ')} | "
                         f"{_fmt(ours.get('median_s'))} | {_fmt(off.get('median_s'))} | "
                         f"{_ratio(r['speedup'])} | {_range(_machine(d)['load_average'])} | "
                         f"{d['_file']} |")
    return lines


def profile_table(files) -> list[str]:
    """``profile_step``: the op kinds that take a propagation's time."""
    lines = ["## Where propagation time goes (profiler trace of one video, summed op time)", "",
             "| device | arch | size | T | op kinds (share) | costliest op (layer, s) | file |",
             "|---|---|---|---|---|---|---|"]
    for d in files:
        c = d["settings"]
        for r in d["rows"]:
            kinds = ", ".join(f"{k['kind']} {100 * k['share']:.1f}%" for k in r["kinds"][:4])
            top = r["top_ops"][0]
            lines.append(f"| {_machine(d)['device']} | {c['arch']} | "
                         f"{c['size'][0]}x{c['size'][1]} | {c['frames']} | {kinds} | "
                         f"{top['op']} ({top['layer']}, {top['s']:.2f}) | {d['_file']} |")
    return lines


def conv_table(files) -> list[str]:
    """``conv_kernels``: one convolution alone, XLA vs PyTorch (ms; time ratio)."""
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
            lines.append(f"| {_machine(d)['device']} | {r['layer']} | "
                         f"{'x'.join(map(str, r['input']))} | "
                         f"{k[0]}x{k[1]} {k[2]}->{k[3]} /{r['stride']} | {' | '.join(cells)} | "
                         f"{_range(r['load_average'])} | {d['_file']} |")
    return lines


def stm_step_table(files) -> list[str]:
    """``stm_step``: one memorize + segment step."""
    lines = ["## One STM step (memorize the previous frame + segment the next; random weights, "
             "median after the first call)", "",
             "| device | arch | size | objects | median s | min s | first call s (compile) | "
             "repeats | load | file |", "|---|---|---|---|---|---|---|---|---|---|"]
    for d in files:
        for r in d["rows"]:
            lines.append(f"| {_device(d)} | {r['arch']} | {r['size'][0]}x{r['size'][1]} | "
                         f"{r['objects']} | {r['median_s']:.3f} | {r['min_s']:.3f} | "
                         f"{r['warmup_s']:.2f} | {r['repeats']} | "
                         f"{_range(_machine(d)['load_average'])} | {d['_file']} |")
    return lines


def input_pipeline_table(files) -> list[str]:
    """``input_pipeline.py``: host clips/s, bytes a step sends, demo step vs resident batch."""
    lines = ["## Training input pipeline (`python -m benchmarks.input_pipeline`; grain workers, "
             "medians)", "",
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
                f"| {_machine(d)['device']} | {name} "
                f"({r['frame_hw'][1]}x{r['frame_hw'][0]} JPEG) | "
                f"{r['size'][0]}x{r['size'][1]} | {w['median_s_per_clip'] * 1e3:.1f} ms "
                f"({w['clips_per_s']:.1f}) | {w['median_s_decode_3_jpegs'] * 1e3:.1f} ms | "
                f"{w['median_s_count'] * 1e3:.1f} ms | {piped} | "
                f"{_fmt(r.get('scaling_2_over_1'), 2)}x | "
                f"{_machine(d)['load_average']['start']}-{d.get('load_average_after_host')} | "
                f"{d['_file']} |")
    best = max(((r["per_worker"]["clips_per_s"], d) for d in files
                for name, r in (d.get("host") or {}).items()
                if name == "480p" and isinstance(r, dict)), default=None, key=lambda x: x[0])
    if best is not None:
        rate, d = best
        lines += ["", f"Target (issue 15): >= 40 clips/s per worker process at 240x427 from "
                  f"480p JPEGs: {'met' if rate >= 40 else 'not met'} (best {rate:.2f} clips/s, "
                  f"{d['_file']}, load {_machine(d)['load_average']['start']}-"
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
                      f"prefetch {st['prefetch']}; {_machine(d)['device']}, {d['_file']}; "
                      "alternated, "
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


def many_videos_table(files) -> list[str]:
    """``many_videos``: evaluate.py's engine against one video after another."""
    lines = ["## Many videos at once (`python -m benchmarks.many_videos`; davis2016-mini 480p "
             "frames, labels identical; medians after a compiling run)", "",
             "| device | model | frames | setting | frames/s | vs one by one | load | file |",
             "|---|---|---|---|---|---|---|---|"]
    for d in files:
        c = d["settings"]
        for r in d["rows"]:
            lines.append(f"| {_device(d)}, {c['devices']} device(s) | {c['arch']} "
                         f"{c['size'][0]}x{c['size'][1]} | {c['videos']} videos, "
                         f"{c['frames']} | {r['setting']} | {r['frames_per_s']:.2f} | "
                         f"{r['speedup_vs_one_by_one']:.2f}x | "
                         f"{_range(_machine(d)['load_average'])} | {d['_file']} |")
    return lines


def scoring_table(files) -> list[str]:
    lines = ["## J&F scoring (DAVIS-2017-val-sized set: 30 sequences, 1,999 frames, 60 objects)",
             "", "| device | vosjax s | toolkit s | ratio | max abs diff (CSV) | file |",
             "|---|---|---|---|---|---|"]
    for d in files:
        m = _machine(d)
        for r in d["rows"]:
            lines.append(f"| {m['cpu']} (cpu, {m['logical_cpus']} thr) "
                         f"| {_fmt(r['ours']['min_s'])} | {_fmt(r['toolkit']['min_s'])} "
                         f"| {_fmt(r['speedup'], 1)}x | {r.get('max_abs_diff_csv')} "
                         f"| {d['_file']} |")
    return lines


def toolkit_compare_table(files) -> list[str]:
    """``toolkit_compare``: vosjax's scores against the toolkit's on awkward cases."""
    lines = ["## DAVIS scores, vosjax vs the davis2017-evaluation toolkit (awkward generated "
             "cases; max abs differences)", "",
             "| case | sequences | frames | CSV | per frame J / F | per object M / R / D | file |",
             "|---|---|---|---|---|---|---|"]
    for d in files:
        for r in d["rows"]:
            lines.append(f"| {r['case'].replace('_', ' ')} | {r['sequences']} | {r['frames']} | "
                         f"{r['max_abs_diff_csv']} | {r['max_abs_diff_per_frame']} | "
                         f"{r['max_abs_diff_per_object_stats']} | {d['_file']} |")
    return lines


def compile_table(files) -> list[str]:
    lines = ["## Compilations per video length (tiny STM, 64x96, 2 objects; each length's first "
             "video, earlier lengths already compiled)", "",
             "| device | run | compiles (XLA s) per length | load | file |",
             "|---|---|---|---|---|"]
    for d in files:
        for label, run in d["runs"].items():
            cells = ", ".join(f"T={x['frames']}: {x['compiles']} ({x['compile_s']:.2f})"
                              for x in run["rows"])
            lines.append(f"| {run['machine']['device']} | {label}: {run.get('note', '')} | "
                         f"{cells} | {_range(run['machine']['load_average'])} | "
                         f"{d['_file']} |")
    return lines


def slot_trim_table(files) -> list[str]:
    lines = ['## Trimming unused object slots in training (`config.train.slot_policy="trim"`; '
             "same batches, alternated)", "",
             "| device | config | batches by max objects | padded clips/s | trimmed clips/s | "
             "speed-up | load | file |", "|---|---|---|---|---|---|---|---|"]
    for d in files:
        for r in d["rows"]:
            lines.append(f"| {_machine(d)['device']} | {r['setting']} | "
                         f"{r['batch_max_objects']} | {r['before']['clips_per_s']:.2f} | "
                         f"{r['after']['clips_per_s']:.2f} | {r['speedup']:.2f}x | "
                         f"{_range(_machine(d)['load_average'])} | {d['_file']} |")
    return lines


def slot_flops_table(files) -> list[str]:
    lines = ["## Object slots in a training update (`config.train.slot_policy`; XLA FLOPs)", "",
             "| device | config | object-count mix | policy | TFLOP per update | vs unpadded | "
             "file |", "|---|---|---|---|---|---|---|"]
    for d in files:
        c, mix = d["settings"], d["object_count_mix"]
        for r in d["rows"]:
            lines.append(f"| {_machine(d)['device']} | {c['arch']} "
                         f"{c['size'][0]}x{c['size'][1]}, "
                         f"{c['clip_len']} frames, batch {c['batch']}, {c['num_slots']} slots | "
                         f"assumed, mean {mix['mean']} | {r['policy']} | "
                         f"{r['tflop_per_update']:.2f} | {r['ratio_to_unpadded']:.2f}x | "
                         f"{d['_file']} |")
    return lines


def caching_table(files) -> list[str]:
    lines = ["## Correction: mask-independent features cached vs recomputed (one correction, "
             "random weights)", "",
             "| device | arch | size | objects | N | recomputed s | cached s | speed-up | max abs "
             "diff | load | file |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for d in files:
        c = d["settings"]
        for r in d["rows"]:
            lines.append(f"| {_machine(d)['device']} | {c['arch']} | "
                         f"{c['size'][0]}x{c['size'][1]} | {c['objects']} | {c['n_iter']} | "
                         f"{r['before']['median_s']:.3f} | {r['after']['median_s']:.3f} | "
                         f"{r['speedup']:.2f}x | {r['max_abs_diff']:.1e} | "
                         f"{_range(_machine(d)['load_average'])} | {d['_file']} |")
    return lines


def correction_speed_table(files) -> list[str]:
    """``correction_speed``: propagation frames/s without and with gradient correction."""
    lines = ["## Propagation with and without gradient correction (steady-state frames/s, "
             "compile time excluded)", "",
             "| device | arch | size | objects | T | correction | frames/s | median step s | "
             "overhead | load | file |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for d in files:
        c = d["settings"]
        for r in d["rows"]:
            step = r["median_corrected_step_s"] if r["correction"] else r["median_plain_step_s"]
            lines.append(f"| {_machine(d)['device']} | {c['arch']} | "
                         f"{c['size'][0]}x{c['size'][1]} | {c['objects']} | {c['frames']} | "
                         f"{'N=10/5' if r['correction'] else 'off'} | {r['fps']:.2f} | "
                         f"{_fmt(step, 3)} | "
                         f"{_fmt(d['gc_overhead_ratio']) + 'x' if r['correction'] else ''} | "
                         f"{_range(_machine(d)['load_average'])} | {d['_file']} |")
    return lines


def unroll_table(files) -> list[str]:
    """``correction_speed --unroll-only``: one correction, rolled vs unrolled loop."""
    lines = ["## Correction loop: `lax.fori_loop` rolled vs unrolled (one correction; the "
             "default `unroll` is chosen per backend)", "",
             "| device | arch | size | objects | unroll | compile s | median s | load | file |",
             "|---|---|---|---|---|---|---|---|---|"]
    for d in files:
        c = d["settings"]
        for r in d["rows"]:
            lines.append(f"| {_machine(d)['device']} | {c['arch']} | "
                         f"{c['size'][0]}x{c['size'][1]} | "
                         f"{c['objects']} | {r['unroll']} | {r['compile_s']:.1f} | "
                         f"{r['median_s']:.2f} | {_range(_machine(d)['load_average'])} | "
                         f"{d['_file']} |")
    return lines


SPEEDUPS = {"speedup_objects": "objects batched", "speedup_memory-read": "memory read",
            "speedup_donation": "donated buffers", "speedup_png": "PNG writing off the path"}


def speedups_table(files) -> list[str]:
    """Rows of ``speedups`` (before/after timed alternately in one run)."""
    lines = ["## Speed-ups before/after (`speedups.py`; alternated in one run, medians)", "",
             "| device | speed-up | setting | before | after | before s | after s | ratio | "
             "max abs diff | peak MiB before / after (device, else RSS) | load | file |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for d in sorted(files, key=lambda d: list(SPEEDUPS).index(d["benchmark"])):
        for r in d["rows"]:
            rss = r.get("peak_device_mib") or r.get("peak_rss_mib")
            rss = f"{rss['before']:.0f} / {rss['after']:.0f}" if rss else "-"
            m = r["metric"]
            lines.append(f"| {_machine(d)['device']} | {SPEEDUPS[d['benchmark']]} | "
                         f"{r['setting']} | {r['before_label']} | {r['after_label']} | "
                         f"{r['before'][m]:.4g} | {r['after'][m]:.4g} | "
                         f"{r['speedup']:.2f}x | {r['max_abs_diff']:.1e} | {rss} | "
                         f"{_range(r['load_average'])} | {d['_file']} |")
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
    """Rows of ``gpu_bench`` (the one GPU command); smoke files are labelled as such."""
    lines = ["## GPU benchmark (`gpu_bench.py`; one command, rows in priority order)", "",
             "| device | run | section | row | status | speed | GFLOP per frame / update | "
             "MFU (ceiling) | vosjax / official | versions | file |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for d in files:
        c = d["settings"]
        run = ("smoke (CPU plumbing check, not a speed figure)" if c.get("smoke")
               else f"budget {c.get('budget_s', 0) / 60:.0f} min")
        for r in d["rows"]:
            flops = r.get("flops_per_frame", r.get("flops_per_update"))
            mfu = (f"{100 * r['mfu']:.1f}% ({r['mfu_ceiling']})" if r.get("mfu") is not None
                   else "-")
            status = r["status"] if r["status"] == "ok" else f"{r['status']}: {r.get('reason')}"
            v = r.get("versions", {})
            vers = f"jax {v.get('jax')}, torch {v.get('torch') or '-'}"
            lines.append(f"| {r.get('device', _machine(d)['device'])} | {run} | "
                         f"{r['section']} | {r['name']} | {status} | "
                         f"{_gpu_value(r) if r['status'] == 'ok' else '-'} | "
                         f"{_fmt(flops / 1e9 if flops else None, 2)} | {mfu} | "
                         f"{_fmt(r.get('vosjax_speedup'), 2)} | {vers} | {d['_file']} |")
    for d in files:
        t = d.get("targets_measured") or {}
        if d["settings"].get("smoke") or not t:
            continue
        lines += ["", f"Targets ({_machine(d)['device']}, {d['_file']}):", ""]
        for name, text in d.get("targets", {}).items():
            got = t.get(name, {})
            shown = ", ".join(f"{k} {_fmt(v, 3)}" for k, v in got.items()
                              if k not in ("met", "target"))
            met = {True: "met", False: "not met", None: "not measured"}[got.get("met")]
            lines.append(f"* {text}: {met} ({shown or '-'})")
    return lines


SECTION_NAMES = {"ceilings": "(a) ceilings", "inference": "(b) one video",
                 "videos": "(c) many videos", "480p": "(d) 480p", "training": "(e) training",
                 "official": "(f) official"}


def gpu_owed(files) -> list[str]:
    """The rows of ``gpu_bench`` that no GPU run has measured yet (listed even with no file)."""
    from benchmarks import gpu_bench

    done = {r["name"] for d in files
            if not d["settings"].get("smoke") and _machine(d)["backend"] != "cpu"
            for r in d["rows"] if r["status"] == "ok"}
    owed = [j for j in gpu_bench.jobs(gpu_bench.FULL, False) if j.name not in done]
    if not owed:
        return []
    return ["## GPU rows owed (no GPU run has measured them yet)", "",
            *[f"* {SECTION_NAMES.get(j.section, j.section)}: {j.name}" for j in owed]]


# benchmark -> its tables, in the order of the README; a table lists every file of its
# benchmark (several benchmarks may share one table).
TABLES = [
    (("gpu_bench",), (gpu_bench_table,)),
    (("inference",), (inference_table, overhead_table, memory_table)),
    (("training",), (training_table,)),
    (("training_breakdown",), (breakdown_table,)),
    (("profile_step",), (profile_table,)),
    (("conv_kernels",), (conv_table,)),
    (("stm_step",), (stm_step_table,)),
    (("many_videos",), (many_videos_table,)),
    (("scoring",), (scoring_table,)),
    (("toolkit_compare",), (toolkit_compare_table,)),
    (("compile_count",), (compile_table,)),
    (("slot_trim",), (slot_trim_table,)),
    (("slot_flops",), (slot_flops_table,)),
    (("input_pipeline",), (input_pipeline_table,)),
    (("correction_caching",), (caching_table,)),
    (("correction_speed",), (correction_speed_table,)),
    (("correction_unroll",), (unroll_table,)),
    (tuple(SPEEDUPS), (speedups_table,)),
]
# Rendered even without a file: the GPU rows still owed.
ALWAYS = {"gpu_bench": (gpu_owed,)}


def build_section(results_dir) -> str:
    data = harness.read_results(results_dir)
    known = {b for benchmarks, _ in TABLES for b in benchmarks}
    unknown = sorted({d["_file"] for d in data if d["benchmark"] not in known})
    if unknown:
        raise SystemExit(f"make_table: no table renders {', '.join(unknown)} (add one to TABLES)")
    parts = []
    for benchmarks, tables in TABLES:
        files = [d for d in data if d["benchmark"] in benchmarks]
        if files:
            parts += [table(files) for table in tables]
        for b in benchmarks:
            parts += [table(files) for table in ALWAYS.get(b, ())]
    body = "\n\n".join("\n".join(p) for p in parts if p)
    return f"{BEGIN}\n{body}\n{END}\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--results", default=os.path.join(HERE, "results"))
    p.add_argument("--out", default=os.path.join(HERE, "README.md"), help="file to write")
    p.add_argument("--stdout", action="store_true")
    args = p.parse_args(argv)
    section = build_section(args.results)
    if args.stdout:
        sys.stdout.write(section)
        return
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    atomic.write_text(args.out, INTRO + "\n" + section)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
