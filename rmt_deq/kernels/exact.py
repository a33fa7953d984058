"""Exact infinite-width Implicit-CK and NTK of the DEQ (theory.md section 2), for any data.

For data X (p x n, columns are samples) the Implicit-CK is the fixed point

    Sigma = sa G(Sigma) + sb X^T X,    G_ij = E[phi_c(u_i) phi_c(u_j)],

with (u_i, u_j) centred Gaussian of covariance [[Sigma_ii, Sigma_ij], [Sigma_ij, Sigma_jj]]
and phi_c = phi - E[phi(tau xi)] centred at the fixed-point scale tau of the four-equation
system (:func:`rmt_deq.fixed_point.four_equations.solve_four_equations`).  The map is entrywise:

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
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np

from rmt_deq._validation import (as_data_matrix, check_groups, check_memory, check_positive_int,
                          check_tolerance, check_variances, check_workers, memory_budget,
                          same_variance)
from rmt_deq.activations import ActivationLike, get_activation
from rmt_deq.moments.bivariate import DEFAULT_KMAX, DEFAULT_TOL, METHODS
from rmt_deq.moments.pair_closed import has_closed_form
from rmt_deq.moments.pairs import PairExpectations
from rmt_deq.moments.scales import one_dimensional_moments
from rmt_deq.errors import (ConvergenceError, InvalidParameterError, NoFixedPointError,
                     ShapeMismatchError, UnknownOptionError)
from rmt_deq.fixed_point.centring import centring_solution
from rmt_deq.fixed_point.solution import FixedPointSolution

__all__ = ["ExactKernel", "ExactNTK", "NTK_GROUPS", "exact_ck", "exact_ntk", "published_ntk",
           "ntk_from_kernel"]

NTK_GROUPS = ("v", "A", "B")

#: keyword options of :func:`exact_ck` that :func:`exact_ntk` / :func:`published_ntk` pass on
_CK_OPTIONS = frozenset({"tau0", "labels", "solution", "method", "tol", "max_iter",
                         "expectation_tol", "kmax", "workers", "max_memory"})


@dataclass(frozen=True, eq=False)
class ExactKernel:
    """The exact infinite-width Implicit-CK at its fixed point, with diagnostics.

    Attributes
    ----------
    Sigma : ndarray, shape (n, n)
        Preactivation covariance, Sigma = sa G + sb X^T X.
    G : ndarray, shape (n, n)
        The Implicit-CK, G_ij = E[phi_c(u_i) phi_c(u_j)].
    Gdot : ndarray, shape (n, n)
        E[phi'(u_i) phi'(u_j)] (uncentred derivative) at the same Sigma.
    XtX : ndarray, shape (n, n)
        The input Gram matrix X^T X.
    activation : str
        Canonical activation spec.
    sa, sb : float
        Weight variances.
    tau0 : float
        Data scale used for the four-equation solution (centring): tau0 = sqrt(tr C°/p),
        see ``tau0_source``.
    tau : float
        Fixed-point scale of the four-equation system.
    centring : float
        E[phi(tau xi)], subtracted from phi.
    iterations : int
        Newton iterations on the off-diagonal entries (evaluations of G and Gdot).
    diag_iterations : int
        Newton iterations on the diagonal.
    residual : float
        max |Sigma - sa G - sb X^T X| / max_i Sigma_ii at the returned point.
    residual_history : tuple of float
        The same residual after each off-diagonal iteration.
    method : str
        Engine of the bivariate expectations ("closed", "mehler" or "quadrature").
    series_order : int
        Largest Mehler order used in the last evaluation (0 when not used).
    quadrature_pairs : int
        Pairs i < j evaluated by 2-D quadrature in the last evaluation.
    solution : FixedPointSolution
        The four-equation solution that provided tau and the centring.
    tau0_source : str
        Where tau0 came from (:func:`rmt_deq.data.conventions.data_scale`): "given", "given
        (four-equation solution)", "plug-in from labels", or the fallback without labels.
    """

    Sigma: np.ndarray = field(repr=False)
    G: np.ndarray = field(repr=False)
    Gdot: np.ndarray = field(repr=False)
    XtX: np.ndarray = field(repr=False)
    activation: str
    sa: float
    sb: float
    tau0: float
    tau: float
    centring: float
    iterations: int
    diag_iterations: int
    residual: float
    residual_history: tuple
    method: str
    series_order: int
    quadrature_pairs: int
    solution: FixedPointSolution = field(repr=False)
    tau0_source: str = ""

    @property
    def n(self) -> int:
        """Number of samples."""
        return int(self.G.shape[0])


@dataclass(frozen=True, eq=False)
class ExactNTK:
    """The exact infinite-width NTK, split by parameter group.

    Attributes
    ----------
    total : ndarray, shape (n, n)
        Sum of the selected groups.
    groups : dict of str -> ndarray, shape (n, n)
        The selected groups' contributions: "v" (G), "A" (sa G o Gdot / (1 - sa Gdot)),
        "B" (sb X^T X o Gdot / (1 - sa Gdot)).
    selected : tuple of str
        The groups summed in ``total``, in the order v, A, B.
    ck : ExactKernel
        The Implicit-CK fixed point the NTK was built from.
    """

    total: np.ndarray = field(repr=False)
    groups: Mapping[str, np.ndarray] = field(repr=False)
    selected: tuple
    ck: ExactKernel = field(repr=False)


#: live n x n float64 arrays at the peak of :func:`exact_ck`, per method (tracemalloc:
#: 11.1 (relu, closed forms) and 13.4 (tanh, Mehler series) at n = 2000, 11.9 and 15.5 at
#: n = 1000), rounded up; the 2-D quadrature also holds the pair indices and per-pair
#: arrays (about 12 more)
_CK_PEAK_ARRAYS = {"closed": 16, "mehler": 16, "quadrature": 28}
#: what does not grow like n^2 (bounded by the measurements at small n): the Hermite
#: tables and quadrature rules built on a first call (about 35 MB), the threads' row
#: blocks of the series
_CK_FIXED_BYTES = 64 * 2 ** 20


def _exact_ck_memory(n: int, p: int, method: str) -> float:
    """Upper estimate (bytes) of the peak working set of :func:`exact_ck`."""
    arrays = _CK_PEAK_ARRAYS.get(method, max(_CK_PEAK_ARRAYS.values()))
    return 8.0 * (arrays * n * n + 2 * p * n) + _CK_FIXED_BYTES


def _check_kernel_memory(n: int, p: int, method: str, max_memory: Any, what: str) -> None:
    """Refuse up front an exact kernel whose working set exceeds the budget."""
    arrays = _CK_PEAK_ARRAYS.get(method, max(_CK_PEAK_ARRAYS.values()))
    check_memory(_exact_ck_memory(n, p, method), memory_budget(max_memory),
                 f"{what} (n = {n}: about {arrays} n x n float64 arrays)",
                 "use fewer samples, or raise max_memory (bytes) if the machine has the "
                 "memory")


# ----------------------------------------------------------------------------------------
# the diagonal: one scalar equation per sample
# ----------------------------------------------------------------------------------------
def _diag_terms(act: Any, S: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    """E[phi_c(sqrt(S) xi)^2] and its derivative in S, E[He_2 phi_c^2] / (2 S)."""
    m = one_dimensional_moments(act, np.sqrt(S), c, keys=("m2", "dm2"), check=False)
    return m["m2"], m["dm2"]


def _solve_diagonal(act: Any, sa: float, sb: float, norms2: np.ndarray, c: float,
                    start: np.ndarray, tol: float, max_iter: int) -> tuple[np.ndarray, int]:
    """Bracketed Newton for S_i = sa E[phi_c(sqrt(S_i) xi)^2] + sb ||x_i||^2 (all i)."""
    b = sb * norms2
    S = np.maximum(start, 1e-3 * np.maximum(b, 1e-300))
    lo = np.zeros_like(S)               # F(0+) = sa (phi(0) - c)^2 + sb ||x||^2 > 0
    hi = np.maximum(2.0 * S, b)
    for _ in range(80):
        m2, _d = _diag_terms(act, hi, c)
        pos = sa * m2 + b - hi >= 0
        if not pos.any():
            break
        lo = np.where(pos, hi, lo)
        hi = np.where(pos, 4.0 * hi, hi)
    else:
        raise NoFixedPointError(
            f"the diagonal equation Sigma_ii = sa E[phi_c(sqrt(Sigma_ii) xi)^2] + sb ||x_i||^2 "
            f"has no root for {act.name!r} at sa = {sa:g}: E[phi_c^2] grows at least like "
            f"Sigma/sa; reduce sa")
    S = np.clip(S, lo, hi)
    S = np.where((S <= lo) | (S >= hi), 0.5 * (lo + hi), S)
    history: list[float] = []
    for it in range(1, max_iter + 1):
        m2, dm2 = _diag_terms(act, S, c)
        F = sa * m2 + b - S
        res = np.abs(F) / S
        history.append(float(res.max()))
        if history[-1] <= tol:
            return S, it
        dF = sa * dm2 - 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            Sn = S - F / dF
        # converged samples stay where they are (residual below tol, or a Newton step at
        # the rounding level of S: the residual cannot decrease further)
        active = (res > tol) & ~(np.abs(Sn - S) <= 4.0 * np.finfo(float).eps * S)
        if not active.any():
            return S, it
        lo = np.where(active & (F > 0), S, lo)
        hi = np.where(active & (F < 0), S, hi)
        bad = ~np.isfinite(Sn) | (dF >= 0) | (Sn < lo) | (Sn > hi)
        S = np.where(active, np.where(bad, 0.5 * (lo + hi), Sn), S)
    raise ConvergenceError(
        f"the diagonal of the Implicit-CK ({act.name!r}, sa = {sa:g}) did not converge in "
        f"{max_iter} Newton iterations; raise max_iter", history)


# ----------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------
def exact_ck(
    X: Any,
    activation: ActivationLike,
    sa: float,
    sb: float | None = None,
    *,
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
) -> ExactKernel:
    """Exact infinite-width Implicit-CK of the DEQ for data X (theory.md section 2).

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
    tau0 : float, optional
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
        Engine of the bivariate Gaussian expectations (:mod:`rmt_deq.moments.bivariate`); "auto"
        uses the closed form (ReLU family, erf) when there is one, else the Mehler series
        with a 2-D quadrature fallback for |rho| near 1.  "quadrature" (every pair by 2-D
        quadrature) is meant for small n.
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
        n x n is allocated, against an estimate of the peak working set.

    Returns
    -------
    ExactKernel
        Sigma, G, Gdot (all n x n) and diagnostics, with tau0 and ``tau0_source``.

    Raises
    ------
    ShapeMismatchError, NonFiniteInputError
        X is not a finite 2-D array.
    InvalidParameterError
        Bad sa/sb/tol/max_iter/workers, a zero column of X, X of a scale outside the
        floating-point range, or an inconsistent ``solution``.
    MemoryBudgetError
        The estimated working set exceeds ``max_memory``.
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
    >>> K = exact_ck(X, "relu", 0.3)
    >>> bool(np.allclose(K.Sigma, 0.3 * K.G + 0.7 * X.T @ X, atol=1e-12))
    True
    """
    X = as_data_matrix(X)
    act = get_activation(activation)
    sa, sb = check_variances(sa, sb)
    if method not in METHODS:
        raise UnknownOptionError(f"unknown method {method!r}; choose one of {METHODS}")
    tol = check_tolerance(tol, "tol")
    expectation_tol = check_tolerance(expectation_tol, "expectation_tol")
    max_iter = check_positive_int(max_iter, "max_iter")
    workers = check_workers(workers)
    resolved = method
    if method == "auto":
        resolved = "closed" if has_closed_form(act) else "mehler"
    _check_kernel_memory(X.shape[1], X.shape[0], resolved, max_memory,
                         "the exact Implicit-CK")
    norms2 = np.sum(X * X, axis=0)
    if np.any(norms2 <= 0):
        zero = np.flatnonzero(norms2 <= 0)
        raise InvalidParameterError(
            f"X has {zero.size} zero column(s) (first: {int(zero[0])}); the Implicit-CK needs "
            f"every sample to be nonzero")
    sol, tau0_source = centring_solution(act, sa, sb, X, tau0, solution, labels)
    c = float(sol.centring)
    XtX = X.T @ X
    n = XtX.shape[0]

    # ---- diagonal: scalar equations, started from the first-order prediction
    start = sol.tau ** 2 + sol.alpha4 * (norms2 - sol.tau0 ** 2)
    start = np.where(start > 0, start, sol.tau ** 2)
    diag_tol = min(1e-2 * tol, 1e-14) if tol > 1e-14 else tol
    Sd, diag_it = _solve_diagonal(act, sa, sb, norms2, c, start, diag_tol, max_iter)
    engine = PairExpectations(act, Sd, c, method=method, tol=expectation_tol, kmax=kmax,
                              workers=workers)
    worst = float(np.max(sa * engine.diag_dphi))
    if not worst < 1.0:
        i = int(np.argmax(sa * engine.diag_dphi))
        raise NoFixedPointError(
            f"sa E[phi'(u_i)^2] = {worst:.6g} >= 1 at sample {i} ({act.name!r}, sa = {sa:g}): "
            f"1 - sa Gdot vanishes, so the Implicit-CK fixed point is not unique and the NTK "
            f"diverges; reduce sa")

    # ---- off-diagonal: Newton on the whole matrix, started from the linearised equation
    s = np.sqrt(Sd)
    mom = engine.moments                                  # certified 1-D moments at s
    c0 = mom["mean"] - c                                  # E[phi_c(u_i)]
    e1 = mom["e1"]                                        # E[phi'(u_i)]
    denom = 1.0 - sa * np.multiply.outer(e1, e1)
    Sigma = (sa * np.multiply.outer(c0, c0) + sb * XtX) / np.where(denom > 0.05, denom, 1.0)
    ss = np.multiply.outer(s, s)
    np.clip(Sigma, -ss, ss, out=Sigma)
    np.fill_diagonal(Sigma, Sd)
    scale = float(Sd.max())
    history: list[float] = []
    G = D = None
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        G, D = engine.evaluate(Sigma)
        R = Sigma - sa * G - sb * XtX
        res = float(np.max(np.abs(R))) / scale
        history.append(res)
        if not math.isfinite(res):
            break
        if res <= tol:
            converged = True
            break
        step = R / (1.0 - sa * D)
        np.fill_diagonal(step, 0.0)
        Sigma = Sigma - step
        np.clip(Sigma, -ss, ss, out=Sigma)
        np.fill_diagonal(Sigma, Sd)
    if not converged:
        raise ConvergenceError(
            f"the off-diagonal Newton iteration of the Implicit-CK ({act.name!r}, sa = {sa:g}, "
            f"n = {n}) did not reach tol = {tol:g} in {max_iter} iterations; raise max_iter "
            f"or loosen tol", history)
    assert G is not None and D is not None
    if not float(np.max(D)) * sa < 1.0:    # |Gdot_ij| <= sqrt(Gdot_ii Gdot_jj): rounding only
        raise NoFixedPointError(
            f"sa Gdot = {sa * float(np.max(D)):.6g} >= 1 at the fixed point ({act.name!r}, "
            f"sa = {sa:g}): the NTK factor 1/(1 - sa Gdot) diverges; reduce sa")
    return ExactKernel(
        Sigma=Sigma, G=G, Gdot=D, XtX=XtX, activation=act.name, sa=sa, sb=sb,
        tau0=float(sol.tau0), tau=float(sol.tau), centring=c, iterations=it,
        diag_iterations=diag_it, residual=history[-1], residual_history=tuple(history),
        method=engine.method, series_order=engine.last_order,
        quadrature_pairs=engine.last_quadrature_pairs, solution=sol,
        tau0_source=tau0_source)


def ntk_from_kernel(ck: ExactKernel, groups: Iterable[str] = NTK_GROUPS) -> ExactNTK:
    """Assemble the NTK groups from a converged :class:`ExactKernel`.

    Parameters
    ----------
    ck : ExactKernel
    groups : iterable of {"v", "A", "B"}
        Parameter groups to include in ``total``.

    Returns
    -------
    ExactNTK
    """
    sel = check_groups(groups, NTK_GROUPS)
    if not isinstance(ck, ExactKernel):
        raise InvalidParameterError(f"ck must be an ExactKernel, got {type(ck).__name__}")
    gain = 1.0 / (1.0 - ck.sa * ck.Gdot)
    parts: dict[str, np.ndarray] = {}
    for g in sel:
        if g == "v":
            parts[g] = ck.G.copy()
        elif g == "A":
            parts[g] = ck.sa * ck.G * ck.Gdot * gain
        else:
            parts[g] = ck.sb * ck.XtX * ck.Gdot * gain
    total = sum(parts.values())
    return ExactNTK(total=np.asarray(total), groups=parts, selected=sel, ck=ck)


def _kernel_for(X: Any, activation: ActivationLike, sa: float, sb: float | None,
                ck: ExactKernel | None, options: dict) -> ExactKernel:
    if ck is None:
        return exact_ck(X, activation, sa, sb, **options)
    if options:
        raise InvalidParameterError(
            f"option(s) {sorted(options)} have no effect when a converged ck is given; "
            f"pass them to exact_ck instead")
    if not isinstance(ck, ExactKernel):
        raise InvalidParameterError(f"ck must be an ExactKernel, got {type(ck).__name__}")
    Xv = as_data_matrix(X)
    sa_f, sb_f = check_variances(sa, sb)
    if Xv.shape[1] != ck.n:
        raise ShapeMismatchError(
            f"ck was computed for n = {ck.n} samples but X has {Xv.shape[1]} columns")
    if not (same_variance(sa_f, ck.sa) and same_variance(sb_f, ck.sb)) \
            or get_activation(activation).name != ck.activation:
        raise InvalidParameterError("ck was computed for another activation, sa or sb")
    return ck


def exact_ntk(
    X: Any,
    activation: ActivationLike,
    sa: float,
    sb: float | None = None,
    *,
    groups: Iterable[str] = NTK_GROUPS,
    ck: ExactKernel | None = None,
    **options: Any,
) -> ExactNTK:
    """Exact infinite-width NTK of the DEQ, split by parameter group (theory.md section 2).

    Theta = G (v) + sa G o Gdot / (1 - sa Gdot) (A) + sb (X^T X) o Gdot / (1 - sa Gdot) (B),
    with G, Gdot at the Implicit-CK fixed point (:func:`exact_ck`).

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
        Parameter groups summed into ``total`` (all three by default; ("v", "A") is the
        published convention, see :func:`published_ntk`).
    ck : ExactKernel, optional
        A converged Implicit-CK for the same X, activation, sa, sb (skips the solve).
    **options
        Keyword options of :func:`exact_ck` (tau0, labels, solution, method, tol,
        max_iter, expectation_tol, kmax, workers, max_memory).

    Returns
    -------
    ExactNTK
        ``total`` (n x n), the per-group matrices in ``groups`` and the CK in ``ck``.

    Raises
    ------
    UnknownOptionError
        An unknown group name or keyword option.
    """
    sel = check_groups(groups, NTK_GROUPS)
    allowed = _CK_OPTIONS
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise UnknownOptionError(
            f"exact_ntk got unknown option(s) {unknown}; allowed: {sorted(allowed)}")
    kernel = _kernel_for(X, activation, sa, sb, ck, options)
    return ntk_from_kernel(kernel, sel)


def published_ntk(
    X: Any,
    activation: ActivationLike,
    sa: float,
    sb: float | None = None,
    *,
    ck: ExactKernel | None = None,
    **options: Any,
) -> np.ndarray:
    """The NTK in the published reference convention, G / (1 - sa Gdot) (groups v + A).

    Parameters
    ----------
    X : array_like, shape (p, n)
        Data; X is p x n (columns are samples).
    activation, sa, sb, ck, **options
        As in :func:`exact_ntk`.

    Returns
    -------
    ndarray, shape (n, n)
        Equal to ``exact_ntk(..., groups=("v", "A")).total`` up to rounding.
    """
    allowed = _CK_OPTIONS
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise UnknownOptionError(
            f"published_ntk got unknown option(s) {unknown}; allowed: {sorted(allowed)}")
    kernel = _kernel_for(X, activation, sa, sb, ck, options)
    return kernel.G / (1.0 - kernel.sa * kernel.Gdot)
