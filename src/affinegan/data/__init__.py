"""Datasets: the clip-folder layout, validation, sampling, and synthetic faces."""
