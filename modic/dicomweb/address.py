"""DICOMweb addresses and the credentials that go with them.

An address names the server's DICOMweb root with a ``dicomweb+`` prefix, so that a
command that takes a folder can take a server instead::

    dicomweb+http://127.0.0.1:8042/dicom-web
    dicomweb+https://pacs.example.org/dicomweb

Credentials never travel in the address (a ``user:password@`` part is refused: it would
show in the process list, in shell history and in logs). They come, in this order, from

1. the environment: ``MODIC_DICOMWEB_USER`` and ``MODIC_DICOMWEB_PASSWORD`` (HTTP basic
   authentication), or ``MODIC_DICOMWEB_TOKEN`` (an OAuth bearer token);
2. a configuration file (INI), ``--dicomweb-config FILE``, else ``$MODIC_DICOMWEB_CONFIG``,
   else ``$XDG_CONFIG_HOME/modic/dicomweb.ini`` (``~/.config/modic/dicomweb.ini``), with
   one section per server, named by its address; the longest section that the address
   starts with is used::

       [http://127.0.0.1:8042/dicom-web]
       user = modic
       password = s3cret

       [https://pacs.example.org]
       token = eyJhbGciOi...

Nothing here logs or returns a password: :class:`Credentials` hides its secrets from
``repr`` and :meth:`Credentials.describe` names only the user and where it came from.
"""

from __future__ import annotations

import configparser
import logging
import os
import re
import stat
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DicomwebError

__all__ = [
    "ADDRESS_PREFIXES",
    "ENV_CONFIG",
    "ENV_PASSWORD",
    "ENV_TOKEN",
    "ENV_USER",
    "Credentials",
    "default_config_path",
    "is_dicomweb_address",
    "parse_address",
    "read_credentials",
    "redact",
]

logger = logging.getLogger(__name__)

#: The address prefixes modic reads as a DICOMweb server, and the scheme each stands for.
ADDRESS_PREFIXES: dict[str, str] = {"dicomweb+http": "http", "dicomweb+https": "https"}
ENV_USER = "MODIC_DICOMWEB_USER"
ENV_PASSWORD = "MODIC_DICOMWEB_PASSWORD"
ENV_TOKEN = "MODIC_DICOMWEB_TOKEN"
ENV_CONFIG = "MODIC_DICOMWEB_CONFIG"

_HOW = (
    f"set {ENV_USER} and {ENV_PASSWORD} (or {ENV_TOKEN}) in the environment, or write them "
    "in a config file section named after the server (docs/dicomweb.md)"
)


def is_dicomweb_address(text: object) -> bool:
    """True for a string that starts with ``dicomweb+http://`` or ``dicomweb+https://``.

    Examples
    --------
    >>> is_dicomweb_address("dicomweb+http://127.0.0.1:8042/dicom-web")
    True
    >>> is_dicomweb_address("sample_data")
    False
    """
    return isinstance(text, str) and text.lower().startswith(tuple(p + "://" for p in ADDRESS_PREFIXES))


def redact(address: str) -> str:
    """The address with any ``user:password@`` part replaced by ``***@``.

    Examples
    --------
    >>> redact("dicomweb+http://bob:pw@host/dicom-web")
    'dicomweb+http://***@host/dicom-web'
    """
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@", r"\1***@", address)


def parse_address(address: str) -> str:
    """The HTTP(S) base URL of a ``dicomweb+http(s)://`` address.

    Parameters
    ----------
    address : str
        ``dicomweb+http://HOST[:PORT][/PATH]`` or ``dicomweb+https://...``; a plain
        ``http(s)://`` URL is accepted too.

    Returns
    -------
    str
        ``http(s)://HOST[:PORT]/PATH`` without a trailing slash.

    Raises
    ------
    DicomwebError
        If the address has another scheme, no host, a bad port, a query or fragment, or
        a ``user:password@`` part (the message never repeats it).

    Examples
    --------
    >>> parse_address("dicomweb+http://127.0.0.1:8042/dicom-web/")
    'http://127.0.0.1:8042/dicom-web'
    """
    shown = redact(address)
    parts = urllib.parse.urlsplit(address)
    scheme = parts.scheme.lower()
    scheme = ADDRESS_PREFIXES.get(scheme, scheme)
    if scheme not in ("http", "https"):
        raise DicomwebError(
            f"{shown}: not a DICOMweb address; write dicomweb+http://HOST[:PORT]/PATH "
            "or dicomweb+https://HOST[:PORT]/PATH"
        )
    if "@" in parts.netloc:
        raise DicomwebError(
            f"{shown}: the address holds a user name or password; modic never takes credentials "
            f"in an address (they would show in the process list, shell history and logs): {_HOW}"
        )
    try:
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError:
        raise DicomwebError(f"{shown}: the port is not a number from 0 to 65535") from None
    if not parts.hostname:
        raise DicomwebError(f"{shown}: no host name in the address")
    if parts.query or parts.fragment:
        raise DicomwebError(f"{shown}: a DICOMweb address has no ?query or #fragment")
    return urllib.parse.urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


@dataclass(frozen=True)
class Credentials:
    """What modic sends to a server: nothing, a user and password, or a bearer token.

    Attributes
    ----------
    user : str
    password, token : str
        Kept out of ``repr`` (and so out of logs and tracebacks).
    source : str
        Where they came from: ``"none"``, ``"the environment"`` or the config file and
        section.
    """

    user: str = ""
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    source: str = "none"

    def __post_init__(self) -> None:
        if self.token and (self.user or self.password):
            raise DicomwebError(
                f"credentials from {self.source}: give a token or a user and password, not both"
            )
        if bool(self.user) != bool(self.password):
            missing = "password" if self.user else "user"
            raise DicomwebError(
                f"credentials from {self.source}: a user and a password go together; no {missing}"
            )

    def __bool__(self) -> bool:
        return bool(self.token or self.user)

    def describe(self) -> str:
        """``"user 'modic' from the environment"``: who, and from where, never the secret."""
        if self.token:
            return f"a bearer token from {self.source}"
        if self.user:
            return f"user {self.user!r} from {self.source}"
        return "no credentials"


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$MODIC_DICOMWEB_CONFIG``, else ``$XDG_CONFIG_HOME/modic/dicomweb.ini`` (``~/.config``)."""
    env = os.environ if environ is None else environ
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG]).expanduser()
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "modic" / "dicomweb.ini"


def _section_url(name: str) -> str:
    url = name.strip()
    if is_dicomweb_address(url):
        url = url.split("+", 1)[1]
    return url.rstrip("/")


def _matches(url: str, section: str) -> bool:
    return url == section or url.startswith(section + "/")


def _from_config(url: str, path: Path, explicit: bool) -> Credentials:
    if not path.is_file():
        if explicit:
            raise FileNotFoundError(f"{path}: no such DICOMweb config file")
        return Credentials()
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as fh:
            parser.read_file(fh)
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        # configparser's messages quote the offending line, which may hold a password
        what = type(exc).__name__ if isinstance(exc, configparser.Error) else str(exc)
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        raise DicomwebError(f"{path}: not a readable INI config file{where}: {what}") from None
    sections = [s for s in parser.sections() if _matches(url, _section_url(s))]
    if not sections:
        return Credentials()
    name = max(sections, key=lambda s: len(_section_url(s)))
    sec = parser[name]
    unknown = sorted(set(sec) - {"user", "password", "token"})
    if unknown:
        raise DicomwebError(
            f"{path} [{name}]: unknown key(s) {', '.join(unknown)}; use user, password or token"
        )
    mode = stat.S_IMODE(path.stat().st_mode)
    if os.name == "posix" and mode & 0o077 and (sec.get("password") or sec.get("token")):
        logger.warning("%s can be read by other users (mode %o): chmod 600 %s", path, mode, path)
    return Credentials(
        user=sec.get("user", "").strip(),
        password=sec.get("password", ""),
        token=sec.get("token", "").strip(),
        source=f"{path} [{name}]",
    )


def read_credentials(
    url: str,
    config: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Credentials:
    """The credentials for a server: from the environment, else from the config file.

    Parameters
    ----------
    url : str
        The server's base URL (:func:`parse_address`).
    config : path-like, optional
        Config file to read (it must exist); default :func:`default_config_path`, read
        when it exists.
    environ : mapping, optional
        The environment (default :data:`os.environ`).

    Returns
    -------
    Credentials
        Empty (false) when neither gives any.

    Raises
    ------
    DicomwebError
        If the environment or the section is incomplete (a user without password, a
        token and a user), or the config file cannot be parsed.
    FileNotFoundError
        If ``config`` is given and does not exist.
    """
    env = os.environ if environ is None else environ
    user, password, token = (env.get(k, "") for k in (ENV_USER, ENV_PASSWORD, ENV_TOKEN))
    if user or password or token:
        return Credentials(user=user, password=password, token=token, source="the environment")
    path = Path(config).expanduser() if config is not None else default_config_path(env)
    return _from_config(url.rstrip("/"), path, explicit=config is not None)
