"""The study's own contrast: the noise estimate's counting path gives numpy's numbers."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from modic.contrast import (
    _counts,
    _median_of_integers,
    _percentile_of_integers,
    _percentiles_like,
    noise_sigma,
)


def _float_noise(a: np.ndarray) -> float:
    """noise_sigma's float path, written out with numpy's percentile and median."""
    a = a.astype(np.float64)
    dc = a[:, :, :-2] - 2 * a[:, :, 1:-1] + a[:, :, 2:]
    lap = dc[:, :-2] - 2 * dc[:, 1:-1] + dc[:, 2:]
    fg = a[:, 1:-1, 1:-1] > 0.1 * np.percentile(a, 99)
    return float(1.4826 * np.median(np.abs(lap[fg])) / 6.0)


@pytest.mark.parametrize("q", [0, 1, 37.5, 50, 99, 99.9, 100])
@pytest.mark.parametrize("n", [1, 2, 3, 10, 101, 1000, 4097])
def test_percentile_and_median_of_integers_are_numpys(q: float, n: int) -> None:
    rng = np.random.default_rng(n)
    for hi in (3, 100, 60000):
        x = rng.integers(-hi, hi, n).astype(np.int32)
        assert _percentile_of_integers(x, q) == np.percentile(x.astype(np.float64), q)
        assert _median_of_integers(x) == np.median(x.astype(np.float64))


@pytest.mark.parametrize("dtype", [np.float32, np.uint16, np.int16])
def test_noise_sigma_counting_path_equals_float_path(dtype: type) -> None:
    rng = np.random.default_rng(7)
    a = (1000 + 60 * rng.standard_normal((5, 40, 48))).clip(0, None)
    a[:, :, :8] = 0  # background
    a = np.rint(a).astype(dtype)
    assert noise_sigma(SimpleNamespace(array=a)) == _float_noise(a)  # type: ignore[arg-type]


def test_noise_sigma_fractional_values_take_the_float_path() -> None:
    rng = np.random.default_rng(8)
    a = (1000 + 60 * rng.standard_normal((5, 40, 48))).astype(np.float32) * np.float32(1.37)
    assert noise_sigma(SimpleNamespace(array=a)) == _float_noise(a)  # type: ignore[arg-type]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, 7, 1000, 4097])
def test_percentiles_like_are_numpys_floats_and_types(dtype: type, n: int) -> None:
    """A scalar q interpolates in the array's dtype, a list of them in float64, as numpy."""
    rng = np.random.default_rng(n)
    for hi in (5, 3300, 1 << 20):
        x = rng.integers(-hi, hi, n).astype(dtype)
        counts, lo = _counts(x.astype(np.intp))
        for q in (0, 50, 95.0, 99, 99.8, 100):
            want, got = np.percentile(x, q), _percentiles_like(counts, lo, q, x.dtype)
            assert want == got and type(want) is type(got)
        want_list = np.percentile(x, [95.0, 99.8])
        got_list = np.array(_percentiles_like(counts, lo, [95.0, 99.8], x.dtype))
        assert np.array_equal(want_list, got_list) and want_list.dtype == got_list.dtype
