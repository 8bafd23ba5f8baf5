"""The settings Model ▸ Fine-tune starts with, chosen by measurement.

``bench/bench_adapt.py`` fine-tunes the bundled chest U-Net on 1, 2, 4 and 8 corrected phantoms
of a shifted domain over a grid of these settings and reports held-out mIoU against CPU time
(``BENCHMARKS.md``, "Learning from corrections"). ``FINE_TUNE`` holds the setting that adapted
fastest there; the dialog and its tests read it from here, so the choice lives in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

SCRATCH_LR = 1e-3           # AdamW from random weights, the training default


@dataclass(frozen=True)
class FineTuneSettings:
    """What a fine-tune run is started with: the learning rate as a multiple of the
    from-scratch one, epochs, batch size and training crop (px)."""

    lr_scale: float
    epochs: int
    batch_size: int
    crop: int

    @property
    def lr(self) -> float:
        return SCRATCH_LR * self.lr_scale


# Training from random weights ("random weights" in the dialog).
FROM_SCRATCH = FineTuneSettings(lr_scale=1.0, epochs=10, batch_size=4, crop=128)
# Starting from a trained checkpoint: the fastest-adapting setting of bench/bench_adapt.py
# (BENCHMARKS.md, "Learning from corrections"): the full from-scratch learning rate for 90 epochs
# took the bundled chest U-Net from 24.3 % to 81.5 % held-out mIoU on the shifted phantoms (mean
# over 1, 2, 4 and 8 corrected images, 6.4 CPU s per run); the former tenth of it for 10 epochs
# reached 38.8 %.
FINE_TUNE = FineTuneSettings(lr_scale=1.0, epochs=90, batch_size=4, crop=128)
