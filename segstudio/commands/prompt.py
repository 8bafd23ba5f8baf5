"""``segstudio prompt``: one object's mask from clicks or a box, with SAM, MedSAM or SAM 2."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from segstudio.commands import CommandError

HELP = ("segment one object of an image from object/background points or a box with a Segment "
        "Anything or MedSAM weights file or a SAM 2 model folder; write its mask as a 0/1 "
        "palette PNG")
COMMAND = "prompt"                  # the mark its PNGs carry (segstudio.io.output_guard)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", required=True, metavar="FILE|DIR",
                        help="a Segment Anything (ViT-B/L/H) or MedSAM checkpoint (.pth), or a "
                             "SAM 2 / SAM 2.1 model folder in Hugging Face format (config.json "
                             "and .safetensors); nothing is downloaded")
    parser.add_argument("--image", required=True, metavar="IMAGE", help="the image (any format "
                        "segstudio reads; 16-bit and DICOM go in through their display window)")
    prompt = parser.add_mutually_exclusive_group(required=True)
    prompt.add_argument("--point", nargs=2, type=float, action="append", metavar=("X", "Y"),
                        help="a point on the object, in image pixels (repeat for more)")
    prompt.add_argument("--box", nargs=4, type=float, metavar=("X0", "Y0", "X1", "Y1"),
                        help="a box around the object, in image pixels")
    parser.add_argument("--negative", nargs=2, type=float, action="append", metavar=("X", "Y"),
                        help="a background point, with --point (repeat for more)")
    parser.add_argument("--out", required=True, metavar="MASK.png",
                        help="where to write the mask (0 = background, 1 = object)")
    parser.add_argument("--mask", type=int, metavar="N",
                        help="write candidate N (1 = the best by predicted IoU, the default)")
    parser.add_argument("--window", nargs=2, type=float, metavar=("CENTRE", "WIDTH"),
                        help="display window the network sees a 16-bit or DICOM image through "
                             "(default: the image's own, as the GUI first shows it)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                        help="the image encoder's precision; auto: a reduced one only where "
                             "the device computes it natively and it was measured faster and "
                             "faithful to fp32 (once per weights file and machine)")
    parser.add_argument("--cache", action="store_true",
                        help="keep the image embedding in the user data folder, so prompting the "
                             "same image again skips the encoder")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing MASK.png that an earlier 'segstudio prompt' "
                             "did not write (its own masks are replaced without asking)")


def _finite(values, flag: str) -> None:
    if not all(math.isfinite(v) for v in values):
        raise CommandError(f"{flag}: coordinates must be finite numbers")


def run(args: argparse.Namespace) -> int:
    if args.negative and not args.point:
        raise CommandError("--negative needs at least one --point on the object")
    points = [tuple(p) for p in args.point or []]
    negatives = [tuple(p) for p in args.negative or []]
    for p in points + negatives:
        _finite(p, "--point/--negative")
    if args.box is not None:
        _finite(args.box, "--box")
    if args.mask is not None and args.mask < 1:
        raise CommandError(f"--mask {args.mask}: candidates are numbered from 1")
    if args.window is not None and not (math.isfinite(args.window[1]) and args.window[1] > 0):
        raise CommandError("--window: WIDTH must be a positive number")
    from segstudio.io.decode_memory import NotEnoughMemory, require_memory
    from segstudio.io.output_guard import (OutputError, check_output, check_outside_model,
                                           written_by)

    try:
        check_outside_model(args.out, args.weights)
        out = check_output(args.out, [("--image", args.image), ("--weights", args.weights)],
                           overwrite=args.overwrite, ours=lambda p: written_by(p, COMMAND))
    except OutputError as exc:
        raise CommandError(str(exc)) from None

    from segstudio.io.images import ImageReadError, read_image

    try:
        image = read_image(args.image)
    except ImageReadError as exc:
        raise CommandError(str(exc)) from None
    _check_inside(points, negatives, args.box, image.width, image.height)
    rgb = image.to_rgb8(tuple(args.window) if args.window else None)

    from segstudio.models.device import DeviceError, choose_device, choose_precision
    from segstudio.models.prompt_precision import measure_on, settle_from_cache
    from segstudio.models.prompt_memory import embed_bytes, load_bytes
    from segstudio.models.prompted import PromptedError, PromptedSegmenter
    from segstudio.models.sam2_prompts import Sam2Error

    due = None

    def embed():
        require_memory(embed_bytes(segmenter.network, image.height, image.width),
                       f"the image embedding of {image.width}×{image.height} pixels")
        if due is not None:
            return measure_on(segmenter, args.weights, rgb, due)
        return segmenter.embed(rgb)

    try:
        device = choose_device(args.device)
        precision = choose_precision(args.precision, device)
        require_memory(load_bytes(args.weights), f"loading {Path(args.weights).name}")
        segmenter = PromptedSegmenter.from_file(args.weights, device)
        if precision == "auto":
            due = settle_from_cache(segmenter, args.weights)
        else:
            segmenter.precision = precision
            segmenter.precision_note = f"{precision}: chosen by hand"
        if args.cache:
            from segstudio.models.prompt_cache import EmbeddingCache, weights_key
            from segstudio.paths import user_data_dir

            cache = EmbeddingCache(user_data_dir() / "prompt-embeddings")
            embedding = cache.get_or_compute(weights_key(args.weights), rgb, embed,
                                             segmenter.check_embedding, segmenter.precision)
        else:
            embedding = embed()
        prediction = segmenter.predict(embedding, points + negatives,
                                       [1] * len(points) + [0] * len(negatives), args.box)
    except (PromptedError, Sam2Error, DeviceError, NotEnoughMemory) as exc:
        raise CommandError(str(exc)) from None
    chosen = (args.mask or 1) - 1
    if chosen >= len(prediction):
        raise CommandError(f"--mask {args.mask}: this prompt gives {len(prediction)} "
                           f"candidate{'s' if len(prediction) > 1 else ''}")
    for i, score in enumerate(prediction.scores):
        print(f"candidate {i + 1}: predicted IoU {score:.3f}" + ("  (written)" if i == chosen
                                                                 else ""))
    mask = prediction.mask(chosen)

    _write_mask(out, mask)
    print(f"image encoder precision {segmenter.precision_note}"
          + ("" if embedding.precision == segmenter.precision else
             f" (this image's embedding: {embedding.precision})"))
    print(f"wrote {out} ({image.width}×{image.height}, {int(mask.sum())} object pixels; "
          f"{segmenter.name} on {device.type}, encoder {embedding.precision})")
    return 0


def _check_inside(points, negatives, box, width: int, height: int) -> None:
    """Every point inside the image and the box a non-empty part of it, before the encoder
    spends its seconds: coordinates are pixels, 0 ≤ X < W and 0 ≤ Y < H."""
    for flag, group in (("--point", points), ("--negative", negatives)):
        for x, y in group:
            if not (0 <= x < width and 0 <= y < height):
                raise CommandError(f"{flag} {x:g} {y:g}: outside the {width}×{height} image "
                                   f"(0 ≤ X < {width}, 0 ≤ Y < {height})")
    if box is not None:
        x0, y0, x1, y1 = box
        if not (x1 > x0 and y1 > y0):
            raise CommandError(f"--box {x0:g} {y0:g} {x1:g} {y1:g}: empty; give X0 Y0 X1 Y1 "
                               "with X1 > X0 and Y1 > Y0")
        if not (0 <= x0 < width and 0 <= y0 < height and x1 <= width and y1 <= height):
            raise CommandError(f"--box {x0:g} {y0:g} {x1:g} {y1:g}: not inside the "
                               f"{width}×{height} image")


def _write_mask(path: Path, mask: np.ndarray) -> None:
    """The 0/1 mask as a palette PNG in VOC colours, marked as this command's, atomically."""
    from PIL import Image

    from segstudio.core.palette import VOC_COLORMAP
    from segstudio.io.atomic import atomic_write_with
    from segstudio.io.output_guard import png_mark

    im = Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8))
    im.putpalette(VOC_COLORMAP.reshape(-1).tolist())
    try:
        atomic_write_with(path, lambda f: im.save(f, format="PNG", pnginfo=png_mark(COMMAND)))
    except OSError as exc:
        raise CommandError(f"{path}: cannot be written ({exc.strerror or exc})") from None
