"""A multi-frame DICOM in the window: each frame is a row of the file list, shown from its own
stored values with "frame k of N" in the status bar; the video timeline, which plays and predicts
video files, stays hidden."""
import shutil

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file


@pytest.fixture
def dose_folder(tmp_path):
    path = get_testdata_file("rtdose.dcm", download=False)
    if path is None:
        pytest.skip("pydicom does not ship rtdose.dcm here")
    folder = tmp_path / "series"
    folder.mkdir()
    shutil.copy(path, folder / "dose.dcm")
    return folder


def test_each_frame_of_a_multi_frame_dicom_is_a_row_showing_that_frame(window, dose_folder):
    stored = pydicom.dcmread(dose_folder / "dose.dcm").pixel_array
    assert window.open_paths([dose_folder])
    assert [it.id for it in window.workspace.items] == [f"dose_{k:06d}" for k in range(15)]
    window.show_row(6)
    assert window.doc.item.frame == 6
    np.testing.assert_array_equal(window.doc.image.pixels, stored[6].astype(np.float32))
    assert "frame 7 of 15" in window.statusBar().currentMessage()
    assert not window.video.dock.isVisible()
