import numpy as np
import pytest

from segstudio.core.classes import ClassSet, ClassSetError, chest_xray, preset, voc21
from segstudio.core.palette import VOC_COLORMAP
from segstudio.io.class_files import load_class_set


def test_voc_colormap_has_the_published_first_colours():
    assert VOC_COLORMAP[1].tolist() == [128, 0, 0]
    assert VOC_COLORMAP[15].tolist() == [192, 128, 128]   # person
    assert VOC_COLORMAP[255].tolist() == [224, 224, 192]  # void


def test_voc21_preset():
    cs = voc21()
    assert len(cs) == 21 and cs[15].name == "person" and cs[15].color == (192, 128, 128)


def test_chest_xray_colours():
    cs = chest_xray()
    assert cs.names == ("background", "lungs", "heart", "clavicles")
    r, g, b = cs[cs.index_of("heart")].color
    assert r > 150 and g < 50 and b < 50
    assert cs[cs.index_of("lungs")].color[1] > 150
    assert cs[cs.index_of("clavicles")].color[2] > 150


def test_bad_class_sets_are_refused():
    with pytest.raises(ClassSetError, match="unique"):
        ClassSet(["a", "a"])
    with pytest.raises(ClassSetError):
        ClassSet(["a"], [(300, 0, 0)])
    with pytest.raises(ClassSetError):
        preset("nope")


def test_color_table_puts_void_at_255():
    table = chest_xray().color_table()
    assert table.shape == (256, 3) and table.dtype == np.uint8
    assert tuple(table[255]) == (224, 224, 192)
    assert tuple(table[2]) == chest_xray()[2].color


@pytest.mark.parametrize("text, says", [
    ('{"classes": [{"index": 0, "name": "a", "color": [Infinity, 0, 0]}]}', "colour"),
    ('{"classes": [{"index": 0, "name": "a", "color": [NaN, 0, 0]}]}', "colour"),
    ('{"classes": [{"index": Infinity, "name": "a", "color": [1, 0, 0]}]}', "class index inf"),
    ('{"classes": [{"index": -Infinity, "name": "a", "color": [1, 0, 0]}]}', "class index -inf"),
    ('{"classes": [{"index": 0.5, "name": "a", "color": [1, 0, 0]}]}', "class index 0.5"),
    ('{"classes": [{"index": 0, "name": "a", "color": "abc"}]}', "colour"),
    ('{"classes": [{"index": 0, "name": "a", "color": [1, 2]}]}', "colour"),
    ('{"classes": [{"index": 0, "name": "a", "color": 7}]}', "colour"),
    ('{"classes": [{"index": 0, "name": "a", "color": [1, 0, 0]}], "x": ' + "9" * 5000 + "}",
     "cannot read class set"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
])
def test_class_set_file_with_odd_numbers_is_a_class_set_error(tmp_path, text, says):
    path = tmp_path / "classes.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ClassSetError) as err:
        load_class_set(path)
    assert says in str(err.value)


def test_whole_float_indices_and_colours_still_load():
    cs = ClassSet.from_dict({"classes": [{"index": 1.0, "name": "b", "color": [0.0, 2, 3]},
                                         {"index": 0, "name": "a", "color": [np.int64(9), 8, 7]}]})
    assert cs.names == ("a", "b") and cs.colors == ((9, 8, 7), (0, 2, 3))
