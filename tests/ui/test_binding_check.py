"""The start-up check for a Qt binding that drops references to None."""

from __future__ import annotations

import argparse
import ctypes
import sys

import pytest

from segstudio.ui import app as app_module
from segstudio.ui.binding_check import (
    PROBE_CALLS,
    BindingDefect,
    check_qt_binding,
    none_refcount_drift,
)

mortal_none = pytest.mark.skipif(sys.version_info >= (3, 12),
                                 reason="None is immortal: the defect cannot happen")


@pytest.fixture
def leaky_call():
    """A call that drops one reference to None, as the defective binding does; the references
    it took are given back afterwards."""
    calls = 0

    def drop() -> None:
        nonlocal calls
        calls += 1
        ctypes.pythonapi.Py_DecRef(ctypes.py_object(None))

    yield drop
    for _ in range(calls):
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(None))


def test_installed_binding_keeps_its_references_to_none(qapp):
    check_qt_binding()      # raises on PySide6 6.12.0 under Python 3.10/3.11


def test_many_void_calls_leave_none_where_it_was(qapp):
    from PySide6.QtWidgets import QLabel

    label = QLabel()
    assert none_refcount_drift(lambda: label.setText("x"), 500) > -250


@mortal_none
def test_drift_counts_a_reference_lost_per_call(leaky_call):
    assert none_refcount_drift(leaky_call, 40) <= -38


@mortal_none
def test_a_leaking_binding_is_refused_with_what_to_install(qapp, leaky_call):
    with pytest.raises(BindingDefect, match=r"!=6\.12\.0.*Python 3\.12"):
        check_qt_binding(leaky_call)
    assert PROBE_CALLS >= 32


def test_gui_start_stops_cleanly_on_a_defective_binding(qapp, monkeypatch, capsys):
    from segstudio.ui import binding_check

    def defective(call=None):
        raise BindingDefect("PySide6 X loses a reference to None")

    monkeypatch.setattr(binding_check, "check_qt_binding", defective)
    args = argparse.Namespace(size="1280x800", paths=[], no_demo=True, screenshot="shot.png")
    assert app_module.run_gui(args) == 1
    assert "segstudio: error: PySide6 X loses a reference to None" in capsys.readouterr().err
