"""Fine-tuning a Hugging Face or smp model folder: the best epoch comes back as a folder of the
same format, which loads with its classes and predicts as the trained network did; files that
cannot be trained, and data with no class in common, are refused saying why; a tree that orders
the classes otherwise, or has more, is matched to the network's classes by name."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from foreign_models import NAMES, image, save_segformer, save_smp_unet, save_torchscript
from segstudio.core.classes import ClassSet
from segstudio.io import voc
from segstudio.models.engine import Predictor
from segstudio.models.formats import load_any
from segstudio.train.finetune_file import finetune_model_file
from segstudio.train.loop import TrainError

torch.set_num_threads(1)


def _roads_voc(root, classes=NAMES, n=8, size=64):
    """Images with a band of road and a square of car over background, numbered as ``classes``
    orders them (the same pixels, whatever the order)."""
    samples = []
    road = classes.index("road") if "road" in classes else 1
    car = classes.index("car") if "car" in classes else 2
    for i in range(n):
        labels = np.zeros((size, size), np.uint8)
        labels[20 + i % 5:36 + i % 5, :] = road
        labels[4:14, 8 + 3 * i:20 + 3 * i] = car
        rgb = image(size, size, seed=i)
        rgb[labels == road] = (200, 60, 200)
        rgb[labels == car] = (20, 20, 160)
        samples.append(voc.VocSample(f"img{i}", rgb, labels, None))
    voc.write_voc(root, samples, ClassSet(list(classes)), val_fraction=0.25, seed=0, total=n)
    return root


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("kind", ["smp", "huggingface"])
def test_a_model_folder_fine_tunes_into_a_folder_of_its_own_format(tmp_path, kind):
    if kind == "smp":
        pytest.importorskip("segmentation_models_pytorch")
        start = save_smp_unet(tmp_path / "unet")
        source = tmp_path / "unet"
    else:
        pytest.importorskip("transformers")
        start = save_segformer(tmp_path / "segformer")
        source = tmp_path / "segformer"
    before = _weights(start)
    data = _roads_voc(tmp_path / "voc")
    out = tmp_path / "tuned"
    result = finetune_model_file(source, data, out, epochs=2, batch_size=2, crop=64,
                                 device="cpu", lr=3e-3)
    assert result.epochs_done == 2 and 1 <= result.best_epoch <= 2
    assert (out / "model.safetensors").is_file() and not list(out.glob("*.bin"))
    record = json.loads((out / "segstudio-training.json").read_text())
    assert record["best_epoch"] == result.best_epoch and record["fine_tuned_from"] == source.name
    loaded = load_any(out)
    assert loaded.format == kind and loaded.meta.classes.names == NAMES
    original = load_any(source)
    assert loaded.meta.mean == pytest.approx(original.meta.mean)
    saved = _weights(loaded.net.net.model if kind == "huggingface" else loaded.net.net)
    assert saved.keys() == before.keys()
    assert any(not torch.equal(saved[k], before[k]) for k in before)
    # The folder holds the best epoch's network (the run's model ends holding it too): read
    # back, it predicts what that network predicts.
    rgb = image(64, 64, seed=3)
    predictor = Predictor.from_model(loaded, device="cpu", precision="fp32")
    tuned = predictor.predict(rgb)
    result.model.eval()
    with torch.no_grad():
        expected = result.model(predictor._to_input(rgb))[0].argmax(0).numpy()
    assert (tuned.labels == expected).mean() >= 0.999


def test_files_that_cannot_be_trained_and_other_classes_are_refused(tmp_path):
    pytest.importorskip("segmentation_models_pytorch")
    data = _roads_voc(tmp_path / "voc")
    save_torchscript(tmp_path / "roads.pt")
    with pytest.raises(TrainError, match="compiled graph"):
        finetune_model_file(tmp_path / "roads.pt", data, tmp_path / "a", epochs=1, device="cpu")
    save_smp_unet(tmp_path / "unet")
    other = _roads_voc(tmp_path / "voc2", classes=("sky", "tree", "river"))
    with pytest.raises(TrainError, match="no class in common"):
        finetune_model_file(tmp_path / "unet", other, tmp_path / "b", epochs=1, device="cpu")
    (tmp_path / "c").mkdir()
    with pytest.raises(TrainError, match="already exists"):
        finetune_model_file(tmp_path / "unet", data, tmp_path / "c", epochs=1, device="cpu")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_cancelled_fine_tune_writes_nothing(tmp_path):
    pytest.importorskip("segmentation_models_pytorch")
    save_smp_unet(tmp_path / "unet")
    data = _roads_voc(tmp_path / "voc")
    result = finetune_model_file(tmp_path / "unet", data, tmp_path / "tuned", epochs=2,
                                 batch_size=2, crop=64, device="cpu", cancel=lambda: True)
    assert result.cancelled and result.epochs_done == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["unet", "voc"]


def test_a_tree_of_other_class_order_and_more_classes_is_matched_by_name(tmp_path):
    """The same pixels numbered in another order (and a class the network lacks, unused)
    train exactly as the tree in the network's own order does; the lacking class is said."""
    pytest.importorskip("segmentation_models_pytorch")
    save_smp_unet(tmp_path / "unet")
    same = _roads_voc(tmp_path / "voc", classes=NAMES)
    other = _roads_voc(tmp_path / "voc2", classes=("background", "car", "lungs", "road"))
    said = []
    runs = [finetune_model_file(tmp_path / "unet", data, tmp_path / name, epochs=1,
                                batch_size=2, crop=64, device="cpu", seed=3, notice=said.append)
            for data, name in ((same, "a"), (other, "b"))]
    a, b = (_weights(r.model) for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert runs[0].history[0]["val_mIoU"] == runs[1].history[0]["val_mIoU"]
    assert said == ["unet has no class lungs: those labels are left out of its fine-tuning"]
    assert tuple(load_any(tmp_path / "b").meta.classes.names) == NAMES
    record = json.loads((tmp_path / "b" / "segstudio-training.json").read_text())
    assert record["classes_left_out"] == ["lungs"]
