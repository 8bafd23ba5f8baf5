"""A new folder starts with the class set last chosen for its kind of data, or asks, and says
which set it uses: never the chest classes on photos without a word."""

import numpy as np
from PIL import Image

from segstudio.core.classes import chest_xray, voc21
from segstudio.io.data_kind import data_kind


def _folder(tmp_path, name, colour):
    folder = tmp_path / name
    folder.mkdir()
    shape = (20, 30, 3) if colour else (20, 30)
    for i in range(2):
        Image.fromarray(np.full(shape, 40 * i, np.uint8)).save(folder / f"{name}{i}.png")
    return folder


def test_the_kind_of_data_comes_from_names_and_headers(tmp_path):
    photos, grey = _folder(tmp_path, "photos", True), _folder(tmp_path, "grey", False)
    assert data_kind(["photos0.png"], photos) == "photo"
    assert data_kind(["grey0.png", "grey1.png"], grey) == "grey"
    assert data_kind(["a.png", "b.dcm"], grey) == "dicom"
    assert data_kind(["clip.mp4"]) == "video"


def test_a_new_photo_folder_starts_with_the_set_last_chosen_for_photos(window, tmp_path, qtbot):
    first = _folder(tmp_path, "first", True)
    assert window.open_paths([first])
    window.legend.replace_classes(voc21())           # nothing labelled: no question
    assert window.classes == voc21()
    grey = _folder(tmp_path, "xrays", False)
    assert window.open_paths([grey])
    window.set_classes(chest_xray())                  # a later choice for grey pictures …
    photos = _folder(tmp_path, "holiday", True)
    assert window.open_paths([photos])                 # … does not follow onto photos
    assert window.classes == voc21() and window.workspace.classes == voc21()
    assert "colour photos" in window.notice.text() and "Pascal VOC" in window.notice.text()
    assert window.open_paths([_folder(tmp_path, "more_xrays", False)])
    assert window.classes.names == chest_xray().names


def test_grey_pictures_start_with_the_radiology_preset_whatever_was_shown_before(window,
                                                                               tmp_path, qtbot):
    assert window.open_paths([_folder(tmp_path, "photos", True)])
    window.set_classes(voc21())
    assert window.open_paths([_folder(tmp_path, "xrays", False)])
    assert window.classes == chest_xray()
    assert "grey pictures" in window.notice.text()


def test_a_new_photo_folder_with_no_earlier_choice_asks(window, tmp_path, qtbot, monkeypatch):
    from PySide6.QtWidgets import QInputDialog

    asked = []

    def answer(parent, title, text, items, current, editable):
        asked.append(text)
        return next(i for i in items if i.startswith("Pascal")), True

    monkeypatch.setattr(QInputDialog, "getItem", staticmethod(answer))
    window.interactive = True
    assert window.open_paths([_folder(tmp_path, "photos", True)])
    assert asked and "colour photos" in asked[0]
    assert window.classes == voc21()
    assert window.documents.class_memory.recall("photo") == voc21()


def test_a_window_that_cannot_ask_says_which_set_a_new_folder_uses(window, tmp_path, qtbot):
    assert window.open_paths([_folder(tmp_path, "photos", True)])
    assert window.classes.title in window.notice.text()
    assert "Class set" in window.notice.text()
