"""torchvision's published segmentation weights (COCO images, the 21 Pascal VOC classes).

They are used only from the local torch hub cache; :func:`download` fetches a file there when the
user asks for it (the GUI offers it; nothing downloads by itself, and tests never do).
:func:`install` turns a cached file into a segstudio checkpoint with its metadata, so it joins the
model list as a trained model like any other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from segstudio.core.classes import voc21

# registry name -> name of the torchvision weights enum in torchvision.models.segmentation
PUBLISHED = {
    "fcn_resnet50": "FCN_ResNet50_Weights",
    "fcn_resnet101": "FCN_ResNet101_Weights",
    "deeplabv3_resnet50": "DeepLabV3_ResNet50_Weights",
    "deeplabv3_resnet101": "DeepLabV3_ResNet101_Weights",
    "deeplabv3_mobilenet_v3_large": "DeepLabV3_MobileNet_V3_Large_Weights",
}


class PublishedWeightsError(Exception):
    """A published file that cannot be fetched or used, with the reason."""


def weights_entry(name: str):
    from torchvision.models import segmentation

    if name not in PUBLISHED:
        raise PublishedWeightsError(f"{name}: torchvision publishes no weights for this model; "
                                    f"those that exist: {', '.join(PUBLISHED)}")
    return getattr(segmentation, PUBLISHED[name]).DEFAULT


def cached_file(name: str) -> Path:
    """Where torch hub keeps the file (it may not be there)."""
    from segstudio.models.backbones import cached_weights_file

    return cached_weights_file(weights_entry(name))


def is_cached(name: str) -> bool:
    return cached_file(name).is_file()


def download(name: str, progress: Callable[[int, int], None] | None = None,
             fetch: Callable[[str, Path], None] | None = None) -> Path:
    """Fetch the published file into the torch hub cache; ``fetch(url, dest)`` does the transfer
    (default: torch.hub's downloader, which checks the file's hash prefix)."""
    entry = weights_entry(name)
    dest = cached_file(name)
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    if fetch is None:
        import torch.hub

        def fetch(url: str, path: Path) -> None:
            torch.hub.download_url_to_file(url, str(path), hash_prefix=None, progress=False)
    part = dest.with_name(dest.name + ".part")
    try:
        fetch(entry.url, part)
        part.replace(dest)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise PublishedWeightsError(f"{dest.name}: could not download {entry.url} ({exc}); "
                                    "check the network connection") from None
    return dest


def install(name: str, out_dir: Path) -> Path:
    """A segstudio checkpoint of the cached published weights in ``out_dir``; returns its path."""
    import torch

    from segstudio.models.checkpoint import CheckpointMeta, check_state_dict, save_checkpoint
    from segstudio.models.registry import build_model

    entry = weights_entry(name)
    src = cached_file(name)
    if not src.is_file():
        raise PublishedWeightsError(f"{src.name}: not in the torch hub cache; download it first")
    try:
        state = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same problem to a user
        raise PublishedWeightsError(f"{src.name}: cannot be read ({exc})") from None
    classes = voc21()
    model = build_model(name, len(classes), "paper")
    from segstudio.models.checkpoint import CheckpointError

    try:
        check_state_dict(model, state, src.name)
    except CheckpointError as exc:
        raise PublishedWeightsError(str(exc)) from None
    model.load_state_dict(state)
    t = entry.transforms()
    meta = CheckpointMeta(arch=name, config="paper", classes=classes, mean=tuple(t.mean),
                          std=tuple(t.std), trained=True,
                          training={"source": f"torchvision {entry}", "url": entry.url,
                                    "dataset": "COCO train2017, the 20 Pascal VOC categories"})
    out = Path(out_dir) / f"{name}_coco_voc.pt"
    save_checkpoint(out, model, meta)
    return out
