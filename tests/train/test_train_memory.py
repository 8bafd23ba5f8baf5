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


def test_the_estimate_of_a_network_with_weights_equals_the_meta_one_and_touches_nothing():
    """A model folder's network (weights already in memory) is sized under fake tensors: the
    same figure as the same network built on the meta device, nothing computed or changed."""
    from segstudio.models import registry
    from segstudio.train.memory import registry_step_bytes, step_bytes

    torch.manual_seed(0)
    model = registry.build_model("unet", 3, config="lite")
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    found = step_bytes(model, 2, 64)
    assert found == registry_step_bytes("unet", "lite", 3, 2, 64)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_fine_tuning_a_model_folder_that_cannot_fit_is_refused_before_it_starts(tmp_path,
                                                                               monkeypatch):
    pytest.importorskip("segmentation_models_pytorch")
    from foreign_models import save_smp_unet
    from test_finetune_file import _roads_voc

    from segstudio.train.finetune_file import finetune_model_file
    from segstudio.train.loop import TrainError

    from segstudio.models import formats

    save_smp_unet(tmp_path / "unet")
    data = _roads_voc(tmp_path / "voc")
    room = [10 ** 12]
    monkeypatch.setattr(decode_memory, "available_memory", lambda: room[0])
    load = formats.load_any

    def load_then_fill_memory(*args, **kwargs):      # the folder loads; then memory runs short
        found = load(*args, **kwargs)
        room[0] = 1_000_000
        return found

    monkeypatch.setattr(formats, "load_any", load_then_fill_memory)
    with pytest.raises(TrainError, match=r"^not enough memory for fine-tuning unet on batches "
                                         r"of 2 crops of 64 px: .*lower the batch size or the "
                                         r"crop$"):
        finetune_model_file(tmp_path / "unet", data, tmp_path / "tuned", epochs=1,
                            batch_size=2, crop=64, device="cpu")
    assert not (tmp_path / "tuned").exists()
