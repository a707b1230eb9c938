"""Draw endplate and reference ROIs on a lumbar MRI study, with live Modic results.

One annotator, two homes:

* **JupyterLab** with ipympl (``pip install "modic[notebook]"``)::

      %matplotlib widget
      import modic
      ann = modic.annotate("path/to/study")     # shows ann.widget: canvas + controls
      ann.results                               # live: ROI id -> ModicResult (or why not)

* **Desktop window**: ``modic annotate STUDY [--annotations FILE] [--author NAME]`` (TkAgg,
  or QtAgg when Tk is missing).

T1, T2 and STIR are shown side by side and linked in patient space (LPS mm): scrolling one
pane moves the others to their nearest slice, a cross-reference cursor shows where the
mouse points in every pane, zoom and pan follow. ROIs are drawn with matplotlib's
selectors (polygon, rectangle, ellipse, freehand), labelled from a picker that suggests
the next label, shown on every pane through patient coordinates, and classified as soon
as an endplate and a reference exist. Every change is autosaved atomically to the
annotation file beside the study folder. Press ``h`` in the window for the shortcuts
(:func:`modic.annotator.keys.help_text`); ``docs/annotator.md`` has the full guide.

Coordinates: pane data coordinates are the annotation image coordinates of the pane's
series (``x`` = column, ``y`` = row, top-left pixel corner at 0); slice indices in the
Python API are 0-based.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .viewer import WINDOW_PRESETS, Annotator, default_annotation_path, offscreen_figure

if TYPE_CHECKING:  # pragma: no cover
    from ..annotations import Annotations
    from ..study import LoadedStudy

__all__ = ["Annotator", "annotate", "default_annotation_path", "offscreen_figure", "WINDOW_PRESETS"]


def annotate(
    study_or_path: LoadedStudy | str | os.PathLike[str],
    annotations: Annotations | str | os.PathLike[str] | None = None,
    **kw: Any,
) -> Annotator:
    """Open the annotator on a study.

    Parameters
    ----------
    study_or_path : LoadedStudy or path
        A loaded study, or its folder (loaded with :func:`modic.load_study`; when the
        folder holds several studies and annotations name one, that one is loaded).
    annotations : Annotations or path, optional
        Start from these; a path is read and becomes the file saved to (unless ``path=``
        is given). Default: the study folder's sibling ``.modic.json`` if it exists.
    **kw
        Passed to :class:`Annotator` (``path``, ``author``, ``show_results``, ``autosave``,
        ``figure``, ``on_change``).

    Returns
    -------
    Annotator
        In Jupyter, display it (or ``ann.widget``); on the desktop, call ``ann.show()``.
    """
    from ..annotations import Annotations as _Annotations
    from ..annotations import annotation_path_for, read_annotations
    from ..study import LoadedStudy as _LoadedStudy
    from ..study import load_study

    doc: _Annotations | None = None
    if annotations is not None and not isinstance(annotations, _Annotations):
        kw.setdefault("path", Path(annotations))
        doc = read_annotations(annotations)
    elif isinstance(annotations, _Annotations):
        doc = annotations
    if isinstance(study_or_path, _LoadedStudy):
        study = study_or_path
    else:
        folder = Path(study_or_path)
        kw.setdefault("path", annotation_path_for(folder))
        if doc is None and Path(kw["path"]).is_file():
            doc = read_annotations(kw["path"])
        if doc is not None and doc.study_instance_uid:
            from ..batch import study_for_annotations
            from ..dicomfolder import scan

            study = load_study(study_for_annotations(scan(folder), doc))
        else:
            study = load_study(folder)
    return Annotator(study, doc, **kw)
