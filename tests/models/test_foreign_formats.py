"""Models from other libraries' files: TorchScript and ONNX behind one interface, their facts
from a sidecar, their answers equal to their own library's, and bad files refused in one line."""

from __future__ import annotations

import json
import pickle
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from foreign_models import (COLORS, MEAN, NAMES, STD, TinyNet, class_facts, image, normalised,
                            reference_labels, save_onnx, save_torchscript, write_sidecar)
from segstudio.io.model_sidecar import ModelFacts, parse_classes
from segstudio.models.engine import Predictor, PredictorError
from segstudio.models.formats import ModelFormatError, load_any

AGREEMENT = 0.995


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _agreement(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float((a == b).mean())


def _script(net: nn.Module, path, size=(64, 64)) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(net.eval(), torch.zeros(1, 3, *size)), str(path))


def test_a_torchscript_model_labels_an_image_as_its_own_forward_does(tmp_path):
    path = tmp_path / "roads.pt"
    net = save_torchscript(path)
    loaded = load_any(path)
    assert loaded.format == "torchscript"
    assert loaded.meta.classes.names == NAMES
    assert [list(c) for c in loaded.meta.classes.colors] == [list(c) for c in COLORS]
    assert loaded.meta.mean == pytest.approx(MEAN) and loaded.meta.std == pytest.approx(STD)
    rgb = image(70, 90)                 # no stride divides it: run as it is, like torch would
    with torch.no_grad():
        expected = reference_labels(net(normalised(rgb)), rgb.shape[:2])
    prediction = Predictor.from_model(loaded, device="cpu", precision="fp32").predict(rgb)
    assert prediction.labels.shape == (70, 90)
    assert len(np.unique(expected)) == 3            # a test every class takes part in
    assert _agreement(prediction.labels, expected) >= AGREEMENT


def test_an_onnx_model_labels_an_image_as_onnx_runtime_itself_does(tmp_path):
    import onnxruntime as ort

    path = tmp_path / "roads.onnx"
    save_onnx(path)
    loaded = load_any(path)
    assert loaded.format == "onnx" and loaded.meta.classes.names == NAMES
    rgb = image(83, 61, seed=2)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"image": normalised(rgb).numpy()})[0]
    expected = reference_labels(torch.from_numpy(logits), rgb.shape[:2])
    predictor = Predictor.from_model(loaded, device="cpu", precision="auto")
    prediction = predictor.predict(rgb)
    assert _agreement(prediction.labels, expected) >= AGREEMENT
    # ONNX Runtime computes the exported graph in fp32: "auto" never tries bf16 on it.
    assert prediction.precision == "fp32" and "fp32 only" in prediction.precision_note


def test_a_large_image_is_tiled_and_still_agrees_with_the_whole_forward(tmp_path):
    path = tmp_path / "roads.pt"
    net = save_torchscript(path)
    rgb = image(300, 260, seed=4)
    with torch.no_grad():
        expected = reference_labels(net(normalised(rgb)), rgb.shape[:2])
    predictor = Predictor.from_model(load_any(path), device="cpu", precision="fp32",
                                     tile_size=160, tile_overlap=32)
    prediction = predictor.predict(rgb)
    assert any(n.startswith("tiled") for n in prediction.notes)
    # Each tile resamples the network's quarter-resolution grid from its own origin, so pixel
    # noise near class boundaries flips a few labels; the whole-image answer must still hold.
    assert _agreement(prediction.labels, expected) >= 0.95


class _Skip(nn.Module):
    """A skip connection that needs the input's size divisible by 4, as a U-Net does."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(2)
        self.down = nn.Conv2d(3, 4, 3, stride=4, padding=1)
        self.out = nn.Conv2d(7, 2, 1)

    def forward(self, x):
        up = F.interpolate(self.down(x), scale_factor=4.0, mode="nearest")
        return self.out(torch.cat([x, up], 1))


def test_a_network_that_fails_on_odd_sizes_is_padded_to_32(tmp_path):
    path = tmp_path / "skip.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(_Skip().eval()), str(path))
    loaded = load_any(path)
    assert loaded.stride == 32
    prediction = Predictor.from_model(loaded, device="cpu", precision="fp32").predict(
        image(70, 90))
    assert prediction.labels.shape == (70, 90)


def test_a_sidecar_stride_and_input_size_are_used(tmp_path):
    path = tmp_path / "fixed.pt"
    save_torchscript(path, sidecar=False)
    write_sidecar(path, input_size=[64, 64])
    loaded = load_any(path)
    assert loaded.input_size == (64, 64)
    rgb = image(50, 120)
    predictor = Predictor.from_model(loaded, device="cpu", precision="fp32")
    seen = []
    loaded.net.register_forward_pre_hook(lambda _m, args: seen.append(tuple(args[0].shape)))
    assert predictor.predict(rgb).labels.shape == (50, 120)
    assert seen == [(1, 3, 64, 64)]          # resized to the one size it takes, and back
    write_sidecar(path, stride=16)
    assert load_any(path).stride == 16


def test_without_a_sidecar_the_channels_are_counted_and_numbered(tmp_path):
    path = tmp_path / "plain.pt"
    save_torchscript(path, classes=4, sidecar=False)
    loaded = load_any(path)
    assert loaded.meta.classes.names == ("class 0", "class 1", "class 2", "class 3")


def test_command_line_facts_win_over_the_sidecar(tmp_path):
    path = tmp_path / "roads.pt"
    save_torchscript(path)
    loaded = load_any(path, ModelFacts(classes=parse_classes(["a", "b", "c"]),
                                       mean=(0.1, 0.2, 0.3)))
    assert loaded.meta.classes.names == ("a", "b", "c")
    assert loaded.meta.mean == pytest.approx((0.1, 0.2, 0.3))
    assert loaded.meta.std == pytest.approx(STD)              # the sidecar's, not overridden


class _Softmax(nn.Module):
    def __init__(self, labels: bool = False) -> None:
        super().__init__()
        self.net = TinyNet()
        self.labels = labels

    def forward(self, x):
        p = F.interpolate(self.net(x), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return p.argmax(1) if self.labels else p.softmax(1)


@pytest.mark.parametrize("output", ["probabilities", "labels"])
def test_probability_and_label_outputs_give_the_networks_own_answer(tmp_path, output):
    net = _Softmax(labels=output == "labels").eval()
    path = tmp_path / f"{output}.pt"
    _script(net, path)
    write_sidecar(path, output=output, **class_facts())
    rgb = image(64, 96, seed=3)
    with torch.no_grad():
        out = net(normalised(rgb))
    expected = (out if output == "labels" else out.argmax(1))[0].numpy()
    prediction = Predictor.from_model(load_any(path), device="cpu",
                                      precision="fp32").predict(rgb)
    assert _agreement(prediction.labels, expected.astype(np.uint8)) >= AGREEMENT
    if output == "probabilities":        # the network's probabilities, not re-softmaxed ones
        np.testing.assert_allclose(prediction.probabilities, out[0].numpy(), atol=1e-4)


def test_a_label_output_without_named_classes_is_refused(tmp_path):
    path = tmp_path / "labels.pt"
    _script(_Softmax(labels=True), path)
    write_sidecar(path, output="labels")
    with pytest.raises(ModelFormatError, match="labels.pt: the network outputs labels"):
        load_any(path)


def test_torchscript_precision_calibration_still_runs(tmp_path, monkeypatch):
    from segstudio.models import device

    monkeypatch.setattr(device, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    path = tmp_path / "roads.pt"
    save_torchscript(path)
    predictor = Predictor.from_model(load_any(path), device="cpu", precision="auto")
    assert "until bf16 is measured" in predictor.precision_note
    prediction = predictor.predict(image(64, 64))
    assert predictor.calibration is not None
    assert prediction.precision_note == predictor.calibration.describe()


@pytest.mark.parametrize("classes", [2, 4])
def test_outputs_that_do_not_fit_the_named_classes_are_refused(tmp_path, classes):
    for path, save in ((tmp_path / "m.pt", save_torchscript), (tmp_path / "m.onnx", save_onnx)):
        save(path, classes=classes)            # the sidecar names three classes
        with pytest.raises(ModelFormatError) as info:
            load_any(path)
        text = str(info.value)
        assert text.startswith(f"{path.name}: ") and "\n" not in text
        assert f"{classes} output channel(s)" in text and "3 classes" in text


@pytest.mark.parametrize("bad, said", [
    ({"std": [float("nan"), 0.2, 0.2]}, "std holds nan, not a finite number"),
    ({"std": [0.2, 0, 0.2]}, "it must be positive"),
    ({"mean": [0.5, 0.5]}, "mean needs three values"),
    ({"mean": [123.7, 116.3, 103.5]}, "0..1 units"),
    ({"std": [58.4, 57.1, 57.4]}, "0..1 units"),
    ({"output": "softmax"}, "output 'softmax' is not one of"),
    ({"classes": ["a", "a", "b"]}, "class names must be unique"),
    ({"stride": 0}, "stride 0 is not a whole number"),
    ({"colour": 1}, "unknown key 'colour'"),
])
def test_a_bad_sidecar_is_refused_in_one_line_naming_it(tmp_path, bad, said):
    path = tmp_path / "roads.pt"
    save_torchscript(path, sidecar=False)
    write_sidecar(path, **bad)
    with pytest.raises(ModelFormatError) as info:
        load_any(path)
    text = str(info.value)
    assert text.startswith("roads.pt.segstudio.json: ") and said in text and "\n" not in text


def test_an_unreadable_sidecar_is_refused_naming_it(tmp_path):
    path = tmp_path / "roads.pt"
    save_torchscript(path, sidecar=False)
    (tmp_path / "roads.pt.segstudio.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelFormatError, match=r"^roads.pt.segstudio.json: cannot read"):
        load_any(path)


class _Whole(nn.Module):
    def forward(self, x):
        return x


def test_files_that_are_no_model_are_refused_saying_what_was_expected(tmp_path):
    cases = {}
    (tmp_path / "random.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    cases["random.pt"] = "not a model file segstudio reads; expected a segstudio checkpoint"
    (tmp_path / "random.onnx").write_bytes(np.random.default_rng(1).bytes(4096))
    cases["random.onnx"] = "not a readable ONNX model"
    (tmp_path / "raw.pkl").write_bytes(pickle.dumps({"weights": [1, 2]}))
    cases["raw.pkl"] = "a Python pickle; segstudio never unpickles model files"
    torch.save(_Whole(), tmp_path / "module.pt")          # a whole pickled nn.Module
    cases["module.pt"] = "refused to load"
    (tmp_path / "empty.onnx").write_bytes(b"")
    cases["empty.onnx"] = "the file is empty"
    (tmp_path / "folder").mkdir()
    cases["folder"] = "a folder without config.json"
    good = tmp_path / "good.pt"
    save_torchscript(good, sidecar=False)
    (tmp_path / "cut.pt").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    cases["cut.pt"] = "cut.pt: "
    cases["missing.pt"] = "no such model file"
    for name, said in cases.items():
        with pytest.raises(ModelFormatError) as info:
            load_any(tmp_path / name)
        text = str(info.value)
        assert text.startswith(f"{name}: ") and said in text and "\n" not in text, text


class _Reader(nn.Module):
    def forward(self, x):
        data = torch.from_file("/proc/self/environ", shared=False, size=8, dtype=torch.uint8)
        return x + data.sum().float()


def test_a_torchscript_archive_that_reads_files_is_refused_before_it_loads(tmp_path,
                                                                          monkeypatch):
    path = tmp_path / "reader.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(_Reader()), str(path))

    def never(*_a, **_k):
        raise AssertionError("torch.jit.load ran on a refused archive")

    monkeypatch.setattr(torch.jit, "load", never)
    with pytest.raises(ModelFormatError, match=r"^reader.pt: refused: its code calls "
                                               r"torch.from_file"):
        load_any(path)


def test_the_loaded_graph_is_checked_operator_by_operator(tmp_path, monkeypatch):
    from segstudio.models.formats import torchscript

    path = tmp_path / "reader.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(_Reader()), str(path))
    monkeypatch.setattr(torchscript, "_check_code", lambda _p: None)   # past the text check
    with pytest.raises(ModelFormatError, match=r"reader.pt: refused: its forward pass calls "
                                               r"aten::from_file"):
        load_any(path)


def test_a_network_that_fails_on_an_image_reports_one_line(tmp_path):
    class _Picky(nn.Module):
        def forward(self, x):
            if x.shape[-1] > 100:
                raise RuntimeError("too wide\nsecond line")
            return x[:, :2]

    path = tmp_path / "picky.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(_Picky()), str(path))
    predictor = Predictor.from_model(load_any(path), device="cpu", precision="fp32")
    with pytest.raises(PredictorError) as info:
        predictor.predict(image(40, 140))
    assert str(info.value).startswith("picky.pt: the network failed on a 140×40 input")
    assert "too wide" in str(info.value) and "second line" not in str(info.value)


def test_a_segstudio_checkpoint_loads_through_the_same_interface(tmp_path):
    from segstudio.core.classes import chest_xray
    from segstudio.models import registry
    from segstudio.models.checkpoint import CheckpointMeta, save_checkpoint

    path = tmp_path / "unet.pt"
    save_checkpoint(path, registry.build_model("unet", 4, config="lite"),
                    CheckpointMeta(arch="unet", config="lite", classes=chest_xray()))
    loaded = load_any(path)
    assert loaded.format == "segstudio" and loaded.meta.arch == "unet"
    predictor = Predictor.from_model(loaded, device="cpu", precision="fp32")
    assert not predictor.foreign
    assert predictor.pad_multiple == registry.get_spec("unet").output_stride
    assert predictor.predict(image(40, 52)).labels.shape == (40, 52)
    json.dumps(loaded.meta.to_dict())            # plain metadata, as every checkpoint's


def test_a_traced_torchvision_network_with_a_dict_output_loads(tmp_path):
    from torchvision.models.segmentation import lraspp_mobilenet_v3_large

    torch.manual_seed(0)
    net = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=3).eval()
    path = tmp_path / "lraspp.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Its code names torchvision.ops.misc classes: module paths, not foreign operators.
        torch.jit.save(torch.jit.trace(net, torch.zeros(1, 3, 96, 96), strict=False), str(path))
    rgb = image(96, 128, seed=15)
    with torch.no_grad():
        expected = net(normalised(rgb))["out"].argmax(1)[0].numpy().astype(np.uint8)
    write_sidecar(path, **class_facts())
    prediction = Predictor.from_model(load_any(path), device="cpu",
                                      precision="fp32").predict(rgb)
    assert _agreement(prediction.labels, expected) >= AGREEMENT


@pytest.mark.parametrize("suffix", [".pt", ".onnx"])
def test_weights_holding_nan_are_refused_naming_the_weight(tmp_path, suffix):
    net = TinyNet().eval()
    with torch.no_grad():
        net.b.weight[0, 0, 0, 0] = float("nan")
    path = tmp_path / f"diverged{suffix}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if suffix == ".pt":
            torch.jit.save(torch.jit.trace(net, torch.zeros(1, 3, 64, 64)), str(path))
        else:
            torch.onnx.export(net, torch.zeros(1, 3, 64, 64), str(path), dynamo=False,
                              input_names=["image"], dynamic_axes={"image": {2: "h", 3: "w"}})
    with pytest.raises(ModelFormatError) as info:
        load_any(path)
    text = str(info.value)
    assert text.startswith(f"diverged{suffix}: weight ") and "b.weight" in text
    assert "holds 1 NaN or infinite value(s)" in text


def test_a_model_that_would_not_fit_in_free_memory_is_refused_before_loading(tmp_path,
                                                                            monkeypatch):
    from segstudio.io import decode_memory

    path = tmp_path / "roads.onnx"
    save_onnx(path)
    monkeypatch.setattr(decode_memory, "available_memory", lambda: 1000)
    with pytest.raises(ModelFormatError, match=r"^roads.onnx: not enough memory for loading "
                                               r"it: needs about .*, 1.0 kB available"):
        load_any(path)


def test_onnx_runtime_computes_with_the_threads_the_predictor_was_given(tmp_path):
    path = tmp_path / "roads.onnx"
    save_onnx(path)
    torch.set_num_threads(2)
    loaded = load_any(path)
    session = loaded.net.net.session
    assert session.get_session_options().intra_op_num_threads == 2
    predictor = Predictor.from_model(loaded, device="cpu", precision="fp32", num_threads=1)
    predictor.predict(image(40, 40))
    assert loaded.net.net.session is not session
    assert loaded.net.net.session.get_session_options().intra_op_num_threads == 1


class _WithState(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 2, 1)
        self.n = 0

    def forward(self, x):
        return self.c(x)

    @torch.jit.export
    def __getstate__(self):
        return (self.c.weight, self.n, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[torch.Tensor, int, bool]):
        self.n = state[1]
        self.training = state[2]


def test_a_torchscript_archive_with_code_that_runs_while_loading_is_refused(tmp_path,
                                                                            monkeypatch):
    path = tmp_path / "stateful.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(_WithState()), str(path))

    def never(*_a, **_k):
        raise AssertionError("torch.jit.load ran on a refused archive")

    monkeypatch.setattr(torch.jit, "load", never)
    with pytest.raises(ModelFormatError, match=r"^stateful.pt: refused: its code defines "
                                               r"__setstate__"):
        load_any(path)
