"""The teaching views on networks from model files, each held against an independent
computation on the eager network the file was made from (same weights): a forward hook's
output, a Grad-CAM and an input gradient written out by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from foreign_models import (MEAN, STD, class_facts, image, normalised, save_onnx, save_segformer,
                            save_smp_unet, save_torchscript, write_sidecar)
from segstudio.explain.cam import CamError, grad_cam
from segstudio.explain.effective_rf import prediction_erf
from segstudio.explain.foreign import ImageBounds, tracer_blind_spots
from segstudio.explain.probes import ProbeError
from segstudio.explain.taps import module_outputs, module_tree, tapped_forward
from segstudio.ui.explain.session import ExplainError, ModelSource, load_model

torch.set_num_threads(1)


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1)
        self.act = nn.ReLU()
        self.skip = nn.Identity()

    def forward(self, x):
        y = self.act(self.conv(x))
        return self.act(y + 0.5 * y.mean()) + 0 * self.skip(y)   # the shared ReLU runs twice


class Nested(nn.Module):
    """Blocks inside a container, a shared activation and a coarse score map (a quarter)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.body = nn.Sequential(Block(3, 6, 2), Block(6, 8, 2))
        self.head = nn.Conv2d(8, 3, 1)

    def forward(self, x):
        return self.head(self.body(x))


class Gated(nn.Module):
    """A module that runs inside a condition of the compiled code."""

    def __init__(self):
        super().__init__()
        self.inner = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        if x.shape[-1] > 8:
            x = self.inner(x)
        return x


def _scripted(tmp_path, net, name="nested.pt"):
    path = tmp_path / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(net.eval()), str(path))
    write_sidecar(path, **class_facts())
    return path


def _load(path):
    return load_model(ModelSource("", "", None, 3, "cpu", model_file=path), None)


def _hooked(net, module, x):
    """What ``module`` of the eager ``net`` returns for ``x`` (its last call), by a hook."""
    seen = []
    handle = module.register_forward_hook(lambda _m, _i, out: seen.append(out))
    try:
        with torch.no_grad():
            net(x)
    finally:
        handle.remove()
    return seen[-1]


def _shown(net, x):
    """The eager network's scores as the app shows them: resized to the image bilinearly."""
    return F.interpolate(net(x), size=x.shape[-2:], mode="bilinear", align_corners=False)


def test_a_scripted_networks_modules_read_what_a_hook_on_its_eager_twin_reads(tmp_path):
    net = Nested().eval()
    loaded = _load(_scripted(tmp_path, net))
    assert loaded.foreign and loaded.format == "torchscript"
    assert ("body.0.conv", "Conv2d") in loaded.tree and ("body", "Sequential") in loaded.tree
    x = normalised(image(37, 45), MEAN, STD)
    for name in ("body.0", "body.1.conv", "body.1.act", "head"):
        got = module_outputs(loaded.model, {name: f"{loaded.root}.{name}"}, x)[name]
        expected = _hooked(net, net.get_submodule(name), x)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    # The tapped graph's own output is the network's, unchanged.
    out, _ = tapped_forward(loaded.model, {"h": f"{loaded.root}.head"}, x)
    torch.testing.assert_close(out, _shown(net, x), rtol=1e-5, atol=1e-6)


def test_a_traced_networks_modules_read_what_a_hook_on_its_eager_twin_reads(tmp_path):
    path = tmp_path / "roads.pt"
    net = save_torchscript(path)              # torch.jit.trace of TinyNet
    loaded = _load(path)
    x = normalised(image(40, 52))
    got = module_outputs(loaded.model, {"a": f"{loaded.root}.a"}, x)["a"]
    torch.testing.assert_close(got, _hooked(net, net.a, x), rtol=1e-5, atol=1e-6)


def test_grad_cam_of_a_scripted_network_equals_the_hand_computation(tmp_path):
    net = Nested().eval()
    loaded = _load(_scripted(tmp_path, net))
    x = normalised(image(36, 44, seed=2), MEAN, STD)
    for cls in (0, 1, 2):
        cam = grad_cam(loaded.model, x, f"{loaded.root}.body.1.conv", cls)
        # By hand on the eager twin: features by a hook, the class logit summed over the
        # pixels predicted as the class, channel weights by the gradient's spatial mean.
        kept = {}
        handle = net.body[1].conv.register_forward_hook(lambda _m, _i, o: kept.update(f=o))
        with torch.enable_grad():
            logits = _shown(net, x)
            handle.remove()
            region = (logits[0].argmax(0) == cls).float()
            region = region if region.any() else torch.ones_like(region)
            (grad,) = torch.autograd.grad((logits[0, cls] * region).sum(), kept["f"])
        weights = grad[0].mean(dim=(1, 2))
        expected = F.relu((weights[:, None, None] * kept["f"][0].detach()).sum(0))
        expected = F.interpolate(expected[None, None], size=x.shape[-2:], mode="bilinear",
                                 align_corners=False)[0, 0].clamp(min=0)
        if expected.max() > 0:
            expected = expected / expected.max()
        np.testing.assert_allclose(cam, expected.numpy(), rtol=1e-4, atol=1e-5)
    assert cam.shape == (36, 44)


def test_the_effective_field_of_a_scripted_network_is_the_gradient_of_the_shown_logit(
        tmp_path):
    net = Nested().eval()
    loaded = _load(_scripted(tmp_path, net))
    x = normalised(image(33, 41, seed=4), MEAN, STD)
    y0, x0 = 17, 12
    erf = prediction_erf(loaded.model, x, y0, x0, field=ImageBounds((33, 41)))
    pixels = x.clone().requires_grad_(True)
    logits = _shown(net, pixels)
    cls = int(logits[0, :, y0, x0].argmax())
    (grad,) = torch.autograd.grad(logits[0, cls, y0, x0], pixels)
    assert erf.classes == (cls,)
    np.testing.assert_allclose(erf.heat, grad[0].abs().sum(0).numpy(), rtol=1e-4, atol=1e-7)
    assert erf.heat.sum() > 0


def test_a_module_inside_a_condition_of_compiled_code_says_why_it_cannot_be_read(tmp_path):
    outer = nn.Sequential(Gated(), nn.Conv2d(3, 3, 1))
    loaded = _load(_scripted(tmp_path, outer, "gated.pt"))
    x = torch.zeros(1, 3, 16, 16)
    with pytest.raises(ProbeError, match="inside a condition or loop"):
        module_outputs(loaded.model, {"g": f"{loaded.root}.0.inner"}, x)
    with pytest.raises(ProbeError, match="did not run .* Identity"):
        module_outputs(_load(_scripted(tmp_path, Nested(), "n.pt")).model,
                       {"s": "net.net.body.0.skip"}, x)
    with pytest.raises(CamError, match="no module 'net.net.nothing'"):
        grad_cam(loaded.model, x[0], "net.net.nothing", 0)


def test_hugging_face_modules_read_what_a_hook_on_the_transformers_model_reads(tmp_path):
    pytest.importorskip("transformers")
    model = save_segformer(tmp_path / "segformer")
    loaded = _load(tmp_path / "segformer")
    assert loaded.format == "huggingface" and loaded.root == "net.net.model"
    names = [p for p, _ in loaded.tree]
    assert "segformer.encoder.block.0.0" in names or "segformer.stages.0" in names
    x = normalised(image(48, 56, seed=5), MEAN, STD)
    name = next(p for p, kind in loaded.tree if kind == "Conv2d")
    got = module_outputs(loaded.model, {name: f"{loaded.root}.{name}"}, x)[name]
    torch.testing.assert_close(got, _hooked(model, model.get_submodule(name), x),
                               rtol=1e-5, atol=1e-6)
    cam = grad_cam(loaded.model, x, f"{loaded.root}.{name}", 1)
    assert cam.shape == (48, 56) and np.isfinite(cam).all()
    # Attention lets every pixel reach every other: no theoretical field is drawn from it.
    blind = tracer_blind_spots(loaded.model, (48, 56))
    assert "scaled_dot_product_attention" in blind or "linear" in blind


def test_an_smp_network_has_a_theoretical_field_and_torchscript_says_why_not(tmp_path):
    pytest.importorskip("segmentation_models_pytorch")
    save_smp_unet(tmp_path / "unet")
    loaded = _load(tmp_path / "unet")
    assert loaded.format == "smp" and ("encoder.layer1", "Sequential") in loaded.tree
    assert tracer_blind_spots(loaded.model, (40, 48)) == []
    scripted = _load(_scripted(tmp_path, Nested()))
    assert tracer_blind_spots(scripted.model, (40, 48)) == ["TorchScript"]


def test_an_onnx_model_is_refused_with_what_the_views_cannot_do(tmp_path):
    pytest.importorskip("onnxruntime")
    path = tmp_path / "roads.onnx"
    save_onnx(path)
    with pytest.raises(ExplainError, match="no modules to read .* no gradients"):
        _load(path)


def test_the_module_tree_lists_a_script_modules_children_with_their_classes(tmp_path):
    loaded = _load(_scripted(tmp_path, Nested()))
    assert module_tree(loaded.model, loaded.root) == [
        ("body", "Sequential"), ("body.0", "Block"), ("body.0.conv", "Conv2d"),
        ("body.0.act", "ReLU"), ("body.0.skip", "Identity"), ("body.1", "Block"),
        ("body.1.conv", "Conv2d"), ("body.1.act", "ReLU"), ("body.1.skip", "Identity"),
        ("head", "Conv2d")]


def test_the_receptive_field_view_of_an_smp_module_is_the_field_traced_on_the_smp_model(
        tmp_path):
    pytest.importorskip("segmentation_models_pytorch")
    from types import SimpleNamespace

    from segstudio.explain.receptive_field import receptive_field
    from segstudio.ui.explain.foreign_field import field_at
    from segstudio.ui.explain.receptive_field import (ERF_QUANTITY, _fields, _unit_fields,
                                                      erf_text)

    model = save_smp_unet(tmp_path / "unet")
    loaded = _load(tmp_path / "unet")
    loaded.modules = {"encoder.layer2": f"{loaded.root}.encoder.layer2"}
    rgb = image(40, 48, seed=6)
    ctx = SimpleNamespace(session=SimpleNamespace(fields={}), rgb=rgb, cancelled=lambda: False,
                          input=lambda lm: lm.to_input(rgb))
    size = (40, 48)
    result = field_at(ctx, loaded, "encoder.layer2", 20, 24, True, [],
                      traced=lambda: (_fields(ctx, loaded, size), _unit_fields(ctx, loaded, size)),
                      describe=erf_text, quantity=ERF_QUANTITY)
    assert result["field"] == receptive_field(model, "encoder.layer2", size)
    assert result["box"] is not None and len(result["erf"]) == 1
    assert "theoretical field" in result["erf_texts"][0] and "of the image" not in \
        result["erf_texts"][0]
    # Another module picked afterwards has its own field, not a stale one.
    loaded.modules = {"encoder.layer1": f"{loaded.root}.encoder.layer1"}
    again = field_at(ctx, loaded, "encoder.layer1", 20, 24, False, [],
                     traced=lambda: (_fields(ctx, loaded, size), _unit_fields(ctx, loaded, size)),
                     describe=erf_text, quantity=ERF_QUANTITY)
    assert again["field"] == receptive_field(model, "encoder.layer1", size)
    assert again["field"] != result["field"]


def test_zeroing_a_scripted_module_predicts_what_the_eager_twin_predicts_without_it(
        tmp_path):
    from segstudio.explain.probes import ablate
    from segstudio.explain.taps import branch_effect

    net = Nested().eval()
    loaded = _load(_scripted(tmp_path, net))
    x = normalised(image(36, 44, seed=7), MEAN, STD)
    for name in ("body.1.conv", "body.0"):
        before, after = branch_effect(loaded.model, x, f"{loaded.root}.{name}")
        with torch.no_grad():
            expected_before = _shown(net, x)[0].argmax(0).numpy()
            with ablate(net, name):
                expected_after = _shown(net, x)[0].argmax(0).numpy()
        np.testing.assert_array_equal(before, expected_before)
        np.testing.assert_array_equal(after, expected_after)
        assert (after != before).any()
    # The network itself is left as it was.
    out, _ = tapped_forward(loaded.model, {}, x)
    torch.testing.assert_close(out, _shown(net, x), rtol=1e-5, atol=1e-6)
