"""Synthetic chest radiograph phantoms with lung, heart and clavicle labels.

These are procedural drawings, not patient data: two dark lung fields, a bright heart that
overlaps the (image-right) left lung, clavicles, ribs that cross the lungs as unlabelled
occluders, a spine, soft tissue, noise and a random contrast curve. They are meant to let a small
network learn the task in minutes and to give the app something realistic-looking to open.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from segstudio.core.classes import ClassSet, chest_xray

BACKGROUND, LUNGS, HEART, CLAVICLES = 0, 1, 2, 3
_SUB = 4                    # fixed-point bits for cv2 drawing (sub-pixel shapes)
_ONE = 1 << _SUB


def xray_classes() -> ClassSet:
    return chest_xray()


@dataclass(frozen=True)
class XrayShift:
    """A change of domain for the phantoms: another detector and another patient build.

    ``contrast`` scales the grey values about mid grey and ``gamma`` bends the result (above 1
    darkens the mid-tones); ``noise`` adds detector noise of that standard deviation (a fraction
    of the full range); ``scale`` and ``offset`` (fractions of the image size, x and y) shrink
    or grow and move the whole anatomy about the image centre. The identity (the defaults)
    leaves every phantom exactly as without a shift. A shifted phantom is as deterministic as an
    ordinary one: it depends only on the generator and the shift.
    """

    contrast: float = 1.0
    gamma: float = 1.0
    noise: float = 0.0
    scale: float = 1.0
    offset: tuple[float, float] = (0.0, 0.0)

    def moves_anatomy(self) -> bool:
        return self.scale != 1.0 or self.offset != (0.0, 0.0)


# The shifted domain of ``bench/bench_adapt.py``: flatter and darker, three times the noise of
# the noisiest training phantom, a smaller patient placed off centre.
SHIFTED = XrayShift(contrast=0.6, gamma=1.8, noise=0.06, scale=0.82, offset=(0.05, 0.06))


def _move_anatomy(shift: XrayShift, density: np.ndarray, labels: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Scale and move the drawn anatomy about the image centre (air fills what it leaves)."""
    size = labels.shape[0]
    c = (size - 1) / 2.0
    m = np.array([[shift.scale, 0, c * (1 - shift.scale) + shift.offset[0] * size],
                  [0, shift.scale, c * (1 - shift.scale) + shift.offset[1] * size]], np.float32)
    density = cv2.warpAffine(density, m, (size, size), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    labels = cv2.warpAffine(labels, m, (size, size), flags=cv2.INTER_NEAREST,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=BACKGROUND)
    return density, labels


def _pts(xy: np.ndarray) -> np.ndarray:
    """Float pixel coordinates as the fixed-point int32 points cv2 draws with ``shift=_SUB``."""
    return np.round(np.asarray(xy) * _ONE).astype(np.int32).reshape(-1, 1, 2)


# A lung field (image-left lung) in a unit box: u from the outer wall (0) to the mediastinum
# (1), v from apex (0) to base (1). Outer wall, sharp costophrenic angle, diaphragm dome,
# mediastinal edge.
_LUNG_TEMPLATE = np.array([
    (0.62, 0.0), (0.35, 0.07), (0.16, 0.25), (0.05, 0.5), (0.0, 0.8), (0.03, 1.0),
    (0.3, 0.92), (0.6, 0.85), (0.85, 0.87), (1.0, 0.9),
    (0.93, 0.62), (0.86, 0.36), (0.8, 0.15), (0.74, 0.03),
], np.float32)


def _chaikin(points: np.ndarray, rounds: int = 2) -> np.ndarray:
    """Round a closed polygon's corners by repeated corner cutting."""
    for _ in range(rounds):
        nxt = np.roll(points, -1, axis=0)
        points = np.stack([0.75 * points + 0.25 * nxt, 0.25 * points + 0.75 * nxt], 1)
        points = points.reshape(-1, 2)
    return points


def _lung_outline(rng: np.random.Generator, inner_x: float, top: float, bottom: float,
                  width: float, side: int) -> np.ndarray:
    """A lung field as a closed pixel polygon; ``side`` -1 for the image-left lung (growing
    leftwards from ``inner_x``), +1 for the image-right one."""
    unit = _LUNG_TEMPLATE + rng.uniform(-0.035, 0.035, _LUNG_TEMPLATE.shape).astype(np.float32)
    unit[5] = (0.02, 1.0)     # keep the costophrenic angle sharp and at the bottom
    xs = inner_x + side * (1.0 - unit[:, 0]) * width
    ys = top + unit[:, 1] * (bottom - top)
    return _chaikin(np.stack([xs, ys], 1))


def _smooth_noise(rng: np.random.Generator, size: int, scale: float) -> np.ndarray:
    """Low-frequency noise in about -1..1: a few random values bilinearly upsampled."""
    cells = max(2, int(round(size / scale)))
    coarse = rng.standard_normal((cells, cells)).astype(np.float32)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)


def make_xray(rng: np.random.Generator, size: int = 256,
              shift: XrayShift | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One phantom: ``(image, labels)``, image ``size × size`` uint16 grey (full 16-bit range
    used), labels uint8 with background 0, lungs 1, heart 2, clavicles 3 (heart and clavicles
    drawn over the lungs they overlap). ``shift`` draws it in another domain (:class:`XrayShift`);
    its extra random draws come after all the ordinary ones, so the anatomy stays the same."""
    s = float(size)
    labels = np.zeros((size, size), np.uint8)
    density = np.zeros((size, size), np.float32)   # X-ray attenuation: high = bright

    # Body (soft tissue) and shoulders.
    body = np.zeros((size, size), np.uint8)
    bcx = s * rng.uniform(0.47, 0.53)
    cv2.ellipse(body, _pts([bcx, s * rng.uniform(0.64, 0.7)])[0, 0].tolist(),
                (int(s * rng.uniform(0.5, 0.6) * _ONE), int(s * rng.uniform(0.6, 0.7) * _ONE)),
                0, 0, 360, 1, -1, cv2.LINE_8, _SUB)
    density += body * rng.uniform(0.42, 0.52)

    # Lungs: two fields of varied size and position around the midline.
    mid = bcx + s * rng.uniform(-0.02, 0.02)
    top = s * rng.uniform(0.12, 0.2)
    lung_mask = np.zeros((size, size), np.uint8)
    for side in (-1, 1):
        width = s * rng.uniform(0.24, 0.31)
        inner = mid + side * s * rng.uniform(0.035, 0.065)
        bottom = s * rng.uniform(0.72, 0.84)
        outline = _lung_outline(rng, inner, top + s * rng.uniform(-0.02, 0.02), bottom, width,
                                side)
        cv2.fillPoly(lung_mask, [_pts(outline)], 1, cv2.LINE_8, _SUB)
    labels[lung_mask > 0] = LUNGS
    density -= lung_mask * rng.uniform(0.3, 0.38)

    # Spine: a vertical band with vertebral bodies, behind the mediastinum.
    xx = np.arange(size, dtype=np.float32)[None, :]
    yy = np.arange(size, dtype=np.float32)[:, None]
    spine_w = s * rng.uniform(0.045, 0.06)
    spine = np.exp(-((xx - mid) / spine_w) ** 4)
    vert = 0.75 + 0.25 * np.cos(2 * np.pi * yy / (s * rng.uniform(0.07, 0.09)))
    density += (spine * vert * rng.uniform(0.18, 0.26)).astype(np.float32)

    # Heart: over the lower image-right lung and the midline; it wins over lung.
    heart = np.zeros((size, size), np.uint8)
    hc = (mid + s * rng.uniform(0.05, 0.1), s * rng.uniform(0.58, 0.66))
    axes = (s * rng.uniform(0.14, 0.19), s * rng.uniform(0.1, 0.13))
    cv2.ellipse(heart, _pts(hc)[0, 0].tolist(), (int(axes[0] * _ONE), int(axes[1] * _ONE)),
                float(rng.uniform(-30, -10)), 0, 360, 1, -1, cv2.LINE_8, _SUB)
    heart &= body
    labels[heart > 0] = HEART
    density += heart * (rng.uniform(0.1, 0.16) + lung_mask * 0.34)

    # Ribs: bright curved arcs crossing both lungs (occluders, not labelled).
    ribs = np.zeros((size, size), np.float32)
    n_ribs = int(rng.integers(6, 9))
    spacing = (s * 0.62) / n_ribs
    thick = max(1, int(round(s * rng.uniform(0.012, 0.02))))
    for i in range(n_ribs):
        y0 = top + s * 0.02 + i * spacing + rng.uniform(-0.1, 0.1) * spacing
        for side in (-1, 1):
            centre = (mid + side * s * 0.02, y0 + s * 0.12)
            ax = (s * rng.uniform(0.3, 0.36), s * rng.uniform(0.12, 0.16))
            start, end = (180, 300) if side < 0 else (240, 360)
            cv2.ellipse(ribs, _pts(centre)[0, 0].tolist(), (int(ax[0] * _ONE), int(ax[1] * _ONE)),
                        float(side * rng.uniform(8, 18)), start, end, 1.0, thick,
                        cv2.LINE_8, _SUB)
    density += ribs * body * rng.uniform(0.1, 0.16)

    # Clavicles: S-shaped bright bands from the sternum out to the shoulders, over the apices.
    clav = np.zeros((size, size), np.uint8)
    for side in (-1, 1):
        y = top + s * rng.uniform(-0.02, 0.03)
        length = s * rng.uniform(0.3, 0.36)
        t = np.linspace(0, 1, 16)
        xs = mid + side * (s * 0.03 + length * t)
        ys = y + s * 0.04 * (1 - t) - s * rng.uniform(0.02, 0.05) * t \
            + s * 0.012 * np.sin(2 * np.pi * t)
        width = max(2, int(round(s * rng.uniform(0.025, 0.035))))
        cv2.polylines(clav, [_pts(np.stack([xs, ys], 1))], False, 1, width, cv2.LINE_8, _SUB)
    clav &= body
    labels[clav > 0] = CLAVICLES
    density += clav * rng.uniform(0.2, 0.3)

    if shift is not None and shift.moves_anatomy():
        density, labels = _move_anatomy(shift, density, labels)

    # Texture, blur (unsharp anatomy), exposure and detector noise.
    density += _smooth_noise(rng, size, s / 6) * 0.03 * body
    density += _smooth_noise(rng, size, s / 24) * 0.015
    density = cv2.GaussianBlur(density, (0, 0), max(0.5, s / 256 * rng.uniform(0.8, 1.6)))
    density += rng.normal(0, rng.uniform(0.01, 0.03), density.shape).astype(np.float32)
    lo, hi = rng.uniform(0.0, 0.06), rng.uniform(0.9, 1.05)
    img = np.clip((density + 0.05 - lo) / (hi - lo), 0, 1) ** rng.uniform(0.7, 1.4)
    if shift is not None:
        img = _other_detector(rng, img, shift)
    return np.round(img * 65535).astype(np.uint16), labels


def _other_detector(rng: np.random.Generator, img: np.ndarray, shift: XrayShift) -> np.ndarray:
    """The exposure of ``img`` (0..1) through the shift's contrast, gamma and extra noise."""
    if shift.noise > 0:
        img = img + rng.normal(0, shift.noise, img.shape).astype(np.float32)
    if shift.contrast != 1.0:
        img = 0.5 + (img - 0.5) * shift.contrast
    img = np.clip(img, 0, 1)
    return img ** shift.gamma if shift.gamma != 1.0 else img


def to_rgb8(image16: np.ndarray) -> np.ndarray:
    """A 16-bit grey phantom as the 8-bit RGB image a VOC tree stores."""
    grey = (image16.astype(np.uint32) * 255 + 32767) // 65535
    return np.repeat(grey.astype(np.uint8)[:, :, None], 3, axis=2)
