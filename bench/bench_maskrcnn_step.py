"""Mask R-CNN lite training step on the CPU: the lite sampling against the paper's.

The lite configuration trains its RoI heads on 128 sampled RoIs per image and keeps 1000/500 RPN
proposals (before/after NMS); the baseline is the same network, in the same run, with the
paper's 512 RoIs and 2000/2000 proposals. Both train on the same batches of the generated
``shapes`` set (128 px scenes, resized to 256 px by the network), alternating, after two warm-up
steps each.

    python bench/bench_maskrcnn_step.py [--steps 20] [--batch 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch

from segstudio.models import registry
from segstudio.train.dataset import instance_target
from segstudio.train.synth import generate


def _network(paper_sampling: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    model = registry.build_model("maskrcnn", 4, config="lite")
    if paper_sampling:
        model.roi_heads.fg_bg_sampler.batch_size_per_image = 512
        model.rpn._pre_nms_top_n["training"] = 2000
        model.rpn._post_nms_top_n["training"] = 2000
    return model.train()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    samples = list(generate("shapes", args.batch * (args.steps + 2), size=128, seed=0))
    batches = []
    for i in range(0, len(samples), args.batch):
        chunk = samples[i:i + args.batch]
        batches.append(([torch.from_numpy(s.image.transpose(2, 0, 1).copy()).float() / 255
                         for s in chunk],
                        [instance_target(s.labels, s.instances) for s in chunk]))
    nets = {"lite (128 RoIs, 1000/500 proposals)": _network(False),
            "paper sampling (512 RoIs, 2000/2000), baseline": _network(True)}
    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-3) for k, m in nets.items()}
    times = {k: [] for k in nets}
    for step, (images, targets) in enumerate(batches):
        for name, net in nets.items():
            t0 = time.perf_counter()
            loss = sum(net(images, targets).values())
            opts[name].zero_grad()
            loss.backward()
            opts[name].step()
            if step >= 2:
                times[name].append(time.perf_counter() - t0)
    base = sorted(times["paper sampling (512 RoIs, 2000/2000), baseline"])[args.steps // 2]
    print(f"Mask R-CNN lite, one training step, batch {args.batch}, {args.threads} thread(s), "
          f"median of {args.steps}\n")
    print("| sampling | s / step | ÷ baseline |")
    print("| --- | ---: | ---: |")
    for name, t in times.items():
        med = sorted(t)[len(t) // 2]
        print(f"| {name} | {med:.2f} | {med / base:.2f} |")


if __name__ == "__main__":
    main()
