"""modic: classify Modic changes of the vertebral endplates on lumbar spine MRI.

Quick start
-----------
>>> import modic
>>> folder = modic.data.sample_study_path("siemens_15T_type1_type2")  # any DICOM folder
>>> result = modic.scan(folder)                          # headers only
>>> for series in result.all_series()[3:]:
...     print(series.key, series.role.value, series.plane.value, series.description)
2 T1 sagittal t1_tse_sag
3 T2 sagittal t2_tse_sag
4 STIR sagittal t2_tirm_sag
5 T2 axial t2_tse_tra
>>> study = modic.load_study(result)                     # sagittal T1, T2, STIR volumes
>>> study.t1.array.shape                                 # (slice, row, col), float32
(13, 192, 192)
>>> rois = modic.read_annotations(modic.data.sample_annotations_path("siemens_15T_type1_type2"))
>>> print(modic.classify(study, rois)[7].explanation)
T1 0.64x, T2 1.17x and STIR 4.38x of L4 reference marrow: oedema pattern, Modic 1

Result tables: ``modic.read_results(outdir)`` (a typed DataFrame, levels head to foot)
and ``modic.summarize(df)`` (any change and worst type per level and per study);
every column is described in docs/results.md.

Sample data: ``modic.data.sample_study_path(name)``; synthetic studies with known
ground truth: :mod:`modic.phantom`.

Conventions: volumes are ``(slice, row, col)`` float32 arrays after RescaleSlope /
RescaleIntercept; patient coordinates are DICOM LPS millimetres (see
:mod:`modic.geometry`).

The package imports its submodules lazily, so that ``import modic`` and the command
line start fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

__all__ = [
    "__version__",
    # folder -> studies / series
    "scan",
    "ScanResult",
    "Study",
    "Series",
    "Frame",
    "SkippedFile",
    # what a series is
    "Role",
    "Plane",
    "SeriesIdentity",
    # series -> volume
    "Volume",
    "load_volume",
    # study -> reading set
    "LoadedStudy",
    "load_study",
    "select_series",
    # annotations
    "Annotations",
    "ROI",
    "RoiLabel",
    "read_annotations",
    "write_annotations",
    "annotation_path_for",
    # ROIs derived from another tool's vertebra label map (the labels extra)
    "rois_from_labelmap",
    # ROIs proposed from the image itself (vertebrae found, named and outlined); the
    # submodule modic.propose holds propose() with what was found and how sure it is
    "propose_rois",
    "relabel",
    # anatomical checks: is every ROI where its label says (modic.anatomy)
    "check_rois",
    # classification
    "classify",
    "ModicType",
    "ModicResult",
    "ModicResults",
    "ClassifierParameters",
    "Extent",
    "Candidacy",
    # result tables (pandas, with the notebook extra)
    "read_results",
    "summarize",
    # geometry
    "SliceGeometry",
    "MappedRegion",
    "map_region",
    # annotation UI (matplotlib; Jupyter with the notebook extra)
    "annotate",
    # submodules
    "batch",
    "data",
    "errors",
    "phantom",
    "plot",
    "propose",
    "report",
    "teaching",
]

_LAZY: dict[str, str] = {
    "scan": "modic.dicomfolder",
    "ScanResult": "modic.series",
    "Study": "modic.series",
    "Series": "modic.series",
    "Frame": "modic.series",
    "SkippedFile": "modic.series",
    "Role": "modic.sequence",
    "Plane": "modic.sequence",
    "SeriesIdentity": "modic.sequence",
    "Volume": "modic.volume",
    "load_volume": "modic.volume",
    "LoadedStudy": "modic.study",
    "load_study": "modic.study",
    "select_series": "modic.study",
    "Annotations": "modic.annotations",
    "ROI": "modic.annotations",
    "RoiLabel": "modic.annotations",
    "read_annotations": "modic.annotations",
    "write_annotations": "modic.annotations",
    "annotation_path_for": "modic.annotations",
    "classify": "modic.reading",
    "ModicType": "modic.criteria",
    "ModicResult": "modic.results",
    "ModicResults": "modic.results",
    "read_results": "modic.tables",
    "summarize": "modic.tables",
    "ClassifierParameters": "modic.criteria",
    "Extent": "modic.extent",
    "Candidacy": "modic.candidacy",
    "SliceGeometry": "modic.geometry",
    "MappedRegion": "modic.geometry",
    "map_region": "modic.geometry",
    "annotate": "modic.annotator",
    "rois_from_labelmap": "modic.labelmap",
    "propose_rois": "modic.propose",
    "relabel": "modic.propose",
    "check_rois": "modic.anatomy",
}
_SUBMODULES = {"data", "errors", "phantom", "teaching", "batch", "plot", "report", "propose"}

if TYPE_CHECKING:  # pragma: no cover
    from . import batch, data, errors, phantom, plot, propose, report, teaching
    from .anatomy import check_rois
    from .annotations import (
        ROI,
        Annotations,
        RoiLabel,
        annotation_path_for,
        read_annotations,
        write_annotations,
    )
    from .annotator import annotate
    from .candidacy import Candidacy
    from .criteria import ClassifierParameters, ModicType
    from .dicomfolder import scan
    from .extent import Extent
    from .geometry import MappedRegion, SliceGeometry, map_region
    from .labelmap import rois_from_labelmap
    from .propose import propose_rois, relabel
    from .reading import classify
    from .results import ModicResult, ModicResults
    from .sequence import Plane, Role, SeriesIdentity
    from .series import Frame, ScanResult, Series, SkippedFile, Study
    from .study import LoadedStudy, load_study, select_series
    from .tables import read_results, summarize
    from .volume import Volume, load_volume


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"modic.{name}")
    raise AttributeError(f"module 'modic' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
