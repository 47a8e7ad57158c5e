"""Drive the original STM code (seoungwugoh/STM) for ``benchmarks/golden_stm_original.py``:
import its ``model`` module from a checkout (never vendored), build ``STM`` with given
weights, and run its ``eval_DAVIS.py`` loop (``Run_video``).

Offline: the checkout builds its encoders with ``models.resnet50(pretrained=True)``;
:func:`import_original` replaces that constructor with one that builds a random ResNet-50
(``weights=None``; the stand-in of :mod:`.torchvision_standin` when torchvision is missing),
so nothing is downloaded. cv2, matplotlib and tqdm, imported by ``model.py`` but not used by
the model, are placeholders when they are not installed.
"""
from __future__ import annotations

import functools
import os

import numpy as np

from benchmarks.official import import_checkout, placeholders

K = 11      # object channels of the official loop (background + 10)


def import_original(checkout: str):
    """``model`` of a seoungwugoh/STM checkout, importable without cv2/matplotlib and without
    downloading ImageNet weights (``resnet50(pretrained=True)`` builds a random ResNet-50)."""
    if not os.path.isfile(os.path.join(checkout, "model.py")):
        raise FileNotFoundError(f"{checkout}: not a seoungwugoh/STM checkout (no model.py)")
    from benchmarks.official import torchvision_standin  # (imports torch)

    placeholders(("cv2", "matplotlib", "tqdm"))
    tv = torchvision_standin.install()
    real = tv.resnet50

    @functools.wraps(real)
    def resnet50_no_download(pretrained=False, **kwargs):
        del pretrained
        try:
            return real(weights=None, **kwargs)
        except TypeError:       # the stand-in (no ``weights`` argument)
            return real(**kwargs)

    tv.resnet50 = resnet50_no_download
    return import_checkout(checkout, ("model", "helpers"), "model")


def build(model_mod, state_dict):
    import torch

    net = model_mod.STM()
    net.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state_dict.items()},
                        strict=True)
    return net.eval()


def onehot_k(masks):
    """``[O, H, W]`` object masks -> ``[1, K, H, W]`` (channel 0 ``clip(1 - sum)``)."""
    import torch

    o = masks.shape[0]
    full = np.zeros((1, K) + masks.shape[1:], np.float32)
    full[0, 0] = np.clip(1.0 - masks.sum(0), 0, 1)
    full[0, 1:o + 1] = masks
    return torch.from_numpy(full)


def run_video(net, fs, ms, num_objects, mem_every=5):
    """``Run_video`` of ``eval_DAVIS.py`` (``Mem_every``), returning ``Es`` ``[T, K, H, W]``.
    ``fs`` ``[1, 3, T, H, W]`` in [0, 1]; ``ms`` ``[1, K, T, H, W]`` (frame 0 used)."""
    import torch
    import torch.nn.functional as F  # , N812

    num_frames = fs.shape[2]
    to_memorize = [int(i) for i in np.arange(0, num_frames, step=mem_every)]
    es = torch.zeros_like(ms)
    es[:, :, 0] = ms[:, :, 0]
    n = torch.tensor([num_objects])
    keys = values = None
    with torch.no_grad():
        for t in range(1, num_frames):
            prev_key, prev_value = net(fs[:, :, t - 1], es[:, :, t - 1], n)
            if t - 1 == 0:
                this_keys, this_values = prev_key, prev_value
            else:
                this_keys = torch.cat([keys, prev_key], dim=3)
                this_values = torch.cat([values, prev_value], dim=3)
            logit = net(fs[:, :, t], this_keys, this_values, n)
            es[:, :, t] = F.softmax(logit, dim=1)
            if t - 1 in to_memorize:
                keys, values = this_keys, this_values
    return es[0].permute(1, 0, 2, 3).numpy()
