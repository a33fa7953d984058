"""Exact infinite-width Implicit-CK and NTK of the DEQ, for any data (docs/theory.md §2).

For data X (p x n, columns are samples) the Implicit-CK is the fixed point

    Sigma = sa G(Sigma) + sb X^T X,    G_ij = E[phi_c(u_i) phi_c(u_j)],

with (u_i, u_j) centred Gaussian of covariance [[Sigma_ii, Sigma_ij], [Sigma_ij, Sigma_jj]]
and phi_c = phi - E[phi(tau xi)] centred at the fixed-point scale tau of the four-equation
system (:func:`rmt_deq.fixed_point.four_equations.solve_four_equations`).  The map is
entrywise:

* the diagonal Sigma_ii solves the scalar equation
  Sigma_ii = sa E[phi_c(sqrt(Sigma_ii) xi)^2] + sb ||x_i||^2, whose derivative in Sigma_ii is
  sa E[(phi_c^2)''] / 2 = sa E[He_2(xi) phi_c^2] / (2 Sigma_ii); it is solved for all
  samples at once by a bracketed (safeguarded) Newton iteration;
* given the diagonal, each off-diagonal entry solves
  Sigma_ij = sa G_ij(Sigma_ij) + sb x_i.x_j, and by Price's theorem
  d G_ij / d Sigma_ij = Gdot_ij = E[phi'(u_i) phi'(u_j)], so Newton's method runs on the
  whole matrix at once and converges quadratically (1 - sa Gdot_ij > 0 is guaranteed by
  sa E[phi'^2] < 1, checked on the diagonal).

With Gdot at the fixed point, the infinite-width NTK of f(x) = v^T z splits by parameter
group::

    Theta = G                                  (v)
          + sa G o Gdot / (1 - sa Gdot)        (A)
          + sb (X^T X) o Gdot / (1 - sa Gdot)  (B)

(entrywise products and quotients).  The published reference convention keeps v and A only,
G / (1 - sa Gdot) (:func:`published_ntk`).

Every route returns a :class:`~rmt_deq.kernels.result.Kernel` (``route="exact"``): ``ck``
is G, ``ntk`` the sum of the selected groups, ``report`` the off-diagonal Newton
iteration, ``solution`` the four-equation solution of the centring, and ``info`` an
:class:`ExactDetails` (Sigma, Gdot, X^T X, the engine, the diagonal solve).

When the whole-matrix iteration would exceed ``max_memory``, the same iteration runs in
tiles (:mod:`rmt_deq.kernels._tiles`): the result then holds only the requested n x n
output(s), ``ck`` and/or ``ntk`` (Sigma, Gdot and X^T X are not kept, nor the per-group
matrices of a multi-group NTK).  Measurements: docs/exact_kernels.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from rmt_deq._results import SolverReport, readonly
from rmt_deq._xp import host_data, resolve_backend
from rmt_deq._validation import (as_data_matrix, check_choice, check_groups, check_memory,
                                 check_options, check_positive_int, check_tolerance,
                                 check_variances, check_workers, memory_budget, same_variance)
from rmt_deq.activations import ActivationLike, get_activation
from rmt_deq.errors import InvalidParameterError, ShapeMismatchError, UnknownOptionError
from rmt_deq.fixed_point.solution import FixedPointSolution
from rmt_deq.kernels._newton import NewtonOptions, solve_fixed_point
from rmt_deq.kernels._tiles import (FIXED_BYTES, MIN_TILE, choose_tile, ntk_groups, solve_tiled,
                                   tiled_memory)
from rmt_deq.kernels.result import Kernel
from rmt_deq.moments.bivariate import DEFAULT_KMAX, DEFAULT_TOL, METHODS
from rmt_deq.moments.pair_closed import has_closed_form
from rmt_deq.fixed_point.centring import centring_solution

__all__ = ["ExactDetails", "NTK_GROUPS", "PUBLISHED_GROUPS", "KERNEL_KINDS", "exact_kernels",
           "exact_ck", "exact_ntk", "published_ntk", "ntk_from_kernel"]

#: the DEQ's NTK parameter groups: readout v, recurrent weights A, input weights B
NTK_GROUPS = ("v", "A", "B")
#: the groups of the published reference convention G / (1 - sa Gdot)
PUBLISHED_GROUPS = ("v", "A")
#: the kernels :func:`exact_kernels` can return (its ``get``)
KERNEL_KINDS = ("ck", "ntk")

#: keyword options of :func:`exact_kernels` that :func:`exact_ck`, :func:`exact_ntk` and
#: :func:`published_ntk` pass on
_OPTIONS = frozenset({"tau0", "labels", "solution", "method", "tol", "max_iter",
                      "expectation_tol", "kmax", "workers", "max_memory", "backend"})

@dataclass(frozen=True, eq=False)
class ExactDetails:
    """Diagnostics of an exact DEQ kernel (the ``info`` of its :class:`Kernel`).

    Attributes
    ----------
    Sigma : ndarray, shape (n, n), or None
        Preactivation covariance at the fixed point, Sigma = sa G + sb X^T X (None when
        computed in tiles).
    Gdot : ndarray, shape (n, n), or None
        E[phi'(u_i) phi'(u_j)] (uncentred derivative) at the same Sigma (None in tiles).
    XtX : ndarray, shape (n, n), or None
        The input Gram matrix X^T X (None in tiles).
    sa, sb : float
        The weight variances of the fixed point.
    method : str
        Engine of the bivariate expectations ("closed", "mehler" or "quadrature").
    series_order : int
        Largest Mehler order used in the last evaluation (0 when not used).
    quadrature_pairs : int
        Pairs i < j evaluated by 2-D quadrature in the last evaluation.
    diagonal : SolverReport
        The bracketed Newton solve of the diagonal (the residual is the largest
        |F(Sigma_ii)| / Sigma_ii; a sample whose Newton step reached the rounding level of
        Sigma_ii stops there, which the message says).
    tile : int
        The tile size when the fixed point was solved in tiles (0: the whole matrix at
        once); the tiles' pairs are the unblocked numbers to a few ulps (the Mehler
        series: to ``expectation_tol``), see :mod:`rmt_deq.kernels._tiles`.
    tiles : int
        The number of tiles (of the upper triangle; 0 for the whole matrix).
    backend : str
        The array backend of the off-diagonal iteration (:mod:`rmt_deq._xp`).
    """

    Sigma: np.ndarray | None = field(repr=False)
    Gdot: np.ndarray | None = field(repr=False)
    XtX: np.ndarray | None = field(repr=False)
    sa: float
    sb: float
    method: str
    series_order: int
    quadrature_pairs: int
    diagonal: SolverReport
    tile: int = 0
    tiles: int = 0
    backend: str = "numpy"

    def __post_init__(self) -> None:
        for name in ("Sigma", "Gdot", "XtX"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, readonly(getattr(self, name), dtype=float))

    def to_dict(self) -> dict:
        """JSON-ready summary: the variances, the engine and the diagonal solve (and the
        tiles, when the fixed point was solved in tiles)."""
        d = {"sa": self.sa, "sb": self.sb, "method": self.method,
             "series_order": int(self.series_order),
             "quadrature_pairs": int(self.quadrature_pairs),
             "diagonal": self.diagonal.to_dict()}
        if self.tile:
            d.update(tile=int(self.tile), tiles=int(self.tiles))
        if self.backend != "numpy":
            d["backend"] = self.backend
        return d


# ----------------------------------------------------------------------------------------
# memory
# ----------------------------------------------------------------------------------------
#: live n x n float64 arrays at the peak of :func:`exact_ck`, per method (measured with
#: tracemalloc, docs/sampling.md), rounded up; the 2-D quadrature also holds the pair
#: indices and per-pair arrays
_CK_PEAK_ARRAYS = {"closed": 16, "mehler": 16, "quadrature": 28}
#: what does not grow like n^2 (bounded by the measurements at small n): the Hermite
#: tables and quadrature rules built on a first call, the threads' row blocks of the series
_CK_FIXED_BYTES = FIXED_BYTES


def _exact_ck_memory(n: int, p: int, method: str) -> float:
    """Upper estimate (bytes) of the peak working set of :func:`exact_ck`."""
    arrays = _CK_PEAK_ARRAYS.get(method, max(_CK_PEAK_ARRAYS.values()))
    return 8.0 * (arrays * n * n + 2 * p * n) + _CK_FIXED_BYTES


def _plan_memory(n: int, p: int, method: str, outputs: int, max_memory: Any, what: str,
                 tile: int | None) -> int:
    """0 when the whole-matrix iteration fits ``max_memory``, else the tile size of the
    tiled solve (``tile`` forces one); MemoryBudgetError when not even a smallest tile
    fits."""
    budget = memory_budget(max_memory)
    if tile is None and _exact_ck_memory(n, p, method) <= budget:
        return 0
    if tile is None:
        tile = choose_tile(n, p, outputs, budget, method)
    if tile is None:
        smallest = min(MIN_TILE, n)
        needed = tiled_memory(n, p, outputs, smallest, method)
        check_memory(needed, budget,
                     f"{what} (n = {n}: in tiles, {outputs} n x n float64 output(s) and a "
                     f"{smallest} x {smallest} tile's workspace)",
                     f"raise max_memory (bytes) to at least {needed:.4g} if the machine has "
                     f"the memory, use fewer samples, or ask for one kernel only (get)")
    check_memory(tiled_memory(n, p, outputs, tile, method), budget,
                 f"{what} (n = {n}: in tiles of {tile})", "use a smaller tile")
    return tile


def _check_array_api(backend: str, activation: str, method: str, shape: tuple[int, int],
                     max_memory: Any, tile: int | None) -> None:
    """A backend other than numpy runs the closed forms on the whole matrix only."""
    if method != "closed":
        raise UnknownOptionError(
            f"the {backend!r} backend computes the exact kernels from the closed forms only "
            f"(the ReLU family and erf); {activation!r} with method={method!r} needs "
            f"backend='numpy'")
    p, n = shape
    if tile is not None:
        raise InvalidParameterError("the tiled solve (_tile) runs with backend='numpy' only")
    check_memory(_exact_ck_memory(n, p, method), memory_budget(max_memory),
                 f"the exact Implicit-CK on the {backend!r} backend (n = {n}: the whole "
                 f"matrix at once; only numpy solves in tiles)",
                 "raise max_memory, or use backend='numpy' (which solves in tiles)")


def _check_get(get: Any) -> tuple[str, ...]:
    """The requested kernels, in the order of :data:`KERNEL_KINDS`."""
    if isinstance(get, str):
        get = (get,)
    try:
        kinds = tuple(get)
    except TypeError:
        raise UnknownOptionError(
            f"get must be a sequence of kernel names from {KERNEL_KINDS}, got {get!r}") from None
    for k in kinds:
        check_choice(k, "kernel", KERNEL_KINDS)
    if not kinds:
        raise InvalidParameterError(f"get selects at least one kernel from {KERNEL_KINDS}")
    return tuple(k for k in KERNEL_KINDS if k in kinds)


# ----------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------
def exact_kernels(
    X: Any,
    activation: ActivationLike,
    sa: float,
    sb: float | None = None,
    *,
    get: str | Iterable[str] = KERNEL_KINDS,
    groups: Iterable[str] | None = None,
    tau0: float | None = None,
    labels: Any = None,
    solution: FixedPointSolution | None = None,
    method: str = "auto",
    tol: float = 1e-12,
    max_iter: int = 50,
    expectation_tol: float = DEFAULT_TOL,
    kmax: int = DEFAULT_KMAX,
    workers: int | None = None,
    max_memory: float | None = None,
    backend: Any = None,
    _tile: int | None = None,
    _keep_groups: bool = False,
) -> Kernel:
    """Exact infinite-width CK and/or NTK of the DEQ for data X (docs/theory.md §2).

    Parameters
    ----------
    X : array_like, shape (p, n)
        Data; X is p x n (columns are samples).  Must be finite, every column nonzero.
    activation : name, Activation or callable
        phi, uncentred (it is centred at the four-equation scale tau).
    sa : float
        Variance of the recurrent weights A, > 0.
    sb : float, optional
        Variance of the input weights B; default 1 - sa.
    get : {"ck", "ntk"} or a sequence of them
        The kernels to return (both by default): the CK G in ``ck``, the NTK in ``ntk``
        (the fixed point is solved once either way).
    groups : iterable of {"v", "A", "B"}, optional
        NTK parameter groups summed into ``ntk`` (default all three; ("v", "A") is the
        published convention, see :func:`published_ntk`); only with "ntk" in ``get``.
    tau0 : float or DataScale, optional
        Data scale sqrt(tr C°/p) passed to the four-equation system that fixes tau and the
        centring.  Default (:func:`rmt_deq.data.conventions.data_scale`, one convention for
        every kernel of the package): the plug-in estimate from ``labels`` when given,
        else all samples as one class (sum_i ||x_i - xbar||^2/(n - 1), which also counts
        the spread of the class means); the result records which in ``tau0_source``.
    labels : array_like, shape (n,), optional
        Class labels, used only for the default tau0 (the plug-in tr(C°)/p).
    solution : FixedPointSolution, optional
        Take tau and the centring from this solution instead (must match activation, sa,
        sb; exclusive with ``tau0`` and ``labels``).
    method : {"auto", "closed", "mehler", "quadrature"}
        Engine of the bivariate Gaussian expectations (:mod:`rmt_deq.moments.bivariate`);
        "auto" uses the closed form (ReLU family, erf) when there is one, else the Mehler
        series with a 2-D quadrature fallback for |rho| near 1.  "quadrature" (every pair
        by 2-D quadrature) is meant for small n.
    tol : float
        Relative tolerance of the fixed point: max|Sigma - sa G - sb X^T X| / max Sigma_ii.
    max_iter : int
        Newton iteration cap (diagonal and off-diagonal each).
    expectation_tol : float
        Certified accuracy of each bivariate expectation, relative to its natural scale.
    kmax : int
        Largest Mehler order before the quadrature fallback.
    workers : int, optional
        Threads for the Mehler series, a positive integer (default: available CPUs, at
        most 8).
    max_memory : float, optional
        Bytes the computation may use (default 2 GiB); checked before anything of size
        n x n is allocated, against an estimate of the peak working set.  When the
        whole-matrix iteration would exceed it, the fixed point is solved in tiles that
        fit (the peak is then the requested output(s), one n x n float64 matrix each, plus
        the tile's workspace); see the Returns for what a tiled result holds.
    backend : str, module or None
        Array backend of the off-diagonal Newton iteration (:mod:`rmt_deq._xp`): "numpy",
        "array_api_strict", "torch", "cupy" or an array API namespace; None (default): the
        data's own (numpy for numpy data).  Other than numpy: the closed forms only (ReLU
        family, erf) and the whole matrix at once (no tiles); the diagonal solve and the
        centring run on the host, and the result is numpy float64.
    _tile : int, optional
        Private: force the tiled solve with this tile size (for tests).
    _keep_groups : bool
        Private: keep each group's NTK matrix in tiles too (what :func:`exact_ntk` and
        :func:`published_ntk` promise), counted in the memory budget.

    Returns
    -------
    Kernel
        ``route="exact"``, ``network="deq"``: ``ck`` (G) and/or ``ntk`` with ``groups``
        and ``selected``; ``tau0`` and ``tau0_source``; ``report`` (the off-diagonal
        Newton iteration, converged to ``tol``); ``solution`` (the four-equation solution
        of the centring); ``info`` an :class:`ExactDetails` (Sigma, Gdot, X^T X, the
        engine, the diagonal solve).  Solved in tiles (``info.tile`` > 0): ``info``'s
        Sigma, Gdot and X^T X are None, and ``groups`` holds the NTK of a single selected
        group only (the per-group matrices of several groups would each be another n x n
        array; ``ntk`` is their sum; :func:`exact_ntk` keeps them).

    Raises
    ------
    ShapeMismatchError, NonFiniteInputError
        X is not a finite 2-D array.
    InvalidParameterError
        Bad sa/sb/tol/max_iter/workers, a zero column of X, X of a scale outside the
        floating-point range, an inconsistent ``solution``, ``groups`` without "ntk".
    UnknownOptionError
        Unknown method, kernel name, NTK group or backend; a backend other than numpy for
        an activation without closed forms.
    MemoryBudgetError
        Not even the tiled solve with the smallest tile fits ``max_memory``; with a
        backend other than numpy, the whole matrix does not fit.
    NoFixedPointError
        sa E[phi'(u_i)^2] >= 1 for some sample (then 1 - sa Gdot vanishes somewhere and the
        off-diagonal equations lose uniqueness), or the diagonal equation has no root.
    ConvergenceError
        Newton did not reach ``tol`` within ``max_iter``, or an expectation could not be
        certified to ``expectation_tol``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).standard_normal((6, 5)) / np.sqrt(6)
    >>> K = exact_kernels(X, "relu", 0.3, get="ck")
    >>> bool(np.allclose(K.info.Sigma, 0.3 * K.ck + 0.7 * X.T @ X, atol=1e-12))
    True
    """
    kinds = _check_get(get)
    if groups is not None and "ntk" not in kinds:
        raise InvalidParameterError(
            "groups select NTK parameter groups: they apply with 'ntk' in get only")
    sel = check_groups(NTK_GROUPS if groups is None else groups, NTK_GROUPS) \
        if "ntk" in kinds else ()
    bk = resolve_backend(backend, X)
    Xa = as_data_matrix(host_data(X))
    act = get_activation(activation)
    sa, sb = check_variances(sa, sb)
    if method not in METHODS:
        raise UnknownOptionError(f"unknown method {method!r}; choose one of {METHODS}")
    opts = NewtonOptions(method=method, tol=check_tolerance(tol, "tol"),
                  expectation_tol=check_tolerance(expectation_tol, "expectation_tol"),
                  max_iter=check_positive_int(max_iter, "max_iter"), kmax=kmax,
                  workers=check_workers(workers))
    resolved = method
    if method == "auto":
        resolved = "closed" if has_closed_form(act) else "mehler"
    if _tile is not None:
        _tile = check_positive_int(_tile, "_tile")
    keep_groups = bool(_keep_groups) and len(sel) > 1
    if not bk.is_numpy:
        _check_array_api(bk.name, act.name, resolved, Xa.shape, max_memory, _tile)
    tile = _plan_memory(Xa.shape[1], Xa.shape[0], resolved,
                        len(kinds) + (len(sel) if keep_groups else 0), max_memory,
                        "the exact Implicit-CK", _tile)
    norms2 = np.sum(Xa * Xa, axis=0)
    if np.any(norms2 <= 0):
        zero = np.flatnonzero(norms2 <= 0)
        raise InvalidParameterError(
            f"X has {zero.size} zero column(s) (first: {int(zero[0])}); the Implicit-CK needs "
            f"every sample to be nonzero")
    sol, tau0_source = centring_solution(act, sa, sb, Xa, tau0, solution, labels)
    if tile:
        tl = solve_tiled(act, sa, sb, Xa, norms2, sol, opts, tile, kinds, sel, keep_groups)
        details = ExactDetails(Sigma=None, Gdot=None, XtX=None, sa=sa, sb=sb,
                               method=tl.method, series_order=tl.series_order,
                               quadrature_pairs=tl.quadrature_pairs, diagonal=tl.diagonal,
                               tile=tl.tile, tiles=tl.tiles)
        return Kernel(route="exact", network="deq", ck=tl.ck, ntk=tl.ntk,
                      groups=tl.groups, selected=sel,
                      tau0=float(sol.tau0), tau0_source=tau0_source, report=tl.report,
                      solution=sol, info=details)
    fp = solve_fixed_point(act, sa, sb, Xa, norms2, sol, opts, bk)
    details = ExactDetails(Sigma=fp.Sigma, Gdot=fp.Gdot, XtX=fp.XtX, sa=sa, sb=sb,
                           method=fp.method, series_order=fp.series_order,
                           quadrature_pairs=fp.quadrature_pairs, diagonal=fp.diagonal,
                           backend=bk.name)
    parts, total = ntk_groups(fp.G, fp.Gdot, fp.XtX, sa, sb, sel) if sel else ({}, None)
    return Kernel(route="exact", network="deq", ck=fp.G if "ck" in kinds else None,
                  ntk=total, groups=parts, selected=sel, tau0=float(sol.tau0),
                  tau0_source=tau0_source, report=fp.report, solution=sol, info=details)


def exact_ck(X: Any, activation: ActivationLike, sa: float, sb: float | None = None,
             **options: Any) -> Kernel:
    """Exact infinite-width Implicit-CK G of the DEQ for data X (docs/theory.md §2).

    ``exact_kernels(X, activation, sa, sb, get="ck", **options)``: the :class:`Kernel`
    holds G in ``ck`` (Sigma, Gdot and the diagnostics in ``info``).

    Parameters
    ----------
    X : array_like, shape (p, n)
        Data; X is p x n (columns are samples).
    activation, sa, sb
        As in :func:`exact_kernels`.
    **options
        Keyword options of :func:`exact_kernels` (tau0, labels, solution, method, tol,
        max_iter, expectation_tol, kmax, workers, max_memory, backend).

    Raises
    ------
    UnknownOptionError
        An unknown keyword option (and the errors of :func:`exact_kernels`).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).standard_normal((6, 5)) / np.sqrt(6)
    >>> K = exact_ck(X, "relu", 0.3)
    >>> bool(np.allclose(K.info.Sigma, 0.3 * K.ck + 0.7 * X.T @ X, atol=1e-12))
    True
    """
    check_options(options, _OPTIONS, "exact_ck")
    return exact_kernels(X, activation, sa, sb, get=("ck",), **options)


def ntk_from_kernel(kernel: Kernel, groups: Iterable[str] = NTK_GROUPS) -> Kernel:
    """The exact CK ``kernel`` with the NTK of the selected groups added.

    Parameters
    ----------
    kernel : Kernel
        A converged exact DEQ CK (:func:`exact_ck`).
    groups : iterable of {"v", "A", "B"}
        Parameter groups summed into ``ntk``.

    Returns
    -------
    Kernel
        ``kernel`` with ``ntk``, ``groups`` and ``selected`` set.
    """
    sel = check_groups(groups, NTK_GROUPS)
    _check_exact(kernel)
    d: ExactDetails = kernel.info
    if d.Gdot is None:
        raise InvalidParameterError(
            "this exact CK was solved in tiles and keeps no Gdot or X^T X to build the NTK "
            "from; compute both at once with exact_kernels(..., get=('ck', 'ntk'))")
    parts, total = ntk_groups(kernel.ck, d.Gdot, d.XtX, d.sa, d.sb, sel)
    return kernel.replace(ntk=total, groups=parts, selected=sel)


def _check_exact(kernel: Any) -> None:
    if not (isinstance(kernel, Kernel) and kernel.route == "exact"
            and kernel.network == "deq" and isinstance(kernel.info, ExactDetails)
            and kernel.ck is not None):
        raise InvalidParameterError(
            f"ck must be the exact DEQ CK (the Kernel of exact_ck), got "
            f"{type(kernel).__name__}"
            + (f" (route {kernel.route!r}, network {kernel.network!r})"
               if isinstance(kernel, Kernel) else ""))


def _given_ck(X: Any, activation: ActivationLike, sa: float, sb: float | None, ck: Kernel,
              options: dict) -> Kernel:
    """A converged CK passed in, checked against the data and the network."""
    if options:
        raise InvalidParameterError(
            f"option(s) {sorted(options)} have no effect when a converged ck is given; "
            f"pass them to exact_ck instead")
    _check_exact(ck)
    Xv = as_data_matrix(X)
    sa_f, sb_f = check_variances(sa, sb)
    if Xv.shape[1] != ck.n:
        raise ShapeMismatchError(
            f"ck was computed for n = {ck.n} samples but X has {Xv.shape[1]} columns")
    if not (same_variance(sa_f, ck.info.sa) and same_variance(sb_f, ck.info.sb)
            and get_activation(activation).name == ck.solution.activation):
        raise InvalidParameterError("ck was computed for another activation, sa or sb")
    return ck


def exact_ntk(
    X: Any,
    activation: ActivationLike,
    sa: float,
    sb: float | None = None,
    *,
    groups: Iterable[str] = NTK_GROUPS,
    ck: Kernel | None = None,
    **options: Any,
) -> Kernel:
    """Exact infinite-width NTK of the DEQ, split by parameter group (docs/theory.md §2).

    Theta = G (v) + sa G o Gdot / (1 - sa Gdot) (A) + sb (X^T X) o Gdot / (1 - sa Gdot) (B),
    with G, Gdot at the Implicit-CK fixed point (:func:`exact_kernels` with both kernels).

    Parameters
    ----------
    X : array_like, shape (p, n)
        Data; X is p x n (columns are samples).
    activation : name, Activation or callable
    sa : float
        Variance of the recurrent weights.
    sb : float, optional
        Variance of the input weights (default 1 - sa).
    groups : iterable of {"v", "A", "B"}
        Parameter groups summed into ``ntk`` (all three by default; ("v", "A") is the
        published convention, see :func:`published_ntk`).
    ck : Kernel, optional
        A converged exact CK (:func:`exact_ck`) for the same X, activation, sa, sb (skips
        the solve).
    **options
        Keyword options of :func:`exact_kernels` (tau0, labels, solution, method, tol,
        max_iter, expectation_tol, kmax, workers, max_memory, backend).

    Returns
    -------
    Kernel
        ``ntk`` (n x n), the per-group matrices in ``groups`` and the CK G in ``ck``
        (solved in tiles when the whole matrix exceeds ``max_memory``: the groups are kept
        then too, each one more n x n array in the budget).

    Raises
    ------
    UnknownOptionError
        An unknown group name or keyword option.
    InvalidParameterError
        A ``ck`` that is not an exact DEQ CK, or is for another activation, sa or sb;
        options given with ``ck``.
    """
    sel = check_groups(groups, NTK_GROUPS)
    check_options(options, _OPTIONS, "exact_ntk")
    if ck is not None:
        return ntk_from_kernel(_given_ck(X, activation, sa, sb, ck, options), sel)
    return exact_kernels(X, activation, sa, sb, get=KERNEL_KINDS, groups=sel,
                         _keep_groups=True, **options)


def published_ntk(
    X: Any,
    activation: ActivationLike,
    sa: float,
    sb: float | None = None,
    *,
    ck: Kernel | None = None,
    **options: Any,
) -> Kernel:
    """The NTK in the published reference convention, G / (1 - sa Gdot) (groups v + A).

    ``exact_ntk(..., groups=("v", "A"))``: the readout and recurrent groups only, whose sum
    G + sa G o Gdot / (1 - sa Gdot) is G / (1 - sa Gdot) (to rounding).  A
    :class:`Kernel`, so that the groups stay visible.

    Parameters
    ----------
    X : array_like, shape (p, n)
        Data; X is p x n (columns are samples).
    activation, sa, sb, ck, **options
        As in :func:`exact_ntk`.

    Returns
    -------
    Kernel
        ``ntk`` = G / (1 - sa Gdot), ``groups`` "v" and "A".
    """
    check_options(options, _OPTIONS, "published_ntk")
    return exact_ntk(X, activation, sa, sb, groups=PUBLISHED_GROUPS, ck=ck, **options)
