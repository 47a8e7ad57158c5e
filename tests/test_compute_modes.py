"""The numerics policy read off the compiled programs (vosjax.compute).

Each program (the training update, the propagation step, the gradient-correction program,
cycle-ERF, GCSeg's forward) is lowered to StableHLO and every ``convolution`` and
``dot_general`` in it is checked:

* ``bfloat16`` mode: bfloat16 operands everywhere outside a short, named allow-list of
  float32 scopes;
* ``float32-highest`` mode: every op has float32 operands and ``HIGHEST`` precision;
* ``float32`` mode: float32 operands with ``DEFAULT`` precision (TF32 allowed on GPUs).

Lowering is what the user's ``jit`` hands to XLA, independent of the backend that compiles it,
so the test holds for GPU programs although it runs on the CPU.
"""
from __future__ import annotations

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vosjax.compute import resolve
from vosjax.correction import GradientCorrection, cycle_erf
from vosjax.inference import propagation as prop
from vosjax.models.roi import F32_AGGREGATION
from vosjax.models.stm import STM, init_stm

# The allow-list: scopes computed in float32 HIGHEST in every mode (loss, softmax, aggregation):
# the exact area averages of GCSeg's ROI pooling and mask downsampling (small, geometry-exact).
F32_SCOPES: tuple[str, ...] = (F32_AGGREGATION,)

H, W, O = 32, 48, 2


def matmul_ops(lowered) -> list[dict]:
    """Every convolution / dot_general of a lowered program: operand and result element types,
    precision config and the op's name (the JAX name stack of its location)."""
    text = lowered.as_text(debug_info=True)
    locs = {}
    for m in re.finditer(r"^(#loc\d+) = loc\((.*)\)$", text, re.M):
        locs[m.group(1)] = m.group(2)

    def name_of(ref: str, depth: int = 0) -> str:
        body = locs.get(ref, ref)
        q = re.search(r'"([^"]*)"', body)
        if q and "/" in q.group(1):
            return q.group(1)
        for inner in re.findall(r"#loc\d+", body):
            if depth < 8:
                got = name_of(inner, depth + 1)
                if got:
                    return got
        return q.group(1) if q else ""

    ops = []
    for line in text.splitlines():
        kind = ("convolution" if "stablehlo.convolution" in line
                else "dot_general" if "stablehlo.dot_general" in line else None)
        if kind is None:
            continue
        sig = re.search(r":\s*\((tensor<[^>]*>),\s*(tensor<[^>]*>)\)\s*->\s*(tensor<[^>]*>)", line)
        assert sig, f"unparsed op line: {line[:200]}"
        dtype = lambda t: t.rsplit("x", 1)[-1].rstrip(">")  # noqa: E731
        # Either `precision_config = [#stablehlo<precision X>, ...]` or `precision = [X, Y]`.
        prec = re.findall(r"precision (\w+)>", line)
        if not prec:
            compact = re.search(r"precision = \[(\w+), (\w+)\]", line)
            prec = list(compact.groups()) if compact else []
        loc = re.search(r"loc\((#loc\d+)\)\s*$", line)
        ops.append({"kind": kind, "lhs": dtype(sig.group(1)), "rhs": dtype(sig.group(2)),
                    "out": dtype(sig.group(3)), "precision": prec,
                    "name": name_of(loc.group(1)) if loc else ""})
    return ops


# -- the programs --------------------------------------------------------------------------------

def _stm(mode, abstract=True):
    """A small STM in ``mode`` and its variables (shapes only unless ``abstract=False``:
    lowering needs no values, so nothing here is compiled or run)."""
    model = STM("resnet10", keydim=16, valdim=32, mdim=16, **resolve(mode).model_kwargs())
    init = lambda r: init_stm(model, r, H, W, O)  # noqa: E731
    rng = jax.random.PRNGKey(0)
    return model, (jax.eval_shape(init, rng) if abstract else jax.jit(init)(rng))


def _inputs():
    rng = np.random.default_rng(0)
    frame = jnp.asarray(rng.normal(size=(H, W, 3)), jnp.float32)
    masks = jnp.asarray(rng.random((O, H, W)) > 0.5, jnp.float32)
    return frame, masks


def propagation_programs(mode):
    """Lowered (propagation step, correction step) of a small STM in ``mode``."""
    model, variables = _stm(mode)
    frame, masks = _inputs()
    cfg = prop.StepConfig(num_slots=O, correction=GradientCorrection(n_iter=2, unroll=1))
    state, _ = jax.eval_shape(functools.partial(prop.init_state, model, cfg=cfg, bank_slots=2),
                              variables, frame, masks, jnp.ones((O,), bool))
    step = prop._step_jit.lower(model, variables, state, frame, masks, jnp.zeros((O,), bool),
                                cfg=cfg)
    corr = prop._correct_jit.lower(model, variables, state, cfg=cfg)
    return {"propagation step": step, "correction": corr}


def training_program(mode):
    """Lowered training update (cycle objective, 2 clips of 3 frames) of a small STM."""
    from vosjax.training.step import init_state, stm_loss_fn, train_step

    model, _ = _stm(mode)
    tx = optax.adam(1e-4)
    state = jax.eval_shape(
        lambda r: init_state(lambda k: init_stm(model, k, H, W, O), tx, r), jax.random.PRNGKey(0))
    batch = {"frames": jax.ShapeDtypeStruct((2, 3, H, W, 3), jnp.float32),
             "masks": jax.ShapeDtypeStruct((2, 3, O + 1, H, W), jnp.float32),
             "num_objects": jax.ShapeDtypeStruct((2,), jnp.int32)}
    fn = jax.jit(lambda s, b: train_step(s, b, loss_fn=stm_loss_fn(model, cycle=True), tx=tx))
    return fn.lower(state, batch)


def erf_program(mode):
    model, variables = _stm(mode)
    frame, masks = _inputs()
    return jax.jit(lambda v, a, b, m: cycle_erf(model, v, a, b, m, n_iter=2, unroll=1)
                   ).lower(variables, frame, frame, masks)


def gcseg_program(mode):
    from tests.gcseg_tiny import TINY
    from vosjax.models.gcseg import GCSeg

    model = GCSeg(**TINY, **resolve(mode).model_kwargs())
    frames = jnp.zeros((1, 32, 32, 3), jnp.float32)
    mask = jnp.zeros((1, 32, 32), jnp.float32)
    args = (frames, mask, frames, mask)
    variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), *args))
    return jax.jit(model.apply).lower(variables, *args)


def all_programs(mode):
    progs = propagation_programs(mode)
    progs["training update"] = training_program(mode)
    progs["cycle-ERF"] = erf_program(mode)
    progs["GCSeg forward"] = gcseg_program(mode)
    return progs


@pytest.fixture(scope="module", params=["bfloat16", "float32-highest", "float32"])
def mode_programs(request):
    return request.param, {k: matmul_ops(v) for k, v in all_programs(request.param).items()}


def test_programs_obey_the_mode(mode_programs):
    mode, programs = mode_programs
    for prog, ops in programs.items():
        assert len(ops) >= 10, f"{prog}: only {len(ops)} conv/dot ops found; parser broken?"
        bad = []
        for op in ops:
            operands = {op["lhs"], op["rhs"]}
            if any(scope in op["name"] for scope in F32_SCOPES):
                ok = operands == {"f32"} and op["precision"] == ["HIGHEST", "HIGHEST"]
            elif mode == "bfloat16":
                ok = operands == {"bf16"}
            elif mode == "float32-highest":
                ok = operands == {"f32"} and op["precision"] == ["HIGHEST", "HIGHEST"]
            else:
                ok = operands == {"f32"} and op["precision"] in ([], ["DEFAULT", "DEFAULT"])
            if not ok:
                bad.append(op)
        assert not bad, (f"{mode}: {len(bad)} of {len(ops)} ops in the {prog} break the mode, "
                         f"e.g. {bad[:3]}")


def test_bf16_memory_read_accumulates_in_float32(mode_programs):
    mode, programs = mode_programs
    if mode != "bfloat16":
        pytest.skip("bfloat16 only")
    reads = [op for op in programs["propagation step"] if "STM.read" in op["name"]]
    assert len(reads) == 2, reads        # the two einsums of the attention read
    assert all(op["lhs"] == op["rhs"] == "bf16" and op["out"] == "f32" for op in reads), reads


def test_parser_sees_a_float32_op():
    """The checker is not blind: a deliberate float32 HIGHEST matmul is reported as such, with
    its scope name."""
    def f(a, b):
        with jax.named_scope("deliberate"):
            return jnp.dot(a, b, precision="highest")
    ops = matmul_ops(jax.jit(f).lower(jnp.ones((4, 4)), jnp.ones((4, 4))))
    assert ops == [{"kind": "dot_general", "lhs": "f32", "rhs": "f32", "out": "f32",
                    "precision": ["HIGHEST", "HIGHEST"], "name": ops[0]["name"]}]
    assert "deliberate" in ops[0]["name"]


def test_bf16_bank_is_stored_in_bf16():
    model, variables = _stm("bfloat16", abstract=False)
    frame, masks = _inputs()
    p = prop.Propagator(model, variables, frame, masks)
    assert p.bank.keys.dtype == jnp.bfloat16 and p.bank.values.dtype == jnp.bfloat16
    out = p.step(frame)
    assert out.dtype == jnp.float32 and np.isfinite(np.asarray(out)).all()


def test_auto_resolves_per_backend():
    assert resolve("auto", "cpu").mode == "float32-highest"
    assert resolve("auto", "gpu").mode == "bfloat16"
    assert resolve("auto", "tpu").mode == "bfloat16"
    with pytest.raises(ValueError, match="compute='fp8'"):
        resolve("fp8")
