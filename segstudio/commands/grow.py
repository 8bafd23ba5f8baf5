"""``segstudio grow``: grow a label map from seed strokes over an image, with no model."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from segstudio.commands import CommandError

HELP = ("grow a label PNG from seeds over an image, along its edges, with no trained model "
        "(seeds: a label PNG where 255 means no seed and any other value seeds that class)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from segstudio.refine.grow import DEFAULT_SMOOTHING

    parser.add_argument("--image", required=True, type=Path, metavar="IMAGE",
                        help="the image (PNG, JPEG, TIFF, DICOM, …; 16-bit through its window)")
    parser.add_argument("--seeds", required=True, type=Path, metavar="SEEDS.png",
                        help="label PNG of the same size: 255 = no seed, 0–254 = a class seed")
    parser.add_argument("--out", required=True, type=Path, metavar="LABELS.png",
                        help="where to write the grown label PNG (palette of SEEDS, or VOC "
                             "colours)")
    parser.add_argument("--smoothing", type=float, default=DEFAULT_SMOOTHING, metavar="PX",
                        help="Gaussian smoothing of the image before growing, in pixels "
                             f"(default {DEFAULT_SMOOTHING}; 0 = none; raise it on noisy images)")
    parser.add_argument("--window", type=float, nargs=2, metavar=("CENTRE", "WIDTH"),
                        help="display window for a deeper-than-8-bit image (default: the "
                             "file's own window, else its full range)")


def run(args: argparse.Namespace) -> int:
    from segstudio.io.images import ImageReadError, read_image
    from segstudio.io.voc import VocError, load_label_png
    from segstudio.refine.grow import GrowError, grow_from_seeds

    if args.out.is_dir():
        raise CommandError(f"--out {args.out} is a folder; give the label file to write")
    if args.window is not None and not args.window[1] > 0:
        raise CommandError(f"--window width must be positive, got {args.window[1]:g}")
    try:
        image = read_image(args.image)
    except ImageReadError as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"{args.image}: {exc.strerror or exc}") from None
    try:
        seeds = load_label_png(args.seeds)
    except VocError as exc:
        raise CommandError(f"--seeds {exc}") from None
    if seeds.shape != (image.height, image.width):
        raise CommandError(f"the seeds {args.seeds.name} are {seeds.shape[1]}×{seeds.shape[0]} "
                           f"but the image {args.image.name} is {image.width}×{image.height}")
    try:
        labels = grow_from_seeds(image.to_rgb8(tuple(args.window) if args.window else None),
                                 seeds, smoothing=args.smoothing)
    except GrowError as exc:
        raise CommandError(f"{args.seeds.name}: {exc}") from None
    _write(args.out, labels, _palette_of(args.seeds))
    counts = np.bincount(labels.reshape(-1), minlength=256)
    summary = ", ".join(f"class {c}: {counts[c]} px" for c in np.flatnonzero(counts))
    print(f"wrote {args.out}: {image.width}×{image.height}, {summary}")
    return 0


def _palette_of(path: Path) -> list[int]:
    """The seeds file's own palette, so the result looks like its seeds; else VOC colours."""
    from PIL import Image

    from segstudio.core.classes import voc21

    with Image.open(path) as im:
        palette = im.getpalette() if im.mode == "P" else None
    if palette is None:
        return voc21().palette()
    return (palette + [0] * 768)[:768]


def _write(path: Path, labels: np.ndarray, palette: list[int]) -> None:
    from PIL import Image

    from segstudio.io.atomic import atomic_write_with

    im = Image.fromarray(labels)
    im.putpalette(palette)
    try:
        atomic_write_with(path, lambda f: im.save(f, format="PNG"))
    except OSError as exc:
        raise CommandError(f"{path}: cannot be written ({exc.strerror or exc})") from None
