import pytest

from segstudio.core.classes import ClassSetError, chest_xray
from segstudio.io.class_files import load_class_set, save_class_set


def test_round_trip_through_a_file(tmp_path):
    cs = chest_xray().renamed(1, "lung fields").recolored(2, (250, 10, 10))
    save_class_set(cs, tmp_path / "c.json")
    assert load_class_set(tmp_path / "c.json") == cs


def test_unreadable_class_set_files_are_refused_by_name(tmp_path):
    (tmp_path / "bad.json").write_text("not json")
    with pytest.raises(ClassSetError, match="bad.json"):
        load_class_set(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ClassSetError, match="expected a JSON object"):
        load_class_set(tmp_path / "list.json")
