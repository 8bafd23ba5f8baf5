"""Resume files that hold the wrong things (a list, classes as a string, NaN normalisation,
weights of another shape) are one clear error naming the file, on the API and the command line."""

from __future__ import annotations

import math

import pytest
import torch

from segstudio.cli import main
from segstudio.core.classes import chest_xray
from segstudio.models import registry
from segstudio.train.resume import ResumeError, read_resume, restore

torch.set_num_threads(1)
CLASSES = chest_xray()


def _state():
    """A resume state as the training loop writes it, for a lite U-Net after one epoch."""
    torch.manual_seed(0)
    model = registry.build_model("unet", len(CLASSES), "lite")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.rand(1, 3, 32, 32))["out"].mean().backward()
    opt.step()
    return {"arch": "unet", "config": "lite", "classes": CLASSES.to_dict(), "epoch": 1,
            "history": [{"epoch": 1, "loss": 0.5}], "best": {"epoch": 1, "miou": 0.3,
                                                             "macc": 0.4},
            "mean": [0.4, 0.4, 0.4], "std": [0.2, 0.2, 0.2],
            "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "optimizer": opt.state_dict()}


def _fresh():
    model = registry.build_model("unet", len(CLASSES), "lite")
    return model, torch.optim.AdamW(model.parameters(), lr=1e-3)


def _edit(state, what):
    if what == "list":
        return [1, 2, 3]
    if what == "classes_string":
        state["classes"] = "background,lungs,heart,clavicles"
    elif what == "epoch_inf":
        state["epoch"] = math.inf
    elif what == "mean_nan":
        state["mean"][0] = math.nan
    elif what == "std_zero":
        state["std"][2] = 0.0
    elif what == "best_string":
        state["best"] = "epoch 1"
    elif what == "history_dict":
        state["history"] = {"epoch": 1}
    elif what == "weights_nan":
        key = next(k for k, v in state["model"].items() if v.dim() == 4)
        state["model"][key] = torch.full_like(state["model"][key], math.nan)
    elif what == "optimizer_list":
        state["optimizer"] = []
    return state


@pytest.mark.parametrize("what, says", [
    ("list", "not a resume file (it holds a list"), ("classes_string", "classes is not a class set"),
    ("epoch_inf", "epoch 'inf' is not a whole number"), ("mean_nan", "mean is not three finite"),
    ("std_zero", "std must be positive"), ("best_string", "best is not a record"),
    ("history_dict", "history is not a list"), ("weights_nan", "holds NaN"),
    ("optimizer_list", "optimizer is not an optimiser state"),
])
def test_resume_file_with_wrong_parts_is_refused_naming_the_part(tmp_path, what, says):
    path = tmp_path / "run.pt.resume"
    torch.save(_edit(_state(), what), path)
    with pytest.raises(ResumeError) as err:
        read_resume(path, "unet", "lite", CLASSES)
    assert str(err.value).startswith("run.pt.resume: ") and says in str(err.value)


def test_a_good_resume_file_restores_weights_and_epoch(tmp_path):
    state = _state()
    path = tmp_path / "run.pt.resume"
    torch.save(state, path)
    model, opt = _fresh()
    epoch, history, best = restore(read_resume(path, "unet", "lite", CLASSES), model, opt,
                                   path.name, epochs=3)
    assert (epoch, history, best["miou"]) == (1, state["history"], 0.3)
    for k, v in model.state_dict().items():
        assert torch.equal(v, state["model"][k])


def test_weights_or_optimiser_of_another_shape_and_finished_runs_are_refused():
    state = _state()
    key = next(k for k, v in state["model"].items() if v.dim() == 4)
    shape = state["model"][key].shape
    with pytest.raises(ResumeError, match="already finished 1 epoch"):
        restore(state, *_fresh(), "r", epochs=1)
    wrong = dict(state, model=dict(state["model"], **{key: torch.zeros(shape[0] + 1,
                                                                        *shape[1:])}))
    with pytest.raises(ResumeError, match="weights do not fit"):
        restore(wrong, *_fresh(), "r", epochs=3)
    other = registry.build_model("unet", len(CLASSES) + 1, "lite")
    other_opt = torch.optim.AdamW(other.parameters(), lr=1e-3)
    other(torch.rand(1, 3, 32, 32))["out"].mean().backward()
    other_opt.step()
    with pytest.raises(ResumeError, match="optimiser state"):
        restore(dict(state, optimizer=other_opt.state_dict()), *_fresh(), "r", epochs=3)


@pytest.mark.parametrize("what", ["list", "classes_string"])
def test_train_command_with_a_bad_resume_file_is_one_error_line(tmp_path, capsys, what):
    assert main(["demo-data", "--kind", "xray", "--n", "4", "--size", "32",
                 "--out", str(tmp_path / "d")]) == 0
    resume = tmp_path / "bad.resume"
    torch.save(_edit(_state(), what), resume)
    capsys.readouterr()
    code = main(["train", "--model", "unet", "--data", str(tmp_path / "d" / "VOCdevkit" /
                                                         "VOC2012"),
                 "--out", str(tmp_path / "u.pt"), "--resume", str(resume), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("segstudio train: error: bad.resume: ")
    assert err.count("\n") == 1 and not (tmp_path / "u.pt").exists()
