"""One network, three files: the Predictor on the eager module against the same weights loaded
back as TorchScript and as ONNX (ONNX Runtime), on the same image.

The baseline is the eager network in the Predictor (what a segstudio checkpoint runs as); each
other row is the file the user brings, loaded through ``formats.load_any`` and run by the same
Predictor, with the share of pixels whose label agrees with the baseline. Prints a markdown
table; ``python bench/bench_formats.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from segstudio.core.classes import voc21
from segstudio.models import registry
from segstudio.models.checkpoint import CheckpointMeta
from segstudio.models.engine import Predictor
from segstudio.models.formats import load_any


class _Out(nn.Module):
    """torchvision's dict output as a plain tensor, as files of other formats hold it."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)["out"]


def _interleaved_ms(fns, runs: int) -> list[float]:
    for fn in fns:                                       # warm-up
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, out in zip(fns, times):
            start = time.perf_counter()
            fn()
            out.append((time.perf_counter() - start) * 1000)
    return [statistics.median(t) for t in times]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="deeplabv3_mobilenet_v3_large",
                        help="registry name of the network (random weights)")
    parser.add_argument("--size", type=int, default=512, help="square input side in px")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    spec = registry.get_spec(args.model)
    torch.manual_seed(0)
    classes = voc21()
    model = registry.build_model(args.model, len(classes), config=spec.configs[-1]).eval()
    meta = CheckpointMeta(arch=args.model, config=spec.configs[-1], classes=classes)
    folder = Path(tempfile.mkdtemp())
    example = torch.zeros(1, 3, args.size, args.size)
    plain = _Out(model).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(plain, example, strict=False), str(folder / "net.pt"))
        torch.onnx.export(plain, example, str(folder / "net.onnx"), dynamo=False,
                          input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {2: "h", 3: "w"}, "logits": {2: "h", 3: "w"}})
    names = {"classes": list(classes.names)}
    for suffix in (".pt", ".onnx"):
        (folder / f"net{suffix}.segstudio.json").write_text(
            json.dumps(names), encoding="utf-8")

    image = np.random.default_rng(0).integers(0, 256, (args.size, args.size, 3), np.uint8)
    kw = dict(device="cpu", precision="fp32", num_threads=args.threads)
    rows = [("eager module in the Predictor (baseline)", Predictor(model, meta, **kw))]
    for suffix, title in ((".pt", "TorchScript file"), (".onnx", "ONNX file, ONNX Runtime")):
        start = time.perf_counter()
        loaded = load_any(folder / f"net{suffix}")
        load_s = time.perf_counter() - start
        rows.append((f"{title} (loaded and checked in {load_s:.1f} s)",
                     Predictor.from_model(loaded, **kw)))
    labels = [p.predict(image).labels for _, p in rows]
    times = _interleaved_ms([lambda p=p: p.predict(image) for _, p in rows], args.runs)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.model}, "
          f"{args.size}×{args.size}, fp32, median of {args.runs} interleaved runs\n")
    print("| network as | ms | × baseline | labels as the baseline |")
    print("| --- | ---: | ---: | ---: |")
    for (title, _), ms, lab in zip(rows, times, labels):
        print(f"| {title} | {ms:.0f} | {ms / times[0]:.2f} | "
              f"{100 * float((lab == labels[0]).mean()):.2f} % |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
