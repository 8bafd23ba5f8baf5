"""``segstudio predict --ablate BRANCH --ablate-with zero|mean|swap``: the branch replacement.

``zero`` is what the Branches view did first; ``mean`` replaces the branch by its per-channel
mean over reference images (``--reference DIR``, else context scenes generated on the spot from
the demo's held-out set); ``swap`` by its output on another image (``--swap-from``: one image for
every input, or a folder with an image of the same name for each). Everything here runs the
model through the predictor, so references and partners are padded and tiled as inputs are.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from segstudio.commands import CommandError

KINDS = ("zero", "mean", "swap")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ablate-with", choices=KINDS, default="zero",
                        help="what replaces an --ablate branch's output: zeros (default), its "
                             "mean over --reference images, or its output on the --swap-from "
                             "image")
    parser.add_argument("--reference", metavar="DIR",
                        help="images whose branch outputs make the mean of --ablate-with mean "
                             "(default: 16 held-out context scenes, generated on the spot)")
    parser.add_argument("--swap-from", metavar="IMAGE|DIR",
                        help="for --ablate-with swap: the image whose branch output replaces "
                             "each input's, or a folder with an image of the same name per input")


def check(args: argparse.Namespace) -> None:
    """Refuse a combination that cannot work, before any model is loaded."""
    how = args.ablate_with
    if how != "zero" and not args.ablate:
        raise CommandError(f"--ablate-with {how}: name the branch to replace with --ablate")
    if args.reference and how != "mean":
        raise CommandError("--reference is for --ablate-with mean")
    if args.swap_from and how != "swap":
        raise CommandError("--swap-from is for --ablate-with swap")
    if how == "swap" and not args.swap_from:
        raise CommandError("--ablate-with swap needs --swap-from IMAGE|DIR: the image whose "
                           "branch output replaces the input's")
    if how == "mean" and args.reference:
        _references(args.reference)
    if how == "swap" and not Path(args.swap_from).exists():
        raise CommandError(f"--swap-from {args.swap_from}: no such file or folder")


def _references(folder: str) -> list[Path]:
    from segstudio.io.images import is_image_path

    path = Path(folder)
    if not path.is_dir():
        raise CommandError(f"--reference {folder}: not a folder")
    found = sorted(p for p in path.iterdir() if is_image_path(p) and p.is_file())
    if not found:
        raise CommandError(f"--reference {folder}: no images in it")
    return found


def _read(read, path: Path, option: str):
    try:
        return read(path)
    except (ValueError, OSError) as exc:
        raise CommandError(f"{option} {path}: {exc}") from None


class Ablation:
    """The replacement hooks on the predictor's model for the rest of the command."""

    def __init__(self, args: argparse.Namespace, predictor, branches: dict[str, str], read,
                 inputs=()):
        """``read(path)`` gives an image file's pixels as H×W×3 uint8 (a ValueError or OSError
        says why it cannot); a swap checks that each of ``inputs`` has its partner first."""
        from segstudio.explain.counterfactual import (Replacement, channel_means, check_names,
                                                      record)

        self.args, self.predictor, self.branches, self.read = args, predictor, branches, read
        self.how = args.ablate_with
        means = None
        self._record = lambda rgb: record(predictor.model, branches, args.ablate,
                                          lambda: predictor.predict(rgb))
        self.names = args.ablate
        check_names(branches, args.ablate)
        if self.how == "mean":
            if args.reference:
                images = [_read(read, p, "--reference") for p in _references(args.reference)]
                where = f"{len(images)} image(s) of {args.reference}"
            else:
                from segstudio.explain.counterfactual import REFERENCE, reference_scenes
                from segstudio.train.synth_context import context_classes

                if list(predictor.meta.classes.names) != list(context_classes().names):
                    raise CommandError("--ablate-with mean: the default reference is the "
                                       "context scenes, which this model was not trained on; "
                                       "give --reference DIR with images like its inputs")
                images = reference_scenes()
                where = (f"{len(images)} held-out context scenes generated now (seed "
                         f"{REFERENCE['seed']}, from {REFERENCE['start']}, "
                         f"{REFERENCE['size']} px)")
            predictor.predict(images[0])      # settles auto precision before recording
            outputs = {n: [] for n in args.ablate}
            for rgb in images:
                for n, recorded in self._record(rgb).items():
                    outputs[n] += recorded
            means = {n: channel_means(outputs[n]) for n in args.ablate}
            self.note = f"mean over {where}"
        elif self.how == "swap":
            missing = [p.name for p in inputs if not self._partner(Path(p)).is_file()]
            if missing:
                raise CommandError(f"--swap-from {args.swap_from}: no {missing[0]} in it to "
                                   "swap with" + (f" (nor {len(missing) - 1} more)"
                                                  if len(missing) > 1 else ""))
            self.note = f"output on {args.swap_from}"
        else:
            self.note = "zeros"
        self.replacement = Replacement(predictor.model, branches, args.ablate, self.how,
                                       means=means)
        self._settled = False

    def _partner(self, path: Path) -> Path:
        """The image whose branch output replaces that of the input ``path``."""
        source = Path(self.args.swap_from)
        return source / path.name if source.is_dir() else source

    def before(self, path: Path, rgb) -> None:
        """For a swap: record the branch on this input's partner image, unreplaced."""
        if self.how != "swap":
            return
        partner = self._partner(path)
        if not partner.is_file():
            raise CommandError(f"--swap-from {self.args.swap_from}: no {path.name} in it to "
                               "swap with")
        other = _read(self.read, partner, "--swap-from")
        if other.shape[:2] != rgb.shape[:2]:
            raise CommandError(f"{path.name} is {rgb.shape[1]}×{rgb.shape[0]} but {partner} is "
                               f"{other.shape[1]}×{other.shape[0]}: a swap needs the same size")
        self.replacement.active = False
        try:
            if not self._settled:
                self.predictor.predict(other)     # settles auto precision before recording
                self._settled = True
            self.replacement.set_partner(self._record(other))
        finally:
            self.replacement.active = True
