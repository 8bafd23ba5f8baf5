import os
import stat

from segstudio.io.atomic import atomic_write_bytes


def test_new_files_get_the_umask_mode_and_replacements_keep_theirs(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "a.bin", b"1")
        assert stat.S_IMODE(os.stat(tmp_path / "a.bin").st_mode) == 0o644
        os.chmod(tmp_path / "a.bin", 0o640)
        atomic_write_bytes(tmp_path / "a.bin", b"2")
        assert stat.S_IMODE(os.stat(tmp_path / "a.bin").st_mode) == 0o640
        assert (tmp_path / "a.bin").read_bytes() == b"2"
    finally:
        os.umask(old)


def test_a_voc_export_follows_the_umask_like_any_other_program(tmp_path):
    import numpy as np

    from segstudio.core.classes import ClassSet
    from segstudio.io.voc import VocSample, write_voc

    samples = [VocSample(f"s{i}", np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8))
               for i in range(2)]
    for umask, folder_mode, file_mode in ((0o022, 0o755, 0o644), (0o027, 0o750, 0o640)):
        old = os.umask(umask)
        try:
            out = tmp_path / f"out{umask:o}"
            result = write_voc(out, samples, ClassSet(["bg", "fg"]), val_fraction=0.5)
        finally:
            os.umask(old)
        tree = [out / "VOCdevkit", *result.voc_dir.parent.rglob("*")]
        for path in tree:
            want = folder_mode if path.is_dir() else file_mode
            assert stat.S_IMODE(os.stat(path).st_mode) == want, path


def test_the_umask_is_read_without_changing_it():
    from segstudio.io.atomic import current_umask

    old = os.umask(0o037)
    try:
        assert current_umask() == 0o037
        assert current_umask() == 0o037
    finally:
        os.umask(old)


def test_long_target_names_get_a_temporary_name_that_fits(tmp_path):
    name = "n" * 250 + ".png"
    atomic_write_bytes(tmp_path / name, b"x")
    assert (tmp_path / name).read_bytes() == b"x"


def test_an_overlay_video_follows_the_umask(tmp_path):
    import cv2
    import numpy as np

    from segstudio.core.classes import chest_xray
    from segstudio.models.video_pipeline import write_overlay_video

    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (32, 24))
    for i in range(3):
        writer.write(np.full((24, 32, 3), 40 * i, np.uint8))
    writer.release()
    old = os.umask(0o022)
    try:
        out = write_overlay_video(video, lambda i: None, chest_xray(), tmp_path / "o.mp4").path
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o644
