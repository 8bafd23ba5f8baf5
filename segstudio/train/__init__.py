"""Procedural demo datasets and the training loop."""
