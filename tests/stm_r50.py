"""A random STM ResNet-50 state dict in the official (PyTorch) naming, regenerated from a seed
(no weight file), and the inputs of the R50 golden step (tests/golden/make_r50_step.py)."""
import numpy as np


def torchvision_trunk(prefix, bottleneck, blocks, rng):
    """PyTorch names and random values of a torchvision ResNet trunk cut after layer3, named as
    STM names it (res2..res4), built from torchvision's architecture rules (not from vosjax)."""
    sd = {}

    def conv(name, o, i, k):
        sd[name + ".weight"] = rng.normal(0, np.sqrt(2 / (i * k * k)), (o, i, k, k))

    def bn(name, c):
        sd[name + ".weight"] = rng.uniform(0.5, 1.5, c)
        sd[name + ".bias"] = rng.normal(0, 0.1, c)
        sd[name + ".running_mean"] = rng.normal(0, 0.1, c)
        sd[name + ".running_var"] = rng.uniform(0.5, 1.5, c)
        sd[name + ".num_batches_tracked"] = np.zeros((), np.int64)

    conv(f"{prefix}.conv1", 64, 3, 7)
    bn(f"{prefix}.bn1", 64)
    exp = 4 if bottleneck else 1
    inp = 64
    for s, (planes, n) in enumerate(zip((64, 128, 256), blocks)):
        for b in range(n):
            p = f"{prefix}.res{s + 2}.{b}"
            if bottleneck:
                conv(p + ".conv1", planes, inp, 1); bn(p + ".bn1", planes)
                conv(p + ".conv2", planes, planes, 3); bn(p + ".bn2", planes)
                conv(p + ".conv3", planes * 4, planes, 1); bn(p + ".bn3", planes * 4)
            else:
                conv(p + ".conv1", planes, inp, 3); bn(p + ".bn1", planes)
                conv(p + ".conv2", planes, planes, 3); bn(p + ".bn2", planes)
            if b == 0 and (s > 0 or inp != planes * exp):
                conv(p + ".downsample.0", planes * exp, inp, 1); bn(p + ".downsample.1", planes * exp)
            inp = planes * exp
    return sd


def stm_r50_state_dict(manifest, rng):
    """An STM R50 state dict: the manifest's non-trunk entries with the trunk-facing input
    widths scaled x4 (R50 features are 4x wider), plus torchvision R50 trunks."""
    sd = {}
    for enc in ("Encoder_M", "Encoder_Q"):
        sd.update(torchvision_trunk(enc, True, (3, 4, 6), rng))
        sd[f"{enc}.mean"] = np.zeros((1, 3, 1, 1)); sd[f"{enc}.std"] = np.ones((1, 3, 1, 1))
    widen = {"KV_M_r4.Key.weight": 1, "KV_M_r4.Value.weight": 1, "KV_Q_r4.Key.weight": 1,
             "KV_Q_r4.Value.weight": 1, "Decoder.RF3.convFS.weight": 1,
             "Decoder.RF2.convFS.weight": 1}
    for name, entry in manifest.items():
        if name.startswith(("Encoder_M.", "Encoder_Q.")) and not name.startswith(
                ("Encoder_M.conv1_m", "Encoder_M.conv1_bg")):
            continue
        shape = list(entry["shape"])
        if name in widen:
            shape[widen[name]] *= 4
        sd[name] = rng.normal(0, 0.02, shape)
    return {k: np.asarray(v, np.float32) if np.asarray(v).dtype.kind == "f" else np.asarray(v)
            for k, v in sd.items()}


GOLDEN_HW = (32, 48)   # R50 stride 16: a 2 x 3 memory


def golden_inputs():
    """``(frames [2, H, W, 3] float32, masks [2, H, W] float32)`` of the golden R50 step: two
    normalised-looking random frames and two box objects (seeded; numpy only)."""
    h, w = GOLDEN_HW
    frames = np.random.default_rng(1).normal(size=(2, h, w, 3)).astype(np.float32)
    masks = np.zeros((2, h, w), np.float32)
    masks[0, 4:16, 6:30] = 1.0
    masks[1, 18:30, 20:44] = 1.0
    return frames, masks
