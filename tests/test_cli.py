import subprocess
import sys

from segstudio import __version__


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "segstudio", *args], capture_output=True,
                          text=True, timeout=120, **kw)


def test_version():
    out = _cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"segstudio {__version__}"


def test_help_lists_the_gui_usage_and_commands():
    out = _cli("--help")
    assert out.returncode == 0
    assert "--screenshot" in out.stdout


def test_version_and_help_do_not_load_qt_or_torch():
    code = ("import sys; from segstudio.cli import main; main(['--version']); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'PySide6'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().endswith("[]"), out.stdout


def test_bad_window_size_is_a_clean_error():
    out = _cli("--size", "tiny", "--no-demo", env={"QT_QPA_PLATFORM": "offscreen", "PATH": ""})
    assert out.returncode != 0 and "--size" in out.stderr and "Traceback" not in out.stderr


def test_demo_with_paths_is_a_clean_error(tmp_path, capsys):
    from segstudio.cli import main

    assert main(["--demo", "shapes", str(tmp_path)]) == 2
    assert "--demo opens its own images" in capsys.readouterr().err
