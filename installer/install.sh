#!/usr/bin/env bash
# Installs segstudio for the current user into its own virtual environment and registers a
# desktop entry and icon (XDG), so it appears in the application menu.
#
#   installer/install.sh [--prefix DIR] [--python PYTHON] [--pip-args "ARGS"] [--no-desktop]
#
# --prefix     where data goes (default: $XDG_DATA_HOME or ~/.local/share); the virtual
#              environment is PREFIX/segstudio/venv, the launcher PREFIX/../bin/segstudio is not
#              touched: the desktop entry points into the venv.
# --pip-args   extra arguments for pip (e.g. "--no-index --find-links WHEELS" offline).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "$here/.." && pwd)
prefix=${XDG_DATA_HOME:-$HOME/.local/share}
python=python3
pip_args=""
desktop=1
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=$2; shift 2 ;;
        --python) python=$2; shift 2 ;;
        --pip-args) pip_args=$2; shift 2 ;;
        --no-desktop) desktop=0; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' || {
    echo "install.sh: segstudio needs Python 3.10 or newer ($python is older)" >&2; exit 1; }
bash "$here/check-build-tools.sh" "$python"

venv="$prefix/segstudio/venv"
echo "Installing segstudio into $venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip setuptools wheel
# shellcheck disable=SC2086
"$venv/bin/python" -m pip install --quiet $pip_args "$source_dir"
"$venv/bin/segstudio-cli" --version

if [ "$desktop" = 1 ]; then
    apps="$prefix/applications"
    icons="$prefix/icons/hicolor/scalable/apps"
    mkdir -p "$apps" "$icons"
    cp "$source_dir/resources/icons/segstudio.svg" "$icons/segstudio.svg"
    tmp=$(mktemp "$apps/.segstudio.desktop.XXXXXX")
    cat > "$tmp" <<DESKTOP
[Desktop Entry]
Type=Application
Name=segstudio
GenericName=Segmentation studio
Comment=See what a segmentation network sees, and correct what it got wrong
Exec="$venv/bin/segstudio" %F
TryExec=$venv/bin/segstudio
Icon=segstudio
Terminal=false
Categories=Graphics;Science;MedicalSoftware;Education;
MimeType=image/png;image/jpeg;image/tiff;image/bmp;application/dicom;video/mp4;video/x-msvideo;inode/directory;
Keywords=segmentation;annotation;labels;x-ray;deep learning;
DESKTOP
    mv "$tmp" "$apps/segstudio.desktop"
    command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$apps" || true
    echo "Desktop entry: $apps/segstudio.desktop"
fi
echo "Done. Start it with: $venv/bin/segstudio"
