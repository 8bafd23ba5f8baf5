"""Checkpoints whose numbers are not numbers: infinite or NaN colours, indices, versions,
normalisation or weights are refused with a CheckpointError that says what is wrong."""

from __future__ import annotations

import math

import pytest
import torch

from segstudio.core.classes import chest_xray
from segstudio.models import registry
from segstudio.models.checkpoint import (CheckpointError, CheckpointMeta, load_checkpoint,
                                         read_meta, save_checkpoint)


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    meta = CheckpointMeta(arch="unet", config="lite", classes=chest_xray(),
                          mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))
    path = tmp_path / "net.pt"
    save_checkpoint(path, registry.build_model("unet", len(meta.classes), "lite"), meta)
    return path


def _rewrite(path, edit):
    payload = torch.load(path, weights_only=True)
    edit(payload)
    torch.save(payload, path)


def _set(where: str, value):
    def edit(payload):
        meta = payload["meta"]
        if where == "colour":
            meta["classes"]["classes"][1]["color"][0] = value
        elif where == "index":
            meta["classes"]["classes"][2]["index"] = value
        elif where == "version":
            payload["version"] = value
        elif where in ("mean", "std"):
            meta[where][1] = value
        else:
            meta[where] = value
    return edit


@pytest.mark.parametrize("where, value, says", [
    ("colour", math.inf, "colour"), ("colour", math.nan, "colour"), ("colour", 2.5, "colour"),
    ("colour", "255", "colour"), ("index", math.inf, "class index inf"),
    ("index", -math.inf, "class index -inf"), ("index", math.nan, "class index nan"),
    ("version", math.inf, "format version 'inf' is not"),
    ("version", "1", "format version '1' is not"), ("version", 0, "format version '0' is not"),
    ("format_version", math.inf, "format version 'inf'"),
    ("format_version", "1", "format version '1'"),
    ("mean", math.nan, "mean holds nan"), ("mean", math.inf, "mean holds inf"),
    ("std", math.nan, "std holds nan"), ("std", 0.0, "positive"), ("std", -0.25, "positive"),
])
def test_non_finite_or_misshapen_numbers_are_refused_saying_what(saved, where, value, says):
    _rewrite(saved, _set(where, value))
    for read in (read_meta, load_checkpoint):
        with pytest.raises(CheckpointError) as err:
            read(saved)
        msg = str(err.value)
        assert msg.startswith(f"{saved.name}: ") and says in msg, msg
        assert "newer" not in msg


def test_newer_whole_version_still_asks_for_an_update(saved):
    _rewrite(saved, _set("version", 2))
    with pytest.raises(CheckpointError, match="version 2 is newer than this segstudio reads"):
        read_meta(saved)


def test_a_long_text_in_place_of_a_number_is_shortened_in_the_message(saved):
    _rewrite(saved, _set("format_version", "7" * 10_000))
    with pytest.raises(CheckpointError, match="format version '7{57}\\.\\.\\.' is not") as err:
        read_meta(saved)
    assert len(str(err.value)) < 200


@pytest.mark.parametrize("poison", [math.nan, math.inf])
def test_weights_holding_nan_or_infinity_are_refused_at_load(saved, poison):
    def spoil(payload):
        key = next(k for k, v in payload["state_dict"].items() if v.dim() == 4)
        payload["state_dict"][key] = torch.full_like(payload["state_dict"][key], poison)

    _rewrite(saved, spoil)
    with pytest.raises(CheckpointError, match="NaN or infinite value") as err:
        load_checkpoint(saved)
    assert saved.name in str(err.value)
    with pytest.raises(CheckpointError, match="training diverged"):
        read_meta(saved, check_weights=True)
    assert read_meta(saved).trained          # the cheap read stays cheap: metadata only


def test_a_clean_checkpoint_passes_the_weight_check(saved):
    assert read_meta(saved, check_weights=True).arch == "unet"
    model, meta = load_checkpoint(saved)
    assert meta.std == (0.2, 0.25, 0.3) and all(torch.isfinite(p).all()
                                                 for p in model.state_dict().values())


def test_the_weight_check_packs_many_tensors_into_few_passes(monkeypatch):
    """A reduction per tensor waits for the thread pool each time (most of a second for the
    chest U-Net on a busy 2-core machine): a clean file is checked in a few packed passes."""
    from segstudio.models import checkpoint

    state = {f"layer{i}.weight": torch.randn(8, 8) for i in range(200)}
    calls = []
    real = torch.isfinite
    monkeypatch.setattr(torch, "isfinite", lambda t: calls.append(t.numel()) or real(t))
    checkpoint.check_finite(state, "net.pt")
    assert calls == [200 * 64]


@pytest.mark.parametrize("poison", [complex(math.nan, 0), complex(0, math.inf), 1e300])
def test_the_packed_check_still_names_the_bad_weight_and_counts_it(poison):
    from segstudio.models import checkpoint

    state = {f"w{i}": torch.zeros(16) for i in range(5)}
    if isinstance(poison, complex):
        state["w3"] = torch.zeros(16, dtype=torch.complex64)
        state["w3"][2] = poison
        with pytest.raises(CheckpointError, match=r"weight 'w3' holds 1 NaN or infinite value\(s\) "
                                                  r"of 16"):
            checkpoint.check_finite(state, "net.pt")
    else:
        # Finite in float64, infinite once packed as float32: not a defect of the file.
        state["w3"] = torch.full((16,), poison, dtype=torch.float64)
        checkpoint.check_finite(state, "net.pt")
