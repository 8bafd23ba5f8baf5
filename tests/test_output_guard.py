"""An output is never one of its inputs, and a file a command did not write is replaced only
with --overwrite: every command that writes, driven at its own inputs (same name, a symbolic
link, a hard link, a folder holding them)."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
from PIL import Image

from segstudio.cli import main
from segstudio.core.classes import chest_xray
from segstudio.io.output_guard import (OutputError, check_output, check_replaced_folder,
                                       same_file, written_by)
from segstudio.io.workspace import ItemStatus, Workspace


def _picture(path, value=90):
    rgb = np.full((24, 32, 3), value, np.uint8)
    rgb[6:18, 8:24] = 220
    Image.fromarray(rgb).save(path)
    return path


def _seeds(path):
    seeds = np.full((24, 32), 255, np.uint8)
    seeds[10:12, 14:16] = 1
    seeds[1:3, 1:3] = 0
    Image.fromarray(seeds).save(path)
    return path


def _grow(tmp_path):
    return _picture(tmp_path / "image.png"), _seeds(tmp_path / "seeds.png")


def _video_workspace(tmp_path):
    folder = tmp_path / "ws"
    folder.mkdir()
    writer = cv2.VideoWriter(str(folder / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10.0,
                             (32, 24))
    for i in range(3):
        writer.write(np.full((24, 32, 3), 40 * i, np.uint8))
    writer.release()
    ws = Workspace.open(folder, classes=chest_xray())
    ws.save_labels(ws.items[1], np.ones((24, 32), np.uint8))
    ws.close()
    return folder


# Each case: a name, and a function of (tmp_path, monkeypatch) returning the command line whose output
# argument lands on one of its inputs.
def _grow_out_is_image(t, mp):
    image, seeds = _grow(t)
    return ["grow", "--image", str(image), "--seeds", str(seeds), "--out", str(image)]


def _grow_out_is_seeds(t, mp):
    image, seeds = _grow(t)
    return ["grow", "--image", str(image), "--seeds", str(seeds), "--out", str(seeds)]


def _grow_out_is_a_link_to_the_image(t, mp):
    image, seeds = _grow(t)
    os.symlink(image, t / "link.png")
    return ["grow", "--image", str(image), "--seeds", str(seeds), "--out", str(t / "link.png")]


def _grow_out_is_a_hard_link_to_the_seeds(t, mp):
    image, seeds = _grow(t)
    os.link(seeds, t / "other.png")
    return ["grow", "--image", str(image), "--seeds", str(seeds), "--out", str(t / "other.png"),
            "--overwrite"]


def _grow_out_is_the_image_through_another_path(t, mp):
    image, seeds = _grow(t)
    (t / "sub").mkdir()
    return ["grow", "--image", str(image), "--seeds", str(seeds), "--out",
            str(t / "sub" / ".." / "image.png"), "--overwrite"]


def _prompt_double(mp):
    """A network that answers at once, so that only the output check stands in the way."""
    from prompt_doubles import DiskNetwork

    from segstudio.models import prompted

    mp.setattr(prompted.PromptedSegmenter, "from_file",
               classmethod(lambda cls, path, device="cpu": cls(DiskNetwork(), device, "double")))


def _prompt_out_is_image(t, mp):
    _prompt_double(mp)
    image = _picture(t / "image.png")
    (t / "w.pth").write_bytes(b"weights")
    return ["prompt", "--weights", str(t / "w.pth"), "--image", str(image), "--point", "5", "5",
            "--out", str(image)]


def _prompt_out_is_weights(t, mp):
    _prompt_double(mp)
    image = _picture(t / "image.png")
    (t / "w.pth").write_bytes(b"weights")
    return ["prompt", "--weights", str(t / "w.pth"), "--image", str(image), "--point", "5", "5",
            "--out", str(t / "w.pth"), "--overwrite"]


def _overlay_video_out_is_its_video(t, mp):
    folder = _video_workspace(t)
    return ["overlay-video", str(folder), "--out", str(folder / "clip.mp4"), "--overwrite"]


def _overlay_video_out_is_a_hard_link_to_its_video(t, mp):
    folder = _video_workspace(t)
    os.link(folder / "clip.mp4", t / "copy.mp4")
    return ["overlay-video", str(folder), "--out", str(t / "copy.mp4"), "--overwrite"]


def _predict_out_is_the_input_folder(t, mp):
    (t / "in").mkdir()
    _picture(t / "in" / "a.png")
    return ["predict", str(t / "in"), "--out", str(t / "in"), "--model", "fcn32s",
            "--overwrite"]


def _predict_overlay_would_replace_an_input(t, mp):
    (t / "in").mkdir()
    _picture(t / "in" / "a.jpg")
    _picture(t / "in" / "a_overlay.png", 40)
    return ["predict", str(t / "in"), "--out", str(t / "in"), "--model", "fcn32s", "--overlay"]


def _train_out_is_the_start_checkpoint(t, mp):
    (t / "start.pt").write_bytes(b"a trained model")
    (t / "voc").mkdir()
    return ["train", "--model", "fcn32s", "--data", str(t / "voc"), "--init",
            str(t / "start.pt"), "--out", str(t / "start.pt"), "--overwrite"]


def _train_out_is_the_resume_file(t, mp):
    (t / "run.resume").write_bytes(b"a run's state")
    (t / "voc").mkdir()
    return ["train", "--model", "fcn32s", "--data", str(t / "voc"), "--resume",
            str(t / "run.resume"), "--out", str(t / "run.resume"), "--overwrite"]


def _export_voc_would_replace_the_workspace(t, mp):
    root = t / "out" / "VOCdevkit" / "VOC2012" / "JPEGImages"
    root.mkdir(parents=True)
    _picture(root / "x0.png")
    ws = Workspace.open(root, classes=chest_xray())
    ws.save_labels(ws.items[0], np.ones((24, 32), np.uint8), status=ItemStatus.REVIEWED)
    ws.close()
    return ["export-voc", str(root), "--out", str(t / "out"), "--overwrite"]


CASES = {f.__name__.lstrip("_"): f for f in (
    _grow_out_is_image, _grow_out_is_seeds, _grow_out_is_a_link_to_the_image,
    _grow_out_is_a_hard_link_to_the_seeds, _grow_out_is_the_image_through_another_path,
    _prompt_out_is_image, _prompt_out_is_weights, _overlay_video_out_is_its_video,
    _overlay_video_out_is_a_hard_link_to_its_video, _predict_out_is_the_input_folder,
    _predict_overlay_would_replace_an_input, _train_out_is_the_start_checkpoint,
    _train_out_is_the_resume_file, _export_voc_would_replace_the_workspace)}


def _snapshot(root):
    """Every file under ``root`` (links as links) with its bytes."""
    found = {}
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            found[path] = (os.readlink(path) if os.path.islink(path) else
                           open(path, "rb").read())
    return found


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_output_aimed_at_an_input_is_refused_and_the_input_is_untouched(tmp_path, capsys,
                                                                           monkeypatch, case):
    argv = CASES[case](tmp_path, monkeypatch)
    before = _snapshot(tmp_path)
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("\r")]
    assert len(lines) == 1 and lines[0].startswith(f"segstudio {argv[0]}: error: "), err
    assert "Traceback" not in err
    assert _snapshot(tmp_path) == before         # byte for byte, and nothing new written


def test_a_file_grow_did_not_write_is_replaced_only_with_overwrite(tmp_path, capsys):
    image, seeds = _grow(tmp_path)
    foreign = _picture(tmp_path / "holiday.png", 10)
    kept = foreign.read_bytes()
    argv = ["grow", "--image", str(image), "--seeds", str(seeds), "--out", str(foreign)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "already exists and was not written by this command; give --overwrite" in err
    assert foreign.read_bytes() == kept
    assert main(argv + ["--overwrite"]) == 0
    assert written_by(foreign, "grow")


def test_a_commands_own_earlier_result_is_replaced_without_asking(tmp_path):
    image, seeds = _grow(tmp_path)
    out = tmp_path / "grown.png"
    argv = ["grow", "--image", str(image), "--seeds", str(seeds), "--out", str(out)]
    assert main(argv) == 0
    first = out.stat().st_mtime_ns
    os.utime(out, ns=(first - 10**9, first - 10**9))
    assert main(argv) == 0                         # its own file: no --overwrite needed
    assert out.stat().st_mtime_ns != first - 10**9
    # ... but another command's mark does not count as this one's
    assert written_by(out, "grow") and not written_by(out, "prompt")


def test_predict_replaces_only_its_own_results(tmp_path, capsys):
    pytest.importorskip("torch")
    (tmp_path / "in").mkdir()
    _picture(tmp_path / "in" / "a.png")
    (tmp_path / "out").mkdir()
    _picture(tmp_path / "out" / "a.png", 10)           # someone's picture, named like a result
    kept = (tmp_path / "out" / "a.png").read_bytes()
    argv = ["predict", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--model",
            "fcn32s", "--device", "cpu", "--precision", "fp32"]
    assert main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "out" / "a.png").read_bytes() == kept
    assert main(argv + ["--overwrite"]) == 0
    assert written_by(tmp_path / "out" / "a.png", "predict")
    assert main(argv) == 0                             # now it is its own result


def test_same_file_sees_links_and_other_spellings(tmp_path):
    a = tmp_path / "a.png"
    a.write_bytes(b"x")
    os.symlink(a, tmp_path / "soft")
    os.link(a, tmp_path / "hard")
    (tmp_path / "d").mkdir()
    assert same_file(tmp_path / "soft", a) and same_file(tmp_path / "hard", a)
    assert same_file(tmp_path / "d" / ".." / "a.png", a)
    assert not same_file(tmp_path / "missing.png", a)
    (tmp_path / "b.png").write_bytes(b"x")
    assert not same_file(tmp_path / "b.png", a)


def test_a_folder_to_be_replaced_may_not_hold_an_input(tmp_path):
    tree = tmp_path / "out" / "VOCdevkit" / "VOC2012"
    (tree / "JPEGImages").mkdir(parents=True)
    with pytest.raises(OutputError, match="would replace the workspace"):
        check_replaced_folder(tree, [("the workspace", tree / "JPEGImages")])
    os.symlink(tree / "JPEGImages", tmp_path / "ws")
    with pytest.raises(OutputError):
        check_replaced_folder(tree, [("the workspace", tmp_path / "ws")])
    check_replaced_folder(tree, [("the workspace", tmp_path / "elsewhere")])   # no error


def test_a_dangling_link_at_the_output_counts_as_an_existing_file(tmp_path):
    os.symlink(tmp_path / "nowhere", tmp_path / "out.png")
    with pytest.raises(OutputError, match="--overwrite"):
        check_output(tmp_path / "out.png", [])
    check_output(tmp_path / "out.png", [], overwrite=True)
