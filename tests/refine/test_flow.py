import numpy as np
import pytest

from segstudio.refine.flow import FlowError, propagate, warp_labels


def _scene(dx):
    """A textured square on a textured background, moved right by dx pixels."""
    rng = np.random.default_rng(0)
    bg = (rng.random((96, 128)) * 60 + 40).astype(np.uint8)
    img = np.repeat(bg[..., None], 3, axis=2)
    labels = np.zeros((96, 128), np.uint8)
    tex = (rng.random((30, 30)) * 80 + 150).astype(np.uint8)
    img[30:60, 30 + dx:60 + dx] = tex[..., None]
    labels[30:60, 30 + dx:60 + dx] = 2
    return img, labels


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_warping_moves_the_labels_with_the_object(method):
    a, la = _scene(0)
    b, lb = _scene(4)
    warped = warp_labels(a, b, la, method)
    inter = ((warped == 2) & (lb == 2)).sum()
    union = ((warped == 2) | (lb == 2)).sum()
    assert inter / union > 0.85
    assert (warped != la).any()


def test_pixels_whose_source_left_the_frame_become_void():
    import cv2

    rng = np.random.default_rng(1)
    tex = cv2.GaussianBlur((rng.random((96, 140)) * 255).astype(np.uint8), (5, 5), 1.5)
    img = np.repeat(tex[:, 20:120, None], 3, axis=2)          # the camera pans left by 10 px:
    nxt = np.repeat(tex[:, 10:110, None], 3, axis=2)          # new content enters on the left
    warped = warp_labels(img, nxt, np.ones((96, 100), np.uint8), "dis")
    assert (warped[:, :5] == 255).mean() > 0.5
    assert (warped[:, 30:70] == 1).mean() > 0.95


def test_propagate_yields_one_map_per_frame_and_stops_on_cancel():
    a, la = _scene(0)
    frames = [_scene(d)[0] for d in (2, 4, 6)]
    assert len(list(propagate(a, la, frames))) == 3
    calls = iter([False, True])
    assert len(list(propagate(a, la, frames, cancelled=lambda: next(calls)))) == 1


def test_bad_shapes_and_methods_are_clear_errors():
    a, la = _scene(0)
    with pytest.raises(FlowError, match="do not fit"):
        warp_labels(a, a, la[:10])
    with pytest.raises(FlowError, match="unknown optical flow"):
        warp_labels(a, a, la, "magic")
