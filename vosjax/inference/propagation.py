"""Mask propagation through a video with the official STM-Cycle test-loop semantics.

For ``t = 1 .. T-1`` (frame 0 carries the given masks):

1. memorize frame ``t-1`` with its mask (the given one for ``t = 1``, else the previous
   output, possibly gradient-corrected);
2. segment frame ``t`` from the permanent memory plus that previous frame;
3. keep frame ``t-1`` permanently when the reference configuration says so (``"mem"``: when
   ``(t-1) % mem_every == 0``);
4. soft-aggregate the objects and take the softmax: the prediction for frame ``t``;
5. with :class:`~vosjax.correction.GradientCorrection`, at ``t % every == 0`` correct the mask
   (eq. 5) before it is memorized at ``t+1``.

Objects are a batch axis; the memory is a fixed-capacity :class:`MemoryBank`; one frame is one
call of a single jitted step, so a video compiles two programs (initial state, step) per
resolution, object count and bank capacity, plus one for the correction when it is on.
Probabilities stay on the device.

Reference-set configurations (the paper's Table 4): ``"mem"`` (default: every ``mem_every``-th
frame plus the previous frame), ``"first"`` (first frame only), ``"prev"`` (previous frame
only), ``"first+prev"``.

Objects that appear later (YouTube-VOS): give each object's mask at its start frame and the
start frames. At its start frame the object's mask is pasted over the running prediction (the
pixels it covers become that object) and that merged mask is recorded and memorized; before it,
the object's probability is held at 0. Annotated frames are kept in memory permanently (like
frame 0) except with ``"prev"``. Two differences from the official loop, which replaces the
whole running mask by the new annotation: we keep the other objects' predictions, and the
gradient correction uses the newest annotated frame (merged mask) as its reference and skips
the annotated frame itself.

Padded frames (the original STM's protocol, ``content``): the official original loop
(seoungwugoh/STM ``eval_DAVIS.py``) keeps each prediction cropped to the image and its
``memorize`` pads the frame and the mask with zeros to a multiple of 16, so the object masks it
memorizes are 0 outside the image content. Given a ``content`` map ``[H, W]`` (1 inside the
image, 0 on the padding), the mask of every memorized frame is multiplied by it (object
channels only: ``memorize`` reads nothing else), including a corrected or replaced one; the
predictions returned and the correction's own loss stay on the whole canvas. It is an array of
the state, so all videos of one working size share the compiled programs. Without it (None,
the default) the whole canvas is memorized, as STM-Training's loop does (its test transform
letterboxes the frames and it memorizes the full prediction).
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from vosjax.correction import GradientCorrection, correct_mask, masks_to_probs, segment_probs
from vosjax.inference.memory import MemoryBank, empty_bank, grow_bank, write_frame
from vosjax.models.stm import QueryFeatures

REFERENCES = ("mem", "first", "prev", "first+prev")
# Uncapped banks get a slot count rounded up to a multiple of this, so videos of similar
# length share one compiled step.
SLOT_BUCKET = 8


@dataclasses.dataclass(frozen=True)
class StepConfig:
    """Static settings of the per-frame step (hashable: part of the compilation key)."""
    num_slots: int
    mem_every: int = 5
    reference: str = "mem"
    correction: GradientCorrection | None = None

    def __post_init__(self):
        if self.reference not in REFERENCES:
            raise ValueError(f"reference={self.reference!r}: expected one of {REFERENCES}")
        if not isinstance(self.mem_every, int) or self.mem_every < 1:
            raise ValueError(f"mem_every must be a positive int, got {self.mem_every!r}")
        if not isinstance(self.num_slots, int) or self.num_slots < 1:
            raise ValueError(f"num_slots must be a positive int, got {self.num_slots!r}")
        if self.correction is not None and not isinstance(self.correction, GradientCorrection):
            raise TypeError(f"correction must be a GradientCorrection or None, "
                            f"got {type(self.correction).__name__}")

    @property
    def reads_previous(self) -> bool:
        return self.reference != "first"

    def keeps(self, frame, annotated):
        """Whether memory frame ``frame`` (= t-1) becomes permanent (works on ints and arrays)."""
        if self.reference == "prev":
            return annotated & False
        if self.reference == "mem":
            return annotated | (frame % self.mem_every == 0)
        return annotated | (frame == 0)

    def corrects(self, t) -> bool:
        return self.correction is not None and t % self.correction.every == 0


class PropagationState(NamedTuple):
    """Everything the step carries from frame to frame (a pytree of fixed shapes)."""
    bank: MemoryBank
    prev_frame: jax.Array       # [H, W, 3]
    prev_probs: jax.Array       # [K, H, W] the mask memorized at the next step
    prev_annotated: jax.Array   # bool: prev_probs holds given masks
    t: jax.Array                # int32, index of the next frame
    active: jax.Array           # [O] bool, objects whose first mask has arrived
    ref_query: QueryFeatures | None    # reference frame of the correction (None without)
    ref_probs: jax.Array | None        # [K, H, W] its mask
    content: jax.Array | None = None   # [H, W] float32: memorized masks are multiplied by it


class StepOutput(NamedTuple):
    probs: jax.Array              # [K, H, W] the prediction (new objects merged in)
    memory_positions: jax.Array   # int32: memory positions read for this frame


class PropagationResult(NamedTuple):
    """``probs`` ``[T, K, H, W]``; ``corrected`` {frame: ``[K, H, W]``} for corrected frames;
    ``memory_positions`` ``[T-1]`` positions read at t = 1..T-1; ``correction_losses``
    {frame: ``[n_iter]``}. ``probs`` and ``memory_positions`` are host arrays."""
    probs: np.ndarray
    corrected: dict
    memory_positions: np.ndarray
    correction_losses: dict


def merge_new_objects(probs, masks, new):
    """Paste the masks ``[O, H, W]`` of the objects flagged in ``new`` ``[O]`` over ``probs``
    ``[K, H, W]``: covered pixels become those objects, the rest keeps its probabilities."""
    o = masks.shape[0]
    pasted = jnp.where(new[:, None, None], masks.astype(probs.dtype), 0.0)
    cover = jnp.clip(jnp.sum(pasted, axis=0), 0.0, 1.0)
    return (probs * (1.0 - cover)).at[1:o + 1].add(pasted)


def content_map(content, hw) -> jax.Array | None:
    """``content`` (None, or ``[H, W]`` bool/float: 1 on the image, 0 on the padding) as the
    float32 map the state carries; checks its shape against the frame size ``hw``."""
    if content is None:
        return None
    content = jnp.asarray(content)
    if content.shape != tuple(hw):
        raise ValueError(f"content must be [H, W] = {tuple(hw)}, got shape {content.shape}")
    return content.astype(jnp.float32)


def init_state(model, variables, frame, masks, active, *, cfg: StepConfig, bank_slots: int,
               content=None):
    """Initial state from frame 0 and its object masks ``[O, H, W]`` (rows of inactive objects
    are ignored); ``content`` ``[H, W]`` (optional): see the module docstring.
    Returns ``(state, probs0 [K, H, W])``."""
    o = masks.shape[0]
    masks = jnp.where(active[:, None, None], masks.astype(jnp.float32), 0.0)
    probs0 = masks_to_probs(masks, cfg.num_slots)
    k = jax.eval_shape(lambda: model.apply(variables, frame, masks[:1], method=model.memorize))[0]
    # k.shape[1]: memory positions per frame (h*w at stride 16); the bank stores keys/values in
    # the model's compute dtype (bfloat16 mode: half the memory of float32).
    bank = empty_bank(o, k.shape[1], bank_slots, model.keydim, model.valdim, dtype=k.dtype)
    ref_query = ref_probs = None
    if cfg.correction is not None:
        ref_query = model.apply(variables, frame, method=model.encode_query)
        ref_probs = probs0
    state = PropagationState(bank=bank, prev_frame=frame.astype(jnp.float32), prev_probs=probs0,
                             prev_annotated=jnp.any(active), t=jnp.ones((), jnp.int32),
                             active=active, ref_query=ref_query, ref_probs=ref_probs,
                             content=content_map(content, frame.shape[:2]))
    return state, probs0


def propagation_step(model, variables, state: PropagationState, frame, new_masks, new_objects,
                     *, cfg: StepConfig):
    """One frame: memorize the previous frame, segment ``frame``, update the bank, optionally
    correct (eq. 5), merge newly arriving objects. Returns ``(state, StepOutput)``."""
    t = state.t
    o = state.active.shape[0]
    hw = frame.shape[:2]
    permanent = cfg.keeps(t - 1, state.prev_annotated)

    def memorize(_):
        masks = state.prev_probs[1:o + 1]
        if state.content is not None:     # the official original loop: 0 outside the image
            masks = masks * state.content
        return model.apply(variables, state.prev_frame, masks, method=model.memorize)

    if cfg.reads_previous:
        keys, values = memorize(None)
    else:   # "first": the previous frame is only needed when it is kept
        shapes = jax.eval_shape(memorize, None)
        keys, values = jax.lax.cond(
            permanent, memorize,
            lambda _: tuple(jnp.zeros(s.shape, s.dtype) for s in shapes), None)
    bank, read_valid = write_frame(state.bank, keys, values, permanent, cfg.reads_previous)
    query = model.apply(variables, frame, method=model.encode_query)
    out = segment_probs(model, variables, query, bank.keys, bank.values, cfg.num_slots, hw,
                        valid=read_valid, active=state.active)

    annotated = jnp.any(new_objects)
    out = merge_new_objects(out, new_masks, new_objects)
    ref_query, ref_probs = state.ref_query, state.ref_probs
    if cfg.correction is not None:    # the newest annotated frame becomes the reference
        ref_query = jax.tree_util.tree_map(lambda a, b: jnp.where(annotated, a, b), query,
                                           ref_query)
        ref_probs = jnp.where(annotated, out, ref_probs)
    new_state = PropagationState(
        bank=bank, prev_frame=frame.astype(jnp.float32), prev_probs=out,
        prev_annotated=annotated, t=t + 1, active=state.active | new_objects,
        ref_query=ref_query, ref_probs=ref_probs, content=state.content)
    return new_state, StepOutput(probs=out, memory_positions=jnp.sum(read_valid).astype(jnp.int32))


def correction_step(model, variables, state: PropagationState, *, cfg: StepConfig):
    """Gradient correction (eq. 5, :func:`~vosjax.correction.correct_mask`) of the frame the
    last step segmented: its mask in ``state.prev_probs`` is replaced by the corrected one, which
    the next step memorizes. Returns ``(state, corrected [K, H, W], losses [n_iter])``.

    A separate program rather than a ``lax.cond`` inside the step: on XLA:CPU the correction
    compiled into the step program ran 8.5 s against 3.3 s on its own (golden R18 model, 96x160,
    same process, 2 shared cores), with or without the ``cond``.
    """
    corr = cfg.correction
    corrected, losses = correct_mask(
        model, variables, state.prev_frame, state.prev_probs, state.ref_query, state.ref_probs,
        n_iter=corr.n_iter, rate=corr.rate, unroll=corr.resolved_unroll(),
        num_objects=state.active.shape[0])
    return state._replace(prev_probs=corrected), corrected, losses


def replace_memory_mask(state: PropagationState, masks, *, cfg: StepConfig):
    """Make the per-object masks ``[O, H, W]`` (rows of inactive objects ignored) the mask that
    the next step memorizes for the frame just segmented, in place of its prediction (the
    low-quality references of Table 5); a following correction step corrects them."""
    masks = jnp.where(state.active[:, None, None], masks.astype(jnp.float32), 0.0)
    return state._replace(prev_probs=masks_to_probs(masks, cfg.num_slots))


_init_jit = jax.jit(init_state, static_argnames=("model", "cfg", "bank_slots"))
_replace_jit = jax.jit(replace_memory_mask, static_argnames=("cfg",), donate_argnums=(0,))
_step_jit = jax.jit(propagation_step, static_argnames=("model", "cfg"), donate_argnums=(2,))
_correct_jit = jax.jit(correction_step, static_argnames=("model", "cfg"), donate_argnums=(2,))


def permanent_frames(num_frames: int, cfg: StepConfig, start_frames=()) -> int:
    """How many frames a video of ``num_frames`` keeps permanently (the uncapped bank size)."""
    annotated = set(int(s) for s in start_frames) | {0}
    return sum(bool(cfg.keeps(f, f in annotated)) for f in range(max(num_frames - 1, 0)))


def _bucket(n: int) -> int:
    return max(SLOT_BUCKET, -(-n // SLOT_BUCKET) * SLOT_BUCKET)


def video_bank_slots(num_frames: int, cfg: StepConfig, start_frames=(),
                     memory_slots: int | None = None) -> int:
    """Permanent slots of the memory bank :func:`propagate` gives a video of ``num_frames``
    whose objects start at ``start_frames``: ``memory_slots`` when capped, else every frame the
    reference set keeps (rounded up to a multiple of :data:`SLOT_BUCKET` for ``"mem"``); 0 for
    ``"prev"``. Part of the compiled programs' shapes (videos with equal slots share them)."""
    if cfg.reference == "prev":
        return 0
    if memory_slots is not None:
        return memory_slots
    starts = np.asarray(start_frames, np.int64).reshape(-1)
    slots = max(1, permanent_frames(num_frames, cfg, starts[starts > 0]))
    return _bucket(slots) if cfg.reference == "mem" else slots


class Propagator:
    """Frame-by-frame (streaming) propagation::

        prop = Propagator(model, variables, frame0, masks0)      # masks0 [O, H, W]
        for frame in stream:
            probs = prop.step(frame)                             # [K, H, W] on the device

    Args:
      frame0: ``[H, W, 3]`` normalised first frame at the working size.
      masks0: ``[O, H, W]`` masks on frame 0; O is the total number of objects of the video.
      active: ``[O]`` bool, the objects present on frame 0 (default all); the others arrive
        later through :meth:`step`'s ``new_masks``.
      num_slots: output channels minus 1 (default O).
      mem_every, reference, correction: see the module docstring.
      memory_slots: cap on permanent memory frames (first frame + most recent; ring buffer).
        None: uncapped, sized from ``max_frames`` when given, else grown by doubling when full
        (each growth compiles the step once more).
      max_frames: expected video length (sizes an uncapped bank).
      content: ``[H, W]`` 1 on the image, 0 on the padding (optional): memorized masks are
        zeroed outside it, as the original STM's loop does (module docstring).
    """

    def __init__(self, model, variables, frame0, masks0, *, active=None, num_slots=None,
                 mem_every: int = 5, reference: str = "mem",
                 correction: GradientCorrection | None = None, memory_slots: int | None = None,
                 max_frames: int | None = None, content=None):
        frame0 = jnp.asarray(frame0, jnp.float32)
        _check_frame(frame0, "frame0")
        masks0 = jnp.asarray(masks0)
        if masks0.ndim != 3 or masks0.shape[1:] != frame0.shape[:2]:
            raise ValueError(f"masks0 must be [O, H, W] with H, W = {frame0.shape[:2]}, "
                             f"got shape {masks0.shape}")
        o = masks0.shape[0]
        num_slots = o if num_slots is None else num_slots
        if not isinstance(num_slots, int) or num_slots < max(o, 1):
            raise ValueError(f"num_slots={num_slots!r} must be an int >= the {o} objects")
        self.cfg = StepConfig(num_slots=num_slots, mem_every=mem_every, reference=reference,
                              correction=correction)
        if memory_slots is not None:
            if not isinstance(memory_slots, int) or memory_slots < 1:
                raise ValueError(f"memory_slots must be None or a positive int, "
                                 f"got {memory_slots!r}")
            slots = memory_slots
        elif max_frames is not None:
            slots = max(1, permanent_frames(max_frames, self.cfg))
            slots = _bucket(slots) if reference == "mem" else slots
        else:   # grown by doubling when full
            slots = SLOT_BUCKET if reference == "mem" else 1
        if self.cfg.reference == "prev":
            slots = 0
        self.capped = memory_slots is not None
        active = np.ones((o,), bool) if active is None else np.asarray(active, bool)
        if active.shape != (o,):
            raise ValueError(f"active must be [{o}] bool, got shape {active.shape}")
        self.model, self.variables = model, variables
        self.frame_shape = tuple(frame0.shape)
        self.num_objects = o
        self._writes = 0                      # host mirror of bank.writes (no device sync)
        self._prev_annotated = bool(active.any())
        self._active = active.copy()
        self._no_masks = jnp.zeros(masks0.shape, jnp.float32)
        self.state, self.probs0 = _init_jit(model, variables, frame0, masks0, jnp.asarray(active),
                                            cfg=self.cfg, bank_slots=slots,
                                            content=content)
        self.t = 1
        # Of the last step only (a long stream keeps no per-frame history on the device).
        self.last_memory_positions: jax.Array | None = None
        self.last_corrected: jax.Array | None = None
        self.last_correction_losses: jax.Array | None = None

    @property
    def bank(self) -> MemoryBank:
        return self.state.bank

    def step(self, frame, new_masks=None, new_objects=None, memory_mask=None):
        """Segment the next frame; returns its probabilities ``[K, H, W]`` (a device array).

        After the call, ``last_memory_positions`` is the number of memory positions read and,
        on a corrected frame, ``last_corrected`` / ``last_correction_losses`` the corrected mask
        ``[K, H, W]`` and the loss before each update (both None on other frames).

        ``new_masks`` ``[O, H, W]``: masks of objects whose first annotation is this frame, in
        their rows; ``new_objects`` ``[O]`` bool says which rows are new (default: the rows with
        any foreground pixel).

        ``memory_mask`` ``[O, H, W]``: masks memorized for this frame instead of the prediction
        (ignored on a frame that brings new objects); the returned probabilities are still the
        prediction's. Table 5 replaces the masks of memory frames by low-quality ones.
        """
        frame = jnp.asarray(frame, jnp.float32)
        _check_frame(frame, f"frame {self.t}")
        if tuple(frame.shape) != self.frame_shape:
            raise ValueError(f"frame {self.t} has shape {tuple(frame.shape)}, the video "
                             f"{self.frame_shape}")
        if new_masks is None:
            new_masks, flags = self._no_masks, np.zeros((self.num_objects,), bool)
        else:
            new_masks = jnp.asarray(new_masks, jnp.float32)
            if new_masks.shape != self._no_masks.shape:
                raise ValueError(f"new_masks for frame {self.t} must have shape "
                                 f"{self._no_masks.shape}, got {new_masks.shape}")
            if new_objects is None:
                flags = np.asarray(jnp.any(new_masks > 0, axis=(1, 2)))
            else:
                flags = np.asarray(new_objects, bool)
                if flags.shape != (self.num_objects,):
                    raise ValueError(f"new_objects must be [{self.num_objects}] bool, "
                                     f"got shape {flags.shape}")
        self._grow_if_full()
        self.state, out = _step_jit(self.model, self.variables, self.state, frame, new_masks,
                                    jnp.asarray(flags), cfg=self.cfg)
        probs = out.probs
        self.last_memory_positions = out.memory_positions
        self.last_corrected = self.last_correction_losses = None
        self._active |= flags
        if memory_mask is not None and not flags.any():
            memory_mask = jnp.asarray(memory_mask, jnp.float32)
            if memory_mask.shape != self._no_masks.shape:
                raise ValueError(f"memory_mask for frame {self.t} must have shape "
                                 f"{self._no_masks.shape}, got {memory_mask.shape}")
            self.state = _replace_jit(self.state, memory_mask, cfg=self.cfg)
        if self.cfg.corrects(self.t) and not flags.any() and self._active.any():
            self.state, corrected, losses = _correct_jit(self.model, self.variables, self.state,
                                                         cfg=self.cfg)
            self.last_corrected, self.last_correction_losses = corrected, losses
            if self.cfg.correction.record_corrected:
                probs = corrected
        self._prev_annotated = bool(flags.any())
        self.t += 1
        return probs

    def _grow_if_full(self):
        keeps = bool(self.cfg.keeps(self.t - 1, self._prev_annotated))
        if keeps:
            s = self.state.bank.num_slots
            if not self.capped and s > 0 and self._writes >= s:
                self.state = self.state._replace(bank=grow_bank(self.state.bank, 2 * s))
            self._writes += 1


def propagate(model, variables, frames, first_masks, *, num_slots=None, mem_every: int = 5,
              correction: GradientCorrection | None = None, reference: str = "mem",
              memory_slots: int | None = None, start_frames=None,
              memory_masks=None, content=None) -> PropagationResult:
    """Propagate the first masks through a video (the official test loop).

    Args:
      model, variables: an :class:`~vosjax.models.stm.STM` and its variables.
      frames: ``[T, H, W, 3]`` normalised RGB at the working size (host), or a list of ``T``
        float32 ``[H, W, 3]`` device arrays (used as they are).
      first_masks: ``[O, H, W]`` each object's mask on its first frame (frame 0 by default).
      num_slots: output channels minus one (default O); extra channels stay empty.
      mem_every: memory write period of the ``"mem"`` reference set (5).
      correction: a :class:`~vosjax.correction.GradientCorrection`, or None.
      reference: ``"mem"`` | ``"first"`` | ``"prev"`` | ``"first+prev"`` (Table 4).
      memory_slots: optional cap on permanent memory frames (first + most recent).
      start_frames: ``[O]`` ints, the frame where each object's mask is given (default 0).
      memory_masks: optional ``[T, O, H, W]``: on every frame ``t >= 1`` that the reference
        set keeps permanently, ``memory_masks[t]`` is memorized instead of the prediction
        (then corrected when ``correction`` is on) -- the low-quality references of Table 5
        (another model's predictions, bounding boxes). Predictions are still returned.
      content: optional ``[H, W]``, 1 on the image and 0 on the padding: every memorized mask
        is zeroed outside it (the original STM's loop on padded frames; module docstring).

    Returns:
      :class:`PropagationResult` with ``probs`` ``[T, num_slots + 1, H, W]`` (frame 0: the
      given masks as a one-hot map, channel 0 the background) and ``memory_positions`` as host
      numpy arrays: the per-frame results stay on the device until the end and are then
      fetched together (stacking them on the device would compile once per video length).
    """
    if (isinstance(frames, (list, tuple)) and frames
            and all(isinstance(f, jax.Array) for f in frames)):   # already on the device
        shapes = {(tuple(f.shape), f.dtype) for f in frames}
        if len(shapes) != 1 or len(frames[0].shape) != 3 or frames[0].dtype != jnp.float32:
            raise ValueError(f"device frames must be float32 [H, W, 3] of one shape, got "
                             f"{sorted(map(str, shapes))}")
        device_frames, shape = list(frames), (len(frames),) + tuple(frames[0].shape)
    else:   # host first: indexing a device array would compile a slice per video length
        frames = np.asarray(frames, np.float32)
        device_frames, shape = None, frames.shape
    if len(shape) != 4 or shape[-1] != 3:
        raise ValueError(f"frames must be [T, H, W, 3] (normalised RGB), got shape {shape}")
    first_masks = np.asarray(first_masks, np.float32)
    if first_masks.ndim != 3 or first_masks.shape[1:] != shape[1:3]:
        raise ValueError(f"first_masks must be [O, H, W] with H, W = {shape[1:3]}, got "
                         f"shape {first_masks.shape}")
    t_len, o = shape[0], first_masks.shape[0]
    if start_frames is None:
        starts = np.zeros((o,), np.int64)
    else:
        starts = np.asarray(start_frames)
        if starts.shape != (o,) or not np.issubdtype(starts.dtype, np.integer):
            raise ValueError(f"start_frames must be [{o}] ints, got {start_frames!r}")
        if (starts < 0).any() or (starts >= t_len).any():
            raise ValueError(f"start_frames must lie in [0, {t_len - 1}], got {starts.tolist()}")
    if memory_slots is None:   # "mem": the size grows with T, shared across similar lengths
        cfg = StepConfig(num_slots=o if num_slots is None else num_slots, mem_every=mem_every,
                         reference=reference, correction=correction)
        memory_slots = max(1, video_bank_slots(t_len, cfg, starts))
    if memory_masks is not None:
        memory_masks = np.asarray(memory_masks, np.float32)
        if memory_masks.shape != (t_len,) + first_masks.shape:
            raise ValueError(f"memory_masks must be [T, O, H, W] = "
                             f"{(t_len,) + first_masks.shape}, got shape {memory_masks.shape}")
    # One upfront transfer of all frames as separate device arrays: no per-frame host copy in
    # the loop, and no slicing program per video length.
    frames = jax.device_put(list(frames)) if device_frames is None else device_frames
    prop = Propagator(model, variables, frames[0], first_masks, active=starts == 0,
                      num_slots=num_slots, mem_every=mem_every, reference=reference,
                      correction=correction, memory_slots=memory_slots, content=content)
    probs, positions, corrected, losses = [prop.probs0], [], {}, {}
    for t in range(1, t_len):
        new = starts == t
        low = None
        if memory_masks is not None and bool(prop.cfg.keeps(t, False)):
            low = memory_masks[t]
        probs.append(prop.step(frames[t], first_masks if new.any() else None, new, low))
        positions.append(prop.last_memory_positions)
        if prop.last_corrected is not None:
            corrected[t], losses[t] = prop.last_corrected, prop.last_correction_losses
    probs, positions = jax.device_get((probs, positions))
    positions = np.stack(positions) if positions else np.zeros((0,), np.int32)
    return PropagationResult(probs=np.stack(probs), corrected=corrected,
                             memory_positions=positions, correction_losses=losses)


def _check_frame(frame, what: str):
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"{what} must be [H, W, 3] (normalised RGB), got shape {frame.shape}")
