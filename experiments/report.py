"""Render the experiment tables of docs/experiments.md from experiments/results/*.json.

    python -m experiments.report            # rewrites the generated block of docs/experiments.md

Every number between the ``<!-- generated:begin -->`` / ``<!-- generated:end -->`` markers
comes from the JSON files; the prose around them is written by hand. Each cell is the mean
over seeds +- the sample standard deviation (n = number of seeds, in the header).
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np

from experiments.common import DEFAULT_GC, N_SWEEP, RATE_SWEEP
from vosjax import atomic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEGIN, END = "<!-- generated:begin -->", "<!-- generated:end -->"


def mean_sd(values) -> str:
    v = np.asarray([x for x in values if x is not None], np.float64)
    if v.size == 0:
        return "n/a"
    if v.size == 1:
        return f"{100 * v[0]:.1f}"
    return f"{100 * v.mean():.1f} ± {100 * v.std(ddof=1):.1f}"


def _cells(runs, variant, setting, field="JF"):
    return [r["settings"][setting][field] for r in runs.values()
            if r["variant"] == variant and setting in r["settings"]]


def _delta(runs, a, b, setting_a, setting_b, field="JF"):
    """Per-seed differences (b - a), paired by seed."""
    by_seed = {}
    for r in runs.values():
        by_seed.setdefault(r["seed"], {})[r["variant"]] = r["settings"]
    out = []
    for s in by_seed.values():
        if a in s and b in s and setting_a in s[a] and setting_b in s[b]:
            out.append(s[b][setting_b][field] - s[a][setting_a][field])
    return out


def _pos(deltas) -> str:
    return f"{sum(d > 0 for d in deltas)}/{len(deltas)}"


def stm_tables(res, timing=None) -> list[str]:
    runs = res["runs"]
    seeds = sorted({r["seed"] for r in runs.values()})
    n = len(seeds)
    out = [f"Held-out synthetic videos: {res['videos']} x 24 frames at "
           f"{res['size'][0]}x{res['size'][1]}; seeds {seeds} (n = {n}); J&F-Mean, J-Mean, "
           f"F-Mean in % (mean ± sd over seeds). Machine: {res['machine']}, "
           f"{res['nproc']} cores. Command: `{res['command']}`.", "", train_line(runs), ""]

    n0, r0 = DEFAULT_GC
    out += [f"**Table 3** (components; \"GC\" = gradient correction, N = {n0}, α = {r0:g}, "
            "every 5 frames, MEM reference set)", "",
            "| model | J | F | J&F | frames/s | J&F gain vs baseline (seeds with gain > 0) |",
            "|---|---|---|---|---|---|"]
    for label, variant, setting in (("baseline", "baseline", "mem"), ("+ cycle", "cycle", "mem"),
                                    ("+ GC", "baseline", "mem+gc"),
                                    ("+ both", "cycle", "mem+gc")):
        d = _delta(runs, "baseline", variant, "mem", setting)
        gain = "" if label == "baseline" else f"{mean_sd(d)} ({_pos(d)})"
        out.append(f"| {label} | {mean_sd(_cells(runs, variant, setting, 'J'))} | "
                   f"{mean_sd(_cells(runs, variant, setting, 'F'))} | "
                   f"{mean_sd(_cells(runs, variant, setting))} | "
                   f"{np.mean([r for r in _cells(runs, variant, setting, 'fps')]):.0f} | "
                   f"{gain} |")

    out += ["", "**Table 4** (reference sets at inference; J&F)", "",
            "| memory (frames / masks) | baseline | + cycle | Δ (seeds with Δ > 0) |",
            "|---|---|---|---|"]
    for label, setting in (("{X1} / {Y1}", "first"), ("{Xt-1} / {Ŷt-1}", "prev"),
                           ("{X1, Xt-1} / {Y1, Ŷt-1}", "first+prev"), ("MEM", "mem")):
        d = _delta(runs, "baseline", "cycle", setting, setting)
        out.append(f"| {label} | {mean_sd(_cells(runs, 'baseline', setting))} | "
                   f"{mean_sd(_cells(runs, 'cycle', setting))} | {mean_sd(d)} ({_pos(d)}) |")

    out += ["", "**Table 5** (low-quality masks written to memory, cycle model, MEM)", "",
            "| low-quality mask | GC | J | F | J&F | GC gain (seeds with gain > 0) |",
            "|---|---|---|---|---|---|"]
    for label, key in (("baseline predict", "lowq-baseline"), ("bounding box", "lowq-bbox")):
        for gc in (False, True):
            s = key + ("+gc" if gc else "")
            d = _delta(runs, "cycle", "cycle", key, s) if gc else []
            out.append(f"| {label} | {'✓' if gc else ''} | "
                       f"{mean_sd(_cells(runs, 'cycle', s, 'J'))} | "
                       f"{mean_sd(_cells(runs, 'cycle', s, 'F'))} | "
                       f"{mean_sd(_cells(runs, 'cycle', s))} | "
                       f"{f'{mean_sd(d)} ({_pos(d)})' if gc else ''} |")

    def sweep(unit, pairs):
        rows = [f"| {unit} | J&F | frames/s |", "|---|---|---|"]
        for label, setting in pairs:
            jf = _cells(runs, "cycle", setting)
            if jf:
                fps = np.mean(_cells(runs, "cycle", setting, "fps"))
                rows.append(f"| {label} | {mean_sd(jf)} | {fps:.0f} |")
        return rows

    out += ["", f"**Figure 3** (correction iterations N, α = {r0:g}, cycle model; N = 0: no "
            "correction)", ""]
    fig3 = sweep("N", [("0", "mem")] + [(f"{n}", "mem+gc" if n == n0 else f"gc-n{n}")
                                       for n in N_SWEEP])
    if timing:   # the time axis measured in alternating rounds (experiments.gc_timing)
        by_n = {str(r["n_iter"]): r["fps_median"] for r in timing["rows"]}
        rows = []
        for row in fig3[2:]:
            n = row.split(" | ")[0].lstrip("| ")
            rows.append(row + (f" {by_n[n]:.1f} |" if n in by_n else " - |"))
        out += ["| N | J&F | frames/s (during the sweep) | frames/s (alternating rounds) |",
                "|---|---|---|---|"] + rows
        out += ["", f"Alternating-round frames/s: `{timing['command']}` ({timing['videos']} "
                f"videos, load {timing['load_average_start']}-{timing['load_average_end']})."]
    else:
        out += fig3
    out += ["", f"**Figure 4** (correction rate α, N = {n0}, cycle model)", ""]
    out += sweep("α", [(f"{r:g}", "mem+gc" if r == r0 else f"gc-rate{r:g}")
                       for r in RATE_SWEEP])
    return out


def finetune_table(res) -> list[str]:
    """The trained baselines continued for 400 updates without / with the cycle term."""
    runs = res["runs"]
    seeds = sorted({r["seed"] for r in runs.values()})
    out = [f"**Cycle term as fine-tuning** (each seed's trained baseline continued for 400 "
           f"updates at lr 1e-4 without (`:finetune-baseline`) or with (`:finetune-cycle`) the "
           f"cycle term; seeds {seeds}, J&F %). Command: `{res['command']}`.", "",
           train_line(runs), "",
           "| inference | fine-tuned without cycle | fine-tuned with cycle "
           "| Δ (seeds with Δ > 0) |",
           "|---|---|---|---|"]
    for label, setting in (("MEM", "mem"), ("MEM + GC", "mem+gc"), ("{X1} / {Y1}", "first"),
                           ("{Xt-1} / {Ŷt-1}", "prev")):
        if not _cells(runs, "baseline", setting):
            continue
        d = _delta(runs, "baseline", "cycle", setting, setting)
        out.append(f"| {label} | {mean_sd(_cells(runs, 'baseline', setting))} | "
                   f"{mean_sd(_cells(runs, 'cycle', setting))} | {mean_sd(d)} ({_pos(d)}) |")
    return out


def train_line(runs) -> str:
    """Training wall time per variant (mean over seeds) from the results' ``train`` fields."""
    parts = []
    for variant in dict.fromkeys(r["variant"] for r in runs.values()):
        rec = [r["train"] for r in runs.values() if r["variant"] == variant and "train" in r]
        if rec:
            wall = np.mean([x["wall_s"] for x in rec]) / 60
            sps = np.mean([x["steps_per_s"] for x in rec])
            parts.append(f"{variant} {wall:.1f} min ({sps:.2f} steps/s, {rec[0]['steps']} steps)")
    if not parts:
        return ""
    return ("Training wall time per run incl. its held-out evaluation, mean over seeds, on 2 "
            "cores (other jobs at times sharing them): " + "; ".join(parts) + ".")


GCSEG_VARIANTS = (("baseline", "baseline", "53.2"), ("reference", "Ref", "61.9"),
                  ("coseg", "Co-seg", "60.4"), ("both", "Ref + Co-seg", "71.1"),
                  ("both+rec", "Ref + Co-seg, + recurrent stage", ""))
GCSEG_SETTINGS = (("nosearch", "off"), ("search-paper", "on, paper's rule"),
                  ("search-centred", "on, centred rule"), ("zero-prev", "M_t-1 always zeroed"))


def machines(res) -> str:
    """``Machine: X`` or, for runs scored on several machines, which runs ran on which."""
    by = {}
    for key, r in res["runs"].items():
        by.setdefault(r.get("machine", res["machine"]), []).append(key)
    if len(by) <= 1:
        return f"Machine: {next(iter(by), res['machine'])}"
    return "Machines (training and scoring of each run): " + "; ".join(
        f"{m} ({', '.join(sorted(keys))})" for m, keys in by.items())


TABLE_V_HEAD = ["| modules | n | seeds | J&F search off | J&F on, paper's rule "
                "| J&F on, centred rule | J&F, M_t-1 always zeroed (control) | J / F (off) "
                "| paper J&F |",
                "|---|---|---|---|---|---|---|---|---|"]
TABLE_VI_HEAD = ["| modules | rule | n | on - off (seeds > 0) | rejected | non-empty | threshold |",
                 "|---|---|---|---|---|---|---|"]


def _table_v_rows(runs, variants) -> list[str]:
    """One row per variant: J&F under each setting of ``GCSEG_SETTINGS`` (owed if not run)."""
    out = []
    for variant, label, paper in variants:
        sel = [r for r in runs.values() if r["variant"] == variant]
        if not sel:
            out.append(f"| {label} | 0 | | owed | owed | owed | owed | | {paper} |")
            continue
        cells = [mean_sd(_cells(runs, variant, s)) for s, _ in GCSEG_SETTINGS]
        jf = (f"{mean_sd(_cells(runs, variant, 'nosearch', 'J'))} / "
              f"{mean_sd(_cells(runs, variant, 'nosearch', 'F'))}")
        seeds = sorted(r["seed"] for r in sel)
        out.append(f"| {label} | {len(sel)} | {seeds} | " + " | ".join(cells)
                   + f" | {jf} | {paper} |")
    return out


def _table_vi_rows(runs, variants) -> list[str]:
    """Per variant and rule: search on minus off (paired by run), and what was rejected."""
    out = []
    for variant, label, _ in variants:
        for s, rule in (("search-paper", "paper"), ("search-centred", "centred"),
                        ("zero-prev", "always zero (control)")):
            sel = [r for r in runs.values() if r["variant"] == variant
                   and s in r["settings"] and "nosearch" in r["settings"]]
            if not sel:
                continue
            d = [r["settings"][s]["JF"] - r["settings"]["nosearch"]["JF"] for r in sel]
            j = [r["settings"][s]["judge"] for r in sel]
            thr = {"paper": [0.7], "centred": [r["centred_calibration"]["threshold"]
                                               for r in sel]}.get(rule, [2.0])
            thr_s = ", ".join(f"{t:.3f}" for t in thr)
            out.append(f"| {label} | {rule} | {len(sel)} | {mean_sd(d)} ({_pos(d)}) | "
                       f"{mean_sd([x['rejected_fraction'] for x in j])} | "
                       f"{mean_sd([x['rejected_nonempty_fraction'] for x in j])} | {thr_s} |")
    return out


def _trivial_line(res) -> list[str]:
    triv = res.get("trivial")
    if not triv:
        return []
    return ["", f"Model-free references on the same videos: no object after frame 0 scores "
            f"J&F {100 * triv['empty_after_frame0']:.1f} (the objects are absent in "
            f"{100 * (1 - triv['object_present_share']):.0f}% of the (frame, object) pairs, "
            f"which the DAVIS protocol scores 1 when the prediction is empty too); the "
            f"frame-0 masks copied to every frame score {100 * triv['copy_frame0']:.1f}."]


def _earlier_lines(res) -> list[str]:
    """Runs scored on another machine before being re-run here, kept for the record."""
    earlier = res.get("earlier_machine", {})
    if not earlier:
        return []
    cells = [f"`{k}` {100 * e['settings']['nosearch']['JF']:.1f}" for k, e in earlier.items()]
    where = sorted({e.get("machine", "?") for e in earlier.values()})
    return ["", f"Trained and scored earlier on {', '.join(where)} (kept in the JSON under "
            f"`earlier_machine`; the rows above use this machine's re-runs of the same commands), "
            f"J&F search off: {', '.join(cells)}. The same command is not bitwise across CPUs."]


def _owed_lines(res) -> list[str]:
    owed = res.get("owed", {})
    if not owed:
        return []
    runs = "run" if len(owed) == 1 else "runs"
    return (["", f"**Owed** ({len(owed)} {runs} not run yet; each is `experiments/run.sh`'s "
             "command, then the scoring command above):", ""]
            + [f"* `{k}`: `{cmd}`" for k, cmd in owed.items()])


def gcseg_paper_tables(res) -> list[str]:
    """Tables V-VI with the paper's ablation protocol (experiments.gcseg_ablations)."""
    runs = res["runs"]
    out = [f"**GCSeg, the paper's ablation protocol** (no static-image pre-training; 400 video "
           f"pair updates; `+ recurrent stage`: 100 more recurrent updates of the same model). "
           f"Held-out synthetic videos: {res['videos']} x 24 frames at "
           f"{res['size'][0]}x{res['size'][1]}; % (mean ± sd over the seeds run; n per row). "
           f"{machines(res)}, {res['nproc']} cores. Command: "
           f"`{res['command']}`.", "", train_line(runs), *_earlier_lines(res), "",
           "**Table V** (modules) with the adaptive search off and on (both judgement rules). "
           "Paper column: the paper's Table V J&F (DAVIS-2016 val, no pre-training), for the "
           "ordering only; the scales are not comparable.", "",
           "Control column: every M_t-1 zeroed (no short-term cue at all).", "",
           *TABLE_V_HEAD, *_table_v_rows(runs, GCSEG_VARIANTS)]
    out += _trivial_line(res)
    out += ["", "**Table VI** (adaptive search on minus off, J&F points, per-seed differences; "
            "\"rejected\": share of (frame, object) decisions that zeroed M_t-1; \"non-empty\": "
            "share that zeroed a non-empty M_t-1, the only ones that change the output). "
            "Centred rule threshold: chosen per run on 16 training videos.", "",
            *TABLE_VI_HEAD, *_table_vi_rows(runs, GCSEG_VARIANTS)]
    return out + _owed_lines(res)


def gcseg_long_tables(res) -> list[str]:
    """The full model trained 10x longer (``:both-long``), scored as the protocol's runs."""
    runs = res["runs"]
    variants = (("both-long", "Ref + Co-seg, 4000 updates", ""),)
    out = [f"**GCSeg full model trained 10x longer** (beyond the paper's protocol: "
           f"`configs/experiments/gcseg_synthetic.py:both-long`, 4000 video pair updates, no "
           f"pre-training), scored like the runs above on the same {res['videos']} held-out "
           f"videos. {machines(res)}, {res['nproc']} cores. Command: `{res['command']}`.", "",
           train_line(runs), "", *TABLE_V_HEAD, *_table_v_rows(runs, variants)]
    out += _trivial_line(res)
    out += ["", *TABLE_VI_HEAD, *_table_vi_rows(runs, variants)]
    return out + _owed_lines(res)


def gcseg_judgement_table(res) -> list[str]:
    """Separability of right and wrong M_{t-1} (experiments.gcseg_judgement)."""
    m = res["model"]
    out = [f"**Judgement separability** (model `{'/'.join(res['run'].split('/')[-2:])}`, mode "
           f"{m['mode']}, {m['arch']}, features of level {m['ref_level']}, "
           f"F = {'E(I, M)' if res.get('features', 'masked') == 'masked' else 'E(I, 0)'}; "
           f"threshold chosen on {res['train_videos']} training videos, figures on "
           f"{res['heldout_videos']} held-out videos). Machine: {res['machine']}, "
           f"{res['nproc']} cores, shared. Command: `{res['command']}`.", "",
           "| rule | threshold | AUC vs all wrong | AUC vs background | AUC vs other object "
           "| AUC vs other video | kept: correct / background / other object / other video |",
           "|---|---|---|---|---|---|---|"]
    rows = [(rule, r["heldout"]) for rule, r in res["rules"].items()]
    if "paper" in res["rules"] and "heldout_at_0.7" in res["rules"]["paper"]:
        rows.insert(1, ("paper (at the paper's 0.7)", res["rules"]["paper"]["heldout_at_0.7"]))
    for rule, h in rows:
        k = h["kinds"]
        aucs = " | ".join(f"{k[x]['auc_vs_correct']:.3f}" for x in
                          ("background", "other_object", "other_video"))
        kept = " / ".join(f"{k[x].get('kept', float('nan')):.2f}" for x in
                          ("correct", "background", "other_object", "other_video"))
        out.append(f"| {rule} | {h['threshold']:.3f} | {h['auc_all_wrong']:.3f} | {aucs} | "
                   f"{kept} |")
    out += ["", "Similarity on the held-out videos, mean [5th-95th percentile] (n):", "",
            "| rule | correct | background | other object | other video |",
            "|---|---|---|---|---|"]
    for rule, r in res["rules"].items():
        k = r["heldout"]["kinds"]
        out.append(f"| {rule} | " + " | ".join(
            f"{k[x]['mean']:.3f} [{k[x]['p05']:.3f}, {k[x]['p95']:.3f}] ({k[x]['n']})"
            for x in ("correct", "background", "other_object", "other_video")) + " |")
    t = res.get("step_timing")
    if t:
        out += ["", f"One jitted inference step ({t['objects']} object(s), {t['references']} "
                f"references, median of {t['reps']}): M_t-1 kept {t['kept_ms']:.1f} ms, "
                f"rejected non-empty (second extractor pass) {t['rejected_nonempty_ms']:.1f} "
                f"ms, rejected empty (pass skipped) {t['rejected_empty_ms']:.1f} ms; timed "
                "while other jobs loaded the 2 cores, so these differ by noise as much as by "
                "work: that the pass is skipped is shown by `tests/test_gcseg_judgement.py`, "
                "which counts the extractor passes executed."]
    return out


def gcseg_tables(res) -> list[str]:
    runs = res["runs"]
    for r in runs.values():  # runs scored by the current script: its paper-rule setting
        st = r["settings"]
        if "search" not in st and "search-paper" in st:
            st["search"] = st["search-paper"]
            r.setdefault("judge", st["search-paper"].get("judge", {}))
    seeds = sorted({r["seed"] for r in runs.values()})
    out = ["**GCSeg, the earlier protocol (not the paper's)**: 200 static-image pre-training "
           "updates before the 400 video updates (`configs/experiments/gcseg_synthetic.py:"
           "MODE-pretrain`), no baseline row, no recurrent stage; judgement = the paper's rule.",
           "",
           f"Held-out synthetic videos: {res['videos']} x 24 frames at "
           f"{res['size'][0]}x{res['size'][1]}; seeds {seeds} (n = {len(seeds)}); % "
           f"(mean ± sd). Machine: {res['machine']}. Command: `{res['command']}`.", "",
           train_line(runs), "",
           "**Table V** (modules; adaptive search on) and **Table VI** (adaptive search). "
           "\"rejected\": share of (frame, object) decisions where the judgement module zeroed "
           "M_t-1; \"rejected non-empty\": share where the M_t-1 it zeroed was not already "
           "empty.", "",
           "| modules | search | J | F | J&F | rejected | rejected non-empty |",
           "|---|---|---|---|---|---|---|"]
    for mode, label in (("reference", "reference only"), ("coseg", "co-segmentation only"),
                        ("both", "both")):
        for search in (True, False):
            s = "search" if search else "nosearch"
            sel = [r for r in runs.values() if r["variant"] == mode and s in r["settings"]]
            if not sel:
                continue
            cells = [r["settings"][s] for r in sel]
            judge = [r["judge"] for r in sel if "judge" in r] if search else []
            rej = mean_sd([j["rejected_fraction"] for j in judge]) if judge else ""
            rej_ne = mean_sd([j["rejected_nonempty_fraction"] for j in judge]) if judge else ""
            out.append(f"| {label} | {'on' if search else 'off'} | "
                       f"{mean_sd([c['J'] for c in cells])} | "
                       f"{mean_sd([c['F'] for c in cells])} | "
                       f"{mean_sd([c['JF'] for c in cells])} | {rej} | {rej_ne} |")
    return out


def erf_table(res) -> list[str]:
    out = ["**Cycle-ERF** (share of the ERF mass on the object's ground-truth mask of the "
           f"reference frame; reference frames {res['refs']}, {res['n_iter']} iterations, "
           f"α = {res['rate']:g}; mean ± sd over seeds). Command: `{res['command']}`.", "",
           "| model | synthetic | DAVIS-2016 mini |", "|---|---|---|"]
    s = res["share_on_object"]
    for variant in ("baseline", "cycle"):
        rows = [v for k, v in s.items() if k.startswith(variant + "-")]
        out.append(f"| {variant} | {mean_sd([r['synthetic'] for r in rows])} | "
                   f"{mean_sd([r['davis2016'] for r in rows])} |")
    return out


def render(results_dir: str) -> str:
    def load(name):
        path = os.path.join(results_dir, name)
        if not os.path.isfile(path):
            return None
        with open(path) as f:
            return json.load(f)

    parts = []
    stm = load("stm_synthetic.json")
    if stm is not None:
        parts += stm_tables(stm, load("gc_timing.json")) + [""]
    for name, fn in (("stm_finetune.json", finetune_table), ("cycle_erf.json", erf_table),
                     ("gcseg_paper_protocol.json", gcseg_paper_tables),
                     ("gcseg_long.json", gcseg_long_tables),
                     ("gcseg_judgement.json", gcseg_judgement_table),
                     ("gcseg_judgement_long.json", gcseg_judgement_table),
                     ("gcseg_synthetic.json", gcseg_tables)):
        data = load(name)
        if data is not None:
            parts += fn(data) + [""]
    return "\n".join(parts)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", default=os.path.join(ROOT, "experiments", "results"))
    p.add_argument("--doc", default=os.path.join(ROOT, "docs", "experiments.md"))
    args = p.parse_args(argv)
    with open(args.doc) as f:
        text = f.read()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{args.doc}: lacks the {BEGIN} / {END} markers")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    body = render(args.results)
    atomic.write_text(args.doc, head + BEGIN + "\n" + body + "\n" + END + tail)
    print(f"updated {args.doc}")


if __name__ == "__main__":
    main()
