"""Regions of interest drawn on sagittal images, and the versioned JSON file that keeps them.

A study's annotations are a list of :class:`ROI`: a *label* (which endplate, or a
reference region of normal marrow in which vertebra), a 2-D *shape* and the *image* it was
drawn on (:class:`ImagePlane`, with that image's DICOM geometry, so that the shape can be
put into patient coordinates and mapped to other series without reopening the DICOM files).

Coordinate conventions
----------------------
* **Image coordinates** ``(x, y)``: ``x`` runs along a row (the column direction of the
  array), ``y`` down the columns (the row direction), in pixels, with the origin at the
  **top-left corner of the top-left pixel**. The centre of pixel ``(row r, col c)`` is
  therefore ``(x, y) = (c + 0.5, r + 0.5)``. This is the DICOM SR SCOORD convention (PS3.3
  C.18.6.1.1). :func:`rowcol_to_xy` and :func:`xy_to_rowcol` are the only conversions to
  and from numpy/skimage ``(row, col)`` pixel-centre indices.
* **Patient coordinates** are DICOM LPS millimetres (see :mod:`modic.geometry`). A point
  ``(x, y)`` of an image maps to::

      P = IPP + (x - 0.5) * column_spacing * row_cosine + (y - 0.5) * row_spacing * column_cosine

  where IPP (ImagePositionPatient) is the centre of the top-left pixel.
* **Rasterisation** (:meth:`Polygon.rasterize` etc.) selects the pixels whose *centres*
  lie inside the shape. A centre exactly on an edge of a polygon or rectangle counts as
  inside on the left/top edges and outside on the right/bottom edges (the crossing-number
  rule; exact for axis-parallel edges), so that shapes sharing an edge never share a pixel.
  A centre exactly on an ellipse counts as inside.

File format (version 1.1)
-------------------------
UTF-8 JSON, by default in a sibling of the study folder (:func:`annotation_path_for`:
``data/case7/`` -> ``data/case7.modic.json``), never inside the DICOM folder. The JSON Schema
(draft 2020-12) is shipped as ``modic/schemas/annotations-1.1.schema.json``
(:func:`annotation_schema`)::

    {
      "format": "modic-annotations",            # constant
      "version": "1.1",                         # "<major>.<minor>"
      "study": {"study_instance_uid": "1.2...", "frame_of_reference_uid": "1.2...",
                "description": ""},             # description optional
      "tool": {"name": "modic", "version": "0.1.0.dev0"},   # the program that made the document
      "created": "2024-05-01T10:00:00.000Z",    # ISO 8601 with a time zone (modic writes UTC)
      "modified": "2024-05-01T10:05:00.000Z",
      "rois": [
        {
          "id": "9f0c...",                      # unique within the document (uuid4 hex by default)
          "label": {"kind": "endplate", "vertebra": "L4", "endplate": "inferior"},
                                                # kinds "reference", "body", "fat": "endplate" is
                                                # null or absent
          "shape": {"type": "polygon", "points": [[x, y], ...]},         # >= 3 points, implicitly closed
                 # {"type": "rectangle", "x0": .., "y0": .., "x1": .., "y1": ..}   x0 < x1, y0 < y1
                 # {"type": "ellipse", "cx": .., "cy": .., "rx": .., "ry": .., "angle_deg": 0.0}
                 # {"type": "mask", "x0": col, "y0": row, "height": h, "width": w,
                 #  "bits": base64(numpy.packbits(mask.ravel()))}   row-major, MSB first
          "image": {"series_instance_uid": "..", "sop_instance_uid": "..", "frame_number": 1,
                    "rows": 512, "columns": 512,
                    "image_position_patient": [x, y, z], "image_orientation_patient": [6 floats],
                    "pixel_spacing": [row_spacing, column_spacing],
                    "series_number": 2, "series_description": "t1_tse_sag"},  # last two optional
          "patient": {"outline_lps": [[x, y, z], ...]},   # optional, derived (see below)
          "author": "", "created": "...Z", "modified": "...Z", "tool_version": "0.1.0.dev0",
          "comment": "",                         # these three optional, default ""
          "origin": "drawn",                     # 1.1, optional: drawn | proposed | derived | imported
          "source": ""                           # 1.1, optional: what it was proposed/derived/imported from
        }
      ]
    }

* All shape coordinates are image coordinates as above; ``angle_deg`` turns the ellipse's
  own x axis from the image +x axis towards +y (clockwise as displayed, the same as
  ``matplotlib.patches.Ellipse(angle=...)`` drawn over ``imshow``).
* ``frame_number`` is 1-based (DICOM), 1 for single-frame images.
* ``patient.outline_lps`` is the shape's outline (:meth:`ROI.patient_outline`) in LPS mm,
  written for every ROI for the benefit of other tools. It is derived data: the image-plane
  form is authoritative, and a reader only logs a warning when the two disagree by more
  than 1 mm.
* Numbers: shape coordinates are stored to 1/1000 pixel (shapes round on construction, so
  a document reads back equal to what was written) and ``outline_lps`` to 1/10000 mm;
  DICOM header values (position, orientation, spacing) are written exactly.
* Label kinds: ``endplate`` (the marrow next to an endplate, where a change is looked
  for), ``reference`` (normal marrow to compare with), and since 1.1 ``body`` (the outline
  of a vertebral body on a sagittal slice: extent is measured against its height) and
  ``fat`` (subcutaneous or paraspinal fat at a vertebra's level: how bright fat is on each
  sequence).
* ``origin`` (1.1) says who made the shape: a person (``drawn``), modic from the image
  (``proposed``), modic from another tool's segmentation (``derived``), another program's
  file such as a DICOM SR (``imported``). An ROI a person edits becomes ``drawn``. Tools
  never replace drawn ROIs with proposed or derived ones.
* Versions: modic writes 1.1 and a reader accepts every 1.x document. Unknown fields are
  errors in 1.0 and 1.1 documents and are ignored (with a logged warning) in later 1.x
  minor versions; other major versions are refused.

Limits, so that a broken or hostile file costs seconds, not hours: only regular files are
read (a FIFO, a device or a folder is refused without waiting on it), at most 64 MiB, at
most 2000 ROIs, 20000 points per polygon or stored outline, images of at most 16384 pixels a
side and 4096 x 4096 pixels in all (``MAX_*`` in ``modic.annotations._common``).

Errors name the file and the JSON field, e.g.
``study1.modic.json: rois[2].shape.points: a polygon needs at least 3 points, got 2``
(:class:`~modic.errors.AnnotationFormatError`, a ``ValueError``).

Examples
--------
>>> plane = ImagePlane("1.2.3", "1.2.3.4", 1, rows=64, columns=64, position=(10.0, -100.0, 50.0),
...                    orientation=(0, 1, 0, 0, 0, -1), pixel_spacing=(1.0, 1.0))
>>> roi = ROI(RoiLabel.parse("L4i"), Rectangle(2, 3, 5, 6), plane)
>>> str(roi.label), roi.label.level, int(roi.pixel_mask().sum())
('L4 inferior', 'L4/L5', 9)
>>> ann = Annotations([roi], study_instance_uid="1.2")
>>> ann.find("L4")[0] is roi
True
"""

from .document import (
    FORMAT_NAME,
    FORMAT_VERSION,
    ROI,
    Annotations,
    annotation_path_for,
    annotation_schema,
    read_annotations,
    write_annotations,
)
from .labels import VERTEBRAE, Endplate, RoiLabel
from .planes import ImagePlane, rowcol_to_xy, xy_to_rowcol
from .shapes import Ellipse, Mask, Polygon, Rectangle, Shape, shape_from_dict

__all__ = [
    "VERTEBRAE",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "Endplate",
    "RoiLabel",
    "ImagePlane",
    "Shape",
    "Polygon",
    "Rectangle",
    "Ellipse",
    "Mask",
    "ROI",
    "Annotations",
    "shape_from_dict",
    "xy_to_rowcol",
    "rowcol_to_xy",
    "read_annotations",
    "write_annotations",
    "annotation_path_for",
    "annotation_schema",
]
