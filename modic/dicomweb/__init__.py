"""Studies on a PACS: read them from a DICOMweb server, keep a local copy, store results back.

Needs the ``dicomweb`` extra (``pip install "modic[dicomweb]"``: dicomweb-client).

Quick start
-----------
Credentials come from the environment (``MODIC_DICOMWEB_USER`` and
``MODIC_DICOMWEB_PASSWORD``, or ``MODIC_DICOMWEB_TOKEN``) or from a config file
(:mod:`modic.dicomweb.address`), never from the address::

    from modic.dicomweb import DicomwebServer, StudyCache

    server = DicomwebServer("dicomweb+http://127.0.0.1:8042/dicom-web")
    fetched = StudyCache().fetch(server, "1.2.826.0.1.3680043...")   # QIDO-RS + WADO-RS
    study = modic.load_study(fetched.path)                           # an ordinary folder

    from modic.dicomweb import run_dicomweb_batch                    # modic batch dicomweb+http://...
    run = run_dicomweb_batch("dicomweb+http://127.0.0.1:8042/dicom-web", "out",
                             annotations="annotations/")

The pieces:

- :mod:`~modic.dicomweb.address`: ``dicomweb+http(s)://`` addresses, credentials from
  the environment or a config file;
- :mod:`~modic.dicomweb.server`: :class:`DicomwebServer` (QIDO-RS, WADO-RS, STOW-RS),
  every failure one :class:`~modic.errors.DicomwebError` line;
- :mod:`~modic.dicomweb.cache`: :class:`StudyCache`, the local copy keyed by UIDs,
  written atomically, reused and resumed; only the series modic can use are fetched;
- :mod:`~modic.dicomweb.batch`: :func:`run_dicomweb_batch`, ``modic batch`` over a
  server's studies;
- :mod:`~modic.dicomweb.store`: :func:`store_outputs`, modic's SR / SEG sent back
  (STOW-RS).

See ``docs/dicomweb.md``.
"""

from __future__ import annotations

from ..errors import DicomwebError
from .address import (
    ENV_CONFIG,
    ENV_PASSWORD,
    ENV_TOKEN,
    ENV_USER,
    Credentials,
    default_config_path,
    is_dicomweb_address,
    parse_address,
    read_credentials,
    redact,
)
from .batch import DicomwebBatch, index_annotations, read_study_list, run_dicomweb_batch
from .cache import FetchedStudy, StudyCache, default_cache_dir, series_needed
from .server import DicomwebServer, RemoteSeries, ServerUnavailableError, check_uid
from .store import STORE_REPORT, StoredObject, dicom_outputs, store_outputs

__all__ = [
    "ENV_CONFIG",
    "ENV_PASSWORD",
    "ENV_TOKEN",
    "ENV_USER",
    "Credentials",
    "DicomwebBatch",
    "DicomwebError",
    "DicomwebServer",
    "FetchedStudy",
    "RemoteSeries",
    "STORE_REPORT",
    "StoredObject",
    "ServerUnavailableError",
    "StudyCache",
    "check_uid",
    "default_cache_dir",
    "default_config_path",
    "dicom_outputs",
    "index_annotations",
    "is_dicomweb_address",
    "parse_address",
    "read_credentials",
    "read_study_list",
    "redact",
    "run_dicomweb_batch",
    "series_needed",
    "store_outputs",
]
