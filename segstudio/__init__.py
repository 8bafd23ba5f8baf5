"""segstudio: see what a segmentation network sees, and correct what it got wrong."""

__version__ = "0.1.0"
