"""Click-to-mask latency of the Prompt tool against SAM's mask decoder alone, in the same run.

A randomly initialised Segment Anything ViT-B of the real shape (the official package's
classes; the timings do not depend on the weights) embeds one image once; that time is
reported. Then each click is timed two ways, in turns so that load from other programs falls on
both alike:

- the mask decoder alone (baseline): prompt encoder + mask decoder on prompts already in the
  network's frame, low-resolution logits out;
- a click as the tool does it: prompts mapped from image pixels, prompt encoder + decoder,
  candidates sorted, the shown candidate brought back to full image resolution, turned into
  the preview QImage and drawn onto a canvas-sized widget image.

Also times reading an embedding back from the disk cache (revisiting an image).
Run: ``QT_QPA_PLATFORM=offscreen python bench/bench_prompt.py --threads 2``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def measure(args: argparse.Namespace) -> dict:
    """Times of the embedding, the disk cache and each kind of click, per thread count."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QRectF
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtWidgets import QApplication

    from segstudio.models.prompt_cache import EmbeddingCache
    from segstudio.models.prompted import (PromptPrediction, PromptedSegmenter, SamNetwork,
                                           build_sam, spec_from_state_dict)
    from segstudio.ui.tools.prompt import mask_to_qimage

    app = QApplication.instance() or QApplication(sys.argv[:1])  # noqa: F841 (QPainter needs it)
    torch.set_num_threads(max(args.threads))
    device = torch.device(args.device)
    width, height = (int(v) for v in args.size.lower().split("x"))
    load_at_start = os.getloadavg()[0]
    torch.manual_seed(0)
    from segment_anything import build_sam_vit_b

    with torch.device("meta"):
        spec = spec_from_state_dict(build_sam_vit_b().state_dict())
    start = time.perf_counter()
    sam = build_sam(spec).to(device)
    build_s = time.perf_counter() - start
    seg = PromptedSegmenter(SamNetwork(sam), device, "random ViT-B")
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    start = time.perf_counter()
    emb = seg.embed(rgb)
    embed_s = time.perf_counter() - start

    screen = QImage(1000, 800, QImage.Format.Format_ARGB32_Premultiplied)

    def show(pred):
        image, _keep = mask_to_qimage(pred.mask(0))
        painter = QPainter(screen)
        painter.drawImage(QRectF(0, 0, 1000, 800 * height / width), image)
        painter.end()
        return pred

    def click(points, labels, mask_input=None):
        return show(seg.predict(emb, points, labels, mask_input=mask_input))

    @torch.inference_mode()
    def decoder_alone(points, labels, mask_input=None):
        coords = torch.as_tensor(seg.to_input_frame(np.asarray(points, float), emb),
                                 dtype=torch.float32, device=device)[None]
        lab = torch.as_tensor(labels, dtype=torch.int32, device=device)[None]
        masks = (None if mask_input is None
                 else torch.as_tensor(mask_input, device=device)[None, None])
        sparse, dense = sam.prompt_encoder(points=(coords, lab), boxes=None, masks=masks)
        low, iou = sam.mask_decoder(image_embeddings=emb.features,
                                    image_pe=sam.prompt_encoder.get_dense_pe(),
                                    sparse_prompt_embeddings=sparse,
                                    dense_prompt_embeddings=dense,
                                    multimask_output=len(points) == 1)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return low, iou

    def xy():
        return (int(rng.integers(0, width)), int(rng.integers(0, height)))

    first = click([xy()], [1])
    previous = first.low_res[0]
    kinds = ("first click (3 candidates)", "added point (1 candidate, refined)")
    rows = {(n, kind): ([], [], []) for n in args.threads for kind in kinds}
    for _ in range(3):                      # warm-up
        decoder_alone([xy()], [1])
        click([xy()], [1])
    for _ in range(args.clicks):
        for (threads, name), (base, full, post) in rows.items():
            torch.set_num_threads(threads)
            pts, labs = ([xy()], [1]) if name.startswith("first") else ([xy(), xy()], [1, 0])
            mask_in = None if name.startswith("first") else previous
            t = time.perf_counter()
            decoder_alone(pts, labs, mask_in)
            base.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            click(pts, labs, mask_in)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            full.append((time.perf_counter() - t) * 1000)
            fresh = PromptPrediction(first.low_res, first.scores, emb, seg.img_size)
            t = time.perf_counter()
            show(fresh)
            post.append((time.perf_counter() - t) * 1000)

    with tempfile.TemporaryDirectory() as tmp:
        EmbeddingCache(Path(tmp)).get_or_compute("w", rgb, lambda: emb, seg.check_embedding)
        reads = []
        for _ in range(5):
            cache = EmbeddingCache(Path(tmp))
            t = time.perf_counter()
            cache.get_or_compute("w", rgb, lambda: sys.exit("cache miss"), seg.check_embedding)
            reads.append((time.perf_counter() - t) * 1000)
    return {"device": device, "width": width, "height": height, "build_s": build_s,
            "embed_s": embed_s, "reads": reads, "rows": rows, "load": load_at_start}


def quick() -> list[dict]:
    """A short run for ``bench/run_all.py``: 20 clicks of each kind, on the threads the
    window's GUI thread has (torch's own count: nothing in the app changes it there; the
    workers take one core fewer)."""
    threads = torch.get_num_threads()
    args = argparse.Namespace(size="2048x1536", clicks=20, threads=[threads], device="cpu")
    out = measure(args)
    rows = []
    for (_threads, name), (base, full, _post) in out["rows"].items():
        p95 = _percentile(full, 95)
        rows.append({"measure": f"prompt click to mask on screen (ViT-B), p95, {threads} "
                                f"thread(s): {name} (ms)",
                     "value": p95, "baseline": _percentile(base, 95), "goal": "p95 ≤ 100 ms",
                     "met": p95 <= 100.0})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="2048x1536", help="image WxH (default 2048x1536)")
    parser.add_argument("--clicks", type=int, default=60, help="clicks timed per kind")
    parser.add_argument("--threads", type=int, nargs="+", default=[2],
                        help="torch CPU threads; clicks are timed for each count given, the "
                             "embedding with the largest (default 2)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    out = measure(args)
    device, width, height, rows = out["device"], out["width"], out["height"], out["rows"]
    build_s, embed_s, reads, load_at_start = (out[k] for k in ("build_s", "embed_s", "reads",
                                                               "load"))

    print(f"torch {torch.__version__}, {device}, "
          f"{platform.processor() or platform.machine()} with {os.cpu_count()} cores, load average "
          f"{load_at_start:.1f} at the start and {os.getloadavg()[0]:.1f} at the end; image "
          f"{width}×{height}; {args.clicks} clicks per kind\n")
    print(f"random ViT-B built in {build_s:.1f} s; image embedding (once per image, "
          f"{max(args.threads)} threads): "
          f"{embed_s:.1f} s; revisit from the disk cache: {statistics.median(reads):.0f} ms "
          f"(hash + read; memory: no read)\n")
    print("| threads | click | decoder alone p50 / p95 (ms, baseline) | click to mask on screen "
          "p50 / p95 (ms) | p95 ÷ decoder p95 | of which mask to full size + upload + draw, "
          "p50 (ms) |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for (threads, name), (base, full, post) in rows.items():
        print(f"| {threads} | {name} | {_percentile(base, 50):.1f} / {_percentile(base, 95):.1f} | "
              f"{_percentile(full, 50):.1f} / {_percentile(full, 95):.1f} | "
              f"{_percentile(full, 95) / _percentile(base, 95):.2f} | "
              f"{_percentile(post, 50):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
