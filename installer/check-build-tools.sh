#!/usr/bin/env bash
# Checks that a C++ compiler and the Python headers are present: pip builds pydensecrf2 (the dense
# CRF) from source on Linux, where no binary wheel exists. Prints what to install when they are not.
set -u
PY=${1:-python3}
missing=()
command -v g++ >/dev/null 2>&1 || command -v c++ >/dev/null 2>&1 || missing+=("a C++ compiler (g++)")
inc=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])' 2>/dev/null || true)
if [ -z "$inc" ] || [ ! -f "$inc/Python.h" ]; then
    missing+=("the Python development headers (Python.h)")
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "segstudio needs to build pydensecrf2 from source, but this machine lacks:" >&2
    for m in "${missing[@]}"; do echo "  - $m" >&2; done
    echo "Install them, for example:" >&2
    echo "  Debian/Ubuntu:  sudo apt-get install build-essential python3-dev" >&2
    echo "  Fedora:         sudo dnf install gcc-c++ python3-devel" >&2
    echo "  macOS:          xcode-select --install" >&2
    exit 1
fi
exit 0
