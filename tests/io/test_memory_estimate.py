"""What can be allocated is the least of the system's, the address-space limit's and the control
group's room; work that would not fit is refused in one line before it allocates."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image, ImageFile

from segstudio.cli import main
from segstudio.io import decode_memory
from segstudio.io.decode_memory import NotEnoughMemory, require_memory


def test_available_memory_is_the_least_of_the_three_limits(monkeypatch):
    monkeypatch.setattr(decode_memory, "system_available", lambda: 8_000_000_000)
    monkeypatch.setattr(decode_memory, "address_space_headroom", lambda: 3_000_000_000)
    monkeypatch.setattr(decode_memory, "cgroup_headroom", lambda: 5_000_000_000)
    assert decode_memory.available_memory() == 3_000_000_000
    monkeypatch.setattr(decode_memory, "cgroup_headroom", lambda: 1_000_000_000)
    assert decode_memory.available_memory() == 1_000_000_000
    monkeypatch.setattr(decode_memory, "address_space_headroom", lambda: None)
    monkeypatch.setattr(decode_memory, "cgroup_headroom", lambda: None)
    assert decode_memory.available_memory() == 8_000_000_000


def _cgroup_v2(tmp_path, rel, groups):
    """A fake cgroup v2 tree: ``groups`` maps a group's path to (memory.max, current, inactive
    file cache)."""
    (tmp_path / "proc").write_text(f"0::/{rel}\n")
    for path, (limit, current, inactive) in groups.items():
        folder = tmp_path / "cg" / path
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "memory.max").write_text(f"{limit}\n")
        (folder / "memory.current").write_text(f"{current}\n")
        (folder / "memory.stat").write_text(f"anon {current}\ninactive_file {inactive}\n")
    return tmp_path / "proc", (str(tmp_path / "cg"),)


def test_the_tightest_cgroup_v2_limit_of_the_group_and_its_parents_counts(tmp_path):
    proc, roots = _cgroup_v2(tmp_path, "user.slice/app", {
        "": ("max", 9_000_000_000, 0),
        "user.slice": (4_000_000_000, 3_000_000_000, 500_000_000),     # 1.5 GB left
        "user.slice/app": (6_000_000_000, 2_000_000_000, 0)})          # 4 GB left
    assert decode_memory.cgroup_headroom(proc, roots, str(tmp_path / "none")) == 1_500_000_000


def test_no_cgroup_limit_means_unknown(tmp_path):
    proc, roots = _cgroup_v2(tmp_path, "app", {"app": ("max", 10, 0)})
    assert decode_memory.cgroup_headroom(proc, roots, str(tmp_path / "none")) is None
    assert decode_memory.cgroup_headroom(tmp_path / "missing", roots) is None


def test_a_cgroup_v1_memory_limit_counts(tmp_path):
    (tmp_path / "proc").write_text("5:cpu,cpuacct:/x\n4:memory:/job\n0::/\n")
    group = tmp_path / "v1" / "job"
    group.mkdir(parents=True)
    (group / "memory.limit_in_bytes").write_text("2000000000\n")
    (group / "memory.usage_in_bytes").write_text("1200000000\n")
    (group / "memory.stat").write_text("cache 300000000\ntotal_inactive_file 200000000\n")
    (tmp_path / "v1" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    got = decode_memory.cgroup_headroom(tmp_path / "proc", (str(tmp_path / "nov2"),),
                                        str(tmp_path / "v1"))
    assert got == 2_000_000_000 - 1_200_000_000 + 200_000_000


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS and /proc are Linux's")
def test_the_address_space_limit_is_seen_in_a_child_process():
    script = textwrap.dedent("""
        import resource
        from segstudio.io import decode_memory
        used = decode_memory._vm_size()
        resource.setrlimit(resource.RLIMIT_AS, (used + 700_000_000, resource.RLIM_INFINITY))
        print(decode_memory.address_space_headroom(), decode_memory.available_memory())
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    headroom, available = int(out[0]), int(out[1])
    assert 600_000_000 < headroom <= 700_000_000
    assert available <= headroom + 50_000_000    # read a moment later, as the process moved on


def test_require_memory_says_what_it_needs_and_what_is_available(monkeypatch):
    monkeypatch.setattr(decode_memory, "available_memory", lambda: 1_500_000_000)
    require_memory(1_000_000_000, "something small")
    with pytest.raises(NotEnoughMemory, match=r"^not enough memory for growing 9×9 pixels: "
                                              r"needs about 2\.0 GB, 1\.5 GB available$"):
        require_memory(2_000_000_000, "growing 9×9 pixels")


# -- grow --------------------------------------------------------------------------------------
def _grow_files(tmp_path, side):
    image = np.full((side, side), 40, np.uint8)
    image[side // 4:side // 2, side // 4:side // 2] = 200
    Image.fromarray(image).save(tmp_path / "image.png")
    seeds = np.full((side, side), 255, np.uint8)
    seeds[side // 3, side // 3] = 1
    seeds[0, 0] = 0
    Image.fromarray(seeds).save(tmp_path / "seeds.png")
    return ["grow", "--image", str(tmp_path / "image.png"), "--seeds",
            str(tmp_path / "seeds.png"), "--out", str(tmp_path / "out.png")]


def test_grow_that_cannot_fit_is_refused_before_growing(tmp_path, monkeypatch, capsys):
    from segstudio.refine import grow

    argv = _grow_files(tmp_path, 700)
    grown = []
    monkeypatch.setattr(grow, "grow_from_seeds", lambda *a, **k: grown.append(1))
    # Enough to read the 700² picture and seeds, not to grow over them (27 B a pixel).
    monkeypatch.setattr(decode_memory, "available_memory", lambda: 10_000_000)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "segstudio grow: error: not enough memory for growing 700×700 pixels: needs about "
        "13.2 MB, 10.0 MB available"]
    assert not grown and not (tmp_path / "out.png").exists()


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS and /proc are Linux's")
def test_grow_under_a_real_address_space_limit_is_one_line_and_writes_nothing(tmp_path):
    argv = _grow_files(tmp_path, 6000)      # growing it needs about 1 GB
    script = textwrap.dedent(f"""
        import resource, sys
        import cv2, numpy, PIL.Image
        from segstudio.cli import main
        from segstudio.io import decode_memory
        used = decode_memory._vm_size()
        resource.setrlimit(resource.RLIMIT_AS, (used + 600_000_000, resource.RLIM_INFINITY))
        sys.exit(main({argv!r}))
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "segstudio grow: error: not enough memory for growing 6000×6000 pixels: needs about "), \
        run.stderr
    assert not (tmp_path / "out.png").exists()


# -- the command line's last resort ------------------------------------------------------------
@pytest.mark.parametrize("failure", [
    MemoryError(),
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate "
                 "memory: you tried to allocate 4294967296 bytes. Error code 12"),
])
def test_an_allocation_that_fails_anyway_is_one_line_not_a_traceback(tmp_path, monkeypatch,
                                                                     capsys, failure):
    from segstudio.refine import grow

    argv = _grow_files(tmp_path, 40)

    def fail(*_a, **_k):
        raise failure

    monkeypatch.setattr(grow, "grow_from_seeds", fail)
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("segstudio grow: error: not enough memory")
    assert not (tmp_path / "out.png").exists()


def test_other_errors_are_not_passed_off_as_memory(tmp_path, monkeypatch):
    from segstudio.refine import grow

    argv = _grow_files(tmp_path, 40)
    monkeypatch.setattr(grow, "grow_from_seeds",
                        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("a bug")))
    with pytest.raises(RuntimeError, match="a bug"):
        main(argv)


# -- decoding: a valid picture the machine cannot hold is not "damaged" ------------------------
def test_a_decode_that_runs_out_of_memory_says_so_with_its_size(tmp_path, monkeypatch):
    from segstudio.io.images import ImageReadError, read_image
    from segstudio.io.voc import VocError, load_label_png

    path = tmp_path / "deep.png"
    Image.fromarray(np.arange(120 * 100, dtype=np.uint16).reshape(120, 100)).save(path)

    def no_room(self, *a, **k):             # the pixel buffer cannot be allocated
        raise MemoryError()

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_room)
    with pytest.raises(ImageReadError) as read:
        read_image(path)
    assert "not enough memory" in str(read.value) and "needs about" in str(read.value)
    assert "damaged" not in str(read.value)
    with pytest.raises(VocError) as labels:
        load_label_png(path)
    assert "not enough memory" in str(labels.value) and "needs about" in str(labels.value)
    assert "damaged" not in str(labels.value)
