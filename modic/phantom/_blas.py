"""One BLAS thread while the phantom is painted.

The painting multiplies millions of points by 3 x k matrices (``(n, 3) @ (3, k)``).
OpenBLAS splits such products over all its threads, which costs more than the product
itself: on 2 shared cores a full-size study took twice the CPU time with the default
thread count. Each output element is computed by the same kernel whatever the thread
count, so the images are identical (checked on full-size studies).

numpy does not expose OpenBLAS's thread control; :func:`single_blas_thread` finds the
OpenBLAS bundled with numpy's wheels (``numpy.libs`` on Linux, ``numpy/.dylibs`` on
macOS) with :mod:`ctypes` and does nothing when there is none (another BLAS, or numpy
built against a system library).
"""

from __future__ import annotations

import ctypes
import glob
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["single_blas_thread"]

_NAMES = (  # (get, set), the first found wins
    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
    ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
    ("openblas_get_num_threads", "openblas_set_num_threads"),
)
_api: tuple[Callable[[], int], Callable[[int], None]] | None = None
_looked = False


def _find() -> tuple[Callable[[], int], Callable[[int], None]] | None:
    import numpy

    root = os.path.dirname(numpy.__file__)
    paths = glob.glob(os.path.join(root, os.pardir, "numpy.libs", "*openblas*")) + glob.glob(
        os.path.join(root, ".dylibs", "*openblas*")
    )
    for path in paths:
        try:
            lib = ctypes.CDLL(path)  # already loaded by numpy: the same handle
        except OSError:
            continue
        for get_name, set_name in _NAMES:
            get = getattr(lib, get_name, None)
            put = getattr(lib, set_name, None)
            if get is not None and put is not None:
                get.restype = ctypes.c_int
                put.argtypes = [ctypes.c_int]
                put.restype = None
                return get, put
    return None


@contextmanager
def single_blas_thread() -> Iterator[None]:
    """Run the block with one OpenBLAS thread; the previous count is restored after."""
    global _api, _looked
    if not _looked:
        _looked = True
        _api = _find()
    if _api is None:
        yield
        return
    get, put = _api
    before = get()
    put(1)
    try:
        yield
    finally:
        put(before)
