"""The exact DEQ kernels in tiles, for n too large to hold the unblocked working set
(docs/theory.md §2).

Sigma = sa G(Sigma) + sb X^T X is entrywise once the diagonal is known, so after the
diagonal solve (:func:`rmt_deq.kernels._newton.prepare`, needed by every pair) the
off-diagonal Newton iteration runs tile by tile on the upper triangle of tiles, and each
tile's G (and NTK) is written, with its mirror image, into the n x n output(s).  The peak
working set is the output(s) plus O(tile^2) (:func:`tiled_memory`).

The unblocked iteration steps every pair until the *largest* residual meets ``tol``, so
every pair takes the same number K of Newton steps, and that count matters beyond rounding
(one more step moves a pair by up to its residual).  The tiles reproduce it in two passes:
the first runs each tile until its own residual meets ``tol`` (after k_t steps) and keeps
the iterate Sigma at that step in the output; K = max_t k_t; the second advances each tile
from its kept iterate to step K and writes G (and the NTK) there.  Each pair is then
computed by the same elementwise operations as the unblocked solve (X^T X by a different
matrix product: a few ulps), and the report's history is the unblocked one (the largest
residual over all tiles at each step).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rmt_deq._results import SolverReport
from rmt_deq.activations import Activation
from rmt_deq.errors import ConvergenceError, NoFixedPointError
from rmt_deq.fixed_point.solution import FixedPointSolution
from rmt_deq.kernels._newton import NewtonOptions, linearised_start, prepare
from rmt_deq.moments.pairs import PairExpectations

__all__ = ["TILE_ARRAYS", "MIN_TILE", "MAX_TILE", "FIXED_BYTES", "PER_SAMPLE_BYTES",
           "PER_SAMPLE_BYTES_DEFAULT", "tiled_memory",
           "choose_tile", "ntk_groups", "Tiled", "solve_tiled"]

#: live tile x tile float64 arrays while a tile is iterated (Sigma, its bound, X^T X, rho,
#: G, Gdot, the residual and step, the closed forms' or the series' temporaries), rounded
#: up from tracemalloc measurements (tests/test_exact_tiles.py checks the bound)
TILE_ARRAYS = 24
#: the smallest tile the memory check accepts (smaller ones cost more in Python than in
#: arithmetic)
MIN_TILE = 16
#: the largest tile (beyond it the workspace grows without making the solve faster)
MAX_TILE = 2048
#: what does not grow with n or the tile: Hermite tables and quadrature rules built on a
#: first call (the same allowance as the unblocked estimate)
FIXED_BYTES = 64 * 2 ** 20
#: bytes per sample of the pair engine and the O(n) vectors: the Mehler engine keeps each
#: sample's activation values on its quadrature rule (measured with tracemalloc: at most
#: about 67 KiB per sample for swish, 50 KiB for tanh), the others O(1) vectors
PER_SAMPLE_BYTES = {"mehler": 80 * 1024}
#: ... for the closed forms and the quadrature
PER_SAMPLE_BYTES_DEFAULT = 1024


def tiled_memory(n: int, p: int, outputs: int, tile: int, method: str = "closed") -> float:
    """Upper estimate (bytes) of the peak of the tiled solve: ``outputs`` n x n float64
    matrices, the tile workspace, X (and its float64 copy), the pair engine's per-sample
    tables (``method``: "closed", "mehler" or "quadrature") and the fixed allowance."""
    per_sample = PER_SAMPLE_BYTES.get(method, PER_SAMPLE_BYTES_DEFAULT)
    return 8.0 * (outputs * n * n + TILE_ARRAYS * tile * tile + 2 * p * n) \
        + per_sample * n + FIXED_BYTES


def choose_tile(n: int, p: int, outputs: int, budget: float, method: str = "closed"
                ) -> int | None:
    """The largest tile (at most :data:`MAX_TILE`, at most n) whose peak fits ``budget``;
    None when not even ``min(MIN_TILE, n)`` fits."""
    t = min(MAX_TILE, n)
    left = budget - tiled_memory(n, p, outputs, 0, method)
    if left > 0:
        t = min(t, math.isqrt(int(left // (8 * TILE_ARRAYS))))
    else:
        t = 0
    return t if t >= min(MIN_TILE, n) else None


def ntk_groups(G: np.ndarray, Gdot: np.ndarray, XtX: np.ndarray, sa: float, sb: float,
               selected: tuple[str, ...]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The selected NTK groups and their sum (docs/theory.md §2), entrywise on any block."""
    gain = 1.0 / (1.0 - sa * Gdot)
    parts: dict[str, np.ndarray] = {}
    for g in selected:
        if g == "v":
            parts[g] = np.array(G)
        elif g == "A":
            parts[g] = sa * G * Gdot * gain
        else:
            parts[g] = sb * XtX * Gdot * gain
    return parts, np.asarray(sum(parts.values()))


@dataclass(frozen=True, eq=False)
class Tiled:
    """What :func:`solve_tiled` found (arrays owned by the caller)."""

    ck: np.ndarray | None
    ntk: np.ndarray | None
    groups: dict[str, np.ndarray]
    report: SolverReport
    diagonal: SolverReport
    method: str
    series_order: int
    quadrature_pairs: int
    tile: int
    tiles: int


class _Problem:
    """The shared, read-only state of the tiles."""

    def __init__(self, engine: PairExpectations, X: np.ndarray, Sd: np.ndarray, sa: float,
                 sb: float, c: float, opts: NewtonOptions, scale: float) -> None:
        self.engine, self.X, self.Sd, self.sa, self.sb, self.c = engine, X, Sd, sa, sb, c
        self.opts, self.scale = opts, scale
        self.series_order = 0
        self.quadrature_pairs = 0
        self.max_gdot = -math.inf

    def xtx(self, rows: slice, cols: slice) -> np.ndarray:
        """The block of X^T X (symmetric on a diagonal tile, like the full product)."""
        if rows == cols:
            A = self.X[:, rows]
            B = A.T @ A
            return _symmetric_from_upper(B)
        return self.X[:, rows].T @ self.X[:, cols]

    def start(self, rows: slice, cols: slice, XtX: np.ndarray) -> np.ndarray:
        Sigma = linearised_start(self.engine, self.sa, self.sb, self.c, XtX, rows, cols)
        if rows == cols:
            np.fill_diagonal(Sigma, self.Sd[rows])
        return Sigma

    def evaluate(self, Sigma: np.ndarray, rows: slice, cols: slice
                 ) -> tuple[np.ndarray, np.ndarray]:
        G, D = self.engine.evaluate_tile(Sigma, rows, cols)
        if rows == cols:
            G, D = _symmetric_from_upper(G), _symmetric_from_upper(D)
        return G, D

    def newton_step(self, Sigma: np.ndarray, R: np.ndarray, D: np.ndarray, rows: slice,
                    cols: slice) -> np.ndarray:
        """One Newton step on the tile (the unblocked update, entrywise)."""
        step = R / (1.0 - self.sa * D)
        if rows == cols:
            np.fill_diagonal(step, 0.0)
        Sigma = Sigma - step
        s = self.engine.s
        ss = np.multiply.outer(s[rows], s[cols])
        np.clip(Sigma, -ss, ss, out=Sigma)
        if rows == cols:
            np.fill_diagonal(Sigma, self.Sd[rows])
        return Sigma

    def run(self, Sigma: np.ndarray, XtX: np.ndarray, rows: slice, cols: slice, k0: int,
            until: int | None, history: list[float]
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, float]:
        """Iterate a tile from its iterate at step ``k0`` (1-based: the next evaluation is
        step k0).  With ``until`` None: until its residual meets tol (or max_iter); else
        exactly to step ``until``.  The tile's residual at step k is merged into
        ``history[k - 1]`` (a maximum).  Returns Sigma, G, Gdot at the last step, the step
        and the tile's residual there."""
        tol, max_iter = self.opts.tol, self.opts.max_iter
        last = max_iter if until is None else until
        k = k0
        while True:
            G, D = self.evaluate(Sigma, rows, cols)
            R = Sigma - self.sa * G - self.sb * XtX
            res = float(np.max(np.abs(R))) / self.scale
            if len(history) < k:
                history.append(res)
            elif not res <= history[k - 1]:
                history[k - 1] = res
            if not math.isfinite(res) or k >= last or (until is None and res <= tol):
                return Sigma, G, D, k, res
            Sigma = self.newton_step(Sigma, R, D, rows, cols)
            k += 1


def _symmetric_from_upper(B: np.ndarray) -> np.ndarray:
    """The square block with its strict lower triangle replaced by the upper's mirror."""
    il = np.tril_indices(B.shape[0], -1)
    B[il] = B.T[il]
    return B


def _tile_slices(n: int, tile: int) -> list[tuple[slice, slice]]:
    """The upper triangle of tiles (row block <= column block), row by row."""
    edges = [slice(a, min(n, a + tile)) for a in range(0, n, tile)]
    return [(edges[a], edges[b]) for a in range(len(edges)) for b in range(a, len(edges))]


def _put(out: np.ndarray, rows: slice, cols: slice, block: np.ndarray) -> None:
    out[rows, cols] = block
    if rows != cols:
        out[cols, rows] = block.T


def solve_tiled(act: Activation, sa: float, sb: float, X: np.ndarray, norms2: np.ndarray,
                sol: FixedPointSolution, opts: NewtonOptions, tile: int,
                kinds: tuple[str, ...], selected: tuple[str, ...], keep_groups: bool = False
                ) -> Tiled:
    """The exact kernels ``kinds`` ("ck", "ntk" summed over ``selected``) tile by tile
    (see the module docstring); inputs validated by the caller, ``tile`` >= 1.  With
    ``keep_groups`` (and several groups) each group's NTK matrix is kept as well."""
    n = X.shape[1]
    tol, max_iter = opts.tol, opts.max_iter
    Sd, diag_report, engine = prepare(act, sa, sb, norms2, sol, opts)
    prob = _Problem(engine, X, Sd, sa, sb, float(sol.centring), opts, float(Sd.max()))
    ck = np.empty((n, n)) if "ck" in kinds else None
    ntk = np.empty((n, n)) if "ntk" in kinds else None
    groups = {g: np.empty((n, n)) for g in selected} \
        if keep_groups and ntk is not None and len(selected) > 1 else {}
    keep: np.ndarray = ck if ck is not None else ntk      # holds the iterates between passes
    tiles = _tile_slices(n, tile)
    history: list[float] = []

    def fail(why: str) -> ConvergenceError:
        return ConvergenceError(
            f"the off-diagonal Newton iteration of the Implicit-CK ({act.name!r}, "
            f"sa = {sa:g}, n = {n}, in tiles of {tile}) {why}; raise max_iter or loosen tol",
            history)

    # ---- pass 1: each tile to its own tolerance; its iterate is kept in the output
    steps = []
    for rows, cols in tiles:
        XtX = prob.xtx(rows, cols)
        Sigma, _G, _D, k, res = prob.run(prob.start(rows, cols, XtX), XtX, rows, cols, 1,
                                         None, history)
        if not res <= tol:
            raise fail(f"did not reach tol = {tol:g} in {max_iter} iterations")
        steps.append(k)
        _put(keep, rows, cols, Sigma)
    K = max(steps)

    # ---- pass 2: every tile to the common step K, where G and Gdot are written
    def finish(target: int, restart: bool) -> None:
        prob.series_order, prob.quadrature_pairs = 0, 0
        prob.max_gdot = -math.inf
        for (rows, cols), k in zip(tiles, steps):
            XtX = prob.xtx(rows, cols)
            if restart:
                Sigma, k = prob.start(rows, cols, XtX), 1
            else:
                Sigma = np.array(keep[rows, cols])
            Sigma, G, D, _k, _res = prob.run(Sigma, XtX, rows, cols, k, target, history)
            prob.series_order = max(prob.series_order, engine.last_order)
            prob.quadrature_pairs += engine.last_quadrature_pairs
            prob.max_gdot = max(prob.max_gdot, float(np.max(D)))
            if ck is not None:
                _put(ck, rows, cols, G)
            if ntk is not None:
                parts, total = ntk_groups(G, D, XtX, sa, sb, selected)
                _put(ntk, rows, cols, total)
                for g, out in groups.items():
                    _put(out, rows, cols, parts[g])

    finish(K, restart=False)
    # a tile whose residual met tol at k_t may exceed it again at K (tol at the rounding
    # level): then the unblocked iteration goes on, and so do the tiles, from their starts
    while not history[K - 1] <= tol:
        if not math.isfinite(history[K - 1]) or K >= max_iter:
            raise fail(f"did not reach tol = {tol:g} in {K} iterations")
        K += 1
        finish(K, restart=True)
    del history[K:]
    if not prob.max_gdot * sa < 1.0:     # |Gdot_ij| <= sqrt(Gdot_ii Gdot_jj): rounding only
        raise NoFixedPointError(
            f"sa Gdot = {sa * prob.max_gdot:.6g} >= 1 at the fixed point ({act.name!r}, "
            f"sa = {sa:g}): the NTK factor 1/(1 - sa Gdot) diverges; reduce sa")
    report = SolverReport(
        converged=True, residual=history[-1], tolerance=tol, iterations=len(history),
        history=history,
        message=f"the off-diagonal Newton iteration of the Implicit-CK ({act.name!r}, "
                f"sa = {sa:g}, n = {n}, {len(tiles)} tiles of {tile}) reached "
                f"max|Sigma - sa G - sb X^T X| / max Sigma_ii <= {tol:g} in {len(history)} "
                f"iterations")
    if ntk is not None and len(selected) == 1:
        groups = {selected[0]: ntk}
    return Tiled(ck=ck, ntk=ntk, groups=groups, report=report, diagonal=diag_report,
                 method=engine.method, series_order=prob.series_order, quadrature_pairs=prob.quadrature_pairs,
                 tile=tile, tiles=len(tiles))
