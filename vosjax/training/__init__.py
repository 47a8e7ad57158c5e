"""Training for both model families: the objectives (STM-cycle eq. 3-4 in ``objective``,
GCSeg eq. 3 pairs / recurrent in ``gcseg_objective``), the sharded train step, the input
pipeline, checkpoints and the loop. A model family's hooks come from :mod:`vosjax.families`;
nothing here looks a family up."""
