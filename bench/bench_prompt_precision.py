"""The prompt encoder in fp32 and bf16: one ViT-B image embedding each, alternating.

The network is Segment Anything's ViT-B of the real shape with random weights (built in memory
by ``segment_anything.build_sam_vit_b()`` without a checkpoint; nothing is downloaded), so the
times are those of real weights; the agreement of the masks is printed too, but random weights
say nothing about it (the app measures it on the user's own weights and first image). Each
round runs both precisions, in swapped order every other round; medians of the rounds.

    python bench/bench_prompt_precision.py [--rounds 2] [--threads 1]

bf16 pays only on CPUs with native units (AVX-512 BF16 / AMX; see segstudio/models/device.py):
elsewhere oneDNN emulates it several times slower, and ``auto`` never tries it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (the GUI uses all cores but one)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from segment_anything import build_sam_vit_b

    from segstudio.models.device import cpu_supports_bf16
    from segstudio.models.prompt_precision import standard_masks
    from segstudio.models.prompted import PromptedSegmenter, SamNetwork

    torch.manual_seed(0)
    seg = PromptedSegmenter(SamNetwork(build_sam_vit_b()), "cpu")
    rgb = np.random.default_rng(0).integers(0, 256, (768, 1024, 3), dtype=np.uint8)
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    masks = {}
    for r in range(args.rounds):
        for precision in ("fp32", "bf16") if r % 2 == 0 else ("bf16", "fp32"):
            start = time.perf_counter()
            emb = seg.embed(rgb, precision=precision)
            times[precision].append(time.perf_counter() - start)
            masks[precision] = standard_masks(seg, emb)
    fp32, bf16 = (statistics.median(times[p]) for p in ("fp32", "bf16"))
    load = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"ViT-B image embedding (1024² input), {args.threads} thread(s), {args.rounds} "
          f"round(s), native bf16 units: {'yes' if cpu_supports_bf16() else 'no'}, "
          f"load average {load}\n")
    print("| precision | seconds (median) | all runs |")
    print("| --- | ---: | --- |")
    for p, t in (("fp32", fp32), ("bf16", bf16)):
        print(f"| {p} | {t:.2f} | {', '.join(f'{v:.2f}' for v in times[p])} |")
    print(f"\nbf16: {fp32 / bf16:.2f}× the speed of fp32; standard-prompt mask agreement "
          f"{100 * float(np.mean(masks['fp32'] == masks['bf16'])):.2f} % (random weights: no "
          "evidence either way)")


if __name__ == "__main__":
    main()
