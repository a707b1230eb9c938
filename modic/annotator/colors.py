"""Colours and line styles of the annotator: Modic types, references, the key overlay.

The Modic colours come from the Okabe & Ito palette (Okabe M, Ito K. Color Universal
Design, 2008), chosen to stay distinguishable with the common colour-vision deficiencies;
the type is also always written next to the outline, so colour is never the only cue.
Intermediate (mixed) types sit between their two parents: 1/2 orange between
vermilion 1 and yellow 2, 2/3 bluish green between yellow 2 and sky blue 3.
An ``indeterminate`` result (the classifier cannot type the region, and says why) takes
the palette's blue, striped with white (:data:`INDETERMINATE_STRIPE`) so that it reads on
dark and bright marrow alike and differs from every type by pattern as well as by colour;
its label and badge are white on blue, and show ``?``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "MODIC_COLORS",
    "MODIC_NAMES",
    "REFERENCE_COLOR",
    "PENDING_COLOR",
    "ERROR_COLOR",
    "THEME",
    "INDETERMINATE_STRIPE",
    "RoiStyle",
    "roi_style",
    "legend_entries",
]

#: Line colour of an endplate ROI by Modic type (:class:`modic.ModicType` value).
MODIC_COLORS: dict[str, str] = {
    "0": "#BBBBBB",  # grey: no change
    "1": "#D55E00",  # vermilion: oedema
    "1/2": "#E69F00",  # orange: between 1 and 2
    "2": "#F0E442",  # yellow: fat
    "2/3": "#009E73",  # bluish green: between 2 and 3
    "3": "#56B4E9",  # sky blue: sclerosis (light enough to see on dark marrow)
    "indeterminate": "#0072B2",  # blue, striped white: the classifier cannot type it (it says why)
}
#: The second colour of an indeterminate outline (the gaps of its dashes).
INDETERMINATE_STRIPE = "#FFFFFF"
#: What each type means, for the legend.
MODIC_NAMES: dict[str, str] = {
    "0": "0  no change",
    "1": "1  oedema",
    "1/2": "1/2  mixed",
    "2": "2  fatty",
    "2/3": "2/3  mixed",
    "3": "3  sclerosis",
    "indeterminate": "?  indeterminate",
}
#: Reference (normal marrow) ROIs: reddish purple, the palette's one colour left.
REFERENCE_COLOR = "#CC79A7"
#: An endplate ROI without a result yet (no reference drawn), or with results hidden.
PENDING_COLOR = "#FFFFFF"
#: The outline of a vertebral body (annotation kind "body"): light grey, thin, out of the way.
BODY_COLOR = "#C8C8C8"
#: A fat region (annotation kind "fat"): the reference colour, dotted (another reference tissue).
FAT_COLOR = REFERENCE_COLOR
#: An endplate ROI that cannot be measured (outside a series, too few voxels).
ERROR_COLOR = "#FFFFFF"

#: Colours of the reading-room (dark) theme.
THEME: dict[str, str] = {
    "figure": "#1E1F22",
    "panel": "#2B2D31",
    "image_background": "#000000",
    "text": "#E8EAED",
    "muted": "#9AA0A6",
    "button": "#3C4043",
    "button_hover": "#5F6368",
    "button_active": "#1A73E8",
    "cursor": "#00E5FF",
    "warning": "#FDD663",
}


@dataclass(frozen=True)
class RoiStyle:
    """How one ROI outline is drawn on one pane.

    Attributes
    ----------
    color : str
    linestyle : str
        Matplotlib line style (``"-"``, ``"--"``, ``":"``).
    linewidth : float
    alpha : float
    show_label : bool
        Whether the label text is drawn (only on the ROI's own slice).
    gapcolor : str or None
        Colour of the gaps of a dashed line (a striped outline, for ``indeterminate``);
        the label is then drawn in this colour on a box of ``color``.
    """

    color: str
    linestyle: str
    linewidth: float
    alpha: float
    show_label: bool
    gapcolor: str | None = None

    def line_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :class:`matplotlib.lines.Line2D` (``gapcolor`` None resets it)."""
        return {
            "color": self.color,
            "linestyle": self.linestyle,
            "linewidth": self.linewidth,
            "alpha": self.alpha,
            "gapcolor": self.gapcolor,
        }


def roi_style(
    kind: str,
    modic_type: str | None,
    *,
    error: bool = False,
    on_slice: bool = True,
    selected: bool = False,
    overlay: str | None = None,
) -> RoiStyle:
    """The style of an ROI outline.

    Parameters
    ----------
    kind : {"endplate", "reference", "body", "fat"}
    modic_type : str or None
        The type (``"0"``, ``"1"``, ``"1/2"`` ...) when it is known and shown, else None.
    error : bool
        The ROI cannot be measured.
    on_slice : bool
        The pane shows the slice the ROI lies on; otherwise the outline is faint and
        dashed (where the ROI is, on another slice).
    selected : bool
        Drawn thicker.
    overlay : str, optional
        ``"key"`` for a read-only overlay such as an expert key: dash-dotted.

    Examples
    --------
    >>> roi_style("endplate", "1").color
    '#D55E00'
    >>> roi_style("reference", None, on_slice=False).linestyle
    '--'
    >>> roi_style("body", None).linestyle, roi_style("fat", None).linestyle
    ('-', ':')
    >>> s = roi_style("endplate", "indeterminate")
    >>> s.color, s.linestyle, s.gapcolor
    ('#0072B2', '--', '#FFFFFF')
    """
    if kind in ("body", "fat"):
        color, linestyle, width = (BODY_COLOR, "-", 1.0) if kind == "body" else (FAT_COLOR, ":", 1.4)
        if selected:
            width = 2.6
        if not on_slice:
            return RoiStyle(color, "--", 0.9, 0.35, False)
        return RoiStyle(color, linestyle, width, 1.0, True)
    if kind == "reference":
        color = REFERENCE_COLOR
    elif error:
        color = ERROR_COLOR
    elif modic_type is not None:
        color = MODIC_COLORS.get(modic_type, PENDING_COLOR)
    else:
        color = PENDING_COLOR
    linestyle = ":" if (error or (kind == "endplate" and modic_type is None)) else "-"
    width = 1.4
    if overlay is not None:
        linestyle = "-."
        width = 1.6
    if selected:
        width = 2.6
    if not on_slice:
        return RoiStyle(color, "-." if overlay is not None else "--", 0.9, 0.35, False)
    if kind == "endplate" and not error and modic_type == "indeterminate" and overlay is None:
        return RoiStyle(color, "--", width + 0.4, 1.0, True, gapcolor=INDETERMINATE_STRIPE)
    return RoiStyle(color, linestyle, width, 1.0, True)


def legend_entries(
    show_results: bool = True, overlay: bool = False
) -> list[tuple[str, str, str, str | None]]:
    """``(text, colour, line style, gap colour or None)`` rows of the colour legend, in reading order.

    Examples
    --------
    >>> [row for row in legend_entries() if "indeterminate" in row[0]]
    [('Modic ?  indeterminate', '#0072B2', '--', '#FFFFFF')]
    """
    rows: list[tuple[str, str, str, str | None]] = []
    if show_results:
        types = ("0", "1", "1/2", "2", "2/3", "3")
        rows += [(f"Modic {MODIC_NAMES[t]}", MODIC_COLORS[t], "-", None) for t in types]
        t = "indeterminate"
        rows.append((f"Modic {MODIC_NAMES[t]}", MODIC_COLORS[t], "--", INDETERMINATE_STRIPE))
    rows.append(("no result yet" if show_results else "endplate", PENDING_COLOR, ":", None))
    rows.append(("reference marrow", REFERENCE_COLOR, "-", None))
    if overlay:
        rows.append(("key (overlay)", "#FFFFFF", "-.", None))
    rows.append(("other slice", "#888888", "--", None))
    return rows
