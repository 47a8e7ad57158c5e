"""GCSeg-specific training and inference procedures (the model is :mod:`vosjax.models.gcseg`).

Submodules: :mod:`.loss` (eq. 3), :mod:`.sampling` (reference/target pairs, previous-mask
zeroing), :mod:`.objective` (pure loss functions for a generic trainer), :mod:`.inference`
(fragment references, adaptive search, multi-object videos). Importing does no work.
"""
