"""How far images lie from a model's training data: the figures behind the out-of-domain rule.

For each bundled model given, prints one row per image: mean max-softmax confidence, mean
entropy (nats), grey mean / sd of the model's input and its colourfulness, and what
:func:`segstudio.models.domain.assess` decides. Images: the bundled demo pictures and held-out
phantoms/scenes (in domain), the real DICOMs that ship inside pydicom (CT, MR, ultrasound,
secondary capture), and generated non-phantom scenes (smooth clouds, a colour collage, a
photo-like gradient with texture) standing in for natural photographs.

    python bench/bench_domain.py resources/weights/chest_xray_unet_lite.pt ...
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def pydicom_images() -> list[tuple[str, np.ndarray]]:
    from pydicom.data import get_testdata_file

    from segstudio.io.images import ImageReadError, read_image

    out = []
    for name in ("CT_small.dcm", "MR_small.dcm", "examples_overlay.dcm", "image_dfl.dcm",
                 "examples_rgb_color.dcm", "examples_palette.dcm", "JPEG-lossy.dcm",
                 "SC_rgb_jpeg_dcmd.dcm"):
        path = get_testdata_file(name, download=False)
        if path is None:
            continue
        try:
            out.append((name, read_image(path).to_rgb8()))
        except ImageReadError as exc:
            print(f"# {name}: {exc.reason}", file=sys.stderr)
    return out


def generated_scenes(size: int = 192) -> list[tuple[str, np.ndarray]]:
    """Pictures that are neither phantoms nor the context scenes."""
    rng = np.random.default_rng(7)
    f = np.fft.fftfreq(size)
    radius = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2)
    radius[0, 0] = 1.0
    scenes = []
    clouds = np.stack([np.real(np.fft.ifft2(np.fft.fft2(rng.normal(size=(size, size)))
                                            / radius ** 1.5)) for _ in range(3)], axis=-1)
    clouds = (clouds - clouds.min()) / np.ptp(clouds) * 255
    scenes.append(("clouds (1/f noise, RGB)", clouds.astype(np.uint8)))
    grey = clouds.mean(axis=-1).astype(np.uint8)
    scenes.append(("clouds (1/f noise, grey)", np.repeat(grey[..., None], 3, axis=2)))
    collage = np.full((size, size, 3), 200, np.uint8)
    for _ in range(25):
        x, y = rng.integers(0, size, 2)
        w, h = rng.integers(10, size // 2, 2)
        collage[y:y + h, x:x + w] = rng.integers(0, 256, 3)
    scenes.append(("colour collage", collage))
    yy, xx = np.mgrid[0:size, 0:size] / size
    sky = np.stack([90 + 80 * yy, 140 + 60 * yy, 230 - 40 * yy], axis=-1)
    ground = np.stack([60 + 40 * xx, 120 + 30 * xx, 40 + 0 * xx], axis=-1)
    photo = np.where((yy > 0.55 + 0.05 * np.sin(xx * 12))[..., None], ground, sky)
    photo += rng.normal(0, 12, photo.shape)
    scenes.append(("landscape-like", np.clip(photo, 0, 255).astype(np.uint8)))
    return scenes


def in_domain(kind: str, demo: str) -> list[tuple[str, np.ndarray]]:
    from segstudio import paths
    from segstudio.io.images import read_image
    from segstudio.train.synth import make_sample

    out = [(f"demo {demo}", read_image(paths.resources_dir() / "demo" / demo).to_rgb8())]
    for i in range(8):
        out.append((f"{kind} held-out #{i} 128 px", make_sample(kind, i, size=128, seed=1).image))
    for size in (192, 256, 512):
        out.append((f"{kind} held-out #0 {size} px", make_sample(kind, 0, size=size, seed=1).image))
    return out


def main(weights: list[str]) -> None:
    from segstudio.models import domain
    from segstudio.models.checkpoint import load_checkpoint
    from segstudio.models.engine import Predictor
    from segstudio.models.model_card import (colourfulness, confidence_and_entropy, grey_of,
                                             read_card)

    others = pydicom_images() + generated_scenes()
    for path in weights:
        model, meta = load_checkpoint(path)
        card = read_card(meta.training, path)
        pred = Predictor(model, meta, device="cpu", precision="fp32", num_threads=1)
        name = Path(path).name
        kind = "xray" if "chest" in name else "shapes" if "shapes" in name else "context"
        demo = {"xray": "chest_phantom_01.png", "context": "context_01.png",
                "shapes": "shapes_01.png"}[kind]
        print(f"\n## {Path(path).name}")
        if card is not None:
            print(f"card: val confidence {card.val_confidence}, entropy {card.val_entropy}, "
                  f"image means {card.image_means}, stds {card.image_stds}, "
                  f"colourfulness {card.colourfulness}")
        print("| image | size | confidence | entropy | grey mean | grey sd | colour | verdict |")
        print("|---|---|---:|---:|---:|---:|---:|---|")
        for name, rgb in in_domain(kind, demo) + others:
            p = pred.predict(rgb)
            conf, ent = confidence_and_entropy(p.probabilities)
            grey = grey_of(rgb)
            verdict = "-"
            if card is not None:
                finding = domain.assess(card, p.probabilities, rgb, meta.classes.names)
                verdict = "OUT: " + "; ".join(finding.reasons) if finding.out_of_domain else "in"
            print(f"| {name} | {rgb.shape[1]}×{rgb.shape[0]} | {conf:.3f} | {ent:.3f} | "
                  f"{grey.mean():.1f} | {grey.std():.1f} | {colourfulness(rgb):.1f} | "
                  f"{verdict} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
