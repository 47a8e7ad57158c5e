"""Training paths beyond the default loop: gradient accumulation, learning-rate schedules,
``init_from`` fine-tuning, and training from DAVIS-, YouTube-VOS- and ``tfds:`` sources."""
import contextlib
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from data_layouts import make_davis2017, make_youtube_vos
from loop_helpers import STM, RandomClips, flat, loop_config, run_config, train_steps
from stm_helpers import numpy_variables
from vosjax.families import build_model, save_model
from vosjax.families import get as get_family
from vosjax.training import sharding as shd
from vosjax.training.loop import build_optimizer, train
from vosjax.training.step import jit_init_state


def _steps(config, batches):
    """Train steps over raw ``batches`` on one device: the params before and after each
    step."""
    run = train_steps(config, jax.devices()[:1], batches)
    assert all(bool(m["finite"]) for m in run.metrics)
    return run.params


def test_accumulating_k_batches_equals_one_k_times_larger_batch():
    """2 steps of 2 clips with accumulate_steps=2 == 1 step of the same 4 clips. Adam divides
    by sqrt(v) ~ |g|, so the comparison is relative over the whole parameter vector (float32
    summation order differs between the two batch shapes)."""
    four = RandomClips(4, clip_len=2).batch(0).arrays
    halves = [{k: v[i:i + 2] for k, v in four.items()} for i in (0, 2)]
    p0, after_first, acc = _steps(loop_config(batch_size=2, accumulate_steps=2,
                                              learning_rate=1e-5), halves)
    p0_big, big = _steps(loop_config(batch_size=4, learning_rate=1e-5), [four])
    np.testing.assert_array_equal(p0, p0_big)
    np.testing.assert_array_equal(after_first, p0)      # no update before the k-th batch
    assert np.linalg.norm(big - p0) > 0
    assert np.linalg.norm(acc - big) <= 1e-3 * np.linalg.norm(big - p0)


def _applied_lrs(train_overrides, n):
    """The step sizes ``build_optimizer`` applies over ``n`` updates: with a constant gradient
    and no weight decay Adam's direction is g / (|g| + eps), so each update of a parameter
    with gradient 1 is the learning rate of that step (to float32 rounding, ~1e-5)."""
    cfg = loop_config(weight_decay=0.0, **train_overrides)
    tx = build_optimizer(cfg.train)
    params = {"w": jnp.zeros(())}
    opt = tx.init(params)
    out = []
    for _ in range(n):
        upd, opt = tx.update({"w": jnp.ones(())}, opt, params)
        params = optax.apply_updates(params, upd)
        out.append(-float(upd["w"]))
    return np.array(out)


def test_learning_rate_schedules_by_hand():
    np.testing.assert_allclose(_applied_lrs(dict(learning_rate=0.1), 3), [0.1] * 3, rtol=1e-4)
    # step: x0.1 at steps 3 and 5 (the official adjust_learning_rate), after 2 warm-up steps
    # rising linearly from 0.
    lrs = _applied_lrs(dict(learning_rate=0.1, schedule="step", milestones=(3, 5), gamma=0.1,
                            warmup_steps=2), 7)
    np.testing.assert_allclose(lrs, [0.0, 0.05, 0.1, 0.01, 0.01, 0.001, 0.001],
                               rtol=1e-4, atol=1e-9)
    # cosine over num_train_steps - warmup = 8 steps after 2 warm-up steps.
    total, warm = 10, 2
    lrs = _applied_lrs(dict(learning_rate=0.2, schedule="cosine", warmup_steps=warm,
                            num_train_steps=total), total)
    want = [0.0, 0.1] + [0.1 * (1 + math.cos(math.pi * k / (total - warm)))
                         for k in range(total - warm)]
    np.testing.assert_allclose(lrs, want, rtol=1e-4, atol=1e-8)


def test_init_from_starts_from_the_given_model(tmp_path):
    """Fine-tuning from a trained workdir: with a warm-up the first step's learning rate is 0,
    so one step later the params are exactly the source's; a different model is refused."""
    with _counting_compiles():     # cached however fast it compiles: the check below needs it
        src = train(run_config(num_train_steps=2), str(tmp_path / "src"), STM,
                    sampler=RandomClips(8, clip_len=2), progress=False)
    assert not np.array_equal(flat(src["variables"]["params"]),
                              flat(_init_params(run_config())))
    # The fine-tuning run's step is the source run's program, found in the persistent
    # compilation cache (conftest): its lowering does not depend on the process's history.
    with _counting_compiles() as compiled:
        out = train(run_config(num_train_steps=1, init_from=str(tmp_path / "src")),
                    str(tmp_path / "ft"), STM, sampler=RandomClips(8, clip_len=2),
                    progress=False)
    assert "jit__prepared_step" not in compiled, compiled
    for a, b in zip(jax.tree_util.tree_leaves(src["variables"]),
                    jax.tree_util.tree_leaves(out["variables"])):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # A model directory of another model (keydim 8) as the source of the configured one.
    other = run_config()
    other.model.keydim = 8
    model = build_model(other.model)
    save_model(tmp_path / "src-keydim8", model, numpy_variables(
        lambda: get_family(other.model.name).init_variables(model, other)(jax.random.PRNGKey(0))))
    bad = run_config(num_train_steps=1, init_from=str(tmp_path / "src-keydim8"))
    with pytest.raises(ValueError, match=r"config.train.init_from=.*src-keydim8.*do not match"):
        train(bad, str(tmp_path / "bad"), STM, sampler=RandomClips(8, clip_len=2), progress=False)


@contextlib.contextmanager
def _counting_compiles():
    """The names of the programs XLA compiles inside the block (persistent-cache hits
    excluded); every program is cached, however fast its compile."""
    from jax._src import compiler

    names, real = [], compiler.backend_compile_and_load

    def counting(backend, module, *args, **kwargs):
        names.append(str(module.operation.attributes["sym_name"]).strip('"'))
        return real(backend, module, *args, **kwargs)

    before = jax.config.jax_persistent_cache_min_compile_time_secs
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    compiler.backend_compile_and_load = counting
    try:
        yield names
    finally:
        compiler.backend_compile_and_load = real
        jax.config.update("jax_persistent_cache_min_compile_time_secs", before)


def _init_params(config):
    """The params a fresh run of ``config`` starts from (the loop's own jitted init on the
    loop's mesh, seeded with ``config.seed``)."""
    model = build_model(config.model)
    init = get_family(config.model.name).init_variables(model, config)
    init_fn, _, _ = jit_init_state(init, build_optimizer(config.train),
                                   shd.make_mesh(config.train.fsdp))
    return jax.device_get(init_fn(jax.random.PRNGKey(config.seed)).params)


def _source_config(sources, num_workers=0, **data):
    cfg = run_config(num_train_steps=1)
    cfg.data.update(dict(sources=sources, max_objects=2, gap_start=1, gap_increment=0,
                         gap_every_epochs=1, num_workers=num_workers, **data))
    return cfg


def test_training_from_davis_youtubevos_and_tfds_layouts(tmp_path):
    from vosjax.data import tfds_builders as tb
    from vosjax.training.input_pipeline import build_batches

    # One video per layout: the tfds copies may store videos in another order, which would
    # make the sampler draw other videos for the same step.
    make_davis2017(tmp_path / "DAVIS", seqs=("alpha",), split="train")
    make_youtube_vos(tmp_path / "yt")
    tb.DavisFolder(root=str(tmp_path / "DAVIS"), config="2017-480p",
                   data_dir=str(tmp_path / "tfds")).download_and_prepare()
    tb.YoutubeVosFolder(root=str(tmp_path / "yt"),
                        data_dir=str(tmp_path / "tfds")).download_and_prepare()
    roots = dict(davis_root=str(tmp_path / "DAVIS"), youtubevos_root=str(tmp_path / "yt"))
    tfds_davis = "tfds:" + str(tmp_path / "tfds/davis_folder/2017-480p/1.0.0")
    tfds_yt = "tfds:" + str(tmp_path / "tfds/youtube_vos_folder/1.0.0")
    # The tfds copies hold the folders' original bytes: the same clips, bit for bit.
    for folder, stored in (("davis2017", tfds_davis), ("youtubevos", tfds_yt)):
        a = build_batches(_source_config(((folder, 1),), **roots)).batch(0).arrays
        b = build_batches(_source_config(((stored, 1),), **roots)).batch(0).arrays
        assert a["frames"].shape == (8, 2, 32, 48, 3)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    # YouTube-VOS's object 7 (id 2 here) appears only from frame 00010: some clips have it.
    yt = build_batches(_source_config((("youtubevos", 1),), **roots)).batch(0)
    assert set(yt.arrays["num_objects"].tolist()) <= {1, 2}
    # One training step from each source, through the loop's own data path; the tfds
    # sources are opened again in a grain worker process (they are pickled to it).
    for name, sources, workers in (("davis", (("davis2017", 1),), 0),
                                   ("yt", (("youtubevos", 1),), 0),
                                   ("tfds", ((tfds_davis, 1), (tfds_yt, 1)), 1)):
        out = train(_source_config(sources, num_workers=workers, **roots),
                    str(tmp_path / f"w-{name}"), STM, progress=False)
        assert out["step"] == 1 and np.isfinite(float(out["metrics"]["loss"])), name
