import numpy as np

from segstudio.core.classes import chest_xray
from segstudio.core.labelmap import LabelMap
from segstudio.ui.canvas.render import OverlayMode, OverlayRenderer


def _argb(renderer):
    img = renderer.image
    arr = np.frombuffer(img.constBits(), np.uint8, img.sizeInBytes())
    return arr.reshape(img.height(), img.bytesPerLine() // 4, 4)[:, :img.width()].copy()


def test_dirty_rect_updates_match_a_full_render():
    rng = np.random.default_rng(3)
    lm = LabelMap(rng.integers(0, 4, (70, 90)).astype(np.uint8))
    for mode in OverlayMode:
        r = OverlayRenderer(lm.array, chest_xray(), hidden={0}, mode=mode)
        lm.add_listener(r.update)
        for _ in range(20):
            x, y = rng.uniform(0, 90), rng.uniform(0, 70)
            lm.paint_segment(x, y, x + 7, y + 3, 5, int(rng.integers(0, 4)))
        fresh = OverlayRenderer(lm.array, chest_xray(), hidden={0}, mode=mode)
        np.testing.assert_array_equal(_argb(r), _argb(fresh))
        lm.remove_listener(r.update)


def test_colours_come_from_the_class_set_and_hidden_classes_are_clear():
    labels = np.array([[0, 1, 2, 255]], np.uint8)
    r = OverlayRenderer(labels, chest_xray(), hidden={0})
    px = _argb(r)[0]
    assert tuple(px[0]) == (0, 0, 0, 0)                 # hidden background
    assert tuple(px[1][[2, 1, 0, 3]]) == (0, 200, 0, 255)   # lungs green (BGRA memory order)
    assert tuple(px[2][[2, 1, 0, 3]]) == (220, 0, 0, 255)   # heart red
    assert tuple(px[3][[2, 1, 0, 3]]) == (224, 224, 192, 255)   # void


def test_contour_mode_draws_only_boundaries():
    labels = np.zeros((9, 9), np.uint8)
    labels[2:7, 2:7] = 2
    r = OverlayRenderer(labels, chest_xray(), hidden=set(), mode=OverlayMode.CONTOUR)
    alpha = _argb(r)[..., 3]
    assert alpha[4, 4] == 0          # inside the square: no fill
    assert alpha[2, 4] == 255 and alpha[4, 2] == 255   # its edge
    assert alpha[0, 0] == 0          # far background: no edge
