"""Drive the official STM-Training code (lyxok1/STM-Training, branch ``cycle``) for the
benchmarks: import it from a checkout given on the command line (never vendored), build its
``STAN`` model with given weights, and run its test loop (``test.py``) and its training step
(``train.py``, ``mode=recurrent``) with the same semantics as the official scripts.

Only the model code is exercised. The checkout's data and config modules import packages the
model never uses (opencv, lmdb, imgaug, yacs, progress, DALI); when those are not installed,
empty placeholder modules are registered for them so the imports succeed, and
``torchvision.models`` is replaced by :mod:`.torchvision_standin` when torchvision is missing.

Offline: the checkout builds its encoders with ``torchvision.models.resnetXX(pretrained=True)``
(an ImageNet download with a real torchvision); :func:`import_official` rebinds the checkout's
``models`` name to constructors that pass ``weights=None`` (``pretrained=False`` on torchvision
< 0.13 and the stand-in), so no weights are ever fetched. The benchmarks overwrite every
weight anyway.
"""
from __future__ import annotations

import importlib
import inspect
import os
import sys
import types

import numpy as np

from benchmarks.official import import_checkout, placeholders

# Third-party packages imported at module level by the checkout's data/config/test modules but
# never used by the model code.
UNUSED_PACKAGES = ("cv2", "lmdb", "imgaug", "yacs", "progress", "nvidia")
# Adam's learning rate and L2 weight decay in the official training configuration.
LEARNING_RATE, WEIGHT_DECAY = 1e-5, 5e-4


def import_official(checkout: str):
    """Import ``libs.models.models`` (``STAN``, ``Soft_aggregation``) and ``libs.utils.loss``
    from an STM-Training checkout; returns ``(models_module, loss_module)``."""
    if not os.path.isfile(os.path.join(checkout, "libs", "models", "models.py")):
        raise FileNotFoundError(f"{checkout}: not an STM-Training checkout "
                                "(libs/models/models.py is missing)")
    from benchmarks.official import torchvision_standin  # (imports torch)

    torchvision_standin.install()
    placeholders(UNUSED_PACKAGES)
    models = import_checkout(checkout, ("libs",), "libs.models.models")
    models.models = offline_resnets(models.models)
    loss = importlib.import_module("libs.utils.loss")
    importlib.import_module("libs.dataset.data")    # convert_one_hot (training cycle terms)
    return models, loss


RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101")


def _without_weights(build):
    params = inspect.signature(build).parameters
    no_weights = {"weights": None} if "weights" in params else {"pretrained": False}

    def offline(pretrained=False, **kwargs):
        del pretrained     # the checkout asks for ImageNet weights; never downloaded here
        kwargs.pop("weights", None)
        return build(**no_weights, **kwargs)
    offline.__name__ = getattr(build, "__name__", "resnet")
    return offline


def offline_resnets(tv_models) -> types.ModuleType:
    """A stand-in for the ``torchvision.models`` module the checkout imported whose ResNet
    constructors never load pretrained weights (idempotent)."""
    if getattr(tv_models, "OFFLINE", False):
        return tv_models
    module = types.ModuleType(f"{tv_models.__name__}_offline")
    module.OFFLINE = True
    for name in RESNETS:
        if hasattr(tv_models, name):
            setattr(module, name, _without_weights(getattr(tv_models, name)))
    return module


def build_model(models, arch: str, state_dict: dict | None = None, device: str = "cpu"):
    """The official ``STAN`` in eval mode (frozen BN, as both official scripts), optionally with
    a ``{torch name: numpy array}`` state dict loaded."""
    import torch

    opt = types.SimpleNamespace(keydim=128, valdim=512, arch=arch)
    net = models.STAN(opt)
    if state_dict is not None:
        net.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state_dict.items()},
                            strict=True)
    return net.eval().to(device)


def random_state_dict(models, arch: str, seed: int = 0, calib_hw=(64, 96)) -> dict:
    """A random STAN state dict whose frozen-BN statistics are calibrated on random input (so
    activations stay O(1) through the trunks, like trained weights): ``{name: float32 array}``."""
    import torch

    torch.manual_seed(seed)
    net = build_model(models, arch)
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None          # cumulative average over the calibration batches
        m.train()
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for _ in range(2):
            x = torch.randn((2, 3) + tuple(calib_hw), generator=gen)
            m = (torch.rand((2,) + tuple(calib_hw), generator=gen) > 0.5).float()
            net.Encoder_Q(x)
            net.Encoder_M(x, m, 1.0 - m)
    return {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}


def propagate(net, frames, masks0, num_objects: int, *, mem_every: int = 5,
              loop: int = 0, rate: float = 180.0, autocast_dtype=None):
    """The official test loop (``test.py``, ``test``) on one video, frame 0 annotated.

    Args:
      frames: ``[T, 3, H, W]`` torch tensor (normalised); masks0: ``[1, K, H, W]`` one-hot.
      mem_every: ``opt.save_freq`` (memory period and correction period).
      loop: ``opt.loop`` correction iterations (0: no correction).
      autocast_dtype: e.g. ``torch.bfloat16`` to run under ``torch.autocast``.

    Returns ``pred`` ``[T, K, H, W]`` (uncorrected outputs, as the official loop records).
    """
    import torch

    def criterion(pred, target, obj):
        return _loss.cross_entropy_loss(pred, target, obj) + _loss.mask_iou_loss(pred, target, obj)

    _loss = sys.modules["libs.utils.loss"]
    max_obj = masks0.shape[1] - 1
    for p in net.parameters():
        p.requires_grad = False
    ctx = (torch.autocast(device_type=frames.device.type, dtype=autocast_dtype)
           if autocast_dtype is not None else _nullcontext())
    with ctx:
        pred = [masks0]
        keys, vals = [], []
        ref_mask, ref_index, out = masks0, 0, None
        for t in range(1, frames.shape[0]):
            with torch.no_grad():
                tmp_mask = masks0 if t - 1 == 0 else out
                key, val, _ = net(frame=frames[t - 1:t], mask=tmp_mask, num_objects=num_objects)
                tmp_key = torch.cat(keys + [key], dim=1)
                tmp_val = torch.cat(vals + [val], dim=1)
                logits, _ = net(frame=frames[t:t + 1], keys=tmp_key, values=tmp_val,
                                num_objects=num_objects, max_obj=max_obj)
                out = torch.softmax(logits, dim=1)
                if (t - 1) % mem_every == 0:
                    keys.append(key)
                    vals.append(val)
            pred.append(out)
            if t % mem_every == 0:
                for _ in range(loop):
                    tmp_mask = out.detach().clone()
                    tmp_mask.requires_grad = True
                    key, val, _ = net(frame=frames[t:t + 1], mask=tmp_mask,
                                      num_objects=num_objects)
                    flogits, _ = net(frame=frames[ref_index:ref_index + 1], keys=key, values=val,
                                     num_objects=num_objects, max_obj=max_obj)
                    loss = criterion(torch.softmax(flogits, 1), ref_mask, num_objects)
                    loss.backward()
                    out = out - rate * tmp_mask.grad
    return torch.cat(pred, dim=0)


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def clip_loss(net, frame, mask, num_objects: int, max_obj: int, loss_mod, convert_one_hot):
    """One clip's ``total_loss`` contribution of the official ``train`` (``mode=recurrent``):
    forward over t = 1..T-1 and the cycle terms (before the ``/ (N * (T-1))`` division)."""
    import torch

    def criterion(pred, target, obj, ref):
        return (loss_mod.cross_entropy_loss(pred, target, obj, ref=ref)
                + loss_mod.mask_iou_loss(pred, target, obj, ref=ref))

    t_len = frame.shape[0]
    total = 0.0
    keys, vals = [], []
    out = None
    for t in range(1, t_len):
        tmp_mask = mask[t - 1:t] if t - 1 == 0 else out
        key, val, _ = net(frame=frame[t - 1:t], mask=tmp_mask, num_objects=num_objects)
        keys.append(key)
        vals.append(val)
        logits, _ = net(frame=frame[t:t + 1], keys=torch.cat(keys, dim=1),
                        values=torch.cat(vals, dim=1), num_objects=num_objects, max_obj=max_obj)
        out = torch.softmax(logits, dim=1)
        total = total + criterion(out, mask[t:t + 1], num_objects, mask[0:1, :num_objects + 1])
    key, val, _ = net(frame=frame[t_len - 1:t_len], mask=out, num_objects=num_objects)
    keys.append(key)
    vals.append(val)
    cycle = 0.0
    for t in range(t_len - 1, 0, -1):
        cm = np.transpose(mask[t].detach().cpu().float().numpy(), [1, 2, 0])
        if convert_one_hot(cm, max_obj).max() == num_objects:
            logits, _ = net(frame=frame[0:1], keys=keys[t], values=vals[t],
                            num_objects=num_objects, max_obj=max_obj)
            first = torch.softmax(logits, dim=1)
            ref = mask[t:t + 1, :num_objects + 1]
            cycle = cycle + criterion(first, mask[0:1], num_objects, ref)
    return total + cycle


def train_update(net, optimizer, frames, masks, objs, *, iter_size: int, loss_mod,
                 autocast_dtype=None):
    """One optimizer update of the official ``train`` loop with ``train_batch = 1``: each of the
    ``iter_size`` clips (``frames[i]`` ``[T, 3, H, W]``, ``masks[i]`` ``[T, K, H, W]``) is its
    own batch (forward, loss / (T-1) / iter_size, backward, gradients accumulate), then
    ``optimizer.step()`` and ``zero_grad``. Returns the mean clip loss."""
    import torch

    max_obj = masks.shape[2] - 1
    losses = []
    ctx = (torch.autocast(device_type=frames.device.type, dtype=autocast_dtype)
           if autocast_dtype is not None else _nullcontext())
    for i in range(iter_size):
        with ctx:
            total = clip_loss(net, frames[i], masks[i], int(objs[i]), max_obj, loss_mod,
                              sys.modules["libs.dataset.data"].convert_one_hot)
            total = total / (frames.shape[1] - 1)
        losses.append(float(total.detach()))
        (total / iter_size).backward()
    optimizer.step()
    net.zero_grad()
    return float(np.mean(losses))


class OfficialInference:
    """The official test loop of one configuration, driven like
    :class:`benchmarks.workloads.VosjaxInference`: ``put`` the inputs on the device, ``run``
    one video (blocks until done)."""

    def __init__(self, models, state_dict, arch, dtype, correction, mem_every, device,
                 n_iter: int = 10):
        import torch

        self.torch = torch
        self.device = "cuda" if device == "gpu" else "cpu"
        self.net = build_model(models, arch, state_dict, self.device)
        self.autocast = None if dtype == "float32" else torch.bfloat16
        self.loop = n_iter if correction else 0
        self.mem_every = mem_every

    def put(self, frames, masks0):
        t = self.torch
        f = t.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2))).to(self.device)
        return f, t.from_numpy(masks0[None]).to(self.device)

    def run(self, frames, masks):
        pred = propagate(self.net, frames, masks, masks.shape[1] - 1, mem_every=self.mem_every,
                         loop=self.loop, rate=180.0, autocast_dtype=self.autocast)
        if self.device == "cuda":
            self.torch.cuda.synchronize()
        return pred


class OfficialTraining:
    """The official ``train`` loop (``train_batch = 1``, ``iter_size = B``) of one
    configuration, driven like :class:`benchmarks.workloads.VosjaxTraining`: ``prepare`` a
    batch, ``update`` once (blocks until done; returns the mean clip loss)."""

    def __init__(self, models, loss_mod, state_dict, arch, dtype, device):
        import torch

        self.torch, self.loss_mod = torch, loss_mod
        self.device = "cuda" if device == "gpu" else "cpu"
        self.net = build_model(models, arch, state_dict, self.device)
        for p in self.net.parameters():
            p.requires_grad = True
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=LEARNING_RATE,
                                          betas=(0.9, 0.999), weight_decay=WEIGHT_DECAY)
        self.autocast = None if dtype == "float32" else torch.bfloat16

    def prepare(self, frames, masks, num_objects):
        t = self.torch
        f = t.from_numpy(np.ascontiguousarray(frames.transpose(0, 1, 4, 2, 3))).to(self.device)
        return f, t.from_numpy(masks).to(self.device), [int(n) for n in num_objects]

    def update(self, batch):
        frames, masks, objs = batch
        loss = train_update(self.net, self.optimizer, frames, masks, objs,
                            iter_size=frames.shape[0], loss_mod=self.loss_mod,
                            autocast_dtype=self.autocast)
        if self.device == "cuda":
            self.torch.cuda.synchronize()
        return loss
