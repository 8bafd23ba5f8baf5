"""A real Orthanc PACS with its DICOMweb plugin, for the tests that talk to a PACS.

:func:`orthanc` starts Debian's ``Orthanc`` (packages ``orthanc`` and ``orthanc-dicomweb``) on
free ports of this machine: its own storage and index under the test's folder, remote access
off (only 127.0.0.1 may talk to it), its DICOM listener off, HTTP basic authentication on with a
user made for the test. It waits until the REST API answers, and stops the server afterwards.
Without the binary or the plugin the caller is skipped, saying which is missing.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from base64 import b64encode
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

_PLUGIN_NAME = "libOrthancDicomWeb.so"
_START_TIMEOUT_S = 30.0


@dataclass
class Orthanc:
    url: str            # the DICOMweb root
    rest: str           # Orthanc's own REST API
    user: str
    password: str
    log: Path

    def auth_header(self) -> dict:
        token = b64encode(f"{self.user}:{self.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}


def _binary() -> str | None:
    found = shutil.which("Orthanc")
    if found:
        return found
    for candidate in ("/usr/sbin/Orthanc", "/usr/bin/Orthanc"):
        if Path(candidate).is_file():
            return candidate
    return None


def _plugin() -> Path | None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        listed = subprocess.run(["dpkg", "-L", "orthanc-dicomweb"], capture_output=True,
                                text=True, timeout=30).stdout.split()
        for line in listed:
            if line.endswith(_PLUGIN_NAME) and Path(line).exists():
                return Path(line)
    default = Path("/usr/share/orthanc/plugins") / _PLUGIN_NAME
    return default if default.exists() else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(server: Orthanc) -> bool:
    request = urllib.request.Request(f"{server.rest}/system", headers=server.auth_header())
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def orthanc(folder: Path) -> Iterator[Orthanc]:
    """Run an Orthanc for the block; skip the caller when Orthanc is not installed."""
    binary, plugin = _binary(), _plugin()
    if binary is None:
        pytest.skip("Orthanc is not installed (Debian package 'orthanc'; "
                    "installer/install-system-deps.sh installs it)")
    if plugin is None:
        pytest.skip("Orthanc's DICOMweb plugin is not installed (Debian package "
                    "'orthanc-dicomweb')")
    folder.mkdir(parents=True, exist_ok=True)
    http_port, dicom_port = _free_port(), _free_port()
    user, password = "segstudio", secrets.token_hex(8)
    config = {
        "Name": "segstudio-test", "HttpPort": http_port, "DicomPort": dicom_port,
        "DicomServerEnabled": False, "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True, "RegisteredUsers": {user: password},
        "StorageDirectory": str(folder / "storage"), "IndexDirectory": str(folder / "index"),
        "Plugins": [str(plugin)], "HttpThreadsCount": 4, "ConcurrentJobs": 1,
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
    }
    cfg = folder / "orthanc.json"
    cfg.write_text(json.dumps(config, indent=2))
    log = folder / "orthanc.log"
    server = Orthanc(f"http://127.0.0.1:{http_port}/dicom-web", f"http://127.0.0.1:{http_port}",
                     user, password, log)
    with open(log, "wb") as out:
        proc = subprocess.Popen([binary, str(cfg)], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not _answers(server):
            if proc.poll() is not None:
                pytest.fail(f"Orthanc exited with {proc.returncode} while starting:\n"
                            + log.read_text(errors="replace")[-2000:])
            if time.monotonic() > deadline:
                pytest.fail(f"Orthanc did not answer within {_START_TIMEOUT_S:.0f} s:\n"
                            + log.read_text(errors="replace")[-2000:])
            time.sleep(0.1)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
