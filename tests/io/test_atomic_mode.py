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
