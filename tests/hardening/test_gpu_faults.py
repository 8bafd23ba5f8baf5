"""Simulated GPU faults (no GPU needed): out of memory under mixed precision, and a device that
disappears mid-run, end as a message rather than a crash."""
import numpy as np
import pytest
import torch
from torch import nn

from segstudio.core.classes import ClassSet
from segstudio.models.checkpoint import CheckpointMeta
from segstudio.models.engine import Predictor, PredictorError


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _meta() -> CheckpointMeta:
    return CheckpointMeta(arch="fault-test", config="lite", classes=ClassSet(["bg", "a", "b"]),
                          mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), trained=True, training={})


class FaultyNet(nn.Module):
    """A 1×1 convolution that fails the way a GPU does: OOM above a size, or after N calls."""

    def __init__(self, oom_above: int = 10_000, lost_after: int | None = None):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.oom_above, self.lost_after, self.calls = oom_above, lost_after, 0

    def forward(self, x):
        self.calls += 1
        if self.lost_after is not None and self.calls > self.lost_after:
            raise RuntimeError("CUDA error: an illegal memory access was encountered\n"
                               "CUDA kernel errors might be asynchronously reported")
        if max(x.shape[-2:]) > self.oom_above:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.conv(x)


def _image(h, w):
    return np.random.default_rng(3).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_out_of_memory_under_bf16_lowers_the_tile_and_keeps_the_precision():
    p = Predictor(FaultyNet(oom_above=160), _meta(), device="cpu", precision="bf16",
                  tile_size=512, tile_overlap=16, num_threads=1)
    pred = p.predict(_image(200, 260))
    assert p.precision == "bf16"  # OOM is not mistaken for an unsupported precision
    assert p.tile_size == 130  # 260 px failed once (padded past 160), 130 px (160) fits
    assert pred.notes[0] == "cpu ran out of memory; tile size lowered to 130 px"
    assert pred.notes[1].startswith("tiled ")
    assert pred.labels.shape == (200, 260)


def test_out_of_memory_at_every_size_ends_in_a_predictor_error_and_the_predictor_still_works():
    net = FaultyNet(oom_above=0)
    p = Predictor(net, _meta(), device="cpu", precision="fp32", tile_size=512,
                  tile_overlap=16, num_threads=1)
    with pytest.raises(PredictorError, match="ran out of memory even with 64 px tiles"):
        p.predict(_image(300, 300))
    net.oom_above = 10_000  # memory freed elsewhere: the same Predictor runs again
    assert p.predict(_image(50, 40)).labels.shape == (50, 40)


def test_device_lost_mid_run_is_a_predictor_error_naming_the_device():
    p = Predictor(FaultyNet(lost_after=2), _meta(), device="cpu", precision="fp32",
                  tile_size=64, tile_overlap=8, num_threads=1)
    with pytest.raises(PredictorError, match="cpu"):
        p.predict(_image(150, 150))


def test_device_lost_mid_run_reaches_the_user_as_one_line_of_text():
    from segstudio.ui.background.workers import _message

    p = Predictor(FaultyNet(lost_after=2), _meta(), device="cpu", precision="fp32",
                  tile_size=64, tile_overlap=8, num_threads=1)
    with pytest.raises(Exception) as info:
        p.predict(_image(150, 150))
    text = _message(info.value)
    assert "CUDA error" in text and "Traceback" not in text
    assert len(text) < 400
