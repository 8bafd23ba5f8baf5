"""Segmentation networks, their registry, checkpoints and the Predictor (torch, never Qt)."""
