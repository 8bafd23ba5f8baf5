"""One network, three files: the Predictor on the eager module against the same weights loaded
back as TorchScript and as ONNX (ONNX Runtime), on the same image.

The baseline is the eager network in the Predictor (what a segstudio checkpoint runs as); each
other row is the file the user brings, loaded through ``formats.load_any`` and run by the same
Predictor, with the share of pixels whose label agrees with the baseline.

A second table holds each format against its own bare forward on the same image: the
TorchScript module called directly, an ONNX Runtime session's ``run``, a Hugging Face model's
``model(pixel_values=…)``, each with the same normalisation, bilinear resize and (the
Predictor's plane-by-plane) argmax and no Predictor; goal ≤ 1.05× each, with identical labels.
Prints markdown tables; ``python bench/bench_formats.py --help`` for the options.
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
from segstudio.models.engine import Predictor, _argmax0
from segstudio.models.formats import load_any

GOAL = 1.05               # the Predictor on a model file against that format's bare forward


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


def _write_files(model: nn.Module, classes, size: int, folder: Path, *,
                 hugging_face: bool = True) -> dict[str, Path]:
    """``model`` as a TorchScript file and an ONNX file, and a SegFormer (random weights, the
    b0 layout) as a Hugging Face folder, each naming ``classes``."""
    example = torch.zeros(1, 3, size, size)
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
    files = {"torchscript": folder / "net.pt", "onnx": folder / "net.onnx"}
    if not hugging_face:
        return files
    try:
        from transformers import SegformerConfig, SegformerForSemanticSegmentation
    except ImportError:
        return files
    torch.manual_seed(0)
    config = SegformerConfig(num_labels=len(classes),
                             id2label=dict(enumerate(classes.names)),
                             label2id={n: i for i, n in enumerate(classes.names)})
    SegformerForSemanticSegmentation(config).eval().save_pretrained(folder / "segformer")
    files["huggingface"] = folder / "segformer"
    return files


def _bare(fmt: str, path: Path, mean, std, threads: int):
    """The format's own forward for an RGB image, with the normalisation, bilinear resize and
    argmax the Predictor also does: what a user's script of that library would run."""
    import torch.nn.functional as F

    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    def prepare(rgb):
        x = torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
        return x.sub_(mean_t).div_(std_t)

    def labels(logits, shape):
        up = F.interpolate(logits, size=shape, mode="bilinear", align_corners=False)
        # The Predictor's own plane-by-plane argmax: torch's argmax over the outer axis is
        # slower, and would hide the Predictor's overhead behind a slower baseline.
        return _argmax0(up[0].numpy())

    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = torch.jit.load(str(path), map_location="cpu").eval()

        def run(rgb):
            with torch.inference_mode():
                return labels(net(prepare(rgb)), rgb.shape[:2])
    elif fmt == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(path), sess_options=options,
                                       providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name

        def run(rgb):
            with torch.inference_mode():
                out = session.run(None, {name: prepare(rgb).numpy()})[0]
                return labels(torch.from_numpy(out), rgb.shape[:2])
    else:
        from transformers import AutoModelForSemanticSegmentation

        model = AutoModelForSemanticSegmentation.from_pretrained(
            str(path), local_files_only=True, use_safetensors=True).eval()

        def run(rgb):
            with torch.inference_mode():
                return labels(model(pixel_values=prepare(rgb)).logits, rgb.shape[:2])
    return run


def measure_own(model_name: str = "deeplabv3_mobilenet_v3_large", size: int = 512,
                runs: int = 5, threads: int = 1) -> list[dict]:
    """Per format, the Predictor on the loaded file against the format's own bare forward on
    the same image, timed in turns (medians), with the share of identical labels."""
    torch.set_num_threads(threads)
    spec = registry.get_spec(model_name)
    torch.manual_seed(0)
    classes = voc21()
    model = registry.build_model(model_name, len(classes), config=spec.configs[-1]).eval()
    files = _write_files(model, classes, size, Path(tempfile.mkdtemp()))
    image = np.random.default_rng(0).integers(0, 256, (size, size, 3), np.uint8)
    rows = []
    for fmt, path in files.items():
        loaded = load_any(path)
        predictor = Predictor.from_model(loaded, device="cpu", precision="fp32",
                                         num_threads=threads)
        bare = _bare(fmt, path, loaded.meta.mean, loaded.meta.std, threads)
        same = float((predictor.predict(image).labels == bare(image)).mean())
        ms_pred, ms_bare = _interleaved_ms([lambda: predictor.predict(image),
                                            lambda: bare(image)], runs)
        what = "SegFormer, b0 layout" if fmt == "huggingface" else model_name
        rows.append({"format": fmt, "predictor": ms_pred, "bare": ms_bare,
                     "ratio": ms_pred / ms_bare, "same": same, "what": what})
    return rows


OWN_TITLES = {"torchscript": "TorchScript (jit module call)",
              "onnx": "ONNX (onnxruntime session.run)",
              "huggingface": "Hugging Face (model(pixel_values))"}


def quick() -> list[dict]:
    """A short run for ``bench/run_all.py``: each format against its own bare forward."""
    rows = measure_own(size=256, runs=11, threads=1)
    return [{"measure": f"{OWN_TITLES[r['format']]}: Predictor vs that call, 256², fp32, "
                        f"1 thread (ms); labels {100 * r['same']:.2f} % the same",
             "value": r["predictor"], "baseline": r["bare"], "ratio": r["ratio"],
             "goal": f"≤ {GOAL:.2f}× its own forward",
             "met": r["ratio"] <= GOAL and r["same"] == 1.0} for r in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="deeplabv3_mobilenet_v3_large",
                        help="registry name of the network (random weights)")
    parser.add_argument("--size", type=int, default=512, help="square input side in px")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--own-only", action="store_true",
                        help="only the table of each format against its own bare forward")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not args.own_only:
        _versus_eager(args)
    rows = measure_own(args.model, args.size, args.runs, args.threads)
    print(f"\nEach format against its own bare forward (same normalisation, bilinear resize "
          f"and argmax), {args.size}×{args.size}, fp32, {args.threads} thread(s), median of "
          f"{args.runs} interleaved runs; goal ≤ {GOAL:.2f}×\n")
    print("| format | network | Predictor ms | bare forward ms | Predictor ÷ bare | labels "
          "identical |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {OWN_TITLES[r['format']]} | {r['what']} | {r['predictor']:.1f} | "
              f"{r['bare']:.1f} | {r['ratio']:.3f} | {100 * r['same']:.2f} % |")
    return 0


def _versus_eager(args) -> None:
    """The first table: the eager module, its TorchScript file and its ONNX file."""
    spec = registry.get_spec(args.model)
    torch.manual_seed(0)
    classes = voc21()
    model = registry.build_model(args.model, len(classes), config=spec.configs[-1]).eval()
    meta = CheckpointMeta(arch=args.model, config=spec.configs[-1], classes=classes)
    folder = Path(tempfile.mkdtemp())
    _write_files(model, classes, args.size, folder, hugging_face=False)

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


if __name__ == "__main__":
    raise SystemExit(main())
