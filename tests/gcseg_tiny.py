"""The tiny GCSeg shared by the GCSeg tests (R18 trunk, width 8: fast on CPU)."""
import jax

from vosjax.models.gcseg import GCSeg, init_gcseg

TINY = dict(arch="resnet18", levels=(3, 4), ref_level=4, coseg_channels=8, ref_channels=8,
            decoder_channels=8, aspp_rates=(1, 2), gcn_kernel=3)


def tiny_model(height=32, width=32, **overrides):
    """``(model, variables)``; jitted init with an rbg key (threefry init compiles slowly)."""
    model = GCSeg(**{**TINY, **overrides})
    variables = jax.jit(lambda k: init_gcseg(model, k, height, width))(
        jax.random.key(0, impl="rbg"))
    return model, variables
