"""A real Orthanc DICOM server with its DICOMweb plugin, for tests, and a counting proxy.

Orthanc comes from Debian (``apt-get install orthanc orthanc-dicomweb``, done by
``.ci/run``). :class:`Orthanc` starts ``/usr/sbin/Orthanc`` on 127.0.0.1 with a config
written into a temporary folder: HTTP on a free port, no DICOM port, remote access off,
HTTP basic authentication with one test user, storage in the temporary folder, the
DICOMweb plugin at ``/dicom-web``. It starts in well under a second.

:class:`CountingProxy` sits between modic and Orthanc on another port: it counts the
requests by kind (QIDO search, WADO retrieve of a series or an instance, STOW) and can
cut a response half-way, as a network failure would.
"""

from __future__ import annotations

import base64
import http.client
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

ORTHANC = Path("/usr/sbin/Orthanc")
USER = "modic-test"
#: The test user's password: long and distinctive, so that a leak is found by searching.
PASSWORD = "pw-Zq7xTERCES-9f3e"


def dicomweb_plugin() -> Path | None:
    """libOrthancDicomWeb.so from the orthanc-dicomweb package, if installed."""
    for folder in ("/usr/share/orthanc/plugins", "/usr/lib/orthanc"):
        for p in sorted(Path(folder).glob("libOrthancDicomWeb.so*")):
            return p
    return None


def missing() -> str | None:
    """Why Orthanc cannot be started here, or None."""
    if not ORTHANC.exists():
        return f"{ORTHANC} is missing (apt-get install orthanc orthanc-dicomweb; .ci/run does it)"
    if dicomweb_plugin() is None:
        return "the Orthanc DICOMweb plugin is missing (apt-get install orthanc-dicomweb)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _auth_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Orthanc:
    """One Orthanc process; use as a context manager (stopped on exit)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dicomweb(self) -> str:
        """The modic address of the DICOMweb root."""
        return f"dicomweb+{self.url}/dicom-web"

    def _config(self) -> dict[str, object]:
        storage = self.folder / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        return {
            "Name": "modic-test",
            "StorageDirectory": str(storage),
            "IndexDirectory": str(storage),
            "HttpPort": self.port,
            "DicomServerEnabled": False,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {USER: PASSWORD},
            "Plugins": [str(dicomweb_plugin())],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
            "OrthancExplorerEnabled": False,
            "WebDavEnabled": False,
            "SaveJobs": False,
            "StorageCompression": False,
            "HttpCompressionEnabled": False,
        }

    def start(self, timeout: float = 20.0) -> Orthanc:
        for _attempt in range(3):  # the free port may be taken between probe and bind
            self.port = free_port()
            config = self.folder / "orthanc.json"
            config.write_text(json.dumps(self._config(), indent=1))
            log = open(self.folder / "orthanc.log", "ab")  # noqa: SIM115 -- closed in stop()
            self._log = log
            self.proc = subprocess.Popen([str(ORTHANC), str(config)], stdout=log, stderr=log)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    self.get("/system")
                    return self
                except (OSError, urllib.error.URLError):
                    time.sleep(0.05)
            self.stop()
        raise RuntimeError(f"Orthanc did not start; see {self.folder / 'orthanc.log'}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None
            self._log.close()

    def __enter__(self) -> Orthanc:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- Orthanc's own REST API (independent of modic) ------------------------------------

    def request(
        self, method: str, path: str, data: bytes | None = None, headers: dict[str, str] | None = None
    ) -> bytes:
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", _auth_header(USER, PASSWORD))
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read()

    def get(self, path: str) -> object:
        return json.loads(self.request("GET", path))

    def upload_file(self, path: Path) -> dict[str, object]:
        answer = json.loads(self.request("POST", "/instances", path.read_bytes()))
        assert isinstance(answer, dict)
        return answer

    def upload_folder(self, folder: Path) -> int:
        """Upload every file under a folder (Orthanc's REST /instances); DICOM files count."""
        n = 0
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                try:
                    self.upload_file(p)
                    n += 1
                except urllib.error.HTTPError:  # not DICOM
                    pass
        return n

    def qido(self, path: str) -> list[dict[str, object]]:
        """A DICOMweb search, answered in DICOM JSON."""
        out = json.loads(
            self.request("GET", "/dicom-web" + path, headers={"Accept": "application/dicom+json"})
        )
        assert isinstance(out, list)
        return out


# -- a proxy that counts, and can cut ------------------------------------------------------

_SEARCH = re.compile(r"/(studies|series|instances)$")
_INSTANCE = re.compile(r"/studies/[^/]+/series/[^/]+/instances/[^/]+$")
_SERIES = re.compile(r"/studies/[^/]+/series/[^/]+$")


def kind_of(method: str, path: str) -> str:
    """``search``, ``retrieve-series``, ``retrieve-instance``, ``metadata``, ``store`` or ``other``."""
    path = path.split("?", 1)[0].rstrip("/")
    if method == "POST":
        return "store"
    if path.endswith("/metadata"):
        return "metadata"
    if _INSTANCE.search(path):
        return "retrieve-instance"
    if _SERIES.search(path):
        return "retrieve-series"
    if _SEARCH.search(path):
        return "search"
    return "other"


class CountingProxy:
    """An HTTP proxy on 127.0.0.1 in front of a server, counting requests by kind.

    ``cut_next_series = f`` makes the next series retrieval send only the fraction ``f``
    of its body and then drop the connection. The proxy never looks at credentials; it
    passes the Authorization header through.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.counts: Counter[str] = Counter()
        self.seen: list[str] = []  # request lines, to search for leaks
        self.authorization: list[str] = []  # the Authorization headers received
        self.cut_next_series: float | None = None
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    body = self._read_chunked()
                kind = kind_of(self.command, self.path)
                with proxy._lock:
                    proxy.counts[kind] += 1
                    proxy.seen.append(f"{self.command} {self.path}")
                    proxy.authorization.append(self.headers.get("Authorization", ""))
                    cut = proxy.cut_next_series if kind == "retrieve-series" else None
                    if cut is not None:
                        proxy.cut_next_series = None
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "transfer-encoding", "content-length", "connection")
                }
                if body is not None:
                    headers["Content-Length"] = str(len(body))
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                self.send_response(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                if cut is not None:
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(data[: int(len(data) * cut)])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.end_headers()
                self.wfile.write(data)

            def _read_chunked(self) -> bytes:
                out = bytearray()
                while True:
                    size = int(self.rfile.readline().strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return bytes(out)
                    out += self.rfile.read(size)
                    self.rfile.readline()

            do_GET = do_POST = do_DELETE = _forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def dicomweb(self) -> str:
        return f"dicomweb+http://127.0.0.1:{self.port}/dicom-web"

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()
            self.seen.clear()
            self.authorization.clear()


def clean_environment(tmp: Path, **extra: str) -> dict[str, str]:
    """An environment for a modic subprocess: no credentials, config or cache of the user's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODIC_DICOMWEB_")}
    env["XDG_CONFIG_HOME"] = str(tmp / "config-home")
    env["XDG_CACHE_HOME"] = str(tmp / "cache-home")
    env.update(extra)
    return env


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
