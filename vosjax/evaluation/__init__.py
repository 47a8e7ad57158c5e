"""Evaluation: the semi-supervised DAVIS protocol (J, F, Mean / Recall / Decay, the toolkit's
CSVs), server submission zips and result pictures.

Modules: ``metrics`` (dense J / F definitions), ``bitplanes`` (the same on bit-packed masks,
fast), ``protocol`` (object rows, statistics, CSVs), ``davis`` (scoring a results folder),
``labelio`` (fast label PNG reading), ``submission`` (YouTube-VOS / DAVIS zips),
``visualize`` (overlays, GIFs, bar chart), ``synthetic`` (generated label videos and DAVIS
layouts for tests and benchmarks). Importing the package does no work.
"""
