"""``segstudio card``: measure a model card for any model file and write it beside the file."""

from __future__ import annotations

import argparse
from pathlib import Path

from segstudio.commands import CommandError

COMMAND = "segstudio card"     # what its cards say wrote them (see ``written_by_card``)
HELP = ("measure a model card (what the model saw, how well it scores, how sure it is) for a "
        "model file of any format on a VOC dataset, and write it beside the file as "
        "NAME.card.json: the app then warns when an image lies outside that data")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL",
                        help="a segstudio checkpoint, TorchScript archive, ONNX model, or "
                             "Hugging Face or smp model folder")
    parser.add_argument("--data", required=True, metavar="VOC_DIR",
                        help="a VOC tree (train and val splits) of the data the model was "
                             "trained on, or of images like those it is meant for")
    parser.add_argument("--classes", metavar="PRESET|FILE|NAMES",
                        help="the model's classes, over its sidecar (as for predict)")
    parser.add_argument("--mean", nargs=3, type=float, metavar=("R", "G", "B"),
                        help="the model's input mean per channel in 0..1 units")
    parser.add_argument("--std", nargs=3, type=float, metavar=("R", "G", "B"),
                        help="the model's input standard deviation in 0..1 units")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a card beside the model that this command did not write "
                             "(its own earlier cards are replaced without asking)")


def written_by_card(path: Path) -> bool:
    """Whether the card at ``path`` is one this command wrote (it says so in ``extra``)."""
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data["extra"]["written_by"] == COMMAND
    except (OSError, UnicodeDecodeError, ValueError, RecursionError, KeyError, TypeError):
        return False


def run(args: argparse.Namespace) -> int:
    from segstudio.commands.predict import model_overrides
    from segstudio.io.atomic import atomic_write_text
    from segstudio.io.output_guard import OutputError, check_output
    from segstudio.models.engine import PredictorError
    from segstudio.models.formats import ModelFormatError
    from segstudio.models.model_card import card_json, sidecar_path
    from segstudio.train.card import card_for_model
    from segstudio.train.dataset import DatasetError

    model = Path(args.model)
    if not args.model or not model.exists():
        raise CommandError(f"{args.model or repr(args.model)}: no such model file or folder")
    out = sidecar_path(model.resolve())
    try:
        check_output(out, [("MODEL", model), ("--data", args.data)], flag="the card",
                     overwrite=args.overwrite, ours=written_by_card)
    except OutputError as exc:
        raise CommandError(str(exc)) from None
    try:
        card = card_for_model(args.model, args.data, model_overrides(args), written_by=COMMAND)
    except (ModelFormatError, DatasetError, PredictorError) as exc:
        raise CommandError(str(exc)) from None
    try:
        atomic_write_text(out, card_json(card.to_dict()))
    except OSError as exc:
        raise CommandError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(f"{out.name}: " + "; ".join(card.summary_lines()[:4]))
    return 0
