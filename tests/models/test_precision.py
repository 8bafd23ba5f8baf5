"""``precision="auto"``: native reduced precision only, and only where it measured faster and
faithful to fp32 for the model at hand; the verdict is cached and said in words."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from torch import nn

from segstudio.core.classes import ClassSet
from segstudio.models import device as device_mod
from segstudio.models import precision as precision_mod
from segstudio.models.checkpoint import CheckpointMeta, save_checkpoint
from segstudio.models.device import DeviceError, auto_candidate, choose_precision
from segstudio.models.engine import Predictor
from segstudio.models.precision import Calibration, CalibrationCache, decide

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    torch.manual_seed(0)


def _native_bf16(monkeypatch, native: bool) -> None:
    flags = {"avx2", "avx512f", "avx512_bf16"} if native else {"avx2", "avx512f", "avx512bw"}
    monkeypatch.setattr(device_mod, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)


class AutocastSensitiveNet(nn.Module):
    """A test double whose answer and speed depend on whether autocast is on.

    ``flip`` makes the reduced precision swap the two classes on the left half of the image
    (unfaithful); ``fp32_delay`` / ``reduced_delay`` are its run times in seconds.
    """

    def __init__(self, flip: bool, fp32_delay: float, reduced_delay: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        self.flip, self.delays = flip, (fp32_delay, reduced_delay)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        reduced = torch.is_autocast_enabled("cpu")
        time.sleep(self.delays[reduced])
        h, w = x.shape[-2:]
        logits = torch.zeros(x.shape[0], 2, h, w)
        logits[:, 1, :, : w // 2] = 1.0          # class 1 on the left, 0 on the right
        if reduced and self.flip:
            logits = logits.flip(1)
        return {"out": logits + 0 * self.conv(x).sum()}


def _meta(trained: bool = True) -> CheckpointMeta:
    return CheckpointMeta(arch="local-test", config="lite", classes=ClassSet(["background", "a"]),
                          mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), trained=trained,
                          training={})


def _image(h: int = 64, w: int = 64) -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (h, w, 3), dtype=np.uint8)


# -- what counts as native bf16 ---------------------------------------------------------------
def test_avx512_without_bf16_units_is_not_native_whatever_onednn_emulates(monkeypatch):
    _native_bf16(monkeypatch, False)
    # oneDNN reports bf16 "supported" on any AVX-512 CPU (by emulation): that must not count.
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True,
                        raising=False)
    assert device_mod.cpu_supports_bf16() is False
    assert auto_candidate(CPU) is None


def test_bf16_units_count_unless_onednn_is_capped_below_them(monkeypatch):
    _native_bf16(monkeypatch, True)
    assert device_mod.cpu_supports_bf16() is True
    assert auto_candidate(CPU) == "bf16"
    for cap in ("AVX2", "AVX512_CORE", "avx512_core_vnni"):
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
        assert device_mod.cpu_supports_bf16() is False, cap
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")
    assert device_mod.cpu_supports_bf16() is True


def test_explicit_precisions_are_checked_and_auto_is_left_to_calibration():
    assert choose_precision("auto", CPU) == "auto"
    assert choose_precision("FP32", CPU) == "fp32"
    assert choose_precision("bf16", CPU) == "bf16"
    with pytest.raises(DeviceError, match="unknown precision 'fp8'"):
        choose_precision("fp8", CPU)


# -- the rule ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fp32_ms, cand_ms, agreement, same, chosen", [
    (100, 50, 0.999, None, "bf16"),       # 2× faster, faithful
    (100, 86, 0.999, None, "fp32"),       # only 14 % faster
    (100, 85, 0.999, None, "bf16"),       # exactly 15 % faster
    (100, 50, 0.994, None, "fp32"),       # under 99.5 % agreement
    (100, 50, 0.999, False, "fp32"),      # an instance model that finds other objects
    (100, 50, 0.999, True, "bf16"),
    (73, 286, 0.9895, None, "fp32"),      # emulated bf16: slower and less faithful
])
def test_a_reduced_precision_must_be_15_percent_faster_and_agree_on_995_permille(
        fp32_ms, cand_ms, agreement, same, chosen):
    c = Calibration("bf16", fp32_ms, cand_ms, agreement, same, "64×64")
    assert c.chosen == chosen
    text = c.describe()
    assert text.startswith(f"{chosen}:") and "on this machine" in text
    assert f"{100 * agreement:.2f} % agreement" in text
    assert ("slower" in text) == (cand_ms > fp32_ms)


def test_calibration_times_each_precision_with_a_warm_up_and_compares_labels(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(precision_mod.time, "perf_counter", lambda: clock[0])
    runs = []

    def run(p):
        runs.append(p)
        clock[0] += {"fp32": 0.010, "bf16": 0.004}[p]
        labels = np.zeros((10, 10), np.uint8)
        if p == "bf16":
            labels[0, 0] = 1                         # 1 pixel of 100 differs
        return labels, None

    c = decide("bf16", run, "10×10", repeats=3)
    assert runs == ["fp32", "bf16"] + ["fp32", "bf16"] * 3
    assert c.fp32_ms == pytest.approx(10) and c.candidate_ms == pytest.approx(4)
    assert c.agreement == pytest.approx(0.99) and c.chosen == "fp32"


def test_calibration_without_warm_up_times_and_compares_the_first_runs(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(precision_mod.time, "perf_counter", lambda: clock[0])
    runs = []

    def run(p):
        runs.append(p)
        clock[0] += {"fp32": 10.0, "bf16": 4.0}[p]
        return np.full((10, 10), len(runs), np.uint8), None

    c = decide("bf16", run, "10×10", repeats=1, warm_up=False)
    assert runs == ["fp32", "bf16"]
    assert c.fp32_ms == pytest.approx(10_000) and c.candidate_ms == pytest.approx(4_000)
    assert c.agreement == 0.0                   # labels 1 against 2: the timed runs' own


def test_instance_calibration_demands_the_same_objects():
    ids = np.zeros((20, 20), np.uint16)
    ids[2:8, 2:8], ids[2:8, 10:16] = 1, 2
    labels = (ids > 0).astype(np.uint8)
    merged = np.where(ids > 0, 1, 0).astype(np.uint16)       # the two objects as one
    outputs = {"fp32": (labels, ids), "bf16": (labels, merged)}
    c = decide("bf16", lambda p: outputs[p], "20×20", repeats=1)
    assert c.agreement == 1.0 and c.same_objects is False and c.chosen == "fp32"
    outputs["bf16"] = (labels, ids)
    assert decide("bf16", lambda p: outputs[p], "20×20", repeats=1).same_objects is True


# -- the Predictor ------------------------------------------------------------------------------
def test_auto_is_fp32_without_native_units_and_runs_no_calibration(monkeypatch):
    _native_bf16(monkeypatch, False)
    net = AutocastSensitiveNet(flip=False, fp32_delay=0, reduced_delay=0)
    p = Predictor(net, _meta(), device="cpu")
    pred = p.predict(_image())
    assert pred.precision == "fp32" and net.calls == 1 and p.calibration is None
    assert pred.precision_note == "fp32: this CPU has no native bf16 units"


def test_auto_keeps_a_faster_faithful_bf16_and_says_what_it_measured(monkeypatch, tmp_path):
    _native_bf16(monkeypatch, True)
    net = AutocastSensitiveNet(flip=False, fp32_delay=0.03, reduced_delay=0.002)
    p = Predictor(net, _meta(), device="cpu", calibration_cache=CalibrationCache(tmp_path / "c"))
    assert p.precision == "fp32" and "until bf16 is measured" in p.precision_note
    pred = p.predict(_image())
    assert pred.precision == "bf16" and p.calibration.agreement == 1.0
    assert pred.precision_note.startswith("bf16: ") and "× faster, 100.00 % agreement" in \
        pred.precision_note and "measured on this machine (64×64)" in pred.precision_note


def test_auto_refuses_an_unfaithful_bf16_however_fast(monkeypatch, tmp_path):
    _native_bf16(monkeypatch, True)
    net = AutocastSensitiveNet(flip=True, fp32_delay=0.03, reduced_delay=0.002)
    p = Predictor(net, _meta(), device="cpu", calibration_cache=CalibrationCache(tmp_path / "c"))
    pred = p.predict(_image())
    assert pred.precision == "fp32" and p.calibration.agreement < 0.6
    assert "kept fp32 (under 99.5 % agreement)" in pred.precision_note
    assert (pred.labels[:, :32] == 1).all()          # the fp32 answer, not the flipped one


def test_auto_refuses_a_bf16_that_is_not_faster(monkeypatch, tmp_path):
    _native_bf16(monkeypatch, True)
    net = AutocastSensitiveNet(flip=False, fp32_delay=0.002, reduced_delay=0.03)
    p = Predictor(net, _meta(), device="cpu", calibration_cache=CalibrationCache(tmp_path / "c"))
    assert p.predict(_image()).precision == "fp32"
    assert "not 15 % faster" in p.precision_note


def test_the_verdict_is_cached_per_checkpoint_and_machine(monkeypatch, tmp_path):
    _native_bf16(monkeypatch, True)
    cache = CalibrationCache(tmp_path / "calibration.json")
    ckpt = tmp_path / "net.pt"
    net = AutocastSensitiveNet(flip=False, fp32_delay=0.03, reduced_delay=0.002)
    save_checkpoint(ckpt, net, _meta())
    first = Predictor(net, _meta(), device="cpu", source=ckpt, calibration_cache=cache)
    assert first.predict(_image()).precision == "bf16"
    stored = json.loads(cache.path.read_text())["entries"]
    assert len(stored) == 1 and str(ckpt.resolve()) in next(iter(stored))

    again = AutocastSensitiveNet(flip=True, fp32_delay=0.03, reduced_delay=0.002)
    second = Predictor(again, _meta(), device="cpu", source=ckpt, calibration_cache=cache)
    assert second.predict(_image()).precision == "bf16"
    assert again.calls == 1                          # no calibration run: the cached verdict
    # Another machine (here: another thread count) measures again.
    torch.set_num_threads(2)
    third = Predictor(again, _meta(), device="cpu", source=ckpt, calibration_cache=cache,
                      num_threads=2)
    assert third.predict(_image()).precision == "fp32" and again.calls > 2


def test_a_damaged_cache_is_ignored_and_rewritten(monkeypatch, tmp_path):
    _native_bf16(monkeypatch, True)
    path = tmp_path / "calibration.json"
    path.write_text('{"version": 1, "entries": {"x": {"candidate": "bf16", "fp32_ms": "NaN"}}')
    cache = CalibrationCache(path)
    assert cache.get("x") is None
    ckpt = tmp_path / "net.pt"
    net = AutocastSensitiveNet(flip=False, fp32_delay=0.03, reduced_delay=0.002)
    save_checkpoint(ckpt, net, _meta())
    Predictor(net, _meta(), device="cpu", source=ckpt, calibration_cache=cache).predict(_image())
    assert len(json.loads(path.read_text())["entries"]) == 1


def test_untrained_networks_and_hand_picked_precisions_are_not_calibrated(monkeypatch):
    _native_bf16(monkeypatch, True)
    net = AutocastSensitiveNet(flip=True, fp32_delay=0, reduced_delay=0)
    assert Predictor(net, _meta(trained=False), device="cpu").predict(_image()).precision \
        == "fp32"
    assert net.calls == 1
    p = Predictor(net, _meta(), device="cpu", precision="fp32")
    assert p.predict(_image()).precision_note == "fp32: chosen by hand"


@pytest.mark.parametrize("change, reason", [
    ({"fp32_ms": 0}, "the fp32 time (ms) is 0, not above 0"),
    ({"fp32_ms": -12.5}, "the fp32 time (ms) is -12.5, not above 0"),
    ({"candidate_ms": -1}, "the bf16 time (ms) is -1, not above 0"),
    ({"candidate_ms": float("nan")}, "the bf16 time (ms) is nan, not a finite number"),
    ({"fp32_ms": float("inf")}, "the fp32 time (ms) is inf, not a finite number"),
    ({"agreement": 5.0}, "the agreement is 5, outside 0–1"),
    ({"agreement": -0.1}, "the agreement is -0.1, outside 0–1"),
    ({"agreement": "1.0"}, "the agreement is '1.0', not a number"),
    ({"fp32_ms": True}, "the fp32 time (ms) is True, not a number"),
    ({"candidate": "int4"}, "the candidate precision is 'int4', not one of bf16, fp16"),
    ({"same_objects": "yes"}, "same objects is 'yes'"),
    ({"speed": 3}, "unreadable (TypeError"),
], ids=["zero", "negative-fp32", "negative-candidate", "nan", "infinite", "500-percent",
        "below-zero", "text", "bool", "unknown-precision", "same-objects-text", "unknown-field"])
def test_an_impossible_cached_verdict_is_dropped_and_measured_again(monkeypatch, tmp_path, caplog,
                                                                   change, reason):
    _native_bf16(monkeypatch, True)
    cache = CalibrationCache(tmp_path / "calibration.json")
    ckpt = tmp_path / "net.pt"
    net = AutocastSensitiveNet(flip=False, fp32_delay=0.02, reduced_delay=0.002)
    save_checkpoint(ckpt, net, _meta())
    Predictor(net, _meta(), device="cpu", source=ckpt, calibration_cache=cache).predict(_image())
    stored = json.loads(cache.path.read_text())
    (key,) = stored["entries"]
    stored["entries"][key].update(change)
    cache.path.write_text(json.dumps(stored))
    before = net.calls

    again = Predictor(net, _meta(), device="cpu", source=ckpt, calibration_cache=cache)
    with caplog.at_level("WARNING", logger="segstudio.cache"):
        pred = again.predict(_image())          # no ZeroDivisionError, no "500 % agreement"
    assert net.calls - before == 1 + 2 * 4       # measured again (fp32 and bf16 four times each)
    assert pred.precision == "bf16" and "500" not in pred.precision_note
    assert pred.precision_note.startswith("bf16: ") and "× faster, 100.00 % agreement" in \
        pred.precision_note
    (line,) = [r.getMessage() for r in caplog.records if r.name == "segstudio.cache"]
    assert line.startswith("warning: dropped cache entry calibration.json [") and reason in line
    assert line.endswith("it is measured again")
    entry = json.loads(cache.path.read_text())["entries"][key]
    assert entry["fp32_ms"] > entry["candidate_ms"] > 0 and entry["agreement"] == 1.0


def test_a_dropped_verdict_leaves_the_others_in_the_file(tmp_path, caplog):
    cache = CalibrationCache(tmp_path / "calibration.json")
    good = Calibration("fp16", 10.0, 5.0, 1.0, None, "64×64")
    cache.put("good", good)
    cache.put("bad", Calibration("bf16", 0.0, 5.0, 1.0, None, "64×64"))
    with caplog.at_level("WARNING", logger="segstudio.cache"):
        assert cache.get("bad") is None
    assert cache.get("good") == good
    assert set(json.loads(cache.path.read_text())["entries"]) == {"good"}
    assert len(caplog.records) == 1


# -- deferred: the first image at once in fp32, the measurement after it -----------------------
def test_deferred_auto_predicts_the_first_image_in_fp32_and_measures_after_it(monkeypatch,
                                                                             tmp_path):
    _native_bf16(monkeypatch, True)
    cache = CalibrationCache(tmp_path / "calibration.json")
    ckpt = tmp_path / "net.pt"
    net = AutocastSensitiveNet(flip=False, fp32_delay=0.03, reduced_delay=0.002)
    save_checkpoint(ckpt, net, _meta())
    p = Predictor(net, _meta(), device="cpu", source=ckpt, calibration_cache=cache,
                  defer_calibration=True)
    assert p.precision_note == "fp32 until bf16 is measured against it after the first image"
    first = p.predict(_image())
    assert first.precision == "fp32" and net.calls == 1 and p.calibration is None
    assert first.precision_note == ("fp32 on the first image, shown at once; bf16 is measured "
                                    "against fp32 after it")
    assert p.calibration_due and not cache.path.exists()

    found = p.calibrate()
    assert net.calls == 1 + 2 * 4                    # the same eight forwards, after the result
    assert found.chosen == "bf16" and not p.calibration_due and p.precision == "bf16"
    assert found.sample == "64×64"                   # measured on the first image
    assert cache.get(next(iter(json.loads(cache.path.read_text())["entries"]))) == found
    second = p.predict(_image())
    assert second.precision == "bf16" and second.precision_note == found.describe()
    assert p.calibrate() is None and net.calls == 1 + 2 * 4 + 1


def test_deferred_auto_keeps_the_rules_an_unfaithful_bf16_stays_refused(monkeypatch, tmp_path):
    _native_bf16(monkeypatch, True)
    net = AutocastSensitiveNet(flip=True, fp32_delay=0.03, reduced_delay=0.002)
    p = Predictor(net, _meta(), device="cpu", calibration_cache=CalibrationCache(tmp_path / "c"),
                  defer_calibration=True)
    p.predict(_image())
    assert p.calibrate().chosen == "fp32"
    later = p.predict(_image())
    assert later.precision == "fp32" and "kept fp32 (under 99.5 % agreement)" in \
        later.precision_note
    assert (later.labels[:, :32] == 1).all()


def test_deferred_auto_takes_a_cached_verdict_for_the_first_image(monkeypatch, tmp_path):
    _native_bf16(monkeypatch, True)
    cache = CalibrationCache(tmp_path / "calibration.json")
    ckpt = tmp_path / "net.pt"
    net = AutocastSensitiveNet(flip=False, fp32_delay=0.03, reduced_delay=0.002)
    save_checkpoint(ckpt, net, _meta())
    Predictor(net, _meta(), device="cpu", source=ckpt, calibration_cache=cache).predict(_image())
    calls = net.calls
    p = Predictor(net, _meta(), device="cpu", source=ckpt, calibration_cache=cache,
                  defer_calibration=True)
    assert p.predict(_image()).precision == "bf16"   # nothing left to measure: used at once
    assert net.calls == calls + 1 and not p.calibration_due
