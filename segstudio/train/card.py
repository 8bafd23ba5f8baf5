"""Measuring a model card from a training set (see :mod:`segstudio.models.model_card`).

``segstudio train`` describes its training split once and measures the validation split's mean
confidence and entropy each time it keeps a best epoch. For a model written without a card — a
checkpoint from before cards, or a model file of another format — ``segstudio card MODEL --data
VOC_DIR`` measures the same figures with the Predictor the app uses and writes them as a
sidecar ``<name>.card.json`` beside the file, leaving the model itself untouched.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from segstudio.models.model_card import (DataStatistics, ModelCard, build_card, card_json,
                                         class_fractions,
                                         fraction_ranges, read_dataset_description,
                                         sidecar_path)


def describe_split(dataset, num_classes: int) -> dict:
    """Statistics of every image and label map of a split (``__len__`` and ``load(i)``)."""
    stats = DataStatistics(num_classes)
    for i in range(len(dataset)):
        stats.add(*dataset.load(i))
    return {**stats.summary(), "count": stats.count}


@torch.no_grad()
def validation_confidence(model: nn.Module, loader: DataLoader, device: torch.device
                          ) -> tuple[float, float, list[tuple[float, float]]]:
    """Pixel-weighted mean max-softmax probability, mean entropy (nats) and, per class, the
    (min, max) share of a validation image the network gives it, over ``loader``.

    Pixels labelled 255 (void, or padding added by the collate function) are left out."""
    model.eval()
    conf_sum = ent_sum = 0.0
    count = 0
    shares: list = []
    for images, labels in loader:
        output = model(images.to(device))
        logits = (output["out"] if isinstance(output, dict) else output).float()
        logp = torch.log_softmax(logits, dim=1)
        probs = logp.exp()
        keep = (labels != 255).to(device)
        conf_sum += float(probs.amax(dim=1)[keep].sum())
        ent_sum += float((-(probs * logp).sum(dim=1))[keep].sum())
        count += int(keep.sum())
        predicted = logits.argmax(dim=1)
        for pred, mask in zip(predicted, keep):
            if mask.any():
                shares.append(class_fractions(pred[mask].cpu().numpy().astype(np.uint8),
                                              logits.shape[1]))
    if count == 0:
        return float("nan"), float("nan"), []
    return conf_sum / count, ent_sum / count, fraction_ranges(shares)


def card_for_run(data_dir: Path, train_summary: dict, val_count: int, scores: dict,
                 confidence: float | None, entropy: float | None, num_classes: int,
                 predicted: list | None = None) -> dict:
    """The card ``segstudio train`` stores with a best epoch, as plain data."""
    kind, description = read_dataset_description(data_dir)
    finite = (lambda v: v if v is not None and np.isfinite(v) else None)
    return build_card(data_kind=kind, description=description, train=train_summary,
                      val_count=val_count, scores=scores, confidence=finite(confidence),
                      entropy=finite(entropy), num_classes=num_classes,
                      predicted=predicted).to_dict()


def card_for_model(model: str | Path, voc_dir: str | Path, overrides=None,
                   written_by: str | None = None) -> ModelCard:
    """Measure a card for a model file (any format :func:`segstudio.models.formats.load_any`
    reads, ``overrides`` over its sidecar) on the train and val splits of ``voc_dir``: the data
    it was trained on, or data like the images it is meant for.

    The validation confidence comes from the Predictor (fp32, CPU), exactly as the app will
    compute it for the images a user opens. ``written_by`` names the command in the card, so
    that it knows its own cards again."""
    from segstudio.core.metrics import ConfusionMatrix
    from segstudio.models.engine import Predictor
    from segstudio.models.formats import load_any
    from segstudio.models.model_card import confidence_and_entropy
    from segstudio.train.dataset import VocSegmentation

    loaded = load_any(model, overrides)
    predictor = Predictor.from_model(loaded, device="cpu", precision="fp32",
                                     num_threads=torch.get_num_threads())
    meta = predictor.meta
    n_cls = len(meta.classes)
    plain = dict(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    train_summary = describe_split(VocSegmentation(voc_dir, "train", **plain), n_cls)
    val = VocSegmentation(voc_dir, "val", **plain, num_classes=n_cls)
    cm = ConfusionMatrix(n_cls)
    conf_sum = ent_sum = 0.0
    pixels = 0
    shares = []
    for i in range(len(val)):
        rgb, labels = val.load(i)
        pred = predictor.predict(rgb)
        cm.update(labels, pred.labels)
        shares.append(class_fractions(pred.labels, n_cls))
        conf, ent = confidence_and_entropy(pred.probabilities)
        conf_sum += conf * labels.size
        ent_sum += ent * labels.size
        pixels += labels.size
    scores = cm.scores()
    kind, description = read_dataset_description(voc_dir)
    return build_card(data_kind=kind, description=description, train=train_summary,
                      val_count=len(val), scores={"mIoU": scores.miou, "mAcc": scores.macc},
                      confidence=conf_sum / pixels, entropy=ent_sum / pixels,
                      num_classes=n_cls, predicted=fraction_ranges(shares),
                      extra={"measured_on": "the stored weights, fp32, with the validation "
                                            "split of the data it was measured on",
                             **({"written_by": written_by} if written_by else {})})


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m segstudio.train.card CHECKPOINT VOC_DIR", file=sys.stderr)
        return 2
    from segstudio.io.atomic import atomic_write_text

    from segstudio.models.formats import ModelFormatError
    from segstudio.train.dataset import DatasetError

    try:
        card = card_for_model(argv[0], argv[1])
    except (ModelFormatError, DatasetError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = sidecar_path(argv[0])
    atomic_write_text(out, card_json(card.to_dict()))
    print(f"{out.name}: " + "; ".join(card.summary_lines()[:4]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
