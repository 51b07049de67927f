"""Training and export scripts: thin, readable, meant to be copied (``python -m pipelines.train``)."""
