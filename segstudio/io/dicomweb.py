"""A PACS over DICOMweb: list studies (QIDO-RS), pull one into a workspace (WADO-RS), and
store DICOM SEG files (STOW-RS), through ``dicomweb-client``.

Every failure of the network or the server is a :class:`DicomWebError` with one line that says
what failed and, for the usual causes (refused connection, timeout, 401/403, 404), what to do.

A pull never leaves half a study in the workspace: instances are downloaded into a hidden
folder inside it (scans skip hidden folders), each checked, and only when all have arrived are
they moved into place as ``<SOPInstanceUID>.dcm`` — while the workspace lock is held, and only
after checking that no existing file of that name holds something else. A file that already
holds the same bytes is left as it is.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator
from urllib.parse import urlsplit

from segstudio.io.dicomweb_credentials import (PASSWORD_VAR, USER_VAR, CredentialError,
                                               Credentials, credentials_for)
from segstudio.io.workspace_error import WorkspaceError

DEFAULT_TIMEOUT_S = 30.0
SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
# Objects that are not pictures to label: a pull leaves them out (a scan would list them).
_NOT_IMAGES = {"SEG", "SR", "KO", "PR", "RTSTRUCT", "RTPLAN", "RTDOSE", "DOC", "REG"}
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_STAGING_PREFIX = ".segstudio-pull-"


class DicomWebError(Exception):
    """A DICOMweb request that failed, as one line."""


@dataclass
class Study:
    """One row of a study search."""

    uid: str
    patient_id: str = ""
    patient_name: str = ""
    date: str = ""
    accession: str = ""
    modalities: str = ""
    description: str = ""
    instances: int | None = None


@dataclass
class PullResult:
    folder: Path
    written: list[Path] = field(default_factory=list)
    already_there: int = 0
    left_out: dict[str, int] = field(default_factory=dict)    # modality → count of non-images


@dataclass
class PushResult:
    stored: list[str] = field(default_factory=list)           # SOP Instance UIDs


def check_url(url: str) -> str:
    """A DICOMweb base URL: http(s), a host, and no credentials inside it."""
    try:
        parts = urlsplit(url)
        parts.port                                            # noqa: B018 - validates the port
    except ValueError as e:
        raise DicomWebError(f"not a valid URL ({e})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DicomWebError(f"{url}: not an http:// or https:// URL of a DICOMweb server")
    if parts.username or parts.password:
        raise DicomWebError(f"{parts.hostname}: credentials do not belong in the URL; set "
                            f"{USER_VAR} and {PASSWORD_VAR}, or use dicomweb.json")
    return url.rstrip("/")


def connect(url: str, *, timeout: float = DEFAULT_TIMEOUT_S,
            credentials: Credentials | None = None):
    """A ``DICOMwebClient`` for ``url`` with the user's credentials (see
    :mod:`segstudio.io.dicomweb_credentials`) and a timeout on every request."""
    url = check_url(url)
    try:
        import requests
        from dicomweb_client.api import DICOMwebClient
    except ImportError:
        raise DicomWebError("DICOMweb needs the dicomweb-client package: "
                            "pip install 'segstudio[pacs]'") from None
    if credentials is None:
        try:
            credentials = credentials_for(url)
        except CredentialError as e:
            raise DicomWebError(str(e)) from None
    session = requests.Session()
    if credentials is not None and credentials.token:
        session.headers["Authorization"] = f"Bearer {credentials.token}"
    elif credentials is not None:
        session.auth = (credentials.user, credentials.password)
    try:
        client = DICOMwebClient(url, session=session, timeout=timeout)
    except Exception as e:  # noqa: BLE001 - the client rejects URLs in several ways
        raise DicomWebError(f"{url}: {e}") from None
    # One attempt per request: the client's own retries (five, backing off up to 16 s, on
    # refused connections too) would keep a user waiting half a minute for a plain "no".
    client.set_http_retry_params(retry=False)
    return client


@contextlib.contextmanager
def speaking(url: str, what: str) -> Iterator[None]:
    """Turn whatever the network, the server or the client raises into one DicomWebError."""
    import requests

    host = urlsplit(url).netloc or url
    try:
        yield
    except DicomWebError:
        raise
    except requests.exceptions.HTTPError as e:
        raise DicomWebError(f"{what}: {_http_message(host, e.response)}") from None
    except requests.exceptions.Timeout:
        raise DicomWebError(f"{what}: {host} did not answer in time (timeout); try again or "
                            "raise --timeout") from None
    except requests.exceptions.ConnectionError as e:
        raise DicomWebError(f"{what}: cannot connect to {host} ({_reason(e)})") from None
    except requests.exceptions.RequestException as e:
        raise DicomWebError(f"{what}: the request to {host} failed ({_reason(e)})") from None
    except Exception as e:  # noqa: BLE001 - parsing a malformed answer (JSON, multipart,
        # DICOM) fails in as many ways as the parsers have exception types
        detail = " ".join(str(e).split())[:200]
        raise DicomWebError(f"{what}: {host} sent an answer that is not valid DICOMweb "
                            f"({type(e).__name__}: {detail})") from None


def search_studies(url: str, *, patient_id: str | None = None, accession: str | None = None,
                   date: str | None = None, modality: str | None = None, limit: int = 200,
                   timeout: float = DEFAULT_TIMEOUT_S) -> list[Study]:
    """QIDO-RS: the studies matching every given field (``date``: YYYYMMDD or a range
    YYYYMMDD-YYYYMMDD)."""
    if date is not None and not re.fullmatch(r"\d{8}(-\d{8})?|\d{8}-|-\d{8}", date):
        raise DicomWebError(f"--date {date}: give YYYYMMDD, or a range YYYYMMDD-YYYYMMDD")
    filters = {k: v for k, v in (("PatientID", patient_id), ("AccessionNumber", accession),
                                 ("StudyDate", date), ("ModalitiesInStudy", modality)) if v}
    client = connect(url, timeout=timeout)
    with speaking(url, "searching studies"):
        found = client.search_for_studies(
            search_filters=filters, limit=limit,
            fields=["StudyDescription", "ModalitiesInStudy", "NumberOfStudyRelatedInstances"])
        return [_study(row) for row in found]


def pull_study(url: str, study_uid: str, into: str | Path, *,
               timeout: float = DEFAULT_TIMEOUT_S,
               progress: Callable[[int], None] | None = None,
               cancel: Callable[[], bool] | None = None,
               lock: Callable[[Path], contextlib.AbstractContextManager] | None = None
               ) -> PullResult:
    """WADO-RS: fetch every image instance of ``study_uid`` into the folder ``into`` (made if
    absent) as ``<SOPInstanceUID>.dcm``; non-image objects (SEG, SR, …) are left out and
    counted. ``lock(folder)`` is held while files are moved into place (the workspace lock)."""
    if not _UID.fullmatch(study_uid or "") or len(study_uid) > 64:
        raise DicomWebError(f"--study {study_uid}: not a DICOM UID (digits and dots, at most "
                            "64 characters)")
    folder = Path(into)
    if folder.exists() and not folder.is_dir():
        raise DicomWebError(f"{folder}: is not a folder")
    client = connect(url, timeout=timeout)
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=folder))
    except OSError as e:
        raise DicomWebError(f"{folder}: cannot be written ({e.strerror or e})") from None
    result = PullResult(folder)
    try:
        staged = _download(client, url, study_uid, staging, result, progress, cancel)
        if not staged and not result.left_out:
            raise DicomWebError(f"study {study_uid}: the server returned no instances")
        try:
            with (lock(folder) if lock is not None else contextlib.nullcontext()):
                _move_into_place(staged, folder, result)
        except WorkspaceError as e:            # the lock: held too long by another segstudio
            raise DicomWebError(f"{e}; nothing was written") from None
        return result
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not result.written:                 # a failed pull leaves no folder it made
            for made in created:
                with contextlib.suppress(OSError):
                    made.rmdir()


def _download(client, url: str, study_uid: str, staging: Path, result: PullResult,
              progress, cancel) -> list[tuple[str, Path]]:
    staged: list[tuple[str, Path]] = []
    seen: set[str] = set()
    with speaking(url, f"fetching study {study_uid}"):
        for ds in client.iter_study(study_uid):
            if cancel is not None and cancel():
                raise DicomWebError("the pull was cancelled; nothing was written")
            sop = str(ds.get("SOPInstanceUID", ""))
            if not _UID.fullmatch(sop) or len(sop) > 64:
                raise DicomWebError(f"study {study_uid}: the server sent an instance whose SOP "
                                    f"Instance UID {sop[:70]!r} is not a UID")
            if sop in seen:
                continue
            seen.add(sop)
            modality = str(ds.get("Modality", "")).strip().upper()
            if modality in _NOT_IMAGES or "PixelData" not in ds:
                key = modality or "no pixel data"
                result.left_out[key] = result.left_out.get(key, 0) + 1
                continue
            path = staging / f"{sop}.dcm"
            try:
                ds.save_as(path, enforce_file_format=True)
            except TypeError:                                 # pydicom < 3
                ds.save_as(path, write_like_original=False)
            except OSError as e:
                raise DicomWebError(f"{staging.parent}: cannot be written "
                                    f"({e.strerror or e}); nothing was written") from None
            staged.append((sop, path))
            if progress is not None:
                progress(len(staged))
    return staged


def _move_into_place(staged: list[tuple[str, Path]], folder: Path, result: PullResult) -> None:
    """Refuse the whole pull if any target holds something else; then rename each in."""
    moves: list[tuple[Path, Path]] = []
    for sop, path in staged:
        target = folder / f"{sop}.dcm"
        if target.is_symlink() or target.exists():
            if not target.is_symlink() and target.is_file() and _same_bytes(target, path):
                result.already_there += 1
                continue
            raise DicomWebError(f"{target.name}: already exists in {folder.name} with other "
                                "content; nothing was written (move it away and pull again)")
        moves.append((path, target))
    try:
        for path, target in moves:
            _place(path, target)
            result.written.append(target)
    except OSError as e:
        for target in result.written:
            with contextlib.suppress(OSError):
                target.unlink()
        result.written.clear()
        raise DicomWebError(f"{folder}: the instances could not be put in place "
                            f"({e.strerror or e}); nothing was written") from None


def _place(path: Path, target: Path) -> None:
    """Put ``path`` at ``target`` without ever replacing a file that appeared meanwhile: a hard
    link fails on an existing name; where links are not supported, a checked rename."""
    try:
        os.link(path, target)
    except FileExistsError:
        raise
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS,
                           errno.EXDEV, errno.EMLINK):
            raise
        if target.exists() or target.is_symlink():
            raise FileExistsError(errno.EEXIST, "File exists", str(target)) from None
        os.rename(path, target)


def workspace_folder_lock(folder: Path) -> contextlib.AbstractContextManager:
    """The workspace lock of ``folder`` (the one every write of its workspace file takes), so
    that a pull never interleaves with another segstudio changing the same workspace."""
    from segstudio.io.workspace import Workspace
    from segstudio.io.workspace_lock import workspace_lock

    return workspace_lock(Path(folder) / Workspace.FILE_NAME)


def _same_bytes(a: Path, b: Path) -> bool:
    try:
        if a.stat().st_size != b.stat().st_size:
            return False
        return a.read_bytes() == b.read_bytes()
    except OSError:
        return False


def push_files(url: str, paths: Iterable[str | Path], *,
               timeout: float = DEFAULT_TIMEOUT_S) -> PushResult:
    """STOW-RS: store the DICOM SEG files ``paths``. Each is read and checked before anything
    is sent; the server's list of failed instances becomes an error naming them."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    datasets = []
    for p in paths:
        path = Path(p)
        try:
            ds = pydicom.dcmread(path)
        except (InvalidDicomError, OSError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else e
            raise DicomWebError(f"{path.name}: not a readable DICOM file ({reason})") from None
        except Exception as e:  # noqa: BLE001 - pydicom reports a damaged file in many ways
            raise DicomWebError(f"{path.name}: the DICOM file is damaged ({e})") from None
        if str(ds.get("SOPClassUID", "")) != SEG_SOP_CLASS:
            raise DicomWebError(f"{path.name}: not a DICOM SEG object (SOP class "
                                f"{ds.get('SOPClassUID', 'missing')}); only segmentations are "
                                "sent")
        datasets.append(ds)
    if not datasets:
        raise DicomWebError("no DICOM SEG file to send")
    client = connect(url, timeout=timeout)
    with speaking(url, "storing the segmentations"):
        answer = client.store_instances(datasets)
    failed = [str(item.get("ReferencedSOPInstanceUID", "?"))
              for item in answer.get("FailedSOPSequence", [])]
    if failed:
        raise DicomWebError(f"the server refused {len(failed)} of {len(datasets)} "
                            f"segmentation(s): {', '.join(failed[:3])}")
    stored = [str(item.get("ReferencedSOPInstanceUID", ""))
              for item in answer.get("ReferencedSOPSequence", [])]
    return PushResult(stored or [str(ds.SOPInstanceUID) for ds in datasets])


def _study(row: dict) -> Study:
    def value(tag: str) -> str:
        entry = row.get(tag) or {}
        values = entry.get("Value") or []
        if not values:
            return ""
        parts = []
        for v in values:
            parts.append(v.get("Alphabetic", "") if isinstance(v, dict) else str(v))
        return "\\".join(parts)

    count = value("00201208")
    return Study(uid=value("0020000D"), patient_id=value("00100020"),
                 patient_name=value("00100010"), date=value("00080020"),
                 accession=value("00080050"), modalities=value("00080061"),
                 description=value("00081030"),
                 instances=int(count) if count.isdigit() else None)


def _http_message(host: str, response) -> str:
    status = getattr(response, "status_code", None)
    reason = (getattr(response, "reason", "") or "").strip()
    shown = f"{host} answered {status} {reason}".rstrip()
    if status in (401, 403):
        return (f"{shown}: the server wants other credentials (set {USER_VAR} and "
                f"{PASSWORD_VAR}, or use dicomweb.json)")
    if status == 404:
        return f"{shown}: not found (check the URL's DICOMweb root and the UID)"
    if status is not None and status >= 500:
        return f"{shown}: the server failed; try again later or ask its administrator"
    return shown


def _reason(e: Exception) -> str:
    text = str(e)
    for marker in ("Connection refused", "Name or service not known", "No route to host",
                   "Temporary failure in name resolution", "Network is unreachable"):
        if marker in text:
            return marker.lower() if marker != "Connection refused" else "connection refused"
    return type(e).__name__
