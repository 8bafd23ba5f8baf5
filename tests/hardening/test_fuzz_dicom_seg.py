"""A DICOM SEG mutated at random (bytes flipped in its header or pixels, cut short, values of
its segments changed) reads, or raises only DicomSegError naming the file; the import command
ends with exit 0 or one error line, never a traceback."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

pytest.importorskip("highdicom")

from segstudio.cli import main  # noqa: E402
from segstudio.core.classes import chest_xray  # noqa: E402
from segstudio.io.dicom_seg import DicomSegError, read_segmentation  # noqa: E402
from segstudio.io.dicom_seg_export import export_dicom_seg  # noqa: E402
from segstudio.io.workspace import ItemStatus, Workspace  # noqa: E402

MUTANTS = 40


@pytest.fixture(scope="module")
def seg_file(tmp_path_factory):
    path = get_testdata_file("MR_small.dcm", download=False)
    if path is None:
        pytest.skip("pydicom does not ship MR_small.dcm here")
    root = tmp_path_factory.mktemp("fuzz") / "ws"
    root.mkdir()
    shutil.copy(path, root / "mr.dcm")
    ws = Workspace.open(root, classes=chest_xray())
    labels = np.zeros((64, 64), np.uint8)
    labels[5:30, 5:30], labels[35:60, 10:50] = 1, 2
    ws.save_labels(ws.items[0], labels, status=ItemStatus.PREDICTED)
    export_dicom_seg(ws, root.parent / "segs", [ItemStatus.PREDICTED])
    return root, root.parent / "segs" / "mr_seg.dcm"


def _mutant(data: bytes, seed: int, tmp_path) -> bytes:
    rng = np.random.default_rng(seed)
    kind = seed % 4
    if kind == 0:                                       # cut short
        return data[:int(rng.integers(0, len(data)))]
    if kind == 1:                                       # bytes flipped anywhere
        arr = np.frombuffer(data, np.uint8).copy()
        where = rng.integers(0, len(arr), size=int(rng.integers(1, 30)))
        arr[where] = rng.integers(0, 256, size=len(where))
        return arr.tobytes()
    if kind == 2:                                       # bytes flipped in the header
        arr = np.frombuffer(data, np.uint8).copy()
        where = rng.integers(132, min(len(arr), 3000), size=int(rng.integers(1, 8)))
        arr[where] = rng.integers(0, 256, size=len(where))
        return arr.tobytes()
    ds = pydicom.dcmread(__import__("io").BytesIO(data))  # values changed, file well formed
    segment = ds.SegmentSequence[int(rng.integers(0, len(ds.SegmentSequence)))]
    choice = int(rng.integers(0, 5))
    if choice == 0:
        segment.SegmentNumber = int(rng.integers(0, 70000))
    elif choice == 1:
        ds.Rows = int(rng.integers(0, 70000))
    elif choice == 2:
        ds.NumberOfFrames = int(rng.integers(0, 1000))
    elif choice == 3:
        del ds.ReferencedSeriesSequence
    else:
        segment.SegmentLabel = "\\".join(["x"] * int(rng.integers(1, 4)))
    out = tmp_path / f"m{seed}.dcm"
    ds.save_as(out)
    return out.read_bytes()


def test_a_mutated_seg_reads_or_raises_only_dicom_seg_error(seg_file, tmp_path):
    _, path = seg_file
    data = path.read_bytes()
    for seed in range(MUTANTS):
        mutant = tmp_path / f"seg_{seed}.dcm"
        mutant.write_bytes(_mutant(data, seed, tmp_path))
        try:
            read_segmentation(mutant)
        except DicomSegError as e:
            assert mutant.name in str(e)


def test_importing_a_mutated_seg_is_success_or_one_error_line(seg_file, tmp_path, capsys):
    root, path = seg_file
    data = path.read_bytes()
    for seed in range(0, MUTANTS, 3):
        mutant = tmp_path / f"seg_{seed}.dcm"
        mutant.write_bytes(_mutant(data, seed, tmp_path))
        code = main(["import-labels", str(root), str(mutant)])
        err = capsys.readouterr().err
        assert "Traceback" not in err
        assert code == 0 or (code == 2 and err.strip().splitlines()[-1].startswith(
            "segstudio import-labels: error:")), err
