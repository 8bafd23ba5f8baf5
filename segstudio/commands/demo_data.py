"""``segstudio demo-data``: write a procedural demo dataset as a Pascal VOC tree."""

from __future__ import annotations

import argparse
import json
import sys

from segstudio.commands import CommandError
from segstudio.commands._args import FRACTION, SEED, whole

HELP = ("write a procedural demo dataset as a Pascal VOC tree: 'xray' (synthetic chest "
        "radiograph phantoms, not patient data), 'context' (boat vs car by surroundings) or "
        "'shapes' (instances for Mask R-CNN)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from segstudio.train.synth import DESCRIPTIONS, KINDS, MAX_SIZE, MIN_SIZE

    parser.add_argument("--kind", required=True, choices=KINDS,
                        help="; ".join(f"{k}: {v}" for k, v in DESCRIPTIONS.items()))
    parser.add_argument("--n", type=whole(1), default=200, help="number of images (default 200)")
    parser.add_argument("--size", type=whole(MIN_SIZE, MAX_SIZE), default=128,
                        help=f"image side in px, {MIN_SIZE}..{MAX_SIZE} (default 128)")
    parser.add_argument("--seed", type=SEED, default=0,
                        help="random seed; another seed gives a held-out set (default 0)")
    parser.add_argument("--val-fraction", type=FRACTION, default=0.2,
                        help="share of images in the val split (default 0.2)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="folder for the tree (written as DIR/VOCdevkit/VOC2012)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a VOC2012 tree already in DIR")


def run(args: argparse.Namespace) -> int:
    from segstudio.io import voc
    from segstudio.io.atomic import atomic_write_text
    from segstudio.models.model_card import DATASET_FILE, dataset_description_for
    from segstudio.train import synth

    try:
        classes = synth.classes_for(args.kind)
        samples = (voc.VocSample(s.id, s.image, s.labels, s.instances)
                   for s in synth.generate(args.kind, args.n, size=args.size, seed=args.seed))
        step = max(1, args.n // 10)

        def progress(done: int, total: int) -> None:
            if done % step == 0 or done == total:
                print(f"\r{done}/{total} images", end="", file=sys.stderr, flush=True)

        result = voc.write_voc(args.out, samples, classes, val_fraction=args.val_fraction,
                               seed=args.seed, total=args.n, progress=progress,
                               overwrite=args.overwrite)
        # Beside the tree: a model trained on it records in its card that the data was made up.
        atomic_write_text(result.voc_dir / DATASET_FILE, json.dumps(dataset_description_for(
            args.kind, args.n, args.size, args.seed), indent=2) + "\n")
    except synth.SynthError as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"{args.out}: cannot write the dataset description "
                           f"({exc.strerror or exc})") from None
    except voc.VocError as exc:
        raise CommandError(str(exc)) from None
    print(file=sys.stderr)
    note = " (synthetic phantoms, not patient data)" if args.kind == "xray" else ""
    print(f"wrote {result.count} {args.kind} images{note} ({len(result.train)} train, "
          f"{len(result.val)} val) to {result.voc_dir}")
    return 0
