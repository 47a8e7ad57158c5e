"""One config schema (configs/base.py): every config has exactly the base's fields, the
library reads no config field with a default, and the defaults taken from the code match it."""
import dataclasses
import importlib
import pathlib
import re

import pytest

from configs import base

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = [("configs.stm_cycle", "r18"), ("configs.stm_cycle", "r50"), ("configs.demo", ""),
           ("configs.stm_baseline", "r50"), ("configs.stm_original", ""),
           ("configs.gcseg", "pretrain"), ("configs.gcseg", "video"),
           ("configs.gcseg", "recurrent"), ("configs.gcseg", "demo"),
           ("configs.experiments.stm_synthetic", "cycle"),
           ("configs.experiments.stm_synthetic", "finetune-baseline"),
           ("configs.experiments.gcseg_synthetic", "both"),
           ("configs.experiments.gcseg_synthetic", "coseg-pretrain"),
           ("configs.experiments.gcseg_synthetic", "both-recurrent")]


def _keys(d, prefix=""):
    out = set()
    for k, v in d.items():
        out |= _keys(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k}
    return out


@pytest.mark.parametrize("module,arg", CONFIGS)
def test_every_config_has_the_schema_fields(module, arg):
    c = importlib.import_module(module).get_config(arg)
    schema = base.get_config(c.model.name)
    assert _keys(c.to_dict()) == _keys(schema.to_dict())
    assert c.is_locked
    with pytest.raises(AttributeError, match="not_a_field"):
        c.eval.not_a_field = 1


def test_demo_takes_every_eval_override():
    """The demo once replaced config.eval wholesale, dropping e.g. correction_rate."""
    from configs import demo, gcseg
    for c in (demo.get_config(), gcseg.get_config("demo")):
        c.eval.correction_rate = 10.8
        c.eval.correction_iters = 3
        assert (c.eval.correction_rate, c.eval.correction_iters) == (10.8, 3)


def test_schema_defaults_are_the_code_defaults():
    from vosjax.correction import GradientCorrection
    from vosjax.inference.options import GCSegOptions, STMOptions
    from vosjax.models.gcseg import GCSeg
    from vosjax.models.stm import STM

    e = base.get_config("stm").eval
    stm, gc, corr = STMOptions(), GCSegOptions(), GradientCorrection()
    assert (e.pad, e.upsample, e.mem_every, e.reference, e.videos_per_device) == (
        stm.pad, stm.upsample, stm.mem_every, stm.reference, stm.videos_per_device)
    assert (e.num_slots, e.memory_slots) == (0, 0) and stm.num_slots is stm.memory_slots is None
    assert (e.num_fragments, e.adaptive_search, e.seed) == (
        gc.num_fragments, gc.adaptive_search, gc.seed)
    assert (e.correction_iters, e.correction_rate, e.correction_every) == (
        corr.n_iter, corr.rate, corr.every)
    for family, cls in (("stm", STM), ("gcseg", GCSeg)):
        m = base.get_config(family).model
        for f in dataclasses.fields(cls):
            if f.name in m and f.name not in ("name", "parent"):
                assert m[f.name] == f.default, (family, f.name)


def test_library_reads_no_config_field_with_a_default():
    """``config.x.get("field", default)`` would be a second home for a default."""
    pattern = re.compile(r"\b(config|cfg|data_cfg|train_cfg|model_cfg|e|d|t)(\.\w+)*\.get\(")
    hits = [f"{p.relative_to(REPO)}:{i}: {line.strip()}"
            for p in sorted((REPO / "vosjax").rglob("*.py"))
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == []


def test_the_family_is_checked():
    with pytest.raises(ValueError, match="configs/base.py:maskrnn"):
        base.get_config("maskrnn")
