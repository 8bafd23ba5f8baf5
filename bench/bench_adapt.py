"""How fast fine-tuning adapts the bundled chest U-Net to a shifted domain, against training
from scratch with the same budget.

The shifted domain is the phantom generator with another detector and patient build
(``segstudio.train.synth_xray.SHIFTED``: flatter, darker contrast, more noise, smaller anatomy
off centre). For each number of corrected images n, the first n shifted phantoms of one seed are
exported as the fine-tune dialog exports a workspace (VOC tree, 20 % validation, seed 0) and a
run is trained as the dialog trains it (``segstudio.train.loop.train``, U-Net lite, AdamW, the
best validation checkpoint kept) for each setting of the grid: learning rate as a multiple of
the from-scratch 1e-3, epochs, batch size, crop. The same grid trained from random weights is
the baseline. Each run's CPU time (``time.process_time``, one torch thread) covers the whole
training call, validation and checkpoint writes included; the held-out mIoU (40 shifted
phantoms of another seed) is measured afterwards on the checkpoint the user would get.

With one corrected image the dialog's split leaves no validation image; the run then validates
on its training image (the dialog itself asks for two).

    python bench/bench_adapt.py --threads 1
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch


def _voc(out: Path, samples, classes, val_fraction: float) -> Path:
    from segstudio.io.voc import VocSample, write_voc

    pairs = [VocSample(s.id, s.image, s.labels) for s in samples]
    result = write_voc(out, pairs, classes, val_fraction=val_fraction, seed=0)
    root = out / "VOCdevkit" / "VOC2012"
    if val_fraction > 0 and not result.val:          # one image: validate on it
        (root / "ImageSets" / "Segmentation" / "val.txt").write_text(
            "".join(f"{i}\n" for i in result.train))
    return root


def heldout_miou(weights: Path, heldout: Path, classes) -> float:
    """Held-out mIoU of a checkpoint file (the best-validation one a run leaves)."""
    from torch.utils.data import DataLoader

    from segstudio.models.checkpoint import load_checkpoint
    from segstudio.train.dataset import VocSegmentation, pad_collate
    from segstudio.train.loop import evaluate

    model, meta = load_checkpoint(weights)
    data = VocSegmentation(heldout, "train", mean=meta.mean, std=meta.std)
    loader = DataLoader(data, batch_size=8, collate_fn=pad_collate)
    return float(evaluate(model, loader, len(classes), torch.device("cpu")).scores().miou)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 8],
                        help="numbers of corrected images (default 1 2 4 8)")
    parser.add_argument("--lr-scales", type=float, nargs="+", default=[0.1, 0.3, 1.0, 3.0],
                        help="learning rates as multiples of 1e-3 (default 0.1 0.3 1 3)")
    parser.add_argument("--epochs", type=int, nargs="+", default=[10, 30, 90])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--crops", type=int, nargs="+", default=[128])
    parser.add_argument("--scratch", action=argparse.BooleanOptionalAction, default=True,
                        help="also train from random weights at lr x1 and above (baseline)")
    parser.add_argument("--pools", type=int, default=2,
                        help="sets of corrected images (seeds 5, 15, ...), averaged (default 2)")
    parser.add_argument("--heldout", type=int, default=40, help="held-out shifted phantoms")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from segstudio.paths import weights_dir
    from segstudio.train import synth
    from segstudio.train.finetune_defaults import FINE_TUNE, SCRATCH_LR
    from segstudio.train.loop import train
    from segstudio.train.synth_xray import SHIFTED

    bundled = weights_dir() / "chest_xray_unet_lite.pt"
    classes = synth.classes_for("xray")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-adapt-") as tmp:
        tmp = Path(tmp)
        pools = [list(synth.generate("xray", max(args.sizes), size=128, seed=5 + 10 * k,
                                     shift=SHIFTED)) for k in range(args.pools)]
        heldout = _voc(tmp / "heldout", synth.generate("xray", args.heldout, size=128, seed=6,
                                                       shift=SHIFTED), classes, 0.0)
        plain = _voc(tmp / "plain", synth.generate("xray", args.heldout, size=128, seed=6),
                     classes, 0.0)
        start = heldout_miou(bundled, heldout, classes)
        print(f"# bundled model, held-out mIoU: {100 * heldout_miou(bundled, plain, classes):.1f} "
              f"on {args.heldout} ordinary phantoms, {100 * start:.1f} on {args.heldout} "
              f"shifted ones (the starting point)", flush=True)
        grid = list(itertools.product(args.lr_scales, args.epochs, args.batch_sizes, args.crops))
        starts = [("bundled", bundled)] + ([("scratch", None)] if args.scratch else [])
        for n in args.sizes:
            trees = [_voc(tmp / f"n{n}-p{k}", pool[:n], classes, 0.2).parent.parent
                     for k, pool in enumerate(pools)]
            for (origin, init), (scale, epochs, batch, crop) in itertools.product(starts, grid):
                if origin == "scratch" and scale < 1.0:
                    continue
                cpus, mious = [], []
                for k, data in enumerate(trees):
                    out = tmp / f"run-n{n}-p{k}-{origin}-{scale}-{epochs}-{batch}-{crop}.pt"
                    t0 = time.process_time()
                    train("unet", data, config="lite", epochs=epochs, batch_size=batch,
                          lr=SCRATCH_LR * scale, crop=crop, out=out, init=init, device="cpu",
                          seed=0)
                    cpus.append(time.process_time() - t0)
                    mious.append(heldout_miou(out, heldout, classes))
                row = {"n": n, "from": origin, "lr": scale, "epochs": epochs, "batch": batch,
                       "crop": crop, "cpu_s": statistics.mean(cpus),
                       "miou": statistics.mean(mious)}
                rows.append(row)
                print(f"#  n={n} {origin} lr x{scale:g} {epochs} ep b{batch} c{crop}: "
                      f"{row['cpu_s']:.1f} CPU s, held-out mIoU "
                      f"{' '.join(f'{100 * m:.1f}' for m in mious)}", flush=True)

    print("\n| corrected images | start | lr × 1e-3 | epochs | batch | crop | CPU s | "
          "held-out mIoU | gain over the bundled model (points) |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['n']} | {r['from']} | {r['lr']:g} | {r['epochs']} | {r['batch']} | "
              f"{r['crop']} | {r['cpu_s']:.1f} | {100 * r['miou']:.1f} | "
              f"{100 * (r['miou'] - start):+.1f} |")
    print(f"\nbundled model before fine-tuning: {100 * start:.1f}")
    summary = _summary(rows)
    print("\n| start | lr × 1e-3 | epochs | batch | crop | mean CPU s | mean held-out mIoU "
          "(over n) | worst n |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for key, (cpu, miou, worst) in summary.items():
        origin, scale, epochs, batch, crop = key
        print(f"| {origin} | {scale:g} | {epochs} | {batch} | {crop} | {cpu:.1f} | "
              f"{100 * miou:.1f} | {100 * worst:.1f} |")
    best = _fastest(summary)
    print(f"\nadapts fastest: lr x{best[1]:g}, {best[2]} epochs, batch {best[3]}, crop {best[4]} "
          f"(the fine-tune dialog's defaults: lr x{FINE_TUNE.lr_scale:g}, {FINE_TUNE.epochs} "
          f"epochs, batch {FINE_TUNE.batch_size}, crop {FINE_TUNE.crop})")
    return 0


def _summary(rows: list[dict]) -> dict[tuple, tuple[float, float, float]]:
    """Per setting: mean CPU seconds, mean held-out mIoU and the worst mIoU over the sizes."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["from"], r["lr"], r["epochs"], r["batch"], r["crop"]), []).append(r)
    return {k: (statistics.mean(r["cpu_s"] for r in v), statistics.mean(r["miou"] for r in v),
                min(r["miou"] for r in v)) for k, v in groups.items()}


def _fastest(summary: dict[tuple, tuple[float, float, float]]) -> tuple:
    """The fine-tune setting that adapts fastest: the cheapest one whose mean held-out mIoU is
    within one point of the best fine-tune setting's."""
    tuned = {k: v for k, v in summary.items() if k[0] == "bundled"}
    top = max(v[1] for v in tuned.values())
    return min((k for k, v in tuned.items() if v[1] >= top - 0.01), key=lambda k: tuned[k][0])


if __name__ == "__main__":
    sys.exit(main())
