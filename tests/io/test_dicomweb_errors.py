"""DICOMweb failures are one line each and leave the workspace as it was: a refused connection,
a server that never answers, a 500, an answer cut off midway, a hostile instance name; and
credentials come only from the environment or a private file."""

from __future__ import annotations

import io
import os
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from segstudio.cli import main

pytest.importorskip("dicomweb_client", reason="the [pacs] extra (dicomweb-client) is missing")

STUDY = "1.2.826.0.1.3680043.8.498.1"


@pytest.fixture(autouse=True)
def no_user_credentials(monkeypatch, tmp_path):
    for var in ("SEGSTUDIO_DICOMWEB_USER", "SEGSTUDIO_DICOMWEB_PASSWORD",
                "SEGSTUDIO_DICOMWEB_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SEGSTUDIO_CONFIG_DIR", str(tmp_path / "config"))


class _Server:
    """A DICOMweb server on 127.0.0.1 that answers as the test says."""

    def __init__(self, respond):
        seen = self.seen = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):                           # noqa: N802 - http.server's name
                seen.append((self.path, dict(self.headers)))
                respond(self)

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/dicom-web"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    made = []

    def start(respond):
        s = _Server(respond)
        made.append(s)
        return s
    yield start
    for s in made:
        s.close()


def _dicom_bytes(sop: str) -> bytes:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    ds.StudyInstanceUID = STUDY
    ds.SOPInstanceUID = sop
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _multipart(parts: list[bytes], *, cut: bool = False):
    boundary = "segstudio-test-boundary"
    body = b"".join(b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n"
                    + p + b"\r\n" for p in parts) + b"--" + boundary.encode() + b"--\r\n"

    def respond(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", f'multipart/related; type="application/dicom"; '
                                            f"boundary={boundary}")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body[: len(body) // 2] if cut else body)
        if cut:
            handler.wfile.flush()
            handler.connection.shutdown(socket.SHUT_RDWR)
    return respond


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    # Progress ("fetched N instance(s)") may stand on its own line before the error.
    lines = [line for line in err.replace("\r", "\n").splitlines()
             if line.strip() and not line.startswith("fetched ")]
    assert len(lines) == 1 and lines[0].startswith("segstudio dicomweb: error: "), err
    assert "Traceback" not in err
    return lines[0]


def _pull(url, into, *extra):
    return main(["dicomweb", "pull", url, "--study", STUDY, "--into", str(into), *extra])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]



def _contents(folder) -> list[str]:
    """The names in ``folder`` a user sees, after checking that no pull's staging folder is
    left; the workspace lock's own hidden files are not the pull's doing."""
    names = sorted(p.name for p in folder.iterdir())
    assert not [n for n in names if n.startswith(".segstudio-pull-")], names
    return [n for n in names if not n.startswith(".")]

def test_a_refused_connection_is_one_line_and_writes_nothing(tmp_path, capsys):
    ws = tmp_path / "ws"
    ws.mkdir()
    assert _pull(f"http://127.0.0.1:{_free_port()}/dicom-web", ws) == 2
    assert "cannot connect to 127.0.0.1" in _one_line(capsys)
    assert _contents(ws) == []


def test_a_server_that_never_answers_times_out_in_one_line(tmp_path, capsys):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)                    # accepts connections, never answers
    try:
        port = silent.getsockname()[1]
        assert main(["dicomweb", "studies", f"http://127.0.0.1:{port}/dicom-web",
                     "--timeout", "0.5"]) == 2
    finally:
        silent.close()
    assert "did not answer in time" in _one_line(capsys)


def test_a_server_error_is_one_line(server, tmp_path, capsys):
    def fail(handler):
        handler.send_response(500, "Internal Server Error")
        handler.send_header("Content-Length", "0")
        handler.end_headers()
    s = server(fail)
    ws = tmp_path / "ws"
    assert _pull(s.url, ws) == 2
    assert "answered 500" in _one_line(capsys)
    assert not ws.exists()                           # the folder the pull made is gone too


def test_an_answer_cut_off_midway_leaves_nothing_in_the_workspace(server, tmp_path, capsys):
    s = server(_multipart([_dicom_bytes(f"{STUDY}.{n}") for n in range(1, 4)], cut=True))
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "mine.png").write_bytes(b"not touched")
    assert _pull(s.url, ws) == 2
    _one_line(capsys)
    assert _contents(ws) == ["mine.png"]


def test_a_whole_answer_lands_as_files_named_by_sop_instance_uid(server, tmp_path, capsys):
    sops = [f"{STUDY}.{n}" for n in range(1, 4)]
    s = server(_multipart([_dicom_bytes(sop) for sop in sops]))
    ws = tmp_path / "ws"
    assert _pull(s.url, ws) == 0
    assert _contents(ws) == sorted(f"{sop}.dcm" for sop in sops)
    for sop in sops:
        ds = pydicom.dcmread(ws / f"{sop}.dcm")
        assert ds.SOPInstanceUID == sop
        assert ds.pixel_array.shape == (128, 128)


def test_an_instance_whose_uid_is_a_path_is_refused(server, tmp_path, capsys):
    s = server(_multipart([_dicom_bytes(f"{STUDY}.1"), _dicom_bytes("../../escaped")]))
    ws = tmp_path / "ws"
    assert _pull(s.url, ws) == 2
    assert "is not a UID" in _one_line(capsys)
    assert not ws.exists()
    assert not list(tmp_path.glob("**/escaped*"))


def test_a_private_credentials_file_is_used_and_one_others_can_read_is_refused(
        server, tmp_path, capsys, monkeypatch):
    def empty(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "application/dicom+json")
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"[]")
    s = server(empty)
    config = tmp_path / "config"
    config.mkdir()
    creds = config / "dicomweb.json"
    creds.write_text('{"servers": [{"url": "%s", "user": "ana", "password": "s3cret"}]}' % s.url)
    os.chmod(creds, 0o644)
    assert main(["dicomweb", "studies", s.url]) == 2
    line = _one_line(capsys)
    assert "can be read by other users" in line and "chmod 600" in line
    assert s.seen == []                              # nothing was sent
    os.chmod(creds, 0o600)
    assert main(["dicomweb", "studies", s.url]) == 0
    assert "no study matches" in capsys.readouterr().err
    import base64
    assert s.seen[-1][1]["Authorization"] == "Basic " + base64.b64encode(b"ana:s3cret").decode()


def test_a_token_from_the_environment_is_sent_as_a_bearer(server, capsys, monkeypatch):
    def empty(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "application/dicom+json")
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"[]")
    s = server(empty)
    monkeypatch.setenv("SEGSTUDIO_DICOMWEB_TOKEN", "tok-123")
    assert main(["dicomweb", "studies", s.url, "--modality", "CT"]) == 0
    path, headers = s.seen[-1]
    assert headers["Authorization"] == "Bearer tok-123"
    assert "ModalitiesInStudy=CT" in path


def test_credentials_never_come_from_the_command_line(tmp_path, capsys, monkeypatch):
    assert main(["dicomweb", "studies", "http://ana:pw@127.0.0.1:9/dicom-web"]) == 2
    line = _one_line(capsys)
    assert "credentials do not belong in the URL" in line and "pw" not in line
    monkeypatch.setenv("SEGSTUDIO_DICOMWEB_USER", "ana")
    assert main(["dicomweb", "studies", "http://127.0.0.1:9/dicom-web"]) == 2
    assert "SEGSTUDIO_DICOMWEB_PASSWORD is not set" in _one_line(capsys)
    with pytest.raises(SystemExit):
        from segstudio.cli import build_parser
        build_parser(["dicomweb"]).parse_args(["dicomweb", "studies", "http://x", "--password",
                                               "pw"])


def test_push_refuses_a_file_that_is_not_a_seg_before_sending_anything(server, tmp_path,
                                                                      capsys):
    s = server(lambda handler: pytest.fail("nothing should be sent"))
    ws = tmp_path / "ws"
    ws.mkdir()
    plain = get_testdata_file("CT_small.dcm", download=False)
    assert main(["dicomweb", "push", str(ws), s.url, "--seg", plain]) == 2
    assert "not a DICOM SEG object" in _one_line(capsys)
    (tmp_path / "junk.dcm").write_bytes(b"junk")
    assert main(["dicomweb", "push", str(ws), s.url, "--seg", str(tmp_path / "junk.dcm")]) == 2
    assert "junk.dcm" in _one_line(capsys)
    assert s.seen == []


@pytest.mark.skipif("segstudio.commands.export_dicom_seg" in sys.modules or
                    os.path.exists(os.path.join(os.path.dirname(__file__), "..", "..",
                                                "segstudio", "commands", "export_dicom_seg.py")),
                    reason="export-dicom-seg exists: push exports the SEGs itself")
def test_push_without_seg_files_or_a_seg_export_says_what_to_give(tmp_path, capsys):
    ws = tmp_path / "ws"
    ws.mkdir()
    assert main(["dicomweb", "push", str(ws), "http://127.0.0.1:9/dicom-web"]) == 2
    assert "--seg" in _one_line(capsys)


def test_study_uid_and_date_are_checked_before_any_request(tmp_path, capsys):
    assert main(["dicomweb", "pull", "http://127.0.0.1:9/dicom-web", "--study", "../x",
                 "--into", str(tmp_path / "ws")]) == 2
    assert "not a DICOM UID" in _one_line(capsys)
    assert not (tmp_path / "ws").exists()
    assert main(["dicomweb", "studies", "http://127.0.0.1:9/dicom-web", "--date", "2024-01-01"]) == 2
    assert "YYYYMMDD" in _one_line(capsys)


def test_pixels_survive_a_pull_bit_for_bit(server, tmp_path):
    source = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    s = server(_multipart([_dicom_bytes(f"{STUDY}.7")]))
    assert _pull(s.url, tmp_path / "ws") == 0
    pulled = pydicom.dcmread(tmp_path / "ws" / f"{STUDY}.7.dcm")
    np.testing.assert_array_equal(pulled.pixel_array, source.pixel_array)


def test_a_pull_waits_for_the_workspace_lock_and_says_who_holds_it(server, tmp_path, capsys,
                                                                   monkeypatch):
    """While another segstudio holds the workspace's lock, the instances are not put in place:
    after the lock's timeout the pull gives up in one line, leaving the folder as it was."""
    from segstudio.io import workspace_lock
    from segstudio.io.workspace import Workspace

    ws = tmp_path / "ws"
    ws.mkdir()
    s = server(_multipart([_dicom_bytes(f"{STUDY}.1")]))
    monkeypatch.setattr(workspace_lock, "LOCK_TIMEOUT_S", 0.5)
    held, release = threading.Event(), threading.Event()

    def hold():
        with workspace_lock.workspace_lock(ws / Workspace.FILE_NAME):
            held.set()
            release.wait(30)
    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        assert _pull(s.url, ws) == 2
        assert "another segstudio" in _one_line(capsys)
        assert not [p for p in ws.iterdir() if p.suffix == ".dcm" or p.name.startswith(
            ".segstudio-pull-")]
    finally:
        release.set()
        holder.join(30)
    assert _pull(s.url, ws) == 0
    assert (ws / f"{STUDY}.1.dcm").is_file()


@pytest.mark.parametrize("part", [b"", b"\x00" * 200, b"DICM" * 40, b"not dicom at all"])
def test_a_part_that_is_not_dicom_is_one_line_and_writes_nothing(server, tmp_path, capsys,
                                                                 part):
    s = server(_multipart([_dicom_bytes(f"{STUDY}.1"), part]))
    ws = tmp_path / "ws"
    ws.mkdir()
    assert _pull(s.url, ws) == 2
    _one_line(capsys)
    assert _contents(ws) == []
