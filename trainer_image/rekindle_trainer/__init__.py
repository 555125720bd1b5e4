"""Rekindle's trainer: Keras training that checkpoints, resumes exactly and stops early."""
