"""The Predictor: shapes, normalisation, padding, tiling, cancelling, precision and devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from segstudio.core.classes import ClassSet, chest_xray
from segstudio.models import registry
from segstudio.models.checkpoint import CheckpointMeta, save_checkpoint
from segstudio.models.device import DeviceError, default_num_threads
from segstudio.models.engine import (Prediction, PredictionCancelled, Predictor, PredictorError,
                                     choose_device, semantic_from_instances, tile_starts)

ARCH = "unet"


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    torch.manual_seed(0)


class LocalNet(nn.Module):
    """Three 3×3 convolutions: each output pixel sees only a 7×7 neighbourhood (radius 3)."""

    def __init__(self, classes: int = 3, scale: float = 1.0, width: int = 8):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, classes, 3, padding=1))
        self.scale = scale
        self.seen: list[tuple[int, int]] = []

    def forward(self, x):
        self.seen.append(tuple(x.shape[-2:]))
        return {"out": self.body(x) * self.scale}


def _meta(n: int = 3, arch: str = "local-test") -> CheckpointMeta:
    names = ["background", "a", "b", "c", "d"][:n]
    return CheckpointMeta(arch=arch, config="lite", classes=ClassSet(names),
                          mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), trained=True, training={})


def _image(h: int, w: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_prediction_has_image_size_probabilities_and_argmax_labels():
    pred = Predictor(LocalNet(), _meta(), device="cpu", precision="fp32").predict(_image(37, 53))
    assert isinstance(pred, Prediction)
    assert pred.probabilities.shape == (3, 37, 53) and pred.probabilities.dtype == np.float32
    assert pred.labels.shape == (37, 53) and pred.labels.dtype == np.uint8
    np.testing.assert_allclose(pred.probabilities.sum(axis=0), 1.0, atol=1e-5)
    np.testing.assert_array_equal(pred.labels, pred.probabilities.argmax(axis=0))
    assert pred.instances is None
    assert (pred.device, pred.precision, pred.trained) == ("cpu", "fp32", True)
    np.testing.assert_allclose(pred.confidence(), pred.probabilities.max(axis=0))
    p = pred.probabilities
    np.testing.assert_allclose(pred.entropy(), -(p * np.log(p)).sum(axis=0), rtol=1e-5)
    assert pred.entropy().min() >= 0 and pred.entropy().max() <= np.log(3) + 1e-5


def test_input_is_padded_to_the_stride_and_normalised_with_meta_statistics():
    net = LocalNet()
    pred = Predictor(net, _meta(), device="cpu", precision="fp32").predict(_image(37, 53))
    assert net.seen == [(64, 64)]  # padded up to multiples of 32, cropped back after
    x = (torch.from_numpy(_image(37, 53)).permute(2, 0, 1)[None].float() / 255 - 0.5) / 0.25
    with torch.no_grad():
        direct = torch.softmax(net.body(x)[0], dim=0).numpy()
    # Reflect padding only changes pixels within the receptive radius of the padded border.
    np.testing.assert_allclose(pred.probabilities[:, :34, :50], direct[:, :34, :50], atol=1e-5)


@pytest.mark.parametrize("arch, seen", [("deeplabv3", (48, 64)), ("pspnet", (40, 56)),
                                        ("fcn32s", (64, 64)), ("unet", (37, 53))])
def test_a_registered_network_is_padded_to_its_output_stride_only(arch, seen):
    net = LocalNet()
    pred = Predictor(net, _meta(arch=arch), device="cpu", precision="fp32").predict(_image(37, 53))
    assert net.seen == [seen]
    assert pred.labels.shape == (37, 53)


def test_grey_image_is_treated_as_rgb_with_equal_channels():
    grey = _image(40, 40)[:, :, 0]
    p = Predictor(LocalNet(), _meta(), device="cpu", precision="fp32")
    a = p.predict(grey).probabilities
    b = p.predict(np.repeat(grey[:, :, None], 3, axis=2)).probabilities
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad, problem", [(np.zeros((8, 8, 3), np.float32), "dtype float32"),
                                          (np.zeros((8, 8, 2), np.uint8), "shape"),
                                          (np.zeros((2, 8, 8, 3), np.uint8), "shape")])
def test_unusable_images_raise_predictor_error(bad, problem):
    with pytest.raises(PredictorError, match=problem):
        Predictor(LocalNet(), _meta(), device="cpu").predict(bad)


def test_tile_starts_cover_the_image_with_at_least_the_overlap():
    assert tile_starts(100, 128, 16) == [0]
    starts = tile_starts(1000, 256, 64)
    assert starts[0] == 0 and starts[-1] == 1000 - 256
    assert all(b - a <= 256 - 64 for a, b in zip(starts, starts[1:]))


def test_tiled_prediction_matches_whole_image_for_a_local_network():
    image = _image(224, 160)  # multiples of the stride: no padding, so only tiling differs
    net = LocalNet()
    whole = Predictor(net, _meta(), device="cpu", precision="fp32").predict(image)
    net.seen.clear()
    tiled = Predictor(net, _meta(), device="cpu", precision="fp32", tile_size=96,
                      tile_overlap=32).predict(image)
    assert tiled.notes == ["tiled 3×2 with 32 px overlap"]
    assert max(max(s) for s in net.seen) <= 96
    # The outer quarter of each overlap gets no weight, so a network whose receptive radius
    # (3 px) is inside that margin (8 px) gives the whole-image answer everywhere.
    np.testing.assert_allclose(tiled.probabilities, whole.probabilities, atol=2e-5)
    np.testing.assert_array_equal(tiled.labels, whole.labels)


def test_4096_square_image_runs_in_tiles_no_larger_than_the_tile_size():
    net = LocalNet(classes=2, width=2)
    image = np.full((4096, 4096, 3), 128, np.uint8)
    image[1000:3000, 500:2500] = 250
    pred = Predictor(net, _meta(2), device="cpu", precision="fp32",
                     tile_size=1024).predict(image)
    assert pred.labels.shape == (4096, 4096) and pred.probabilities.shape == (2, 4096, 4096)
    assert len(net.seen) == 25 and max(max(s) for s in net.seen) == 1024
    assert pred.notes == ["tiled 5×5 with 64 px overlap"]
    # Flat regions far from edges must get identical answers in every tile.
    assert len(np.unique(pred.labels[1100:2900, 600:2400])) == 1
    assert np.ptp(pred.probabilities[0, 10:900, 2600:4000]) < 1e-5


def test_cancel_stops_between_tiles():
    net = LocalNet()
    calls = iter(range(100))
    p = Predictor(net, _meta(), device="cpu", precision="fp32", tile_size=64, tile_overlap=16)
    with pytest.raises(PredictionCancelled):
        p.predict(_image(200, 200), cancel=lambda: next(calls) >= 2)
    assert len(net.seen) == 2


class MemoryHungryNet(LocalNet):
    """LocalNet that runs out of memory, as a GPU would, on inputs larger than ``limit``."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit

    def forward(self, x):
        if max(x.shape[-2:]) > self.limit:
            self.seen.append(tuple(x.shape[-2:]))
            raise torch.OutOfMemoryError("out of memory (simulated)")
        return super().forward(x)


def test_running_out_of_memory_halves_the_tile_size_until_it_fits():
    image = _image(300, 300)
    hungry = MemoryHungryNet(limit=128)
    p = Predictor(hungry, _meta(), device="cpu", precision="fp32", tile_overlap=16)
    pred = p.predict(image)
    # 300 (padded to 320) fails, 150-px tiles (padded to 160) fail, 75-px tiles (96) fit.
    assert p.tile_size == 75
    assert pred.notes == ["cpu ran out of memory; tile size lowered to 150 px",
                          "cpu ran out of memory; tile size lowered to 75 px",
                          "tiled 5×5 with 16 px overlap"]
    whole = Predictor(LocalNet(), _meta(), device="cpu", precision="fp32")
    whole.model.load_state_dict(hungry.state_dict())
    np.testing.assert_allclose(pred.probabilities, whole.predict(image).probabilities,
                               atol=2e-5)


def test_running_out_of_memory_at_the_smallest_tile_is_a_clear_error():
    p = Predictor(MemoryHungryNet(limit=0), _meta(), device="cpu", precision="fp32",
                  tile_overlap=16)
    with pytest.raises(PredictorError, match="ran out of memory even with 64 px tiles"):
        p.predict(_image(300, 300))


def test_fp16_overflow_falls_back_to_fp32_with_a_note():
    p = Predictor(LocalNet(scale=1e6), _meta(), device="cpu", precision="fp16")
    pred = p.predict(_image(32, 32))
    assert pred.precision == "fp32" and p.precision == "fp32"
    assert any(n.startswith("fell back to fp32 (fp16 overflowed") for n in pred.notes)
    assert np.isfinite(pred.probabilities).all()


class SmallSegNet(nn.Module):
    """Conv-BN-ReLU encoder at 1/4 resolution with a bilinear decoder: the usual op mix."""

    def __init__(self, classes: int = 3):
        super().__init__()

        def block(cin, cout, stride):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
                                 nn.BatchNorm2d(cout), nn.ReLU())

        self.encoder = nn.Sequential(block(3, 16, 2), block(16, 32, 2), block(32, 32, 1))
        self.classifier = nn.Conv2d(32, classes, 1)

    def forward(self, x):
        logits = self.classifier(self.encoder(x))
        return {"out": nn.functional.interpolate(logits, size=x.shape[-2:], mode="bilinear",
                                                 align_corners=False)}


def _synthetic_scene(size: int = 96):
    rng = np.random.default_rng(0)
    image = np.full((size, size, 3), 60, np.uint8)
    target = np.zeros((size, size), np.int64)
    yy, xx = np.mgrid[:size, :size]
    disc = (yy - 30) ** 2 + (xx - 34) ** 2 < 18 ** 2
    box = (yy > 55) & (yy < 88) & (xx > 50) & (xx < 90)
    image[disc] = (220, 40, 40)
    image[box] = (40, 200, 60)
    target[disc], target[box] = 1, 2
    image = np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)
    return image, target


def _fit(model: nn.Module, meta: CheckpointMeta, image, target, steps: int) -> nn.Module:
    """A few Adam steps on one synthetic scene: enough for well separated logits."""
    x = (torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
         - torch.tensor(meta.mean).view(1, 3, 1, 1)) / torch.tensor(meta.std).view(1, 3, 1, 1)
    y = torch.from_numpy(target)[None]
    x, y = torch.cat([x, x.flip(-1)]), torch.cat([y, y.flip(-1)])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(x)["out"], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def test_bf16_agrees_with_fp32_on_at_least_99_percent_of_pixels_of_a_fitted_network():
    image, target = _synthetic_scene()
    meta = _meta(3)
    model = _fit(SmallSegNet(3), meta, image, target, steps=60)
    fp32 = Predictor(model, meta, device="cpu", precision="fp32").predict(image)
    bf16 = Predictor(model, meta, device="cpu", precision="bf16").predict(image)
    assert bf16.precision == "bf16" and not bf16.notes
    assert (fp32.labels == target).mean() > 0.95  # the network really has learnt the scene
    assert (bf16.labels == fp32.labels).mean() >= 0.99
    assert np.abs(bf16.probabilities - fp32.probabilities).max() < 0.1


def test_untrained_predictor_says_so():
    p = Predictor.untrained(ARCH, chest_xray(), device="cpu")
    pred = p.predict(_image(48, 64))
    assert p.trained is False and pred.trained is False
    assert pred.probabilities.shape == (4, 48, 64)


def test_predictor_from_checkpoint_matches_the_saved_model(tmp_path):
    model = registry.build_model(ARCH, 4, config="lite").eval()
    meta = CheckpointMeta(arch=ARCH, config="lite", classes=chest_xray(), trained=True,
                          training={"epochs": 1})
    save_checkpoint(tmp_path / "m.ckpt", model, meta)
    image = _image(50, 70)
    loaded = Predictor.from_checkpoint(tmp_path / "m.ckpt", device="cpu", precision="fp32")
    direct = Predictor(model, meta, device="cpu", precision="fp32")
    assert loaded.trained and loaded.meta == meta
    np.testing.assert_allclose(loaded.predict(image).probabilities,
                               direct.predict(image).probabilities, atol=1e-6)


def test_instance_detections_become_class_probabilities_and_ids():
    masks = torch.zeros(3, 1, 20, 30)
    masks[0, 0, 2:10, 2:12] = 0.9
    masks[1, 0, 5:15, 8:20] = 0.8
    masks[2, 0, 0:5, 25:30] = 0.9
    det = {"boxes": torch.zeros(3, 4), "labels": torch.tensor([1, 2, 1]),
           "scores": torch.tensor([0.95, 0.7, 0.3]), "masks": masks}
    probs, ids, objects = semantic_from_instances(det, 3, (20, 30))
    assert probs.shape == (3, 20, 30) and ids.dtype == np.uint16
    np.testing.assert_allclose(probs.sum(0).numpy(), 1.0, atol=1e-5)
    labels = probs.argmax(0).numpy()
    assert labels[3, 3] == 1 and ids[3, 3] == 1
    assert labels[12, 15] == 2 and ids[12, 15] == 2
    assert labels[7, 10] == 1 and ids[7, 10] == 1  # overlap: the more confident instance
    assert labels[2, 27] == 0 and ids[2, 27] == 0  # score 0.3 is below the threshold
    assert objects == [(1, pytest.approx(0.95)), (2, pytest.approx(0.7))]


def test_instance_masks_are_cut_at_half_whatever_the_score_and_agree_with_the_labels():
    """The paper binarises each mask at 0.5; a less confident detection keeps its whole mask,
    ranks follow the scores (not the input order), and a hidden detection leaves no gap."""
    masks = torch.zeros(4, 1, 20, 30)
    masks[0, 0, 0:10, 0:10] = 0.6                  # score 0.55: weak, but its mask is kept
    masks[1, 0, 5:18, 5:18] = 0.55                 # score 0.8, class 2, partly under …
    masks[2, 0, 4:16, 4:16] = 0.52                 # … score 0.99, class 1: on top of all
    masks[3, 0, 6:8, 6:8] = 0.9                    # score 0.6: hidden everywhere
    det = {"boxes": torch.zeros(4, 4), "labels": torch.tensor([2, 2, 1, 2]),
           "scores": torch.tensor([0.55, 0.8, 0.99, 0.6]), "masks": masks}
    probs, ids, objects = semantic_from_instances(det, 3, (20, 30))
    labels = probs.argmax(0).numpy()
    assert ids[1, 1] == 3 and labels[1, 1] == 2    # the weak detection: rank 3 of 3 shown
    assert ids[10, 10] == 1 and labels[10, 10] == 1   # class 1 on top, though its mask is
    assert ids[7, 7] == 1                              # less sure there than class 2's
    assert ids[17, 17] == 2 and labels[17, 17] == 2
    assert ids[4, 3] == 3 and ids[4, 14] == 1 and ids[19, 19] == 0 and labels[19, 19] == 0
    assert objects == [(1, pytest.approx(0.99)), (2, pytest.approx(0.8)),
                       (2, pytest.approx(0.55))]
    assert set(np.unique(ids).tolist()) == {0, 1, 2, 3}
    classes = np.array([0] + [c for c, _ in objects])[ids]
    np.testing.assert_array_equal(labels, classes)   # every pixel: its instance's class


def test_choose_device_validates_explicit_choices():
    assert choose_device("cpu") == torch.device("cpu")
    auto = choose_device("auto")
    assert auto.type == ("cuda" if torch.cuda.is_available() else
                         "mps" if torch.backends.mps.is_available() else "cpu")
    with pytest.raises(DeviceError, match="unknown device 'gpu0'"):
        choose_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="'cuda' was asked for"):
            choose_device("cuda")
    else:
        with pytest.raises(DeviceError, match="CUDA device"):
            choose_device(f"cuda:{torch.cuda.device_count()}")


def test_default_threads_leave_a_core_for_the_gui(monkeypatch):
    monkeypatch.delenv("SEGSTUDIO_TORCH_THREADS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert default_num_threads() == 7
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert default_num_threads() == 1
    monkeypatch.setenv("SEGSTUDIO_TORCH_THREADS", "1")
    Predictor(LocalNet(), _meta(), device="cpu")
    assert torch.get_num_threads() == 1


def test_bad_tile_settings_are_refused():
    with pytest.raises(PredictorError, match="twice the overlap"):
        Predictor(LocalNet(), _meta(), device="cpu", tile_size=100, tile_overlap=50)


@pytest.mark.slow
def test_mask_rcnn_detections_reach_the_prediction_as_labels_and_instance_ids():
    model = registry.build_model("maskrcnn", 3, config="lite").eval()
    with torch.no_grad():  # make every box confidently class 1, so random weights still detect
        model.roi_heads.box_predictor.cls_score.bias.copy_(torch.tensor([-10.0, 10.0, -10.0]))
    meta = CheckpointMeta(arch="maskrcnn", config="lite",
                          classes=ClassSet(["background", "cell", "debris"]), trained=True,
                          training={})
    pred = Predictor(model, meta, device="cpu", precision="fp32").predict(_image(96, 128))
    assert pred.probabilities.shape == (3, 96, 128)
    np.testing.assert_allclose(pred.probabilities.sum(axis=0), 1.0, atol=1e-5)
    assert pred.instances is not None and pred.instances.shape == (96, 128)
    assert pred.instances.dtype == np.uint16
    inside = pred.instances > 0
    assert inside.any()
    assert (pred.labels[inside] == 1).all()
    assert (pred.labels[~inside] != 2).all()
