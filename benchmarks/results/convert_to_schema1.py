"""One-off: rewrite the result files of benchmarks/results/ (five formats) in the one schema of
benchmarks/harness.py, moving and renaming fields only: every measured number, command, date
and machine field is kept as it was (checked by benchmarks/results/check_schema1.py against
the files of the commit before). Run once from the repository root:

    PYTHONPATH=. python benchmarks/results/convert_to_schema1.py
"""
import json
import os

from benchmarks.harness import write_result

HERE = os.path.dirname(os.path.abspath(__file__))
VERSION_KEYS = ("python", "jax", "jaxlib", "flax", "optax", "numpy", "torch")


def rename(d, mapping):
    return {mapping.get(k, k): v for k, v in d.items()}


def envelope(old, benchmark=None, settings=None, rows=None, **extra):
    """The schema-1 fields of a file written by benchmarks/record.py's header()."""
    versions = old.get("versions") or {k: old[k] for k in VERSION_KEYS if k in old}
    return {"schema": 1, "benchmark": benchmark or old["benchmark"], "command": old["command"],
            "date": old["started"],
            "machine": {"device": old["device"], "backend": old["backend"], "cpu": old["cpu"],
                        "logical_cpus": old["logical_cpus"], "versions": versions,
                        "load_average": {"start": old["load_average_start"],
                                         "end": old["load_average_end"]}},
            "settings": settings if settings is not None else old.get("settings", {}),
            "rows": rows if rows is not None else old["rows"], **extra}


def row_load(row):
    row = dict(row)
    row["load_average"] = {"start": row.pop("load_average_start"),
                           "end": row.pop("load_average_end")}
    return row


OURS_INFERENCE = {"warmup_video_s": "warmup_s", "compiles_first_video": "compiles_warmup",
                  "xla_compile_s_first_video": "xla_compile_s_warmup",
                  "compiles_later_videos": "compiles_timed"}
OURS_TRAINING = {"first_update_s": "warmup_s", "compiles_first_update": "compiles_warmup",
                 "xla_compile_s": "xla_compile_s_warmup"}


def inference(old):
    rows = []
    for r in old["rows"]:
        r = row_load(r)
        r["ours"] = rename(r["ours"], OURS_INFERENCE)
        if "official" in r:
            r["official"] = rename(r["official"], OURS_INFERENCE)
        rows.append(r)
    settings = {**old["settings"], "torch_threads": old["torch_threads"],
                "official_checkout": old["official_checkout"]}
    return envelope(old, settings=settings, rows=rows, memory=old["memory"])


def training(old):
    rows = []
    for r in old["rows"]:
        r = row_load(r)
        r["ours"] = rename(r["ours"], OURS_TRAINING)
        if "official" in r:
            r["official"] = rename(r["official"], OURS_TRAINING)
        rows.append(r)
    settings = {**old["settings"], "torch_threads": old["torch_threads"],
                "official_checkout": old["official_checkout"]}
    return envelope(old, settings=settings, rows=rows)


def training_breakdown(old):
    rows = []
    for part in ("forward", "backward", "forward_backward", "update", "optimizer"):
        side = {impl: ({"median_s": old[impl]["median_s"][part]}
                       if part in old[impl]["median_s"] else None)
                for impl in ("ours", "official")}
        rows.append({"part": part, **side, "speedup": old["speedup"].get(part)})
    runs = {impl: old[impl]["runs"] for impl in ("ours", "official")}
    return envelope(old, rows=rows, runs=runs)


def conv_kernels(old):
    rows = []
    for r in old["rows"]:
        r = dict(r)
        r["load_average"] = {"start": r.pop("load_average")}     # sampled before the row
        rows.append(r)
    return envelope(old, rows=rows)


def profile_step(old):
    row = {k: old[k] for k in ("wall_s_traced_video", "op_seconds_total", "kinds", "top_ops")}
    return envelope(old, rows=[row])


def speedup(old):
    rows = []
    for r in old["rows"]:
        r = dict(r)
        load = r.pop("load_average")                 # sampled when the row was done
        r = {**{k: r[k] for k in ("setting", "before_label", "after_label")},
             "metric": "median_s", **r, "load_average": {"end": load}}
        rows.append(r)
    return envelope(old, settings={}, rows=rows)


def correction_caching(old):
    side = {s: {"median_s": old["median_s"][s], "runs_s": old["runs_s"][s],
                "warmup_s": old["first_call_s"][s]} for s in ("before", "after")}
    c = old["config"]
    row = {"setting": f"{c['arch']} {c['size'][0]}x{c['size'][1]}, {c['objects']} objects, "
                      f"one correction of {c['n_iter']} steps",
           "before_label": "recomputed", "after_label": "cached", "metric": "median_s",
           "before": side["before"], "after": side["after"], "speedup": old["speedup"],
           "max_abs_diff": old["max_abs_diff"]}
    return envelope(old, settings=old["config"], rows=[row])


def slot_trim(old):
    c = old["config"]
    side = {s: rename(old[name], {"median_step_s": "median_s"})
            for s, name in (("before", "padded"), ("after", "trimmed"))}
    row = {"setting": f"{c['arch']} {c['size'][0]}x{c['size'][1]}, batch {c['batch']}, "
                      f"{c['num_slots']} slots, cycle {'on' if c['cycle'] else 'off'}",
           "before_label": "padded", "after_label": "trimmed", "metric": "clips_per_s",
           "before": side["before"], "after": side["after"], "speedup": old["speedup"],
           "max_abs_diff": None, "batch_max_objects": old["batch_max_objects"],
           "compiled_shapes": old["compiled_shapes"]}
    return envelope(old, settings=c, rows=[row])


def slot_flops(old):
    rows = [{"policy": name, **p} for name, p in old["policies"].items()]
    extra = {k: old[k] for k in ("flops_source", "object_count_mix", "tflop_step",
                                 "tflop_per_clip", "tflop_optimizer_update", "lower_s", "bucket",
                                 "hosts", "count_cost") if k in old}
    return envelope(old, settings=old["config"], rows=rows, **extra)


def compile_count(old):
    runs = {}
    for label, r in old["runs"].items():
        versions = {k: r[k] for k in VERSION_KEYS if k in r}
        runs[label] = {"command": r["command"], "date": r["started"], "note": r["note"],
                       "machine": {"device": r["device"], "backend": r["backend"],
                                   "cpu": r["cpu"], "logical_cpus": r["logical_cpus"],
                                   "versions": versions,
                                   "load_average": {"start": r["load_average_start"],
                                                    "end": r["load_average_end"]}},
                       "settings": {"size": r["size"], "correction": r["correction"]},
                       "rows": r["rows"]}
    b, a = runs["before"], runs["after"]
    rows = []
    for rb, ra in zip(b["rows"], a["rows"]):
        assert rb["frames"] == ra["frames"]
        rows.append({"setting": f"first video of {rb['frames']} frames",
                     "before_label": b["note"], "after_label": a["note"], "metric": "wall_s",
                     "before": {k: rb[k] for k in ("compiles", "compile_s", "wall_s")},
                     "after": {k: ra[k] for k in ("compiles", "compile_s", "wall_s")},
                     "speedup": round(rb["wall_s"] / ra["wall_s"], 4), "max_abs_diff": None,
                     "frames": rb["frames"]})
    latest = max(runs.values(), key=lambda r: r["date"])
    return {"schema": 1, "benchmark": "compile_count", "command": latest["command"],
            "date": latest["date"], "machine": latest["machine"],
            "settings": latest["settings"], "rows": rows, "runs": runs}


def scoring(old):
    m = old["machine"]
    load = old["load_average_1min_before_after"]
    side = {s: {"min_s": old[f"seconds_{s}"], "runs_s": old["all_runs_seconds"][s],
                "cpu_runs_s": old["all_runs_cpu_seconds"][s], "command": old[f"command_{s}"]}
            for s in ("ours", "toolkit")}
    row = {**side, "speedup": old["speedup"], "speedup_cpu_time": old["speedup_cpu_time"],
           **{k: old[k] for k in old if k.startswith("max_abs_diff")}}
    return {"schema": 1, "benchmark": "scoring", "command": None, "date": None,
            "machine": {"device": m["cpu"], "backend": "cpu", "cpu": m["cpu"],
                        "logical_cpus": m["logical_cpus"],
                        "versions": {k: m[k] for k in VERSION_KEYS if k in m},
                        "load_average": {"start": load[0], "end": load[1]}},
            "settings": {"dataset": old["dataset"]}, "rows": [row]}


def toolkit_compare(old):
    rows = [{"case": name, **v} for name, v in old.items() if isinstance(v, dict)]
    return {"schema": 1, "benchmark": "toolkit_compare", "command": None, "date": None,
            "machine": {"device": None, "backend": None, "cpu": None, "logical_cpus": None,
                        "versions": {}, "load_average": {"start": None, "end": None}},
            "settings": {}, "rows": rows, "worst_max_abs_diff": old["worst_max_abs_diff"]}


def stm_step(old):
    rows = [rename(r, {"compile_s": "warmup_s"}) for r in old["rows"]]
    end = old["load_average_at_end"]
    return {"schema": 1, "benchmark": "stm_step", "command": old["command"], "date": None,
            "machine": {"device": old["device"], "backend": old["backend"],
                        "cpu": old["device"] if old["backend"] == "cpu" else None,
                        "logical_cpus": old["cpu_count"], "versions": {"jax": old["jax"]},
                        "load_average": {"start": None, "end": end[0],
                                         "end_1_5_15_min": end}},
            "settings": {}, "rows": rows}


def correction_unroll(old):
    start, end = old["load_average_start"], old["load_average_end"]
    return {"schema": 1, "benchmark": "correction_unroll", "command": old["command"],
            "date": None,
            "machine": {"device": old["device"], "backend": old["backend"],
                        "cpu": old["device"] if old["backend"] == "cpu" else None,
                        "logical_cpus": old["logical_cpus"], "versions": {"jax": old["jax"]},
                        "load_average": {"start": start[0], "end": end[0],
                                         "start_1_5_15_min": start, "end_1_5_15_min": end}},
            "settings": old["config"], "rows": old["correction_unroll"]}


BY_BENCHMARK = {"inference": inference, "training": training,
                "training_breakdown": training_breakdown, "conv_kernels": conv_kernels,
                "profile_step": profile_step, "correction_caching": correction_caching,
                "slot_trim": slot_trim, "slot_flops": slot_flops,
                "compile_count": compile_count, "speedup_objects": speedup,
                "speedup_memory-read": speedup, "speedup_donation": speedup,
                "speedup_png": speedup}
BY_FILE = {"scoring_cpu.json": scoring, "toolkit_compare.json": toolkit_compare,
           "stm_step_cpu.json": stm_step, "correction_unroll_cpu.json": correction_unroll}


def main():
    for name in sorted(os.listdir(HERE)):
        if not name.endswith(".json"):
            continue
        path = os.path.join(HERE, name)
        with open(path) as f:
            old = json.load(f)
        if old.get("schema") == 1:
            continue
        fn = BY_FILE.get(name) or BY_BENCHMARK[old["benchmark"]]
        write_result(path, fn(old))
        print(f"{name}: {fn.__name__}")


if __name__ == "__main__":
    main()
