"""Per-unit receptive fields against the exact answer: the support of the input gradient of a
network whose weights are all positive (so no path can cancel another) and whose max-pools are
average pools of the same geometry (so every pixel of a window counts, not just the largest)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segstudio.explain.pixel_fields import pixel_fields
from segstudio.models import registry
from tests.explain.support import positive_copy, support_extent

torch.set_num_threads(1)


def _lite(name):
    torch.manual_seed(0)
    return registry.build_model(name, 2, "lite")


@pytest.mark.parametrize("name, size, sizes", [("fcn8s", (640, 32), (436, 468)),
                                                ("unet", (320, 32), (188, 204))])
def test_upsampling_paths_trace_each_pixel_exactly(name, size, sizes):
    model = _lite(name)
    traced = pixel_fields(model, [""], size)[""]
    assert traced.size_range()[0] == sizes
    exact = positive_copy(model)
    seen = set()
    centre = size[0] // 2
    for y in range(centre - 16, centre + 16):        # a whole period of the upsampling
        lo, hi = (int(v) for v in traced.rows[y])
        assert 0 <= lo and hi < size[0]              # the field lies inside the image
        assert support_extent(exact, size, y, 8, axis=0) == (lo, hi)
        seen.add(hi - lo + 1)
    assert min(seen) == sizes[0] and max(seen) == sizes[1]


def test_clipped_boxes_contain_the_support_at_the_borders():
    model = _lite("pspnet")
    size = (96, 80)
    traced = pixel_fields(model, [""], size)[""]
    exact = positive_copy(model)
    for y, x in ((0, 0), (5, 79), (95, 40)):
        x0, y0, x1, y1 = traced.box(y, x)
        top, bottom = support_extent(exact, size, y, x, axis=0)
        left, right = support_extent(exact, size, y, x, axis=1)
        assert max(y0, 0) <= top and bottom <= min(y1, size[0] - 1)
        assert max(x0, 0) <= left and right <= min(x1, size[1] - 1)


class _Resize(nn.Module):
    def __init__(self, **kw):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)
        self.head = nn.Conv2d(2, 2, 3, stride=2, padding=1)
        self.kw = kw

    def forward(self, x):
        return {"out": F.interpolate(self.head(self.conv(x)), **self.kw)}


@pytest.mark.parametrize("kw", [dict(size=(60, 60), mode="bilinear", align_corners=False),
                                dict(size=(60, 60), mode="bilinear", align_corners=True),
                                dict(scale_factor=3, mode="nearest"),
                                dict(size=(60, 60), mode="bicubic", align_corners=False)])
def test_interpolation_taps_are_exact_inside_the_image(kw):
    model = _Resize(**kw)
    traced = pixel_fields(model, [""], (60, 60) if "size" in kw else (40, 40))[""]
    exact = positive_copy(model)
    n = traced.feature_size[0]
    for y in range(8, n - 8):
        assert support_extent(exact, (60, 60) if "size" in kw else (40, 40), y, 4, axis=0) \
            == tuple(int(v) for v in traced.rows[y])


class _Unpool(nn.Module):
    """SegNet in one stage: pool with indices, a decoder convolution, unpool, convolution."""

    def __init__(self, mid: bool):
        super().__init__()
        self.enc = nn.Conv2d(1, 1, 3, padding=1)
        self.mid = nn.Conv2d(1, 1, 3, padding=1) if mid else nn.Identity()
        self.dec = nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x):
        h, idx = F.max_pool2d(self.enc(x), 2, return_indices=True)
        return {"out": self.dec(F.max_unpool2d(self.mid(h), idx, 2))}


# Row spans of output rows 9 and 10. With a decoder convolution between pooling and unpooling,
# output row 9 reads unpooled rows 8-10: pooled units 4 and 5 wherever their maxima were, so
# their decoder fields (pooled 3-6, pooling windows 6-13, encoder rows 5-14). Without it the
# unpooled row holds the encoder's own value at that row: rows 7-11.
@pytest.mark.parametrize("mid, spans", [(True, [(5, 14), (5, 14)]),
                                        (False, [(7, 11), (8, 12)])])
def test_unpooled_fields_are_the_union_of_what_the_maxima_can_carry(mid, spans):
    torch.manual_seed(3)
    model = _Unpool(mid).eval()
    traced = pixel_fields(model, [""], (24, 24), in_channels=1)[""]
    assert [tuple(int(v) for v in traced.rows[y]) for y in (9, 10)] == spans
    model = model.double()
    with torch.no_grad():
        for conv in (model.enc, model.mid, model.dec):
            if isinstance(conv, nn.Conv2d):
                conv.weight.fill_(1.0)
    for y, (lo, hi) in zip((9, 10), spans):
        union = set()
        for _ in range(40):
            image = torch.rand(1, 1, 24, 24, dtype=torch.float64, requires_grad=True)
            (grad,) = torch.autograd.grad(model(image)["out"][0, 0, y, 12], image)
            rows = set(np.flatnonzero((grad[0, 0] != 0).any(1).numpy()).tolist())
            assert rows <= set(range(lo, hi + 1))
            union |= rows
        assert union == set(range(lo, hi + 1))


def test_output_units_are_the_clicked_pixels_and_branch_units_are_centred():
    model = _lite("deeplabv3")
    fields = pixel_fields(model, ["", "head.aspp.convs.2"], (128, 128))
    assert fields[""].unit_at(64, 64) == (64, 64)
    branch = fields["head.aspp.convs.2"]
    assert branch.feature_size == (8, 8) and branch.input_map == (8, 8)
    fy, fx = branch.unit_at(64, 64)
    x0, y0, x1, y1 = branch.box(fy, fx)
    assert abs((y0 + y1) / 2 - 64) <= 8 and abs((x0 + x1) / 2 - 64) <= 8


class _Bins(nn.Module):
    """A pyramid bin: pool a map into 3x3 cells, upsample back bilinearly, add to the map."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)

    def forward(self, x):
        h = self.conv(x)
        cells = F.adaptive_avg_pool2d(h, 3)
        return {"out": h + F.interpolate(cells, size=h.shape[-2:], mode="bilinear",
                                         align_corners=False)}


def test_pooled_bins_are_exact_away_from_the_borders():
    model = _Bins()
    traced = pixel_fields(model, [""], (60, 60))[""]
    exact = positive_copy(model)
    # Rows whose bilinear source lies between two cell centres (10 … 49) read two 20-row cells,
    # each widened by the convolution; a cell at the border reaches one row into the padding.
    for y in range(10, 50):
        lo, hi = (int(v) for v in traced.rows[y])
        assert hi - lo + 1 == 42
        assert support_extent(exact, (60, 60), y, 30, axis=0) == (max(lo, 0), min(hi, 59))


class _Valid(nn.Module):
    """A stride-2 convolution without padding leaves the last pixel of an odd input unread;
    resampling back (optionally through 3×3 pooled cells) must not invent a unit beyond the map
    that reads it."""

    def __init__(self, pool=False, **kw):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 2, stride=2)
        self.pool, self.kw = pool, kw

    def forward(self, x):
        h = self.conv(x)
        if self.pool:
            h = F.adaptive_avg_pool2d(h, 3)
        size = None if "scale_factor" in self.kw else x.shape[-2:]
        return {"out": F.interpolate(h, size=size, **self.kw)}


def _support_box(model, size, y, x):
    top, bottom = support_extent(model, size, y, x, axis=0)
    left, right = support_extent(model, size, y, x, axis=1)
    return left, top, right, bottom


def _clipped(box, size):
    x0, y0, x1, y1 = box
    return max(x0, 0), max(y0, 0), min(x1, size[1] - 1), min(y1, size[0] - 1)


@pytest.mark.parametrize("model, size", [
    (_Valid(mode="bilinear", align_corners=False), (11, 13)),
    (_Valid(mode="bicubic", align_corners=False), (11, 13)),
    (_Valid(mode="nearest"), (11, 13)),
    (_Valid(mode="bilinear", align_corners=False, pool=True), (17, 19)),
    (_Valid(mode="bilinear", align_corners=False, scale_factor=2.5), (11, 13)),
    (_Bins(), (20, 26)),
    ("pspnet", (64, 48)),
    ("deeplabv3", (48, 64)),
    ("deeplabv2", (64, 48)),
    ("refinenet", (64, 48)),
])
def test_clipped_boxes_equal_the_gradient_support_at_every_pixel(model, size):
    # Bilinear resizing with align_corners=False clamps its source coordinate to the map, and
    # every resize reads only real units: a border pixel never sees a unit beyond the map.
    model = _lite(model) if isinstance(model, str) else model
    traced = pixel_fields(model, [""], size)[""]
    exact = positive_copy(model)
    h, w = traced.feature_size
    ys = sorted({0, 1, 2, h // 3, h // 2, h - 3, h - 2, h - 1})
    xs = sorted({0, 1, w // 2, w - 2, w - 1})
    for y in ys:
        for x in xs:
            assert _clipped(traced.box(y, x), size) == _support_box(exact, size, y, x), (y, x)


def test_pspnet_pixel_sees_the_whole_pooled_map_and_no_more():
    # At 256 px the 1×1 bin pools all 32 units of the stride-8 map: pixels -193 … 441 (635).
    # Bilinear spreading of the 2×2 bin clamps at the border, so no output reaches further.
    fields = pixel_fields(_lite("pspnet"), ["", "head.ppm.stages.0", "backbone.layer4"],
                          (256, 256))
    layer4 = fields["backbone.layer4"]
    whole_map = (int(layer4.cols[:, 0].min()), int(layer4.cols[:, 1].max()))
    assert whole_map == (-193, 441)
    x0, y0, x1, y1 = fields[""].box(64, 64)
    assert (x0, x1) == (y0, y1) == whole_map
    assert fields["head.ppm.stages.0"].box(0, 0)[::2] == whole_map
