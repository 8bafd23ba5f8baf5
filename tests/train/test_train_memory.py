"""``segstudio train`` works out what a training step holds before it starts, and refuses in
one line when that cannot fit; its checkpoint never replaces its start checkpoint."""

import pytest

from segstudio.cli import main
from segstudio.io import decode_memory

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    assert main(["demo-data", "--kind", "shapes", "--n", "4", "--size", "64", "--out",
                 str(out)]) == 0
    return out


def test_the_estimate_grows_with_the_batch_and_the_crop():
    from segstudio.commands.train import training_bytes

    small = training_bytes("fcn8s", "lite", 4, 2, 64)
    assert small is not None and small > 0
    assert training_bytes("fcn8s", "lite", 4, 8, 64) > small
    assert training_bytes("fcn8s", "lite", 4, 2, 256) > 4 * small / 2


def test_training_that_cannot_fit_is_refused_before_it_starts(shapes, tmp_path, monkeypatch,
                                                              capsys):
    from segstudio.train import loop

    started = []
    monkeypatch.setattr(loop, "train", lambda *a, **k: started.append(1))
    monkeypatch.setattr(decode_memory, "available_memory", lambda: 1_000_000)
    code = main(["train", "--model", "fcn8s", "--data", str(shapes), "--epochs", "1",
                 "--out", str(tmp_path / "m.pt")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("segstudio train: error: not enough memory for training fcn8s "
                             "(lite) on batches of 8 crops of 128 px: needs about ")
    assert err[0].endswith("1.0 MB available; lower --batch-size or --crop")
    assert not started and not (tmp_path / "m.pt").exists()


def test_a_file_that_is_not_a_checkpoint_is_replaced_only_with_overwrite(shapes, tmp_path,
                                                                         capsys):
    notes = tmp_path / "m.pt"
    notes.write_text("my notes, not a checkpoint")
    argv = ["train", "--model", "fcn32s", "--data", str(shapes), "--epochs", "1", "--crop",
            "32", "--batch-size", "2", "--out", str(notes)]
    assert main(argv) == 2
    assert "already exists and was not written by this command; give --overwrite" in \
        capsys.readouterr().err
    assert notes.read_text() == "my notes, not a checkpoint"
    assert main(argv + ["--overwrite"]) == 0
    assert main(argv) == 0                        # a checkpoint now: a rerun replaces it
