"""The exact DEQ kernels solved in tiles agree with the whole-matrix solve.

Each pair is computed by the same elementwise operations in both paths (X^T X by another
matrix product), so the closed forms agree to a few ulps of the largest entry; the Mehler
series may pick another certified order per tile, so it agrees to its certified accuracy.
"""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from rmt_deq.errors import InvalidParameterError, MemoryBudgetError
from rmt_deq.kernels._tiles import FIXED_BYTES, choose_tile, tiled_memory
from rmt_deq.kernels.exact import exact_ck, exact_kernels, exact_ntk, ntk_from_kernel

SA = 0.3
EPS = np.finfo(float).eps
#: ulps of the largest entry allowed between the two code paths (rounding of X^T X and of
#: the transcendental functions on different array layouts)
ULPS = 8


def _data(p: int = 12, n: int = 29) -> np.ndarray:
    X = np.random.default_rng(3).standard_normal((p, n)) / np.sqrt(p)
    X[:, 5] = X[:, 4] * (1 + 1e-7)          # a pair with rho near 1
    return X


def _close(A: np.ndarray, B: np.ndarray, bound: float) -> None:
    assert A.shape == B.shape
    assert np.abs(A - B).max() <= bound * np.abs(A).max()


@pytest.mark.parametrize("activation", ["relu", "erf"])
@pytest.mark.parametrize("tile", [1, 7, 16])
def test_tiles_match_the_whole_matrix_to_a_few_ulps(activation, tile):
    X = _data()
    a = exact_kernels(X, activation, SA)
    b = exact_kernels(X, activation, SA, _tile=tile)
    assert a.info.tile == 0 and b.info.tile == tile
    assert b.info.Sigma is None and b.info.Gdot is None and b.info.XtX is None
    for kind in ("ck", "ntk"):
        _close(getattr(a, kind), getattr(b, kind), ULPS * EPS)
        assert np.array_equal(getattr(b, kind), getattr(b, kind).T)
    # the report aggregates the tiles: the same step count and residual history
    assert b.report.converged and b.report.iterations == a.report.iterations
    np.testing.assert_allclose(b.report.history, a.report.history, rtol=1e-6, atol=1e-15)
    assert b.report.residual <= b.report.tolerance
    assert b.info.diagonal == a.info.diagonal


@pytest.mark.parametrize("groups", [("v",), ("v", "A"), ("A", "B")])
def test_tiled_ntk_groups(groups):
    X = _data()
    a = exact_ntk(X, "relu", SA, groups=groups)
    b = exact_kernels(X, "relu", SA, get="ntk", groups=groups, _tile=6)
    assert b.ck is None and b.selected == a.selected
    _close(a.ntk, b.ntk, ULPS * EPS)
    if len(groups) == 1:
        assert np.array_equal(b.groups[groups[0]], b.ntk)
    else:
        assert dict(b.groups) == {}
    # exact_ntk keeps each group's matrix in tiles too, counted in the budget
    n, p = X.shape[1], X.shape[0]
    outputs = 2 + (len(groups) if len(groups) > 1 else 0)
    c = exact_ntk(X, "relu", SA, groups=groups, max_memory=tiled_memory(n, p, outputs, 16))
    assert c.info.tile == 16 and set(c.groups) == set(groups)
    for g in groups:
        _close(a.groups[g], c.groups[g], ULPS * EPS)
    _close(a.ntk, c.ntk, ULPS * EPS)
    _close(a.ck, c.ck, ULPS * EPS)


def test_tiled_mehler_and_quadrature_engines():
    X = np.delete(_data(n=17), 5, axis=1)    # no pair near rho = 1: the series alone
    a = exact_kernels(X, "tanh", SA)
    b = exact_kernels(X, "tanh", SA, _tile=5)
    # the series order is chosen per tile: each entry is certified to expectation_tol
    # (relative to sqrt(G_ii G_jj) <= max G_ii), and the fixed point moves by at most
    # 1 / (1 - sa max Gdot) times that
    bound = 10 * 1e-13 / (1 - SA * float(np.max(a.info.Gdot)))
    for kind in ("ck", "ntk"):
        _close(getattr(a, kind), getattr(b, kind), bound)
    small = X[:, :5]
    c = exact_kernels(small, "relu", SA, method="quadrature")
    d = exact_kernels(small, "relu", SA, method="quadrature", _tile=2)
    _close(c.ck, d.ck, ULPS * EPS)
    assert d.info.quadrature_pairs == c.info.quadrature_pairs == 5 * 4 // 2


def test_a_small_budget_runs_in_tiles_within_it():
    X = _data(n=60)
    n, p = X.shape[1], X.shape[0]
    budget = tiled_memory(n, p, 1, 20)
    assert choose_tile(n, p, 1, budget) == 20
    a = exact_ck(X, "relu", SA)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        b = exact_ck(X, "relu", SA, max_memory=budget)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert b.info.tile == 20 and b.info.tiles == 6
    _close(a.ck, b.ck, ULPS * EPS)
    assert peak <= budget
    assert b.to_dict()["info"]["tile"] == 20


@pytest.mark.parametrize("activation, method", [("relu", "closed"), ("tanh", "mehler")])
def test_tiled_estimate_bounds_the_measured_peak_without_the_fixed_allowance(activation,
                                                                           method):
    n, p, tile = 400, 30, 50
    X = np.random.default_rng(5).standard_normal((p, n)) / np.sqrt(p)
    exact_kernels(X[:, :20], activation, SA, _tile=10)     # tables and rules built once
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        K = exact_kernels(X, activation, SA, get="ck", _tile=tile)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert K.info.tile == tile
    # the output alone is a lower bound; the estimate less the fixed allowance an upper one
    assert 8 * n * n <= peak <= tiled_memory(n, p, 1, tile, method) - FIXED_BYTES


def test_a_budget_too_small_for_one_tile_is_refused_naming_the_fix():
    X = _data(n=40)
    needed = tiled_memory(40, X.shape[0], 2, 16)
    with pytest.raises(MemoryBudgetError,
                       match=r"in tiles, 2 n x n float64 output.*raise max_memory.*get"):
        exact_kernels(X, "relu", SA, max_memory=0.99 * needed)
    with pytest.raises(InvalidParameterError, match="_tile"):
        exact_kernels(X, "relu", SA, _tile=0)


def test_ntk_from_a_tiled_ck_is_refused():
    X = _data(n=10)
    ck = exact_kernels(X, "relu", SA, get="ck", _tile=5)
    assert ck.info.tile == 5
    with pytest.raises(InvalidParameterError, match=r"tiles.*get=\('ck', 'ntk'\)"):
        ntk_from_kernel(ck)
