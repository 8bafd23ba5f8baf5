"""The fine-tune defaults are the setting the adaptation benchmark chose, as recorded."""

import re
from pathlib import Path

from segstudio.train.finetune_defaults import FINE_TUNE, FROM_SCRATCH, SCRATCH_LR
from segstudio.train.loop import DEFAULT_LR

ROOT = Path(__file__).resolve().parents[2]


def test_fine_tune_defaults_are_the_benchmarks_choice():
    text = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    # bench/bench_adapt.py prints this line; BENCHMARKS.md records the run's output.
    found = re.findall(r"adapts fastest: lr x([\d.]+), (\d+) epochs, batch (\d+), crop (\d+)", text)
    assert len(found) == 1, "BENCHMARKS.md should record exactly one choice of bench_adapt.py"
    scale, epochs, batch, crop = found[0]
    assert (float(scale), int(epochs), int(batch), int(crop)) == \
        (FINE_TUNE.lr_scale, FINE_TUNE.epochs, FINE_TUNE.batch_size, FINE_TUNE.crop)
    assert "python bench/bench_adapt.py" in text


def test_from_scratch_is_the_training_default():
    assert SCRATCH_LR == DEFAULT_LR["adamw"] == FROM_SCRATCH.lr
