"""``segstudio predict`` checks each image's memory before the network runs on it."""

import numpy as np
from PIL import Image

from segstudio.cli import main
from segstudio.io import decode_memory
from segstudio.models import engine


def test_an_image_whose_prediction_cannot_fit_is_refused_before_the_network(tmp_path,
                                                                            monkeypatch, capsys):
    (tmp_path / "in").mkdir()
    Image.fromarray(np.full((24, 32, 3), 90, np.uint8)).save(tmp_path / "in" / "a.png")
    ran = []
    monkeypatch.setattr(engine.Predictor, "predict", lambda self, *a, **k: ran.append(1))
    # Room to read the 32×24 picture, not for 21 classes of probabilities over it.
    monkeypatch.setattr(decode_memory, "available_memory", lambda: 100_000)
    code = main(["predict", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--model",
                 "fcn32s", "--device", "cpu", "--precision", "fp32"])
    err = [ln for ln in capsys.readouterr().err.splitlines() if not ln.startswith("WARNING")]
    assert code == 2
    assert err == ["segstudio predict: error: not enough memory for predicting a.png (32×24): "
                   "needs about 205.8 kB, 100.0 kB available"]
    assert not ran and not (tmp_path / "out" / "a.png").exists()
