"""The Predictor's labels are the argmax of the network's own scores, even where two scores
are so close that their probabilities round to the same float."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from segstudio.core.classes import from_names
from segstudio.models.checkpoint import CheckpointMeta
from segstudio.models.engine import Predictor


class NearTie(nn.Module):
    """Class 1 wins by 1e-8 everywhere: exp() of the two scores rounds to one float32."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        n, _, h, w = x.shape
        out = torch.zeros(n, 3, h, w) + self.scale
        out[:, 1] += 1e-8
        out[:, 2] -= 5.0
        return out


def test_labels_follow_the_scores_where_probabilities_tie():
    meta = CheckpointMeta(arch="near-tie", config="file", classes=from_names(["a", "b", "c"]))
    predictor = Predictor(NearTie(), meta, device="cpu", precision="fp32", foreign=True,
                          stride=1)
    pred = predictor.predict(np.zeros((20, 30, 3), np.uint8))
    assert pred.probabilities[0, 0, 0] == pred.probabilities[1, 0, 0]   # the tie is real
    assert (pred.labels == 1).all()
