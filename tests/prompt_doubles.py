"""Small networks for testing the prompted-segmentation plumbing without real weights."""

from __future__ import annotations

import threading

import torch

SCORES = (0.5, 0.9, 0.7)      # the double's predicted IoU of its three candidates


class DiskNetwork:
    """Returns a disk around each object point (radius ``radius`` input pixels, times 1, 2, 3 for
    the three candidates), carves background points out, and fills a box; the logits are signed
    distances, so resizing them keeps edges where they belong."""

    def __init__(self, img_size: int = 1024, radius: float = 24.0) -> None:
        self.img_size = img_size
        self.embedding_shape = (1, 1, img_size // 16, img_size // 16)
        self.radius = radius
        self.seen: list[torch.Tensor] = []
        self.gate: threading.Event | None = None     # set: encode waits for it (cancel tests)

    def encode(self, image, on_block):
        self.seen.append(image.clone())
        for i in range(4):
            on_block(i, 4)
            if self.gate is not None:
                self.gate.wait(5)
        return torch.zeros(self.embedding_shape)

    def decode(self, features, coords, labels, box, mask_input, multimask):
        side = self.img_size // 4
        c = (torch.arange(side, dtype=torch.float32) + 0.5) * (self.img_size / side)
        yy, xx = torch.meshgrid(c, c, indexing="ij")
        outs = []
        for k in ((1, 2, 3) if multimask else (1,)):
            logit = torch.full((side, side), -1e3)
            if box is not None:
                x0, y0, x1, y1 = (float(v) + 0.5 for v in box[0])
                logit = torch.minimum(torch.minimum(xx - x0, x1 - xx),
                                      torch.minimum(yy - y0, y1 - yy))
            if coords is not None:
                for (x, y), lab in zip(coords[0].tolist(), labels[0].tolist()):
                    d = torch.hypot(xx - (x + 0.5), yy - (y + 0.5))
                    if lab == 1:
                        logit = torch.maximum(logit, k * self.radius - d)
                for (x, y), lab in zip(coords[0].tolist(), labels[0].tolist()):
                    d = torch.hypot(xx - (x + 0.5), yy - (y + 0.5))
                    if lab == 0:
                        logit = torch.minimum(logit, d - self.radius / 2)
            outs.append(logit)
        scores = torch.tensor(SCORES[:len(outs)])
        return torch.stack(outs)[None], scores[None]


def small_sam_spec():
    from segstudio.models.prompted import SamSpec

    return SamSpec(embed_dim=32, depth=3, num_heads=2, global_attn_indexes=(1,), window_size=4,
                   img_size=128, prompt_dim=32, mask_in_chans=8, decoder_mlp_dim=64,
                   iou_head_hidden_dim=32)


def save_small_sam(path, *, wrap: bool = False, seed: int = 0):
    """A randomly initialised small SAM of the package's own classes, saved as weights."""
    from segstudio.models.prompted import build_sam

    torch.manual_seed(seed)
    state = build_sam(small_sam_spec()).state_dict()
    torch.save({"model": state, "epoch": 3} if wrap else state, path)
    return path
