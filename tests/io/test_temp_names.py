"""Every temporary file or folder segstudio makes beside a user's files carries one naming scheme:
hidden, marked ``segstudio-tmp``, with this machine and this process (see io/atomic.py)."""
import os

import numpy as np

from segstudio.core.classes import ClassSet
from segstudio.io.atomic import host_tag

MARK = f".segstudio-tmp.{host_tag()}.{os.getpid()}."


def test_an_overlay_video_is_written_under_a_marked_temporary_name(tmp_path):
    import cv2

    from segstudio.models.video_pipeline import write_overlay_video

    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (32, 24))
    for i in range(3):
        writer.write(np.full((24, 32, 3), 40 * i, np.uint8))
    writer.release()
    out = tmp_path / "out" / "o.mp4"
    seen: list[str] = []

    def progress(done, total):
        seen.extend(p.name for p in out.parent.iterdir())

    write_overlay_video(video, lambda i: None, ClassSet(["bg", "fg"]), out, progress=progress)
    temporary = {n for n in seen if n != "o.mp4"}
    assert len(temporary) == 1, seen
    (name,) = temporary
    assert name.startswith(".o.mp4" + MARK) and name.endswith(".part.mp4")
    assert [p.name for p in out.parent.iterdir()] == ["o.mp4"]


def test_an_unfinished_voc_export_is_built_in_a_marked_folder(tmp_path):
    from segstudio.io.voc import VocSample, write_voc

    out = tmp_path / "export"
    devkit = out / "VOCdevkit"
    seen: list[str] = []

    def progress(done, total):
        seen.extend(p.name for p in devkit.iterdir())

    samples = [VocSample(f"s{i}", np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8))
               for i in range(2)]
    write_voc(out, samples, ClassSet(["bg", "fg"]), progress=progress)
    write_voc(out, samples, ClassSet(["bg", "fg"]), progress=progress, overwrite=True)
    partial = set(seen) - {"VOC2012"}
    assert len(partial) == 2 and "VOC2012" in seen, seen      # one for each export
    assert all(n.startswith(".VOC2012" + MARK) and n.endswith(".partial") for n in partial)
    assert sorted(p.name for p in devkit.iterdir()) == ["VOC2012"]
