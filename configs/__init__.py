"""ml_collections configs for train.py / evaluate.py (``--config configs/<name>.py[:arg]``)."""
