"""Who segstudio is to a DICOMweb server: credentials from the environment or a private file.

Never from the command line (other users see a process's arguments) and never inside the URL.
In order:

1. ``SEGSTUDIO_DICOMWEB_TOKEN``: a bearer token (``Authorization: Bearer …``);
2. ``SEGSTUDIO_DICOMWEB_USER`` and ``SEGSTUDIO_DICOMWEB_PASSWORD``: HTTP basic authentication;
3. the file ``dicomweb.json`` in the user's config folder (``$SEGSTUDIO_CONFIG_DIR``, else
   ``$XDG_CONFIG_HOME/segstudio``, else ``~/.config/segstudio``; ``%APPDATA%\\segstudio`` on
   Windows)::

       {"servers": [{"url": "https://pacs.example.org/dicom-web",
                     "user": "me", "password": "…"},
                    {"url": "https://other.example.org/", "token": "…"}]}

   The entry whose ``url`` is the longest prefix of the server's URL applies. On POSIX systems
   the file must belong to the user and be readable by nobody else (``chmod 600``); otherwise
   it is refused, so that a password another user could read is never used.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

CONFIG_NAME = "dicomweb.json"
USER_VAR, PASSWORD_VAR, TOKEN_VAR = ("SEGSTUDIO_DICOMWEB_USER", "SEGSTUDIO_DICOMWEB_PASSWORD",
                                     "SEGSTUDIO_DICOMWEB_TOKEN")
_MAX_CONFIG_BYTES = 1 << 20


class CredentialError(ValueError):
    """Credentials that are incomplete, unreadable or not private; one line."""


@dataclass(frozen=True)
class Credentials:
    user: str | None = None
    password: str | None = None
    token: str | None = None
    source: str = ""                  # where they came from, for messages (never the secret)

    def __repr__(self) -> str:        # never print a secret by accident
        return f"Credentials(source={self.source!r})"


def config_dir() -> Path:
    """The user's segstudio config folder."""
    explicit = os.environ.get("SEGSTUDIO_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    if sys.platform == "win32" and os.environ.get("APPDATA"):
        return Path(os.environ["APPDATA"]) / "segstudio"
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "segstudio"


def credentials_for(url: str, env: dict | None = None) -> Credentials | None:
    """The credentials to use for ``url``, or None when none are configured."""
    env = os.environ if env is None else env
    if env.get(TOKEN_VAR):
        return Credentials(token=env[TOKEN_VAR], source=TOKEN_VAR)
    user, password = env.get(USER_VAR), env.get(PASSWORD_VAR)
    if user or password:
        if not (user and password is not None):
            missing = PASSWORD_VAR if user else USER_VAR
            raise CredentialError(f"{missing} is not set; set both {USER_VAR} and "
                                  f"{PASSWORD_VAR}, or neither")
        return Credentials(user=user, password=password, source=f"{USER_VAR}/{PASSWORD_VAR}")
    return _from_file(config_dir() / CONFIG_NAME, url)


def _from_file(path: Path, url: str) -> Credentials | None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    except OSError as e:
        raise CredentialError(f"{path}: cannot be read ({e.strerror or e})") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise CredentialError(f"{path}: is not a regular file")
        if os.name == "posix":
            if info.st_uid != os.getuid():
                raise CredentialError(f"{path}: belongs to another user; refusing its "
                                      "credentials")
            if info.st_mode & 0o077:
                raise CredentialError(
                    f"{path}: can be read by other users (mode {stat.S_IMODE(info.st_mode):o}); "
                    f"make it private with: chmod 600 {path}")
        raw = f.read(_MAX_CONFIG_BYTES + 1)
    if len(raw) > _MAX_CONFIG_BYTES:
        raise CredentialError(f"{path}: is too large for a credentials file")
    try:
        data = json.loads(raw.decode("utf-8"))
        servers = data["servers"]
        entries = [(str(s["url"]), s) for s in servers]
    except (ValueError, KeyError, TypeError) as e:
        raise CredentialError(f"{path}: is not a DICOMweb credentials file ({type(e).__name__}: "
                              'expected {"servers": [{"url": …, "user": …, "password": …}]})') \
            from None
    matches = [(len(prefix), s) for prefix, s in entries if _normal(url).startswith(_normal(prefix))]
    if not matches:
        return None
    entry = max(matches, key=lambda m: m[0])[1]
    if entry.get("token"):
        return Credentials(token=str(entry["token"]), source=str(path))
    if entry.get("user") is None or entry.get("password") is None:
        raise CredentialError(f"{path}: the entry for {entry['url']} needs user and password, "
                              "or token")
    return Credentials(user=str(entry["user"]), password=str(entry["password"]),
                       source=str(path))


def _normal(url: str) -> str:
    return url.strip().rstrip("/").lower() + "/"
