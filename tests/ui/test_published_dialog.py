import torch

from segstudio.models import published
from segstudio.models.registry import build_model
from segstudio.ui.launchers import published_dialog


def test_published_weights_join_the_model_list_as_trained(window, qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    real = published.download

    def fake_download(name, progress=None, fetch=None):      # no network in tests
        return real(name, fetch=lambda url, dest: torch.save(
            build_model(name, 21, "paper").state_dict(), dest))

    monkeypatch.setattr(published, "download", fake_download)
    dialog = published_dialog(window)
    qtbot.addWidget(dialog)
    dialog.list.setCurrentRow(dialog.names.index("deeplabv3_mobilenet_v3_large"))
    assert "not downloaded" in dialog.list.currentItem().text()
    dialog.use_button.click()
    qtbot.waitUntil(lambda: dialog.task is None and window.is_idle(), timeout=120_000)
    assert dialog.installed is not None and dialog.installed.exists()
    assert "in the cache" in dialog.list.item(dialog.names.index(
        "deeplabv3_mobilenet_v3_large")).text()
    qtbot.waitUntil(lambda: window.models._catalog_loaded, timeout=60_000)
    entry = window.models.panel.current_entry()
    assert entry.choice.checkpoint == dialog.installed and entry.trained


def test_offline_says_so(window, qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(name, progress=None, fetch=None):
        raise published.PublishedWeightsError(f"{name}: could not download (offline)")

    monkeypatch.setattr(published, "download", offline)
    dialog = published_dialog(window)
    qtbot.addWidget(dialog)
    dialog.use_button.click()
    qtbot.waitUntil(lambda: dialog.task is None, timeout=30_000)
    assert "Not installed" in dialog.status.text() and "offline" in dialog.status.text()


def test_intro_wraps_and_offline_names_the_folder_for_a_file_copied_by_hand(window, qtbot,
                                                                             tmp_path,
                                                                             monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(name, progress=None, fetch=None):
        raise published.PublishedWeightsError(f"{name}: could not download (offline)")

    monkeypatch.setattr(published, "download", offline)
    dialog = published_dialog(window)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    assert dialog.intro.wordWrap() and dialog.width() <= 800
    name = dialog.names[dialog.list.currentRow()]
    folder = str(tmp_path / "hub" / "checkpoints")
    expected = published.cached_file(name).name
    assert folder in dialog.where.text() and expected in dialog.where.text()
    dialog.use_button.click()
    qtbot.waitUntil(lambda: dialog.task is None, timeout=30_000)
    assert f"copy {expected} into {folder}" in dialog.status.text()
    # A file put there by hand is found: the hint goes.
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    (tmp_path / "hub" / "checkpoints" / expected).write_bytes(b"x")
    dialog.refresh()
    assert dialog.where.text() == "" and "in the cache" in dialog.list.currentItem().text()
