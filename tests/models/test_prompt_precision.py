"""The prompt encoder's ``auto`` precision: native units only, measured once per weights file
and machine on the masks the user gets (≥ 15 % faster, ≥ 99.5 % of mask pixels the same),
the verdict cached and checked like the Predictor's, the first image always in fp32."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from prompt_doubles import DiskNetwork, save_small_sam
from segstudio.models import device as device_mod
from segstudio.models import prompt_precision
from segstudio.models.precision import CalibrationCache
from segstudio.models.prompted import PromptedSegmenter

pytest.importorskip("segment_anything")


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _native_bf16(monkeypatch, native: bool = True) -> None:
    flags = {"avx512f", "avx512_bf16"} if native else {"avx512f", "avx512bw"}
    monkeypatch.setattr(device_mod, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)


def _bf16_twice_as_fast(monkeypatch) -> None:
    """Times as on a machine where bf16 runs twice as fast; the agreement is still measured."""
    real = prompt_precision.decide
    monkeypatch.setattr(prompt_precision, "decide", lambda *a, **k: replace(
        real(*a, **k), fp32_ms=200.0, candidate_ms=100.0))


def _image(h=48, w=64):
    return np.random.default_rng(5).integers(0, 256, (h, w, 3), dtype=np.uint8)


class CountingNetwork:
    """Wraps a network and counts encoder passes, and which ran under autocast."""

    def __init__(self, network):
        self.inner = network
        self.img_size, self.embedding_shape = network.img_size, network.embedding_shape
        self.passes: list[bool] = []

    def encode(self, image, on_block):
        self.passes.append(torch.is_autocast_enabled("cpu"))
        return self.inner.encode(image, on_block)

    def decode(self, *args):
        return self.inner.decode(*args)


def _small_sam(tmp_path):
    weights = save_small_sam(tmp_path / "small.pth")
    return _load(weights), weights


def _load(weights):
    seg = PromptedSegmenter.from_file(weights, "cpu")
    seg.network = CountingNetwork(seg.network)
    return seg


def test_a_reduced_encoder_precision_runs_under_autocast_and_hands_on_float32(tmp_path):
    seg, _ = _small_sam(tmp_path)
    fp32 = seg.embed(_image())
    bf16 = seg.embed(_image(), precision="bf16")
    assert seg.network.passes == [False, True]
    assert fp32.precision == "fp32" and bf16.precision == "bf16"
    assert bf16.features.dtype == torch.float32
    seg.check_embedding(bf16, (48, 64))                      # what the decoder and cache take
    assert not torch.equal(fp32.features, bf16.features)
    assert torch.allclose(fp32.features, bf16.features, atol=0.1 * fp32.features.abs().max())


def test_auto_measures_once_on_the_first_image_which_stays_fp32(monkeypatch, tmp_path):
    _native_bf16(monkeypatch)
    _bf16_twice_as_fast(monkeypatch)
    cache = CalibrationCache(tmp_path / "calibration.json")
    seg, weights = _small_sam(tmp_path)
    due = prompt_precision.settle_from_cache(seg, weights, cache)
    assert due == "bf16" and seg.precision == "fp32"
    assert seg.precision_note == "fp32 until bf16 is measured against it on the next image"

    emb = prompt_precision.measure_on(seg, weights, _image(), due, cache=cache)
    # One pass of each precision, fp32 first (no warm-up: it is lost in an encoder pass);
    # the fp32 pass is the embedding returned.
    assert seg.network.passes == [False, True]
    assert emb.precision == "fp32"
    assert torch.equal(emb.features, seg.embed(_image(), precision="fp32").features)
    assert seg.precision == "bf16"
    assert seg.precision_note.startswith("bf16: 2.0× faster, ")
    assert "measured on this machine (64×48)" in seg.precision_note
    (key,) = json.loads(cache.path.read_text())["entries"]
    assert key.startswith("prompt encoder | ") and str(weights.resolve()) in key

    again = _load(weights)                                   # the same weights file again
    assert prompt_precision.settle_from_cache(again, weights, cache) is None
    assert again.precision == "bf16" and again.network.passes == []
    assert again.precision_note == seg.precision_note


class FlippingNetwork(DiskNetwork):
    """A disk double whose features under autocast make the decoder give the opposite mask:
    as fast as wished, never faithful."""

    def encode(self, image, on_block):
        features = super().encode(image, on_block)
        return features + (1.0 if torch.is_autocast_enabled("cpu") else 0.0)

    def decode(self, features, *args):
        low_res, scores = super().decode(features, *args)
        return (-low_res if float(features.mean()) > 0.5 else low_res), scores


def test_auto_keeps_fp32_when_the_masks_from_bf16_embeddings_disagree(monkeypatch, tmp_path):
    _native_bf16(monkeypatch)
    _bf16_twice_as_fast(monkeypatch)
    weights = tmp_path / "double.pth"
    weights.write_bytes(b"stands for weights")
    seg = PromptedSegmenter(FlippingNetwork(img_size=128))
    cache = CalibrationCache(tmp_path / "calibration.json")
    due = prompt_precision.settle_from_cache(seg, weights, cache)
    prompt_precision.measure_on(seg, weights, _image(), due, cache=cache)
    assert seg.precision == "fp32"
    assert "kept fp32 (under 99.5 % agreement)" in seg.precision_note


def test_no_native_units_no_measurement(monkeypatch, tmp_path):
    _native_bf16(monkeypatch, native=False)
    seg, weights = _small_sam(tmp_path)
    assert prompt_precision.settle_from_cache(seg, weights,
                                              CalibrationCache(tmp_path / "c.json")) is None
    assert seg.precision == "fp32"
    assert seg.precision_note == "fp32: this CPU has no native bf16 units"


def test_an_impossible_cached_encoder_verdict_is_dropped_and_measured_again(monkeypatch,
                                                                           tmp_path, caplog):
    _native_bf16(monkeypatch)
    _bf16_twice_as_fast(monkeypatch)
    cache = CalibrationCache(tmp_path / "calibration.json")
    seg, weights = _small_sam(tmp_path)
    due = prompt_precision.settle_from_cache(seg, weights, cache)
    prompt_precision.measure_on(seg, weights, _image(), due, cache=cache)
    stored = json.loads(cache.path.read_text())
    (key,) = stored["entries"]
    stored["entries"][key]["agreement"] = 5.0                # "500 % agreement"
    cache.path.write_text(json.dumps(stored))

    again = _load(weights)
    with caplog.at_level("WARNING", logger="segstudio.cache"):
        assert prompt_precision.settle_from_cache(again, weights, cache) == "bf16"
    assert again.precision == "fp32"
    (line,) = [r.getMessage() for r in caplog.records if r.name == "segstudio.cache"]
    assert "the agreement is 5, outside 0–1" in line and line.endswith("measured again")
    assert json.loads(cache.path.read_text())["entries"] == {}
