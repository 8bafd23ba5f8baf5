#!/usr/bin/env bash
# Installs the Debian packages a real Qt window needs under a virtual X server (Xvfb), which the
# real-window tests use, dicom3tools, whose dciodvfy checks the DICOM SEG files segstudio
# writes, and Orthanc with its DICOMweb plugin, the PACS the DICOMweb tests start on a free port
# of 127.0.0.1 (never as a service). As root it installs what is missing; otherwise it only says
# what to run.
set -u
pkgs=(xvfb xauth libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1
      libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libegl1 libgl1
      libfontconfig1 libdbus-1-3 dicom3tools orthanc orthanc-dicomweb)
if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "install-system-deps: not a Debian-style system; install Xvfb and Qt's xcb libraries by hand" >&2
    exit 0
fi
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "install-system-deps: the real-window, DICOM SEG validation and PACS tests need: ${missing[*]}" >&2
    echo "  run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    echo "  (without them those tests are skipped)" >&2
    exit 0
fi
echo "install-system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# The orthanc package would start a system PACS (HTTP 8042, DICOM 4242 on every interface):
# forbid service starts during the install, then make sure none runs or starts at boot.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && own_policy=1
fi
apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
status=$?
[ "$own_policy" -eq 1 ] && rm -f "$policy"
if dpkg-query -W -f='${Status}' orthanc 2>/dev/null | grep -q "install ok installed"; then
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl disable --now orthanc >/dev/null 2>&1 || true
    else
        service orthanc stop >/dev/null 2>&1 || true
        update-rc.d orthanc disable >/dev/null 2>&1 || true
    fi
fi
exit $status
