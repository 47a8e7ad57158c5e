"""vosjax: semi-supervised video object segmentation in JAX/Flax (STM-cycle, GCSeg).

Importing the package does no work; import submodules (``vosjax.models.stm``,
``vosjax.convert``, ...) for what you need.
"""
__version__ = "0.1.0"
