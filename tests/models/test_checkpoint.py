"""Checkpoints: round trips, safe loading, and clear refusals of files that don't fit."""

from __future__ import annotations

import os
import zipfile

import numpy as np
import pytest
import torch

from segstudio.core.classes import chest_xray, voc21
from segstudio.models import registry
from segstudio.models.checkpoint import (CheckpointError, CheckpointMeta, load_checkpoint,
                                         read_meta, save_checkpoint)

ARCH = "unet"  # a small registry network (lite): cheap to build, real weights and buffers


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    torch.manual_seed(0)


def _meta(classes=None, **kw) -> CheckpointMeta:
    defaults = dict(arch=ARCH, config="lite", classes=classes or chest_xray(),
                    mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3), trained=True,
                    training={"dataset": "synthetic", "epochs": 3, "val_miou": 0.61})
    defaults.update(kw)
    return CheckpointMeta(**defaults)


@pytest.fixture
def saved(tmp_path):
    meta = _meta()
    model = registry.build_model(ARCH, len(meta.classes), config="lite").eval()
    path = tmp_path / "net.ckpt"
    save_checkpoint(path, model, meta)
    return path, model, meta


def test_round_trip_restores_weights_and_metadata(saved):
    path, model, meta = saved
    loaded, loaded_meta = load_checkpoint(path)
    assert loaded_meta == meta
    assert not loaded.training
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    for key in original:
        assert torch.equal(original[key], restored[key]), key
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x)["out"], loaded(x)["out"])


def test_read_meta_reports_arch_classes_and_training_summary(saved):
    path, _, meta = saved
    got = read_meta(path)
    assert got.arch == ARCH and got.config == "lite"
    assert got.classes == chest_xray()
    assert got.mean == (0.5, 0.4, 0.3) and got.std == (0.2, 0.25, 0.3)
    assert got.trained is True
    assert got.training == {"dataset": "synthetic", "epochs": 3, "val_miou": 0.61}


def test_training_summary_with_numpy_numbers_is_stored_as_plain_numbers(tmp_path):
    meta = _meta(training={"val_miou": np.float32(0.5), "epochs": np.int64(7)})
    model = registry.build_model(ARCH, len(meta.classes))
    save_checkpoint(tmp_path / "n.ckpt", model, meta)
    training = read_meta(tmp_path / "n.ckpt").training
    assert training == {"val_miou": 0.5, "epochs": 7}
    assert type(training["epochs"]) is int


def test_failed_save_keeps_the_previous_file_whole(saved):
    path, model, _ = saved
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="training summary"):
        save_checkpoint(path, model, _meta(training={"bad": object()}))
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]


class _RunsShell:
    """Unpickling this calls os.system: exactly what a malicious checkpoint would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_would_run_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    torch.save({"format": "segstudio-checkpoint", "version": 1, "meta": _RunsShell(marker),
                "state_dict": {}}, path)
    with pytest.raises(CheckpointError, match="evil.ckpt.*run code"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="run code"):
        read_meta(path)
    assert not marker.exists()


def test_checkpoint_of_another_architecture_is_refused_naming_both(saved):
    path, _, _ = saved
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path, expected_arch="segnet")
    msg = str(err.value)
    assert f"holds a {ARCH!r} network, but 'segnet' was expected" in msg and "net.ckpt" in msg


def test_checkpoint_naming_an_unknown_architecture_is_refused(saved):
    path, _, _ = saved
    _rewrite(path, lambda payload: payload["meta"].update(arch="hypernet"))
    with pytest.raises(CheckpointError, match="net.ckpt: unknown model 'hypernet'"):
        load_checkpoint(path)


def test_checkpoint_with_another_class_count_is_refused(saved):
    path, _, _ = saved
    with pytest.raises(CheckpointError, match="4 classes, but 21 were expected"):
        load_checkpoint(path, num_classes=len(voc21()))


def _rewrite(path, edit):
    payload = torch.load(path, weights_only=True)
    edit(payload)
    torch.save(payload, path)


def test_tensor_of_wrong_shape_is_refused_naming_parameter_and_both_shapes(saved):
    path, model, _ = saved
    key, tensor = next((k, v) for k, v in model.state_dict().items() if v.dim() == 4)

    def shrink(payload):
        payload["state_dict"][key] = torch.zeros(tensor.shape[0] + 1, *tensor.shape[1:])

    _rewrite(path, shrink)
    wrong = (tensor.shape[0] + 1, *tensor.shape[1:])
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    msg = str(err.value)
    assert key in msg and str(wrong) in msg and str(tuple(tensor.shape)) in msg


def test_missing_weight_is_refused_by_name(saved):
    path, model, _ = saved
    key = list(model.state_dict())[-1]
    _rewrite(path, lambda payload: payload["state_dict"].pop(key))
    with pytest.raises(CheckpointError, match=f"{key}.*missing"):
        load_checkpoint(path)


def test_metadata_of_a_class_count_the_weights_do_not_fit_is_refused(saved):
    path, _, _ = saved

    def relabel(payload):
        payload["meta"]["classes"] = voc21().to_dict()

    _rewrite(path, relabel)
    with pytest.raises(CheckpointError, match="shape"):
        load_checkpoint(path)


@pytest.mark.parametrize("damage", ["empty", "truncated", "text", "plain_state_dict",
                                    "newer_version", "no_meta"])
def test_damaged_or_foreign_files_raise_checkpoint_error(saved, damage):
    path, model, _ = saved
    data = path.read_bytes()
    if damage == "empty":
        path.write_bytes(b"")
        expected = "empty"
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
        expected = "truncated"
    elif damage == "text":
        path.write_text("these are not the weights you are looking for\n")
        expected = "not a segstudio checkpoint"
    elif damage == "plain_state_dict":
        torch.save(model.state_dict(), path)
        expected = "marker"
    elif damage == "newer_version":
        _rewrite(path, lambda p: p.update(version=99))
        expected = "newer"
    else:
        _rewrite(path, lambda p: p.pop("meta"))
        expected = "metadata"
    with pytest.raises(CheckpointError, match=expected) as err:
        load_checkpoint(path)
    assert path.name in str(err.value)
    with pytest.raises(CheckpointError):
        read_meta(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="nowhere.ckpt: no such checkpoint"):
        read_meta(tmp_path / "nowhere.ckpt")


def test_saved_file_is_a_torch_archive_with_plain_metadata(saved):
    path, _, meta = saved
    assert zipfile.is_zipfile(path)
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "segstudio-checkpoint" and payload["version"] == 1
    assert payload["meta"] == meta.to_dict()
    assert isinstance(payload["meta"]["classes"], dict)
