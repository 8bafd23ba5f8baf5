"""``segstudio track``: SAM 2 through the ``transformers`` classes, with a tiny random model.

The reference is always the library itself, run in the test the way its documentation shows: a
session over the whole video, prompts added frame by frame each followed by a pass on that
frame, then ``propagate_in_video_iterator``."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("transformers")

from sam2_doubles import decoded_frames, moving_frames, save_tiny_sam2, write_video  # noqa: E402
from segstudio.cli import main  # noqa: E402
from segstudio.models.sam2_video import (TrackPrompt, group_by_frame,  # noqa: E402
                                         library_inputs)

ERROR = re.compile(r"^segstudio track: error: \S", re.M)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_sam2(tmp_path_factory.mktemp("sam2") / "sam2.1-tiny-random")


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("video") / "square.avi", moving_frames(24))


def library_masks(model_dir, frames, prompts, start, count, reverse=False):
    """frame index → K×H×W bool masks, from the library's own whole-video session."""
    from transformers import Sam2VideoModel, Sam2VideoProcessor

    model = Sam2VideoModel.from_pretrained(model_dir, local_files_only=True).eval()
    processor = Sam2VideoProcessor.from_pretrained(model_dir, local_files_only=True)
    session = processor.init_video_session(video=frames, inference_device="cpu",
                                           dtype=torch.float32)
    by_frame = group_by_frame(prompts)
    for index in sorted(by_frame):
        processor.add_inputs_to_inference_session(session, frame_idx=index,
                                                  **library_inputs(by_frame[index]))
        model(inference_session=session, frame_idx=index)
    size = [[session.video_height, session.video_width]]
    out = {}
    for o in model.propagate_in_video_iterator(session, start_frame_idx=start,
                                               max_frame_num_to_track=count, reverse=reverse):
        masks = processor.post_process_masks([o.pred_masks], original_sizes=size,
                                             binarize=False)[0][:, 0] > 0
        out[o.frame_idx] = (tuple(o.object_ids), masks.numpy())
    return out


def object_map(ids, masks_logits_order):
    """What the command writes, from per-object masks: the id of the object present there
    (the library's masks of two objects may overlap; the tests' objects are checked apart)."""
    ids_arr = np.zeros(masks_logits_order.shape[1:], np.uint8)
    for k, m in zip(ids, masks_logits_order):
        ids_arr[m & (ids_arr == 0)] = k
    return ids_arr


def read_png(path):
    with Image.open(path) as im:
        return np.array(im)


def test_tracked_masks_equal_the_librarys_own_session(model_dir, video, tmp_path, capsys):
    out = tmp_path / "masks"
    code = main(["track", "--weights", str(model_dir), "--video", str(video), "--out", str(out),
                 "--device", "cpu",
                 "--frame", "2", "--point", "30", "20",
                 "--frame", "2", "--obj-id", "2", "--point", "50", "40", "--negative", "8", "8",
                 "--frame", "9", "--negative", "40", "25"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    frames = decoded_frames(video)
    prompts = [TrackPrompt(2, 1, [(30, 20)], [1]), TrackPrompt(2, 2, [(50, 40), (8, 8)], [1, 0]),
               TrackPrompt(9, 1, [(40, 25)], [0])]
    reference = library_masks(model_dir, frames, prompts, start=2, count=21)
    assert sorted(reference) == list(range(2, 24))
    assert sorted(p.name for p in out.iterdir()) == [f"frame_{i:06d}.png" for i in range(2, 24)]
    from segstudio.models.sam2_video import Sam2VideoTracker

    tracker = Sam2VideoTracker.from_folder(model_dir, torch.device("cpu"))
    mine = {r.index: r for r in tracker.track(lambda i: frames[i], len(frames), prompts)}
    some_pixels = 0
    for index, (ids, masks) in reference.items():
        assert mine[index].object_ids == ids == (1, 2)
        np.testing.assert_array_equal(mine[index].masks, masks, err_msg=f"frame {index}")
        written = read_png(out / f"frame_{index:06d}.png")
        np.testing.assert_array_equal(written, mine[index].object_map())
        # Where one object alone is present, the PNG holds its id.
        only = [m & ~np.logical_or.reduce([o for j, o in enumerate(masks) if j != i])
                for i, m in enumerate(masks)]
        for k, m in zip(ids, only):
            assert (written[m] == k).all()
            some_pixels += int(m.sum())
        assert (written[~masks.any(axis=0)] == 0).all()
        line = re.search(rf"^frame {index}: object 1 (\d+) px \(score ([\d.]+)\); "
                         rf"object 2 (\d+) px", printed.out, re.M)
        assert line and int(line.group(1)) == int(masks[0].sum())
        assert int(line.group(3)) == int(masks[1].sum())
    assert some_pixels > 0                          # the comparison is not of empty masks
    assert "wrote 22 frame(s)" in printed.out


def test_a_video_shorter_than_the_pointer_memory_tracks_as_the_library_does(model_dir,
                                                                          tmp_path, capsys):
    short = write_video(tmp_path / "short.avi", moving_frames(10))
    out = tmp_path / "short"
    assert main(["track", "--weights", str(model_dir), "--video", str(short), "--out", str(out),
                 "--device", "cpu", "--frame", "1", "--point", "12", "20",
                 "--frame", "6", "--negative", "40", "25"]) == 0
    prompts = [TrackPrompt(1, 1, [(12, 20)], [1]), TrackPrompt(6, 1, [(40, 25)], [0])]
    reference = library_masks(model_dir, decoded_frames(short), prompts, start=1, count=8)
    assert sorted(reference) == list(range(1, 10))
    for index, (ids, masks) in reference.items():
        np.testing.assert_array_equal(read_png(out / f"frame_{index:06d}.png"),
                                      object_map(ids, masks), err_msg=f"frame {index}")
    capsys.readouterr()


def test_reverse_tracking_equals_the_library_backwards(model_dir, video, tmp_path, capsys):
    out = tmp_path / "back"
    code = main(["track", "--weights", str(model_dir), "--video", str(video), "--out", str(out),
                 "--device", "cpu", "--frame", "20", "--box", "10", "10", "40", "40",
                 "--frames", "3", "23", "--reverse"])
    assert code == 0, capsys.readouterr().err
    frames = decoded_frames(video)
    reference = library_masks(model_dir, frames, [TrackPrompt(20, 1, box=(10, 10, 40, 40))],
                              start=20, count=17, reverse=True)
    assert sorted(reference) == list(range(3, 21))
    assert sorted(p.name for p in out.iterdir()) == [f"frame_{i:06d}.png" for i in range(3, 21)]
    for index, (ids, masks) in reference.items():
        np.testing.assert_array_equal(read_png(out / f"frame_{index:06d}.png"),
                                      object_map(ids, masks), err_msg=f"frame {index}")


def test_a_correction_on_a_later_frame_retracks_from_there(model_dir, video, tmp_path, capsys):
    out = tmp_path / "masks"
    base = ["track", "--weights", str(model_dir), "--video", str(video), "--out", str(out),
            "--device", "cpu", "--frame", "0", "--point", "12", "20"]
    assert main(base) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert len(before) == 24
    # The person sees frame 12 go wrong and clicks there; only 12.. is tracked again.
    assert main(base + ["--frame", "12", "--point", "36", "22", "--negative", "5", "50",
                        "--frames", "12", "23"]) == 0
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    for i in range(12):
        assert after[f"frame_{i:06d}.png"] == before[f"frame_{i:06d}.png"]
    frames = decoded_frames(video)
    prompts = [TrackPrompt(0, 1, [(12, 20)], [1]), TrackPrompt(12, 1, [(36, 22), (5, 50)], [1, 0])]
    reference = library_masks(model_dir, frames, prompts, start=12, count=11)
    assert sorted(reference) == list(range(12, 24))
    changed = 0
    for index, (ids, masks) in reference.items():
        name = f"frame_{index:06d}.png"
        np.testing.assert_array_equal(read_png(out / name), object_map(ids, masks))
        changed += after[name] != before[name]
    assert changed >= 1                   # the correction changed what was tracked after it
    capsys.readouterr()


def test_a_folder_without_processor_files_uses_sam2s_own_preprocessing(model_dir, video,
                                                                      tmp_path):
    from segstudio.models.sam2_video import Sam2VideoTracker

    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        (bare / name).write_bytes((model_dir / name).read_bytes())
    frames = decoded_frames(video)[:6]
    prompts = [TrackPrompt(0, 1, [(12, 20)], [1])]
    cpu = torch.device("cpu")
    results = [[r.masks for r in Sam2VideoTracker.from_folder(d, cpu).track(
        lambda i: frames[i], len(frames), prompts)] for d in (model_dir, bare)]
    assert len(results[0]) == 6
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


# -- refusals ---------------------------------------------------------------------------------
def _refused(capsys, argv) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    # One line; argparse's own refusals print their usage above it, as for every command.
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("usage:", " "))]
    assert len(ERROR.findall(err)) == 1 and len(lines) == 1, err
    return err


def test_bad_model_folders_are_one_line_and_exit_2(model_dir, video, tmp_path, capsys):
    args = ["--video", str(video), "--out", str(tmp_path / "o"), "--frame", "0", "--point",
            "5", "5", "--device", "cpu"]
    weights_file = tmp_path / "model.safetensors"
    weights_file.write_bytes((model_dir / "model.safetensors").read_bytes())
    assert "not a folder" in _refused(capsys, ["track", "--weights", str(weights_file), *args])

    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_bytes((model_dir / "config.json").read_bytes())
    torch.save({"w": torch.zeros(1)}, pickled / "pytorch_model.bin")
    err = _refused(capsys, ["track", "--weights", str(pickled), *args])
    assert "only pickled weights (pytorch_model.bin)" in err

    nan = save_tiny_sam2(tmp_path / "nan", nan=True)
    capsys.readouterr()
    err = _refused(capsys, ["track", "--weights", str(nan), *args])
    assert "NaN" in err and "memory_encoder.projection.weight" in err

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "config.json").write_text('{"model_type": "bert"}')
    (foreign / "model.safetensors").write_bytes(b"")
    assert "not a SAM 2 config" in _refused(capsys, ["track", "--weights", str(foreign), *args])

    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "config.json").write_bytes((model_dir / "config.json").read_bytes())
    (damaged / "model.safetensors").write_bytes(
        (model_dir / "model.safetensors").read_bytes()[:5000])
    assert str(damaged) in _refused(capsys, ["track", "--weights", str(damaged), *args])

    from safetensors.torch import load_file, save_file

    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.json").write_bytes((model_dir / "config.json").read_bytes())
    state = load_file(model_dir / "model.safetensors")
    del state["mask_decoder.iou_prediction_head.proj_in.weight"]
    save_file(state, partial / "model.safetensors", metadata={"format": "pt"})
    err = _refused(capsys, ["track", "--weights", str(partial), *args])
    assert "do not fill the network" in err and "iou_prediction_head.proj_in.weight" in err

    other = tmp_path / "other"
    other.mkdir()
    config = json.loads((model_dir / "config.json").read_text())
    config["mask_decoder_config"]["mlp_dim"] = 64
    (other / "config.json").write_text(json.dumps(config))
    (other / "model.safetensors").write_bytes((model_dir / "model.safetensors").read_bytes())
    assert "weights of another shape" in _refused(capsys, ["track", "--weights", str(other),
                                                           *args])

    resized = tmp_path / "resized"
    resized.mkdir()
    for name in ("config.json", "model.safetensors"):
        (resized / name).write_bytes((model_dir / name).read_bytes())
    processor = (model_dir / "processor_config.json").read_text()
    (resized / "processor_config.json").write_text(processor.replace("64", "4096"))
    err = _refused(capsys, ["track", "--weights", str(resized), *args])
    assert "the network takes 64×64" in err
    assert not (tmp_path / "o").exists()


def test_a_config_that_disagrees_with_itself_fails_in_one_line(model_dir, video, tmp_path,
                                                              capsys):
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "model.safetensors").write_bytes((model_dir / "model.safetensors").read_bytes())
    (odd / "processor_config.json").write_bytes((model_dir / "processor_config.json")
                                                .read_bytes())
    config = json.loads((model_dir / "config.json").read_text())
    config["memory_attention_rope_feat_sizes"] = [3, 3]     # the features are 4×4
    (odd / "config.json").write_text(json.dumps(config))
    err = _refused(capsys, ["track", "--weights", str(odd), "--video", str(video), "--out",
                            str(tmp_path / "o"), "--device", "cpu", "--frame", "0", "--point",
                            "5", "5"])
    assert "failed on frame 1" in err


def test_a_frame_that_cannot_be_decoded_stops_with_one_line(model_dir, tmp_path, capsys):
    from truncated_mp4 import cut, write_mp4

    clip = cut(write_mp4(tmp_path / "whole.mp4", frames=40), tmp_path / "cut.mp4")
    out = tmp_path / "o"
    err = _refused(capsys, ["track", "--weights", str(model_dir), "--video", str(clip),
                            "--out", str(out), "--device", "cpu", "--frame", "0", "--point",
                            "5", "5"])
    assert "cannot be decoded" in err and "frames tracked before it are written" in err
    written = sorted(p.name for p in out.iterdir())
    assert written and written == [f"frame_{i:06d}.png" for i in range(len(written))]


def test_bad_prompts_and_frames_are_one_line_and_exit_2(model_dir, video, tmp_path, capsys):
    base = ["track", "--weights", str(model_dir), "--video", str(video),
            "--out", str(tmp_path / "o"), "--device", "cpu"]
    err = _refused(capsys, base + ["--frame", "0", "--point", "64", "10"])
    assert "outside the 64×64 frame" in err
    err = _refused(capsys, base + ["--frame", "24", "--point", "5", "5"])
    assert "past the end of the video (24 frames, 0..23)" in err
    err = _refused(capsys, base + ["--point", "5", "5", "--frame", "0"])
    assert "give --frame N before it" in err
    err = _refused(capsys, base + ["--frame", "0"])
    assert "give --point, --negative or --box" in err
    err = _refused(capsys, base + ["--frame", "3", "--point", "5", "5", "--frames", "5", "9"])
    assert "no prompt lies in frames 5..9" in err
    err = _refused(capsys, base + ["--frame", "0", "--point", "5", "5", "--frames", "5", "30"])
    assert "not a range" in err
    err = _refused(capsys, base + ["--frame", "0", "--box", "5", "5", "3", "9"])
    assert "empty" in err
    err = _refused(capsys, base + ["--frame", "0", "--box", "5", "5", "30", "30",
                                   "--frame", "0", "--obj-id", "2", "--point", "40", "40"])
    assert "frame 0: give every object on this frame a box, or none" in err
    err = _refused(capsys, base + ["--frame", "0", "--obj-id", "2", "--obj-id", "3",
                                   "--point", "5", "5"])
    assert "given twice for --frame 0" in err
    err = _refused(capsys, base + ["--frame", "0", "--obj-id", "255", "--point", "5", "5"])
    assert "between 1 and 254" in err
    err = _refused(capsys, ["track", "--weights", str(model_dir), "--video", str(model_dir),
                            "--out", str(tmp_path / "o"), "--frame", "0", "--point", "5", "5"])
    assert not (tmp_path / "o").exists()


def test_existing_pngs_it_did_not_write_need_overwrite(model_dir, video, tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    theirs = out / "frame_000023.png"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(theirs)
    argv = ["track", "--weights", str(model_dir), "--video", str(video), "--out", str(out),
            "--device", "cpu", "--frame", "20", "--point", "5", "5"]
    assert "--overwrite" in _refused(capsys, argv)
    assert read_png(theirs).shape == (4, 4)
    assert main(argv + ["--overwrite"]) == 0
    assert read_png(theirs).shape == (64, 64)
    assert main(argv) == 0                          # its own PNGs are replaced without asking


def test_work_that_cannot_fit_in_memory_is_refused_before_it_starts(model_dir, video, tmp_path,
                                                                    monkeypatch, capsys):
    from segstudio.io import decode_memory
    from segstudio.models import sam2_video

    argv = ["track", "--weights", str(model_dir), "--video", str(video), "--out",
            str(tmp_path / "o"), "--device", "cpu", "--frame", "0", "--point", "5", "5"]
    loaded = []
    real = sam2_video.load_model
    monkeypatch.setattr(sam2_video, "load_model", lambda *a: loaded.append(a) or real(*a))
    weights = (model_dir / "model.safetensors").stat().st_size
    monkeypatch.setattr(decode_memory, "available_memory", lambda: weights)
    err = _refused(capsys, argv)
    assert "not enough memory for loading sam2.1-tiny-random" in err
    assert not loaded                               # refused before the weights were read
    # Room for the weights, then none left for a frame's pass through the network.
    free = iter([3 * weights, 1_000_000])
    monkeypatch.setattr(decode_memory, "available_memory", lambda: next(free))
    err = _refused(capsys, argv)
    assert "not enough memory for tracking 64×64 frames" in err
    assert loaded and not (tmp_path / "o").exists()
