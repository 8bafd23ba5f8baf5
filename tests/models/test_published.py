"""Published torchvision weights: used from the cache, fetched only when asked, never in tests."""

import pytest
import torch

from segstudio.models import published
from segstudio.models.checkpoint import load_checkpoint
from segstudio.models.registry import build_model


@pytest.fixture(autouse=True)
def _hub(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))


def _fake_fetch(url, dest):
    """Stands in for the network: a file of the right layout (random weights)."""
    torch.save(build_model("deeplabv3_mobilenet_v3_large", 21, "paper").state_dict(), dest)


def test_download_puts_the_file_in_the_cache_and_install_makes_a_trained_checkpoint(tmp_path):
    name = "deeplabv3_mobilenet_v3_large"
    assert not published.is_cached(name)
    path = published.download(name, fetch=_fake_fetch)
    assert path == published.cached_file(name) and published.is_cached(name)
    ckpt = published.install(name, tmp_path / "models")
    model, meta = load_checkpoint(ckpt)
    assert meta.trained and meta.arch == name and len(meta.classes) == 21
    assert meta.classes[15].name == "person"
    assert "download.pytorch.org" in meta.training["url"]


def test_offline_download_is_a_clear_error_and_leaves_no_partial_file(tmp_path):
    def offline(url, dest):
        dest.write_bytes(b"half a file")
        raise OSError("Network is unreachable")

    with pytest.raises(published.PublishedWeightsError, match="Network is unreachable"):
        published.download("fcn_resnet50", fetch=offline)
    assert not published.is_cached("fcn_resnet50")
    assert not list(published.cached_file("fcn_resnet50").parent.glob("*.part"))


def test_a_file_for_another_architecture_is_refused(tmp_path):
    name = "deeplabv3_mobilenet_v3_large"
    dest = published.cached_file(name)
    dest.parent.mkdir(parents=True)
    torch.save(build_model("unet", 21, "lite").state_dict(), dest)
    with pytest.raises(published.PublishedWeightsError, match="has no place|missing"):
        published.install(name, tmp_path)


def test_models_without_published_weights_say_so():
    with pytest.raises(published.PublishedWeightsError, match="publishes no weights"):
        published.weights_entry("segnet")
