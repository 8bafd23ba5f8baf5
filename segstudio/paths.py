"""Where segstudio finds its bundled resources and keeps the user's own data."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def resources_dir() -> Path:
    """The bundled ``resources/`` folder: beside the package in a source checkout, else the
    copy the installer or a wheel put under ``<prefix>/share/segstudio/resources``."""
    here = Path(__file__).resolve().parent
    candidates = [
        here.parent / "resources",
        Path(getattr(sys, "_MEIPASS", here)) / "resources",     # a PyInstaller bundle
        Path(sys.prefix) / "share" / "segstudio" / "resources",
    ]
    for c in candidates:
        if c.is_dir():
            return c
    return candidates[0]


def demo_dir() -> Path:
    return resources_dir() / "demo"


def weights_dir() -> Path:
    return resources_dir() / "weights"


def user_data_dir() -> Path:
    """Per-user data (autosave, recovery, fine-tuned models): ``$SEGSTUDIO_DATA_DIR`` or XDG."""
    env = os.environ.get("SEGSTUDIO_DATA_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "segstudio"
