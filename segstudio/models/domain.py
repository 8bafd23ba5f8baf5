"""Is an image like the ones a model was trained on? Measured after every prediction.

The model card (:mod:`segstudio.models.model_card`) holds what the training data looked like and
how sure the network was on its own validation split. A prediction is then held against it:

- **confidence**: the mean max-softmax probability falls well below the validation mean;
- **entropy**: the mean entropy of the class distribution rises well above the validation mean;
- **intensity**: the grey level mean or spread of the model's input lies outside the range of
  the training images' own means and spreads (with a margin);
- **histogram**: the grey-level histogram lies further from the training set's pooled
  histogram (earth mover's distance) than any training image did, by half again;
- **anatomy / scene make-up**: the share of the image the network gives a class lies outside
  the range it gave that class on its validation images (with a margin);
- **colour**: a colour picture for a model that saw only grey images, or the reverse.

Any one of them marks the image as out of domain. The margins were chosen from measurements
(``bench/bench_domain.py``, figures in ``docs/reliability.md``): the bundled demo images and
held-out phantoms/scenes pass, the real DICOMs that ship with pydicom and non-phantom pictures
do not. Pure NumPy: the GUI and ``segstudio predict`` call it after the Predictor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from segstudio.models.model_card import (ModelCard, card_problem, class_fractions,
                                         colourfulness, confidence_and_entropy, grey_histogram,
                                         grey_of, histogram_distance, read_card)

CONFIDENCE_DROP = 0.10          # below the validation confidence by more than this
ENTROPY_RISE = 0.25             # above the validation entropy by more than this (nats)
MEAN_MARGIN = 20.0              # grey levels outside the training images' mean range
STD_MARGIN = 12.0               # grey levels outside the training images' sd range
HISTOGRAM_FACTOR = 1.5          # times the largest distance of a training image
FRACTION_MARGIN = 0.5           # of a class's training range, and at least FRACTION_FLOOR
FRACTION_FLOOR = 0.02
GREY_COLOURFULNESS = 1.0        # a training set below this was grey
COLOUR_LIMIT = 6.0              # an image above this is in colour
COLOURFUL_TRAINING = 20.0       # a training set above this was in colour …
GREY_LIMIT = 2.0                # … and an image below this is grey
SAMPLE_PIXELS = 1_000_000


@dataclass
class DomainFinding:
    """What one prediction's input looks like next to the training data."""

    confidence: float
    entropy: float
    grey_mean: float
    grey_std: float
    colourfulness: float
    val_confidence: float | None
    val_entropy: float | None
    data_kind: str
    reasons: list[str] = field(default_factory=list)

    @property
    def out_of_domain(self) -> bool:
        return bool(self.reasons)

    def message(self) -> str:
        """One sentence for the canvas, the Scores panel and the command line (at most two
        reasons; ``reasons`` holds them all)."""
        trained = {"synthetic": "trained on synthetic images",
                   "real": "trained on real images"}.get(self.data_kind, "trained on other data")
        if self.val_confidence is not None:
            head = (f"{trained}; on this image its confidence is {self.confidence:.2f} against "
                    f"{self.val_confidence:.2f} on its validation data")
        else:
            head = f"{trained}; on this image its confidence is {self.confidence:.2f}"
        if not self.out_of_domain:
            return head
        more = len(self.reasons) - 2
        why = "; ".join(self.reasons[:2]) + (f"; {more} more" if more > 0 else "")
        return f"{head} ({why}): treat as a rough start"

    def to_dict(self) -> dict:
        return {"out_of_domain": self.out_of_domain, "confidence": round(self.confidence, 4),
                "entropy": round(self.entropy, 4), "grey_mean": round(self.grey_mean, 2),
                "grey_std": round(self.grey_std, 2),
                "colourfulness": round(self.colourfulness, 2),
                "val_confidence": self.val_confidence, "val_entropy": self.val_entropy,
                "reasons": list(self.reasons)}


def check(meta, prediction, rgb: np.ndarray) -> DomainFinding | None:
    """The finding for a Predictor's ``prediction`` of ``rgb`` under checkpoint ``meta``; None
    for untrained weights (flagged as such elsewhere) or a checkpoint without a model card."""
    if not meta.trained:
        return None
    card = read_card(meta.training)
    if card is None:
        return None
    return assess(card, prediction.probabilities, rgb, list(meta.classes.names))


def unchecked_warning(meta) -> str | None:
    """The sentence to show when a trained checkpoint has a model card that cannot be read:
    its predictions go unchecked, which must not pass silently. None otherwise (also for a
    checkpoint with no card at all, which the Model panel describes)."""
    return card_problem(meta.training) if meta.trained else None


def assess(card: ModelCard, probabilities: np.ndarray, rgb: np.ndarray,
           class_names: list[str] | None = None) -> DomainFinding:
    """Hold one prediction (C×H×W probabilities) and its H×W×3 uint8 input against ``card``;
    ``class_names`` name a class whose share is out of range.

    Confidence and entropy are means, so on a large image they are taken on a regular grid of
    about a million pixels: the same figure within a fraction of a percent, at a fraction of
    the time."""
    probs = np.asarray(probabilities)
    step = max(1, int(np.ceil(np.sqrt(probs.shape[1] * probs.shape[2] / SAMPLE_PIXELS))))
    probabilities = probs[:, ::step, ::step]
    conf, ent = confidence_and_entropy(probabilities)
    grey = grey_of(rgb)
    mean, std = float(grey.mean()), float(grey.std())
    colour = colourfulness(rgb)
    reasons: list[str] = []
    if card.val_confidence is not None and conf < card.val_confidence - CONFIDENCE_DROP:
        reasons.append("the network is much less sure than on its validation images")
    elif card.val_entropy is not None and ent > card.val_entropy + ENTROPY_RISE:
        reasons.append("the class probabilities are much more spread than on its validation "
                       "images")
    lo, hi = card.image_means
    if not lo - MEAN_MARGIN <= mean <= hi + MEAN_MARGIN:
        reasons.append(f"mean grey level {mean:.0f} lies outside the training images' "
                       f"{lo:.0f}–{hi:.0f}")
    slo, shi = card.image_stds
    if not slo - STD_MARGIN <= std <= shi + STD_MARGIN:
        reasons.append(f"contrast (sd {std:.0f}) lies outside the training images' "
                       f"{slo:.0f}–{shi:.0f}")
    if card.histogram and card.histogram_distance > 0:
        dist = histogram_distance(grey_histogram(rgb), card.histogram)
        if dist > HISTOGRAM_FACTOR * card.histogram_distance:
            reasons.append("its grey-level histogram is unlike any training image's")
    odd = _odd_class(card, probabilities, class_names or [])
    if odd:
        reasons.append(odd)
    if card.colourfulness < GREY_COLOURFULNESS and colour > COLOUR_LIMIT:
        reasons.append("a colour image, where it saw only grey ones")
    elif card.colourfulness > COLOURFUL_TRAINING and colour < GREY_LIMIT:
        reasons.append("a grey image, where it saw only colour ones")
    return DomainFinding(conf, ent, mean, std, colour, card.val_confidence, card.val_entropy,
                         card.data_kind, reasons)


def _odd_class(card: ModelCard, probabilities: np.ndarray, names: list[str]) -> str | None:
    """A sentence about the first class whose share of the image lies outside its training
    range, or None."""
    ranges = card.predicted_fractions
    if not ranges or len(ranges) != probabilities.shape[0]:
        return None
    labels = np.asarray(probabilities).argmax(axis=0)
    shares = class_fractions(labels.astype(np.uint8), len(ranges))
    for c, ((lo, hi), share) in enumerate(zip(ranges, shares)):
        margin = max(FRACTION_FLOOR, FRACTION_MARGIN * (hi - lo))
        if not lo - margin <= share <= hi + margin:
            name = names[c] if c < len(names) else f"class {c}"
            return (f"'{name}' covers {share:.0%} of it, against {lo:.0%}–{hi:.0%} of a "
                    "validation image")
    return None
