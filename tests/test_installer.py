"""The user installer: its own venv, a launcher that runs, a desktop entry and an icon (XDG)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_install_script_creates_venv_desktop_entry_and_icon(tmp_path):
    prefix = tmp_path / "share"
    # Dependencies are pip's job and would mean gigabytes here: install segstudio itself only,
    # which is enough for the launcher's --version and for the desktop registration.
    out = subprocess.run(
        ["bash", str(ROOT / "installer" / "install.sh"), "--prefix", str(prefix),
         "--python", sys.executable, "--pip-args", "--no-deps --no-build-isolation"],
        capture_output=True, text=True, timeout=600, env=dict(os.environ, HOME=str(tmp_path)))
    assert out.returncode == 0, out.stdout + out.stderr
    venv = prefix / "segstudio" / "venv"
    assert (venv / "bin" / "segstudio").exists()
    ver = subprocess.run([str(venv / "bin" / "segstudio-cli"), "--version"], capture_output=True,
                         text=True, timeout=60)
    assert ver.returncode == 0 and ver.stdout.startswith("segstudio ")
    entry = (prefix / "applications" / "segstudio.desktop").read_text()
    assert "[Desktop Entry]" in entry and "Type=Application" in entry
    assert f'Exec="{venv}/bin/segstudio" %F' in entry
    assert "Icon=segstudio" in entry
    assert (prefix / "icons" / "hicolor" / "scalable" / "apps" / "segstudio.svg").exists()
    # The installed copy finds its resources outside the source tree.
    res = subprocess.run([str(venv / "bin" / "python"), "-c",
                          "from segstudio.paths import resources_dir; print(resources_dir())"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert Path(res.stdout.strip()) == venv / "share" / "segstudio" / "resources"
    assert (venv / "share" / "segstudio" / "resources" / "icons" / "segstudio.svg").exists()


def test_build_tool_check_names_what_is_missing(tmp_path):
    fake_python = tmp_path / "python"
    fake_python.write_text("#!/bin/sh\necho /nonexistent/include\n")
    fake_python.chmod(0o755)
    out = subprocess.run(["bash", str(ROOT / "installer" / "check-build-tools.sh"), str(fake_python)],
                         capture_output=True, text=True)
    assert out.returncode == 1
    assert "Python development headers" in out.stderr and "python3-dev" in out.stderr
