"""``segstudio train`` writes a model card measured on its own training data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from segstudio.cli import main
from segstudio.models.checkpoint import load_checkpoint
from segstudio.models.model_card import grey_of, read_card
from segstudio.train.card import validation_confidence
from segstudio.train.dataset import VocSegmentation, pad_collate

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def demo_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("card") / "xray"
    assert main(["demo-data", "--kind", "xray", "--n", "16", "--size", "64", "--seed", "3",
                 "--out", str(root)]) == 0
    return root


def test_demo_data_records_that_its_images_are_synthetic(demo_tree):
    data = json.loads((demo_tree / "VOCdevkit" / "VOC2012" / "dataset.json").read_text())
    assert data["kind"] == "synthetic" and data["generator"] == "xray"
    assert data["count"] == 16 and data["size"] == 64 and data["seed"] == 3


def test_training_writes_a_card_measured_on_its_data(demo_tree, tmp_path, monkeypatch):
    monkeypatch.setenv("SEGSTUDIO_TORCH_THREADS", "1")
    voc = demo_tree / "VOCdevkit" / "VOC2012"
    out = tmp_path / "m.pt"
    from segstudio.train.loop import train

    result = train("unet", voc, epochs=1, batch_size=4, crop=64, out=out, device="cpu",
                   seed=0, max_steps=2)
    assert result.best_epoch == 1
    model, meta = load_checkpoint(out)
    card = read_card(meta.training)
    assert card is not None
    train_set = VocSegmentation(voc, "train", mean=(0, 0, 0), std=(1, 1, 1))
    val_set = VocSegmentation(voc, "val", mean=meta.mean, std=meta.std)
    assert card.data_kind == "synthetic" and "16 generated chest X-ray phantoms" in \
        card.data_description
    assert (card.train_images, card.val_images) == (len(train_set), len(val_set))
    assert card.size_min == card.size_max == (64, 64)
    greys = np.concatenate([grey_of(train_set.load(i)[0]).ravel() for i in range(len(train_set))])
    assert card.intensity["mean"] == pytest.approx(greys.mean(), abs=1e-2)
    assert card.intensity["std"] == pytest.approx(greys.std(), abs=1e-2)
    assert card.intensity["p99"] == np.percentile(greys, 99, method="inverted_cdf")
    assert card.val_scores["mIoU"] == pytest.approx(meta.training["val_mIoU"], abs=1e-4)
    loader = torch.utils.data.DataLoader(val_set, batch_size=4, collate_fn=pad_collate)
    conf, ent, shares = validation_confidence(model, loader, torch.device("cpu"))
    assert card.val_confidence == pytest.approx(conf, abs=1e-3)
    assert card.val_entropy == pytest.approx(ent, abs=1e-3)
    assert 0.25 <= card.val_confidence <= 1.0
    assert card.predicted_fractions == [pytest.approx(r, abs=1e-4) for r in shares]
    assert len(shares) == 4 and all(0 <= lo <= hi <= 1 for lo, hi in shares)


def test_a_tree_without_a_description_says_its_origin_is_not_recorded(demo_tree, tmp_path):
    from segstudio.models.model_card import read_dataset_description

    assert read_dataset_description(demo_tree)[0] == "synthetic"
    assert read_dataset_description(tmp_path) == ("not recorded",
                                                  f"the Pascal VOC tree '{tmp_path.name}'")
