"""``segstudio erf``: the effective receptive field of one pixel's prediction, over images."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from segstudio.commands import CommandError

HELP = ("measure the effective receptive field (Luo et al., 2016) of the prediction at one "
        "pixel: the gradient of the predicted class's logit there, averaged over the images; "
        "prints its centre of mass, the pixels holding 95 percent of it (as a share of the "
        "theoretical field inside the image, and of the whole unclipped field), and the "
        "pixel's theoretical field")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE",
                        help="images of one size; the gradient is averaged over them")
    parser.add_argument("--model", required=True, metavar="NAME", help="architecture name")
    parser.add_argument("--weights", metavar="FILE",
                        help="segstudio checkpoint; without it the network has random weights")
    parser.add_argument("--config", choices=("lite", "paper"),
                        help="network size without --weights (default lite where there is one)")
    parser.add_argument("--at", nargs=2, type=int, required=True, metavar=("X", "Y"),
                        help="the pixel whose prediction is differentiated")
    region = parser.add_mutually_exclusive_group()
    region.add_argument("--region", nargs=4, type=int, metavar=("X0", "Y0", "X1", "Y1"),
                        help="also give the share of the effective field (its gradient mass) "
                             "inside this box of pixels, corners included")
    region.add_argument("--region-mask", metavar="PNG",
                        help="also give the share of the effective field inside a region: the "
                             "pixels of this image (the size of the inputs) that are not black")
    parser.add_argument("--device", default="cpu", help="cpu (default), auto, cuda, cuda:N, mps")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def _model(args: argparse.Namespace):
    """(model, mean, std, description) from --weights or a seeded random build."""
    import torch

    from segstudio.models import registry
    from segstudio.models.checkpoint import IMAGENET_MEAN, IMAGENET_STD, CheckpointError, \
        load_checkpoint
    from segstudio.models.device import DeviceError, choose_device

    try:
        device = choose_device(args.device)
    except DeviceError as exc:
        raise CommandError(str(exc)) from None
    if args.weights:
        try:
            model, meta = load_checkpoint(args.weights, expected_arch=args.model, device=device)
        except CheckpointError as exc:
            raise CommandError(str(exc)) from None
        state = "trained" if meta.trained else "UNTRAINED"
        return model.eval(), meta.mean, meta.std, f"{args.model} ({meta.config}, {state})"
    try:
        spec = registry.get_spec(args.model)
        if spec.instance:
            raise CommandError(f"{args.model} predicts objects, not per-pixel logits; the "
                               "effective field needs a segmentation model")
        config = args.config or ("lite" if "lite" in spec.configs else spec.configs[0])
        torch.manual_seed(0)
        model = registry.build_model(args.model, 21, config).eval().to(device)
    except (registry.UnknownModelError, registry.ModelConfigError) as exc:
        raise CommandError(str(exc)) from None
    print(f"WARNING: no --weights given: {args.model!r} has RANDOM weights.", file=sys.stderr)
    return model, IMAGENET_MEAN, IMAGENET_STD, f"{args.model} ({config}, random weights)"


def _region(args: argparse.Namespace, h: int, w: int):
    """(boolean H×W map, description) of --region or --region-mask, or (None, None)."""
    import numpy as np

    from segstudio.commands.predict import read_rgb8

    if args.region is not None:
        x0, y0, x1, y1 = args.region
        if not (0 <= x0 <= x1 < w and 0 <= y0 <= y1 < h):
            raise CommandError(f"--region {x0} {y0} {x1} {y1}: needs 0 ≤ X0 ≤ X1 < {w} and "
                               f"0 ≤ Y0 ≤ Y1 < {h} (the images are {w}×{h})")
        region = np.zeros((h, w), bool)
        region[y0:y1 + 1, x0:x1 + 1] = True
        return region, f"box x {x0}…{x1}, y {y0}…{y1}"
    if args.region_mask is not None:
        try:
            rgb = read_rgb8(Path(args.region_mask))
        except (ValueError, OSError) as exc:
            raise CommandError(f"--region-mask {args.region_mask}: {exc}") from None
        if rgb.shape[:2] != (h, w):
            raise CommandError(f"--region-mask {args.region_mask} is {rgb.shape[1]}×"
                               f"{rgb.shape[0]} but the images are {w}×{h}")
        region = rgb.any(axis=2)
        if not region.any():
            raise CommandError(f"--region-mask {args.region_mask}: every pixel is black, so "
                               "the region is empty")
        return region, f"mask {args.region_mask}"
    return None, None


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from segstudio.commands.predict import collect_inputs, read_rgb8
    from segstudio.explain.effective_rf import EffectiveFieldError, prediction_erf

    paths = collect_inputs(args.images)
    images = []
    for path in paths:
        try:
            rgb = read_rgb8(path)
        except (ValueError, OSError) as exc:
            raise CommandError(f"{path}: {exc}") from None
        if images and rgb.shape[:2] != images[0][1].shape[:2]:
            raise CommandError(f"{path} is {rgb.shape[1]}×{rgb.shape[0]} but {images[0][0]} is "
                               f"{images[0][1].shape[1]}×{images[0][1].shape[0]}: the average "
                               "needs images of one size")
        images.append((path, rgb))
    h, w = images[0][1].shape[:2]
    x, y = args.at
    if not (0 <= x < w and 0 <= y < h):
        raise CommandError(f"--at {x} {y}: outside the {w}×{h} images (x < W, y < H)")
    region, region_name = _region(args, h, w)
    model, mean, std, title = _model(args)
    mean_t, std_t = torch.tensor(mean).view(3, 1, 1), torch.tensor(std).view(3, 1, 1)
    tensors = [(torch.from_numpy(np.array(rgb)).permute(2, 0, 1).float() / 255 - mean_t) / std_t
               for _, rgb in images]
    try:
        erf = prediction_erf(model, tensors, y, x)
    except EffectiveFieldError as exc:
        raise CommandError(str(exc)) from None
    report = {"model": title, "quantity": "logit of the class predicted at the pixel",
              **erf.to_dict()}
    if region is not None:
        report["region"] = {"source": region_name, "pixels": int(region.sum()),
                            "share": round(erf.region_share(region), 6)}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    (cx, cy), (dx, dy) = report["center"], report["offset"]
    x0, y0, x1, y1 = erf.box
    print(f"{title}: effective field of the prediction at x {x}, y {y}, over {erf.images} "
          f"image(s) (gradient of the predicted class's logit)")
    print(f"centre of mass  x {cx:.1f}, y {cy:.1f} (offset {dx:+.1f}, {dy:+.1f} px)")
    print(f"95 % of the gradient in {erf.mass95_px} px = {erf.shares_text()}")
    print(f"theoretical field {x1 - x0 + 1}×{y1 - y0 + 1} = {erf.theoretical_px} px (box x "
          f"{x0}…{x1}, y {y0}…{y1}, unclipped); {erf.inside_image_px} px "
          f"({erf.inside_share:.1%}) inside the image")
    if region is not None:
        print(f"region ({region_name}, {int(region.sum())} px): "
              f"{report['region']['share']:.2%} of the gradient mass")
    return 0
