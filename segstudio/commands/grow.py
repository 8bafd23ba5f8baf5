"""``segstudio grow``: grow a label map from seed strokes over an image, with no model."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from segstudio.commands import CommandError

HELP = ("grow a label PNG from seeds over an image, along its edges, with no trained model "
        "(seeds: a label PNG where 255 means no seed and any other value seeds that class)")
COMMAND = "grow"                    # the mark its PNGs carry (segstudio.io.output_guard)


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
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing OUT that an earlier 'segstudio grow' did not "
                             "write (its own results are replaced without asking)")


def run(args: argparse.Namespace) -> int:
    from segstudio.io.decode_memory import NotEnoughMemory, require_memory
    from segstudio.io.images import ImageReadError, read_image
    from segstudio.io.output_guard import OutputError, check_output, written_by
    from segstudio.refine.grow import GrowError, grow_from_seeds, memory_needed, seed_values

    try:
        check_output(args.out, [("--image", args.image), ("--seeds", args.seeds)],
                     overwrite=args.overwrite, ours=lambda p: written_by(p, COMMAND))
    except OutputError as exc:
        raise CommandError(str(exc)) from None
    if args.window is not None and not args.window[1] > 0:
        raise CommandError(f"--window width must be positive, got {args.window[1]:g}")
    try:
        image = read_image(args.image)
    except ImageReadError as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"{args.image}: {exc.strerror or exc}") from None
    try:
        seeds = seed_values(read_seeds(args.seeds))
    except GrowError as exc:
        raise CommandError(f"--seeds {args.seeds.name}: {exc}") from None
    if seeds.shape != (image.height, image.width):
        raise CommandError(f"the seeds {args.seeds.name} are {seeds.shape[1]}×{seeds.shape[0]} "
                           f"but the image {args.image.name} is {image.width}×{image.height}")
    try:
        # The display copy (3 B/px) and what growing itself allocates, before either exists.
        require_memory(3 * seeds.size + memory_needed(*seeds.shape),
                       f"growing {image.width}×{image.height} pixels")
        labels = grow_from_seeds(image.to_rgb8(tuple(args.window) if args.window else None),
                                 seeds, smoothing=args.smoothing)
    except NotEnoughMemory as exc:
        raise CommandError(str(exc)) from None
    except GrowError as exc:
        raise CommandError(f"{args.seeds.name}: {exc}") from None
    _write(args.out, labels, _palette_of(args.seeds))
    counts = np.bincount(labels.reshape(-1), minlength=256)
    summary = ", ".join(f"class {c}: {counts[c]} px" for c in np.flatnonzero(counts))
    print(f"wrote {args.out}: {image.width}×{image.height}, {summary}")
    return 0


def read_seeds(path: Path) -> np.ndarray:
    """The seed PNG's values at full depth (uint8, or int32 for a 16-bit file), so that no
    value wraps around before :func:`segstudio.refine.grow.seed_values` can refuse it. Pipes
    are never opened, sizes are checked before decoding, and a decode that does not fit in
    memory says so (it is not a damaged file). Raises GrowError with the reason."""
    from PIL import UnidentifiedImageError

    from segstudio.io.decode_memory import format_bytes, memory_problem
    from segstudio.io.images import DEFAULT_MAX_PIXELS
    from segstudio.io.pillow_pixels import copy_in_strips, decode_bytes, open_header
    from segstudio.io.regular_files import open_regular
    from segstudio.refine.grow import GrowError

    try:
        f = open_regular(path)
    except FileNotFoundError:
        raise GrowError("the file does not exist") from None
    except OSError as exc:
        raise GrowError(getattr(exc, "reason", None) or f"cannot be opened "
                        f"({exc.strerror or exc})") from None
    with f:
        try:
            im = open_header(f)
        except UnidentifiedImageError:
            raise GrowError("not a readable image; expected a PNG of class indices") from None
        except Exception as exc:  # noqa: BLE001 - Pillow reports damaged headers in many ways
            raise GrowError(f"the header is damaged ({exc})") from None
        with im:
            if im.width * im.height > DEFAULT_MAX_PIXELS:
                raise GrowError(f"the header claims {im.width}×{im.height} pixels, more than "
                                f"the limit of {DEFAULT_MAX_PIXELS:,}")
            if im.mode not in ("P", "L", "1") and not im.mode.startswith("I"):
                raise GrowError(f"a {im.mode} image holds colours, not class indices; save "
                                "seeds as a palette ('P'), 8-bit or 16-bit grey PNG")
            wide = im.mode.startswith("I")
            needed = decode_bytes(im, array_bytes=4 if wide else 1)
            problem = memory_problem(needed)
            if problem is not None:
                raise GrowError(problem)
            shape = (im.height, im.width)
            try:
                im.load()
                if wide:
                    return copy_in_strips(im, shape, np.int32)
                if im.mode == "1":
                    return copy_in_strips(im, shape, np.uint8,
                                          lambda p: np.asarray(p.convert("L")) // 255)
                return copy_in_strips(im, shape, np.uint8)
            except MemoryError:
                raise GrowError(f"not enough memory (needs about {format_bytes(needed)})") \
                    from None
            except Exception as exc:  # noqa: BLE001 - any decoder failure is a damaged file
                raise GrowError(f"the image data is damaged and cannot be decoded "
                                f"({exc})") from None


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
    from segstudio.io.output_guard import png_mark

    im = Image.fromarray(labels)
    im.putpalette(palette)
    try:
        atomic_write_with(path, lambda f: im.save(f, format="PNG", pnginfo=png_mark(COMMAND)))
    except OSError as exc:
        raise CommandError(f"{path}: cannot be written ({exc.strerror or exc})") from None
