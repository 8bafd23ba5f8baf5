"""segmentation-models-pytorch folders: a small smp U-Net saved with save_pretrained gives the
labels smp itself gives, padded to the stride its encoder needs; bad folders are refused."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("segmentation_models_pytorch")

from foreign_models import (MEAN, NAMES, image, normalised, reference_labels,  # noqa: E402
                            save_smp_unet)
from segstudio.models.engine import Predictor  # noqa: E402
from segstudio.models.formats import ModelFormatError, load_any  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def unet(tmp_path_factory):
    folder = tmp_path_factory.mktemp("smp") / "small-unet"
    return folder, save_smp_unet(folder)


def test_an_smp_folder_labels_an_image_as_smp_itself_does(unet):
    folder, model = unet
    loaded = load_any(folder)
    assert loaded.format == "smp" and loaded.meta.arch == "smp Unet"
    assert loaded.meta.classes.names == NAMES and loaded.meta.mean == pytest.approx(MEAN)
    assert loaded.stride == 8                        # 2³: the encoder's depth
    rgb = image(72, 96, seed=13)                     # a multiple of 8, as smp requires
    with torch.no_grad():
        expected = reference_labels(model(normalised(rgb)), rgb.shape[:2])
    prediction = Predictor.from_model(loaded, device="cpu", precision="fp32").predict(rgb)
    assert len(np.unique(expected)) >= 2
    assert (prediction.labels == expected).mean() >= 0.995
    # Any other size is padded to the stride and runs too (smp alone would refuse it).
    assert Predictor.from_model(loaded, device="cpu", precision="fp32").predict(
        image(70, 90)).labels.shape == (70, 90)


def test_nothing_but_model_safetensors_is_read(unet, tmp_path, monkeypatch):
    import segmentation_models_pytorch as smp

    folder = shutil.copytree(unet[0], tmp_path / "copy")

    def never(*_a, **_k):
        raise AssertionError("smp.from_pretrained may fetch encoders or unpickle weights")

    monkeypatch.setattr(smp, "from_pretrained", never)
    assert load_any(folder).format == "smp"
    (folder / "model.safetensors").unlink()
    torch.save(unet[1].state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(ModelFormatError, match=r"^copy: holds only pickled weights"):
        load_any(folder)


@pytest.mark.parametrize("change, said", [
    ({"_model_class": "os.system"}, "_model_class 'os.system' is not an smp architecture"),
    ({"encoder_depth": 9}, "smp cannot build Unet from it"),
    ({"no_such_argument": 1}, "Unet takes no argument 'no_such_argument'"),
    ({"classes": 4}, "bad/model.safetensors: weight 'segmentation_head.0."),
    ({"activation": "exp"}, "activation 'exp' is not one segstudio reads"),
])
def test_a_bad_smp_config_is_refused_in_one_line(unet, tmp_path, change, said):
    folder = shutil.copytree(unet[0], tmp_path / "bad")
    config = json.loads((folder / "config.json").read_text())
    config.update(change)
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFormatError) as info:
        load_any(folder)
    text = str(info.value)
    assert text.startswith("bad") and said in text and "\n" not in text, text


def test_a_softmax_head_is_read_as_probabilities(tmp_path):
    folder = tmp_path / "softmax-unet"
    model = save_smp_unet(folder, activation="softmax2d")
    rgb = image(64, 64, seed=14)
    with torch.no_grad():
        probs = model(normalised(rgb))
    prediction = Predictor.from_model(load_any(folder), device="cpu",
                                      precision="fp32").predict(rgb)
    np.testing.assert_allclose(prediction.probabilities, probs[0].numpy(), atol=1e-4)
