"""The real program in a real X window (Xvfb): it starts, shows the demo, and is not blank."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def xvfb_display():
    exe = shutil.which("Xvfb")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("Xvfb is missing in CI: installer/install-system-deps.sh should install it")
        pytest.skip("Xvfb is not installed (run installer/install-system-deps.sh as root)")
    for num in range(91, 120):
        if not Path(f"/tmp/.X11-unix/X{num}").exists() and not Path(f"/tmp/.X{num}-lock").exists():
            break
    proc = subprocess.Popen([exe, f":{num}", "-screen", "0", "1400x900x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while not Path(f"/tmp/.X11-unix/X{num}").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("Xvfb did not start")
        time.sleep(0.1)
    yield f":{num}"
    proc.terminate()
    proc.wait(10)


def _run_gui(display, args, tmp_path, timeout=300):
    env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb",
               XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_DATA_HOME=str(tmp_path / "data"))
    return subprocess.run([sys.executable, "-m", "segstudio", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.xvfb
def test_real_window_opens_on_the_demo_and_is_not_blank(xvfb_display, tmp_path):
    shot = tmp_path / "window.png"
    out = _run_gui(xvfb_display, ["--screenshot", str(shot), "--size", "1280x720"], tmp_path)
    assert out.returncode == 0, out.stderr
    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape[:2] == (720, 1280)         # a laptop screen; nothing forces it larger
    # Not blank: the middle of the window (the canvas) shows an image with real contrast, not
    # the canvas's flat background, and the window as a whole has many colours.
    h, w, _ = img.shape
    centre = img[int(h * 0.3):int(h * 0.7), int(w * 0.35):int(w * 0.65)].astype(int)
    background = np.array([38, 38, 42])
    assert (np.abs(centre - background).sum(axis=2) > 30).mean() > 0.5
    assert centre.std() > 15
    colours = np.unique(img.reshape(-1, 3)[::7], axis=0)
    assert len(colours) > 200, len(colours)
    keep = os.environ.get("SEGSTUDIO_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)


@pytest.mark.xvfb
def test_screenshot_of_missing_path_is_a_clean_error(xvfb_display, tmp_path):
    out = _run_gui(xvfb_display, [str(tmp_path / "nope.png"), "--screenshot",
                                  str(tmp_path / "x.png")], tmp_path, timeout=60)
    assert out.returncode == 2
    assert "no such file" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.xvfb
def test_shapes_demo_shows_mask_rcnn_instances_outlined(xvfb_display, tmp_path):
    from segstudio.ui.canvas.prediction_layers import instance_colours

    shot = tmp_path / "shapes.png"
    out = _run_gui(xvfb_display, ["--demo", "shapes", "--screenshot", str(shot),
                                  "--size", "1280x800"], tmp_path)
    assert out.returncode == 0, out.stderr
    img = np.asarray(Image.open(shot).convert("RGB"))
    # The outlines are drawn opaque over the canvas: the first instances' own colours show.
    pixels = img.reshape(-1, 3)
    for colour in instance_colours(3):
        assert (pixels == colour).all(axis=1).sum() > 40, colour
    keep = os.environ.get("SEGSTUDIO_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(shot, Path(keep).with_name("shapes-" + Path(keep).name))
