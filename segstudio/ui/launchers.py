"""Opening the window's dialogs and demos: each needs a workspace (or says so), then shows the
dialog modally, or just returns it when the window is not interactive (tests, --screenshot)."""

from __future__ import annotations

from pathlib import Path

from segstudio.paths import demo_dir


def _shown(window, dialog):
    if window.interactive:
        dialog.exec()
    return dialog


def _needs_workspace(window, message: str) -> bool:
    if window.workspace is None:
        window.show_error(message)
        return False
    return True


def export_voc_dialog(window):
    """Save pending edits, then File ▸ Export VOC…"""
    from segstudio.ui.dialogs.export_voc import ExportVocDialog

    if not _needs_workspace(window, "Open a folder first: the export takes a workspace's "
                                    "labelled items.") or not window.maybe_save():
        return None
    return _shown(window, ExportVocDialog(window.workspace, window))


def export_dicom_seg_dialog(window):
    """Save pending edits, then File ▸ Export ▸ DICOM SEG…"""
    from segstudio.ui.dialogs.export_dicom_seg import ExportDicomSegDialog

    if not _needs_workspace(window, "Open a folder first: the export takes a workspace's "
                                    "labelled DICOM images.") or not window.maybe_save():
        return None
    return _shown(window, ExportDicomSegDialog(window.workspace, window))


def export_volumes_dialog(window):
    """Save pending edits, then File ▸ Export ▸ Label volumes…"""
    from segstudio.ui.dialogs.export_volumes import ExportVolumesDialog

    if not _needs_workspace(window, "Open a folder first: the export takes a workspace's "
                                    "labelled items.") or not window.maybe_save():
        return None
    return _shown(window, ExportVolumesDialog(window.workspace, window))


def open_from_pacs_dialog(window):
    """Save pending edits (the pulled study replaces the workspace), then File ▸ Open from
    PACS…"""
    from segstudio.ui.dialogs.pacs import OpenFromPacsDialog

    if not window.maybe_save():
        return None
    return _shown(window, OpenFromPacsDialog(window))


def send_seg_dialog(window):
    """File ▸ Send SEG to PACS…"""
    from segstudio.ui.dialogs.pacs import SendSegDialog

    return _shown(window, SendSegDialog(window))


def statistics_dialog(window):
    from segstudio.ui.dialogs.statistics import StatisticsDialog

    if not _needs_workspace(window, "Open a folder first."):
        return None
    window.ws_writer.flush()
    return _shown(window, StatisticsDialog(window))


def finetune_dialog(window):
    from segstudio.ui.dialogs.finetune import FineTuneDialog

    if not _needs_workspace(window, "Open a folder with corrected labels first."):
        return None
    return _shown(window, FineTuneDialog(window))


def published_dialog(window):
    from segstudio.ui.dialogs.published_weights import PublishedWeightsDialog

    return _shown(window, PublishedWeightsDialog(window))


def shortcut_sheet(window):
    """Help ▸ Keyboard shortcuts (F1)."""
    from segstudio.ui.dialogs.shortcut_sheet import ShortcutSheet

    return _shown(window, ShortcutSheet(window))


def demo_paths(kind: str = "chest") -> list[Path]:
    """The demo as a workspace of its own in the user's data folder (the bundled files may sit
    in a read-only install): ``chest`` — the synthetic chest X-ray phantoms; ``context`` — the
    boat-or-car scene of the receptive-field lesson; ``shapes`` — overlapping shapes for
    instance segmentation."""
    import shutil

    from segstudio.paths import user_data_dir

    src = demo_dir()
    files = sorted(src.glob(f"{kind}_*.png")) if src.is_dir() else []
    if not files:
        return []
    dest = user_data_dir() / f"demo-{kind}"
    dest.mkdir(parents=True, exist_ok=True)
    for f in files:           # a demo picture changed by an update replaces the old copy
        copy = dest / f.name
        if not copy.exists() or copy.read_bytes() != f.read_bytes():
            shutil.copyfile(f, copy)
    return [dest]


DEMO_MODELS = {"chest": "chest_xray_unet_lite.pt", "context": "context_pspnet_lite.pt",
               "shapes": "shapes_maskrcnn_lite.pt"}


def open_demo(window, kind: str) -> bool:
    """Help ▸ demos: the chest X-ray phantoms, the boat-or-car context scene, or the shapes
    scene for instance segmentation, each with its bundled model run at once (the shapes demo
    with its instances outlined)."""
    from segstudio.core.classes import chest_xray
    from segstudio.train.synth_context import context_classes
    from segstudio.train.synth_shapes import shapes_classes

    paths = demo_paths(kind)
    if not paths:
        window.show_error(f"The {kind} demo is not installed with this copy of segstudio.")
        return False
    # Each demo with its own class set, whatever was open before.
    classes = {"chest": chest_xray, "context": context_classes, "shapes": shapes_classes}[kind]
    if not window.open_paths(paths, classes=classes()):
        return False
    window.models.prefer_checkpoint = DEMO_MODELS[kind]
    window.models.run_when_ready = True
    window.models.start()
    if kind == "shapes":
        window.instances_action.setChecked(True)
        window.layers.set_instances(True)
    return True
