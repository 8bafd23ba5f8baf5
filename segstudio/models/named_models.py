"""Trained models by the name the Model panel shows: the user's fine-tuned models (their data
folder's ``models/``), then the bundled ones, each a checkpoint file ``<name>.pt``.

``segstudio predict --model chest_xray_unet_lite`` and ``segstudio models`` use the same list as
the window, so a name seen in one works in the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from segstudio.paths import user_data_dir, weights_dir


@dataclass(frozen=True)
class NamedModel:
    name: str            # the file's stem, as the Model panel shows it
    path: Path
    where: str           # "yours" (fine-tuned, in the user's data folder) or "bundled"


def model_folders() -> list[tuple[Path, str]]:
    return [(user_data_dir() / "models", "yours"), (weights_dir(), "bundled")]


def named_models() -> list[NamedModel]:
    """Every checkpoint file of the two folders, the user's first; a name in both is the
    user's (as in the Model panel, which lists the user's models first)."""
    seen: set[str] = set()
    found: list[NamedModel] = []
    for folder, where in model_folders():
        try:
            files = sorted(p for p in folder.glob("*.pt") if p.is_file())
        except OSError:
            continue
        for path in files:
            if path.stem not in seen:
                seen.add(path.stem)
                found.append(NamedModel(path.stem, path, where))
    return found


def find_named_model(name: str) -> NamedModel | None:
    """The trained model called ``name`` (a file stem, with or without ``.pt``), or None."""
    stem = name[:-3] if name.endswith(".pt") else name
    return next((m for m in named_models() if m.name == stem), None)
