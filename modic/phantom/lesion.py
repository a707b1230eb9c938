"""Modic changes: where a change lies in its vertebra and which type each part has."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from .spec import LesionSpec

if TYPE_CHECKING:
    from .anatomy import Vertebra

__all__ = ["Lesion", "LesionMeasure", "side_split"]

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


@dataclass
class LesionMeasure:
    """Properties of a painted Modic change, measured on a 0.4 mm grid."""

    volume_mm3: float
    fractions: dict[str, float]
    max_height_fraction: float
    island_fraction: float = 0.0


@dataclass
class Lesion:
    """Geometry of one Modic change in its vertebra's local frame (mm).

    The change covers the marrow points whose depth ``w`` below the endplate surface
    satisfies ``0 <= w <= h(x, y)``, with ``h = h0 * (1 - rho**q)**(1/q) * (1 - irr *
    (1 + n(x, y)) / 2)``, ``rho**2 = ((x - x0)/rx)**2 + ((y - y0)/ry)**2 < 1`` and ``n`` a
    smooth field in [-1, 1] (sum of three cosines).  Mixed changes split *layered* at
    ``w <= split * h`` (first type nearer the endplate) or *side* at
    ``(y - y0) / ry < split`` (first type anterior).  Fat islands (:attr:`islands`)
    replace the type-1 part's tissue inside small spheres.
    """

    spec: LesionSpec
    vertebra: int
    superior: bool
    x0: float
    y0: float
    rx: float
    ry: float
    h0: float
    local_height: float
    q: float
    irregularity: float
    waves: FloatArray  # (3, 3): kx, ky, phase
    types: tuple[str, ...]
    split: float
    codes: tuple[int, ...] = ()
    measured: LesionMeasure | None = None
    #: Fat islands in the type-1 part: (n, 4) body-local centre and radius, mm.
    islands: FloatArray = field(default_factory=lambda: np.zeros((0, 4)))
    island_code: int = -1

    def depth_below(self, v: Vertebra, x: NDArray[np.floating], y: NDArray[np.floating],
                    z: NDArray[np.floating]) -> NDArray[np.floating]:
        """Depth below this lesion's endplate surface (positive inside the body), mm."""
        if self.superior:
            return v.z_surface(x, y, True) - z
        return z - v.z_surface(x, y, False)

    def max_height(self, x: NDArray[np.floating], y: NDArray[np.floating]
                   ) -> NDArray[np.floating]:
        """h(x, y): how deep the change reaches at (x, y) (0 outside its footprint), mm."""
        rho2 = ((x - self.x0) / self.rx) ** 2 + ((y - self.y0) / self.ry) ** 2
        rho = np.sqrt(rho2)
        prof = np.clip(1.0 - rho ** self.q, 0.0, None) ** (1.0 / self.q)
        n = np.zeros_like(prof)
        for kx, ky, ph in self.waves:
            n = n + np.cos(kx * x + ky * y + ph)
        n = n / 3.0
        out: NDArray[np.floating] = self.h0 * prof * (1.0 - self.irregularity * (1.0 + n) / 2.0)
        return out

    def classify(self, v: Vertebra, x: NDArray[np.floating], y: NDArray[np.floating],
                 z: NDArray[np.floating]) -> IntArray:
        """Index of the component type at each point (-1 = not in the change).

        Marrow membership is not checked here (see :meth:`Anatomy.lesion_labels`).
        """
        w = self.depth_below(v, x, y, z)
        h = self.max_height(x, y)
        inside = (w >= 0) & (w <= h) & (h > 0)
        out = np.full(np.shape(x), -1, dtype=np.int64)
        if len(self.types) == 1:
            out[inside] = 0
            return out
        if self.spec.mix_layout == "layered":
            first = w <= self.split * h
        else:
            first = (y - self.y0) / self.ry < self.split
        out[inside & first] = 0
        out[inside & ~first] = 1
        return out


def side_split(q: float, fraction: float) -> float:
    """Normalised antero-posterior split v0 so that the part v < v0 holds ``fraction``.

    Integrates the profile ``(1 - rho**q)**(1/q)`` over the unit disc on a fine grid.
    """
    g = (np.arange(801) + 0.5) / 801 * 2 - 1
    u, w = np.meshgrid(g, g, indexing="ij")
    rho = np.sqrt(u * u + w * w)
    prof = np.clip(1 - rho ** q, 0, None) ** (1 / q)
    col = prof.sum(axis=0)  # as a function of w (the antero-posterior coordinate)
    cum = np.cumsum(col) / col.sum()
    return float(np.interp(fraction, cum, g + (g[1] - g[0]) / 2))
