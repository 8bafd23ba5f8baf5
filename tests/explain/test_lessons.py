"""The Lessons labs' numbers, each held against a computation made another way."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from segstudio.explain.lessons import boundary, upsampling
from segstudio.explain.lessons.common import heldout, load_bundled, logits
from segstudio.paths import weights_dir


@pytest.fixture(autouse=True)
def _fp32_one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- the checkerboard measure ------------------------------------------------------------------

def test_lattice_share_of_a_pattern_repeating_every_stride_pixels_is_one():
    yy, xx = np.mgrid[0:64, 0:64]
    board = ((xx % 8 < 3) ^ (yy % 8 < 5)).astype(float)       # period 8 in both axes
    assert upsampling.stride_lattice_share(board, 8) == pytest.approx(1.0, abs=1e-12)


def test_lattice_share_of_a_mixture_is_the_periodic_part_of_its_power():
    # One cycle over the image (amplitude 3) plus one of period 8 (amplitude 1): the powers of
    # orthogonal cosines add, so the period-8 part holds 1² / (3² + 1²) of the total.
    x = np.arange(64)
    row = 3 * np.cos(2 * np.pi * x / 64) + np.cos(2 * np.pi * x / 8 + 0.4)
    maps = np.tile(row, (64, 1))
    assert upsampling.stride_lattice_share(maps, 8) == pytest.approx(0.1, abs=1e-9)
    assert upsampling.stride_lattice_share(np.tile(3 * np.cos(2 * np.pi * x / 64), (64, 1)),
                                           8) == pytest.approx(0.0, abs=1e-12)


def test_lattice_share_ignores_a_period_that_is_not_the_stride():
    x = np.arange(60)
    maps = np.tile(np.cos(2 * np.pi * x / 6), (60, 1))       # period 6, stride 4: off-lattice
    assert upsampling.stride_lattice_share(maps, 4) == pytest.approx(0.0, abs=1e-12)


# --- the kernels drawn -------------------------------------------------------------------------

def test_fcn_kernels_drawn_are_the_checkpoints_tensors_and_bilinear_start():
    net = load_bundled("chest", "fcn8s")
    state = torch.load(weights_dir() / "chest_xray_fcn8s_lite.pt", weights_only=True,
                       map_location="cpu")["state_dict"]
    views = {v.layer: v for v in upsampling.upsampling_kernels(net.model)}
    assert set(views) == {"upscore2", "upscore_pool4", "upscore"}
    for name, view in views.items():
        np.testing.assert_array_equal(view.learned, state[f"{name}.weight"].float().numpy())
    # The ×2 bilinear kernel, by hand: the 1-D profile 1/4, 3/4, 3/4, 1/4, on the diagonal only.
    profile = np.array([0.25, 0.75, 0.75, 0.25])
    start = views["upscore2"].bilinear
    np.testing.assert_allclose(start[1, 1], np.outer(profile, profile), atol=1e-7)
    assert np.count_nonzero(start[0, 1]) == 0
    assert views["upscore"].stride == 8
    assert 0 < views["upscore"].change < 1
    # The twin with bilinear upsamplers leaves the loaded network untouched.
    twin = upsampling.bilinear_variant(net.model)
    np.testing.assert_array_equal(twin.upscore.weight.detach().numpy(), views["upscore"].bilinear)
    np.testing.assert_array_equal(net.model.upscore.weight.detach().numpy(),
                                  views["upscore"].learned)


def test_checkerboard_numbers_are_the_lattice_share_of_each_models_logits():
    net = load_bundled("chest", "fcn32s")
    board = upsampling.checkerboard(net, "chest", n=1)
    sample = heldout("chest", 1)[0]
    twin = upsampling.bilinear_variant(net.model)

    def share(out):         # the lattice share again, by direct sums over the DFT bins
        c, h, w = out.shape
        total, on = 0.0, 0.0
        for ch in out.astype(np.float64):
            p = np.abs(np.fft.fft2(ch - ch.mean())) ** 2
            total += p.sum()
            on += sum(p[i * h // 32, j * w // 32] for i in range(32) for j in range(32)) - p[0, 0]
        return on / total

    assert board.stride == 32
    assert board.learned == pytest.approx(share(logits(net, sample.image)), rel=1e-9)
    assert board.bilinear == pytest.approx(share(logits(net, sample.image, twin)), rel=1e-9)
    assert board.learned != pytest.approx(board.bilinear, rel=1e-3)


# --- SegNet's indices --------------------------------------------------------------------------

def test_segnet_indices_drawn_equal_max_pool_recomputed_outside():
    net = load_bundled("chest", "segnet")
    sample = heldout("chest", 1)[0]
    pools = upsampling.segnet_indices(net, sample.image)
    _, again = F.max_pool2d(torch.from_numpy(pools.pool_input)[None], 2, 2, return_indices=True)
    np.testing.assert_array_equal(pools.indices, again[0].numpy())
    c, h, w = pools.pool_input.shape
    # Which of the 2×2 positions won, by a loop over a few cells of every channel.
    for ch in range(c):
        for y in range(0, h // 2, 7):
            for x in range(0, w // 2, 5):
                cell = pools.pool_input[ch, 2 * y:2 * y + 2, 2 * x:2 * x + 2].ravel()
                assert pools.winners[ch, y, x] == int(np.argmax(cell))
    assert sum(pools.shares) == pytest.approx(1.0)
    assert 0 < pools.tied < 1


def test_winning_position_and_tied_share_on_a_hand_made_map():
    plane = np.array([[[1, 0, 0, 0],
                       [0, 0, 0, 5],
                       [0, 0, 2, 2],
                       [0, 3, 0, 0]]], np.float32)
    _, idx = F.max_pool2d(torch.from_numpy(plane)[None], 2, 2, return_indices=True)
    np.testing.assert_array_equal(upsampling.winning_position(idx[0].numpy(), 4),
                                  [[[0, 3], [3, 0]]])
    assert upsampling.tied_share(plane) == pytest.approx(0.25)    # the 2, 2 cell


# --- the trimap ------------------------------------------------------------------------------

def _brute_trimap(gt, pred, k, n):
    h, w = gt.shape
    edges = []
    for y in range(h):
        for x in range(w):
            for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)):
                yy, xx = y + dy, x + dx
                if 0 <= yy < h and 0 <= xx < w and gt[yy, xx] != gt[y, x]:
                    edges.append((y, x))
                    break
    inter, union = np.zeros(n), np.zeros(n)
    for y in range(h):
        for x in range(w):
            if gt[y, x] == 255 or not any((y - ey) ** 2 + (x - ex) ** 2 <= k * k
                                          for ey, ex in edges):
                continue
            g, p = gt[y, x], pred[y, x]
            if g == p:
                inter[g] += 1
                union[g] += 1
            else:
                union[g] += 1
                if p < n:
                    union[p] += 1
    present = union > 0
    return float(np.mean(inter[present] / union[present]))


@pytest.mark.parametrize("k", [0, 1, 2, 4])
def test_trimap_miou_equals_a_per_pixel_loop(k):
    rng = np.random.default_rng(7)
    gt = np.zeros((14, 17), np.uint8)
    gt[3:10, 4:12] = 1
    gt[6:13, 9:16] = 2
    gt[0:2, 0:3] = 255
    pred = gt.copy()
    flip = rng.random(gt.shape) < 0.2
    pred[flip] = rng.integers(0, 3, int(flip.sum()))
    pred[5, 5] = 255                                    # void predicted: wrong for its class
    got = boundary.trimap_miou([(gt, pred)], 3, bands=(k,))[k]
    assert got == pytest.approx(_brute_trimap(gt, pred, k, 3), abs=1e-12)


def test_edge_band_is_the_disk_around_each_edge_pixel():
    gt = np.zeros((21, 21), np.uint8)
    gt[10, 10] = 1
    band = boundary.edge_band(gt, 3)
    yy, xx = np.mgrid[0:21, 0:21]
    near = np.zeros_like(band)
    for ey, ex in zip(*np.nonzero(boundary.label_edges(gt))):
        near |= (yy - ey) ** 2 + (xx - ex) ** 2 <= 9
    np.testing.assert_array_equal(band, near)
    assert band.sum() > 0 and not band[0, 0]


def test_untied_shares_count_only_cells_with_one_maximum():
    net = load_bundled("chest", "segnet")
    pools = upsampling.segnet_indices(net, heldout("chest", 1)[0].image)
    c, h, w = pools.pool_input.shape
    counts, cells = np.zeros(4), 0
    for ch in range(c):
        for y in range(h // 2):
            for x in range(w // 2):
                cell = pools.pool_input[ch, 2 * y:2 * y + 2, 2 * x:2 * x + 2].ravel()
                if (cell == cell.max()).sum() == 1:
                    counts[int(np.argmax(cell))] += 1
                    cells += 1
    assert cells > 0
    np.testing.assert_allclose(pools.untied_shares, counts / cells, rtol=1e-12)
    assert pools.tied == pytest.approx(1 - cells / (c * (h // 2) * (w // 2)))


def test_log_spectrum_marks_where_a_period_of_one_stride_puts_its_power():
    x = np.arange(64)
    maps = np.tile(np.cos(2 * np.pi * x / 8), (64, 1))
    spectrum, points = upsampling.log_spectrum(maps, 8)
    peaks = set(zip(*np.nonzero(spectrum > spectrum.max() - 1)))
    assert peaks == {(32, 32 - 8), (32, 32 + 8)}
    assert peaks <= set(points) and len(points) == 63 and (32, 32) not in points
