"""The bundled trained models segment the bundled demo images they ship with."""

import numpy as np
import pytest

from segstudio.core.metrics import scores
from segstudio.io.images import read_image
from segstudio.models.checkpoint import read_meta
from segstudio.models.engine import Predictor
from segstudio.paths import demo_dir, weights_dir
from segstudio.train import synth

# (checkpoint, demo image, how the demo image was generated, lowest acceptable mIoU)
BUNDLED = [
    ("chest_xray_unet_lite.pt", "chest_phantom_01.png", ("xray", 0, 160), 0.8),
    ("context_pspnet_lite.pt", "context_01.png", ("context", 3, 256), 0.9),
    ("shapes_maskrcnn_lite.pt", "shapes_01.png", ("shapes", 2, 256), 0.85),
]


def assert_same_picture(shipped: np.ndarray, made: np.ndarray) -> None:
    """Within one grey level everywhere, and off by that level on at most 1 % of the pixels."""
    assert shipped.shape == made.shape and shipped.dtype == made.dtype
    diff = np.abs(shipped.astype(np.int64) - made.astype(np.int64))
    assert diff.max() <= 1, f"{int(diff.max())} grey levels apart"
    assert (diff > 0).mean() <= 0.01, f"{(diff > 0).mean():.2%} of the pixels differ"


@pytest.mark.parametrize("weights, image, made, floor", BUNDLED)
def test_bundled_model_segments_its_demo_image(weights, image, made, floor):
    kind, index, size = made
    truth = synth.make_sample(kind, index, size=size, seed=2026)
    data = read_image(demo_dir() / image)
    rgb = data.to_rgb8()
    assert rgb.shape == (size, size, 3)
    # The shipped file is the generated sample (16-bit grey for the phantom), up to the rounding
    # of OpenCV's blur and resize kernels, which differ between CPUs (AVX2, AVX-512, none).
    expected = truth.grey16 if kind == "xray" else truth.image
    assert_same_picture(data.pixels.reshape(expected.shape), expected)

    meta = read_meta(weights_dir() / weights)
    assert meta.trained and meta.classes == synth.classes_for(kind)
    predictor = Predictor.from_checkpoint(weights_dir() / weights, device="cpu",
                                          precision="fp32", num_threads=1)
    labels = predictor.predict(rgb).labels
    result = scores(truth.labels, labels, len(meta.classes))
    assert result.miou > floor
    # Every class of the image, clavicles and cars included, is found (a context scene has one
    # surface, water or road, so two of its five classes are absent: their IoU is NaN).
    present = np.unique(truth.labels[truth.labels < len(meta.classes)])
    assert len(present) >= 3 and (result.iou[present] > 0.5).all()


def test_every_bundled_checkpoint_loads_trained_and_is_documented():
    from segstudio.models.checkpoint import load_checkpoint

    readme = (weights_dir() / "README.md").read_text()
    files = sorted(weights_dir().glob("*.pt"))
    assert len(files) >= 2
    for path in files:
        model, meta = load_checkpoint(path)
        assert meta.trained, path.name
        assert f"`{path.name}`" in readme, f"{path.name} is not described in the README"
