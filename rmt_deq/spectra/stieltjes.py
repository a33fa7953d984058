"""The spectral equations of a :class:`~rmt_deq.spectra.model.GramModel`: Stieltjes
transforms, the limiting density of X^T X and its support (docs/theory.md §7.2-7.3).

The bulk of X^T X (the means add only a rank-K perturbation) is described by the
deterministic equivalent of the resolvent (X X^T - z I_p)^{-1}::

    Qbar(z) = (-z I_p + sum_a r_a C_a / (1 + delta_a(z)))^{-1},   delta_a = tr(C_a Qbar)/p,
    m_{XX^T}(z) = tr Qbar(z)/p,     m_{X^TX}(z) = (p/n) m_{XX^T}(z) - (1 - p/n)/z,

or, equivalently, with g_b(z) = -1/(z (1 + delta_b(z))) (the class-b diagonal entry of the
co-resolvent (X^T X - z)^{-1}),

    Qbar = -(1/z) (I_p + sum_b r_b g_b C_b)^{-1},     m_{X^TX} = sum_a (n_a/n) g_a.

The K complex unknowns are found by Newton's method at each point of a grid (vectorised over
the grid), lowering Im z geometrically from the spectral scale to ``eta_min`` (default
:data:`ETA_MIN_REL` times the scale) with warm starts (docs/theory.md §7.3); the unknown is
delta when n >= p and g when n < p (each stays finite at z = 0).  The density of X^T X is
Im m(x + i0)/pi; when n > p there is in addition an atom of mass 1 - p/n at 0.

Non-commuting full covariances (the dense backend, one p x p inverse per point and
evaluation) are instead continued along the grid at the target Im z, each point
warm-started by extrapolation from its neighbours and, where the previous point converged
easily, from its Jacobian, with the Im z continuation as the fallback wherever that is not
safe (:func:`rmt_deq.spectra._newton.solve_sweep`); their unknowns are those at which the
final Newton step was computed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from rmt_deq._results import SolverReport, readonly
from rmt_deq._validation import as_real_array, check_memory, check_positive_finite, memory_budget
from rmt_deq.errors import ConvergenceError, InvalidParameterError, NonFiniteInputError
from rmt_deq.spectra._newton import NEWTON_TOL, STAGNATION_STEP, solve_points, solve_sweep
from rmt_deq.spectra.model import CHUNK_ENTRIES, GramModel

__all__ = ["StieltjesSolution", "stieltjes", "gram_density", "gram_support",
           "check_grid_memory", "ETA_MIN_REL"]

#: default smallest imaginary part, relative to the spectral scale of the model
ETA_MIN_REL = 1e-10
#: smallest number of points per chunk with the box expansion
_MIN_EXPANSION_CHUNK = 16
#: gram_density: points below -_NEGATIVE_X * scale are outside the spectrum (0 is inside
#: up to this round-off when there is no atom)
_NEGATIVE_X = 1e-12
#: gram_support: Im z of the density evaluations (relative to the scale), the "inside the
#: support" threshold relative to the typical density (1 - atom)/scale, and the fewest scan
#: points
_SUPPORT_ETA = 1e-14
_SUPPORT_THRESHOLD = 1e-7
_MIN_SCAN = 16
#: gram_support's scan below its first uniform point: geometric points per decade, the
#: deepest it goes (relative to the scale), and the fraction of the small-eigenvalue edge
#: estimate (:func:`_scan_floor`) it starts at
_SMALL_PER_DECADE = 24
_SMALL_DEEPEST = 1e-12
_SMALL_MARGIN = 1e-3
#: gram_support: the smallest rtol, a few float64 spacings (bisection below it would not end)
_MIN_SUPPORT_RTOL = 4 * np.finfo(float).eps
#: floor of the magnitudes that divide
_TINY = 1e-300


def check_grid_memory(N: int, K: int, max_memory: Any, what: str, fix: str) -> None:
    """Refuse N evaluation points whose per-point arrays exceed the memory budget.

    Per point the solve keeps about 8 + 8K complex numbers (delta, g, the Stieltjes
    transforms, the moments) and K^2 more for the means' quadratic form, twice over
    (conjugated copies), plus a few reals (grid, density); the per-chunk work arrays are
    bounded separately (:data:`~rmt_deq.spectra.model.CHUNK_ENTRIES`).

    Raises
    ------
    MemoryBudgetError
        The estimate exceeds ``max_memory`` (None: the package default); the message names
        ``what`` and suggests ``fix``.
    """
    per_point = 2 * 16 * (10 + 8 * K + K * K) + 4 * 8
    check_memory(float(per_point) * N, memory_budget(max_memory),
                 f"{what} ({N:,} points)", fix)


@dataclass(frozen=True, eq=False)
class StieltjesSolution:
    """Solution of the equations of docs/theory.md §7.2 at a set of points z.

    Every array is read-only.

    Attributes
    ----------
    z : ndarray of complex, shape (N,)
        Points actually solved at (real inputs get Im z = eta_min).
    delta : ndarray of complex, shape (N, K)
        delta_a(z) = tr(C_a Qbar)/p.
    g : ndarray of complex, shape (N, K)
        g_a(z) = -1/(z (1 + delta_a)), the class-a diagonal of the co-resolvent.
    m_gram : ndarray of complex, shape (N,)
        m_{X^TX}(z) from the trace: (p/n) tr Qbar/p - (1 - p/n)/z.
    m_gram_from_g : ndarray of complex, shape (N,)
        sum_a (n_a/n) g_a(z); equal to ``m_gram`` at a solution (a check).
    m_cov : ndarray of complex, shape (N,)
        m_{XX^T}(z) = tr Qbar/p.
    m_cov_kept : ndarray of complex, shape (N,)
        tr Qbar/p over the coordinates with nonzero variance (no atom of zero coordinates).
    mean_quadratic : ndarray of complex, shape (N, K, K) or None
        M^T (I_p + z Qbar(z)) M (bias-corrected), when requested.
    unknown : str
        "delta" or "g".
    report : SolverReport
        The Newton solve: ``residual`` is the largest final relative Newton step over the
        points (at the target Im z), held to ``tolerance`` = 1e-7 (every point stops with a
        step below 1e-13, or, next to a support edge, when the step stagnates below 1e-7:
        ``message`` says how many, and how the points were solved); ``iterations`` counts
        Newton evaluations (all points of a batch as one, every continuation level);
        ``history`` is the largest relative step over the active points after each of
        them.  A step above the tolerance at any point raises instead.
    """

    z: np.ndarray
    delta: np.ndarray
    g: np.ndarray
    m_gram: np.ndarray
    m_gram_from_g: np.ndarray
    m_cov: np.ndarray
    m_cov_kept: np.ndarray
    mean_quadratic: np.ndarray | None
    unknown: str
    report: SolverReport


def stieltjes(model: GramModel, z: Any, *, eta_min: float | None = None,
              mean_quadratic: bool = False, max_memory: float | None = None
              ) -> StieltjesSolution:
    """Solve the equations of docs/theory.md §7.2 at the points z (method: §7.3).

    Parameters
    ----------
    model : GramModel
    z : array_like of real or complex, shape (N,) or scalar
        Real points mean x + i0 (solved at Im z = ``eta_min``); points with Im z > 0 are
        solved there; points with Im z < 0 by conjugate symmetry.  Units of X^T X.
    eta_min : float, optional
        Im z used for real points; default ``ETA_MIN_REL * model.scale``.
    mean_quadratic : bool
        Also return M^T (I_p + z Qbar) M (needed by the spike equation).
    max_memory : float, optional
        Bytes the per-point results may use (default 2 GiB); checked before solving.

    Returns
    -------
    StieltjesSolution
        Every point converged (its ``report`` says how).

    Raises
    ------
    ConvergenceError
        Newton failed (the residual history is attached).
    NonFiniteInputError
        NaN/inf in z.
    """
    _check_model(model)
    zz = np.atleast_1d(np.asarray(z, dtype=complex)).ravel()
    _check_solve_memory(zz.size, model, max_memory)
    if not np.all(np.isfinite(zz)):
        raise NonFiniteInputError("z has NaN/inf entries")
    return _solve(model, zz, _eta_min(model, eta_min), mean_quadratic)


def _check_model(model: Any) -> None:
    if not isinstance(model, GramModel):
        raise InvalidParameterError(f"model must be a GramModel, got {type(model).__name__}")


def _check_solve_memory(N: int, model: GramModel, max_memory: Any) -> None:
    check_grid_memory(N, model.K, max_memory,
                      "the solution of the equations of docs/theory.md §7.2",
                      "evaluate fewer points at a time, or raise max_memory")


def _eta_min(model: GramModel, eta_min: Any) -> float:
    """The validated Im z of real points (default ETA_MIN_REL * scale)."""
    if eta_min is None:
        return ETA_MIN_REL * model.scale
    return check_positive_finite(eta_min, "eta_min")


def _solve_batched(model: GramModel, x: np.ndarray, eta: np.ndarray, form: str,
                   mean_quadratic: bool, history: list) -> tuple:
    """The diagonal backend's solve: every point by Im z continuation, vectorised over
    chunks of points, then one more evaluation for the derived quantities.  Returns (u,
    last relative step, evaluations, tr(C_a Y)/p, tr(Y)/p, M^T Y M or None)."""
    N, K = x.shape[0], model.K
    u = np.empty((N, K), dtype=complex)
    last_step = np.empty(N)
    evals = 0
    chunk = max(1, CHUNK_ENTRIES // max(1, model.n_distinct * max(1, K)))
    if model.expansion is not None:
        chunk = max(_MIN_EXPANSION_CHUNK, CHUNK_ENTRIES // model.expansion.entries_per_point())
    for start in range(0, N, chunk):
        sl = slice(start, start + chunk)
        u[sl], last_step[sl], e = solve_points(model, x[sl], eta[sl], form, history)
        evals += e
    zs = x + 1j * eta
    r = model.ratios
    # derived quantities (one more evaluation, also the means' quadratic form)
    first = np.empty((N, K), dtype=complex)
    trace = np.empty(N, dtype=complex)
    mq = np.empty((N, K, K), dtype=complex) if mean_quadratic else None
    for start in range(0, N, chunk):
        sl = slice(start, start + chunk)
        if form == "delta":
            f, _, tr, m = model.moments(r / (1.0 + u[sl]), -zs[sl], second=False,
                                        mean=mean_quadratic)
        else:
            f, _, tr, m = model.moments(r * u[sl], np.ones_like(zs[sl]), second=False,
                                        mean=mean_quadratic)
        first[sl], trace[sl] = f, tr
        if mean_quadratic:
            mq[sl] = m
    return u, last_step, evals, first, trace, mq


def _solve(model: GramModel, zz: np.ndarray, eta_min: float, mean_quadratic: bool
           ) -> StieltjesSolution:
    """:func:`stieltjes` on validated input (finite complex zz, eta_min > 0)."""
    lower = zz.imag < 0
    x = zz.real.copy()
    eta = np.abs(zz.imag)
    eta = np.where(eta > 0, eta, eta_min)
    form = model.unknown
    N = x.shape[0]
    history: list = []
    if model.backend == "dense":
        # one p x p inverse per point and evaluation: continuation along the grid
        u, last_step, evals, first, trace, mq, continued = solve_sweep(
            model, x, eta, form, mean_quadratic, history)
        method = (f"Newton continued along the grid at {N - continued} points and with Im z "
                  f"continuation at {continued}")
    else:
        u, last_step, evals, first, trace, mq = _solve_batched(model, x, eta, form,
                                                               mean_quadratic, history)
        method = f"Newton with Im z continuation at {N} points"
    zs = x + 1j * eta
    n, p = model.n, model.p
    if form == "delta":
        delta = u
        g = -1.0 / (zs[:, None] * (1.0 + delta))
        m_cov_kept = trace
        if mean_quadratic:
            mq = model.MtM[None] + zs[:, None, None] * mq
    else:
        g = u
        delta = -1.0 - 1.0 / (zs[:, None] * g)
        m_cov_kept = -trace / zs
        if mean_quadratic:
            mq = model.MtM[None] - mq
    dropped = 1.0 - model.p_eff / p
    if model.backend == "dense":
        # the dense trace runs over all p directions, null ones included
        m_cov = m_cov_kept
        m_cov_kept = m_cov + dropped / zs
    else:
        m_cov = m_cov_kept - dropped / zs
    m_gram = (p / n) * m_cov - (1.0 - p / n) / zs
    m_from_g = g @ (model.sizes / n)
    out = [zs, delta, g, m_gram, m_from_g, m_cov, m_cov_kept]
    if np.any(lower):
        out = [np.where(lower.reshape((-1,) + (1,) * (a.ndim - 1)), np.conj(a), a) for a in out]
        if mq is not None:
            mq = np.where(lower[:, None, None], np.conj(mq), mq)
    return StieltjesSolution(
        z=readonly(out[0]), delta=readonly(out[1]), g=readonly(out[2]),
        m_gram=readonly(out[3]), m_gram_from_g=readonly(out[4]), m_cov=readonly(out[5]),
        m_cov_kept=readonly(out[6]), mean_quadratic=None if mq is None else readonly(mq),
        unknown=form, report=_report(last_step, evals, history, N, method))


def _report(last_step: np.ndarray, evals: int, history: list, N: int, method: str
            ) -> SolverReport:
    """The SolverReport of a solve at N points (final relative steps given); a step above
    the tolerance at any point raises instead (a report always says converged)."""
    worst = float(np.max(last_step)) if N else 0.0
    if not worst <= STAGNATION_STEP:
        i = int(np.argmax(np.where(np.isfinite(last_step), last_step, np.inf)))
        raise ConvergenceError(
            f"the equations of docs/theory.md §7.2 did not converge at point {i}: final "
            f"relative Newton step {worst:.3g} above the tolerance {STAGNATION_STEP:g}",
            [float(v) for v in history[-5:]])
    stagnated = int(np.sum(last_step > NEWTON_TOL))
    how = (f"; {stagnated} next to a support edge stopped when the step stagnated below "
           f"{STAGNATION_STEP:g}" if stagnated else "")
    return SolverReport(
        converged=True, residual=worst, tolerance=STAGNATION_STEP, iterations=evals,
        history=tuple(history),
        message=f"{method}: relative step below {NEWTON_TOL:g} at {N - stagnated}{how}")


def _ac_density(model: GramModel, sol: StieltjesSolution) -> np.ndarray:
    """Absolutely continuous density of X^T X from a solution at x + i eta."""
    if sol.unknown == "delta":
        d = (model.p / model.n) * sol.m_cov_kept.imag / math.pi
    else:
        d = sol.m_gram.imag / math.pi
    return np.maximum(d, 0.0)


def gram_density(model: GramModel, x: Any, *, eta_min: float | None = None) -> np.ndarray:
    """Limiting density of the absolutely continuous part of the spectrum of X^T X
    (docs/theory.md §7.2).

    Parameters
    ----------
    model : GramModel
    x : array_like of float, shape (N,)
        Points (units of X^T X eigenvalues).
    eta_min : float, optional
        See :func:`stieltjes`.

    Returns
    -------
    ndarray, shape (N,)
        Density (per unit of eigenvalue); it integrates to 1 - ``model.atom`` (the atom of
        mass max(0, 1 - p_eff/n) at 0 is not included).
    """
    _check_model(model)
    x = as_real_array(x, "x")
    eta = _eta_min(model, eta_min)
    xr = np.atleast_1d(x).ravel()
    pos = _inside_half_line(model, xr)
    _check_solve_memory(int(pos.sum()), model, None)
    return _density(model, xr, pos, eta).reshape(x.shape)


def _inside_half_line(model: GramModel, xr: np.ndarray) -> np.ndarray:
    """The points where the density may be nonzero: x > 0 with an atom, else x >= 0 up to
    round-off."""
    pos = xr > 0 if model.atom > 0 else np.ones(xr.shape, dtype=bool)
    pos &= xr >= -_NEGATIVE_X * model.scale
    return pos


def _density(model: GramModel, xr: np.ndarray, pos: np.ndarray, eta: float) -> np.ndarray:
    """The density at the points xr (1-D, finite), zero outside ``pos``."""
    dens = np.zeros(xr.shape)
    if np.any(pos):
        sol = _solve(model, xr[pos].astype(complex), eta, False)
        dens[pos] = _ac_density(model, sol)
    return dens


def _scan_floor(model: GramModel) -> float:
    """A fraction of the smallest nonzero eigenvalue the spectrum of X^T X can reach.

    X X^T (whose nonzero eigenvalues are those of X^T X) is about (n/p) C with C the
    class-pooled covariance, spread by the Marchenko-Pastur factor (1 - sqrt(gamma))^2,
    gamma = min(p_eff, n)/max(p_eff, n); ``_SMALL_MARGIN`` of that, from the smallest
    nonzero eigenvalue of C, and never below ``_SMALL_DEEPEST`` * scale.
    """
    w = model.sizes / model.n
    if model.backend == "dense":
        lam = np.linalg.eigvalsh(np.tensordot(w, np.asarray(model.covs), axes=1))
    else:
        lam = w @ np.asarray(model.variances)
    top = float(np.max(lam)) if lam.size else 0.0
    pos = lam[lam > 1e-12 * top] if top > 0 else lam[:0]
    gamma = min(model.p_eff, model.n) / max(model.p_eff, model.n, 1)
    edge = (model.n / model.p) * (float(pos.min()) if pos.size else 0.0) * (
        1.0 - math.sqrt(gamma)) ** 2
    return max(_SMALL_MARGIN * edge, _SMALL_DEEPEST * model.scale)


def gram_support(model: GramModel, *, scan: int = 1024, rtol: float = 1e-10
                 ) -> tuple[tuple[float, float], ...]:
    """Support intervals of the absolutely continuous part of the spectrum of X^T X.

    The density is scanned on ``scan`` points of (0, scale], and below the first of them
    on geometric points (24 per decade) down to a thousandth of the smallest eigenvalue
    the class-pooled covariance can produce (:func:`_scan_floor`; none when that is above
    the first point), so that narrow bands of small eigenvalues (coordinates of tiny
    variance, as in real data) are found; each edge is then refined by bisection on
    "inside the support" (density above 1e-7 of its typical value (1 - atom)/scale, at
    Im z = 1e-14 scale) to ``rtol * scale``.  Gaps narrower than scale/scan above the
    first uniform point may be missed; a missed band shows in the bulk's ``mass_error``.

    Returns
    -------
    tuple of (lo, hi) pairs, increasing (units of X^T X eigenvalues).

    Raises
    ------
    InvalidParameterError
        ``scan`` below 16, ``rtol`` outside [4 eps, 1).
    ConvergenceError
        No bulk found on (0, scale], or a density still positive at the scale bound.
    """
    _check_model(model)
    if not isinstance(scan, (int, np.integer)) or isinstance(scan, bool) or scan < _MIN_SCAN:
        raise InvalidParameterError(f"scan must be an integer >= {_MIN_SCAN}, got {scan!r}")
    rtol = check_positive_finite(rtol, "rtol")
    if not _MIN_SUPPORT_RTOL <= rtol < 1:
        raise InvalidParameterError(
            f"rtol = {rtol!r} is outside [{_MIN_SUPPORT_RTOL:.2g}, 1): the edges are bisected "
            f"to rtol * scale, which cannot go below the float64 spacing of the scale; "
            f"choose rtol in that range (default 1e-10)")
    check_grid_memory(int(scan), model.K, None, "the support scan", "lower scan")
    s = model.scale
    xs = s * (np.arange(scan) + 0.5) / scan
    floor = _scan_floor(model)
    if floor < xs[0]:
        decades = math.log10(xs[0] / floor)
        small = np.geomspace(floor, xs[0], int(math.ceil(decades * _SMALL_PER_DECADE)) + 1)
        xs = np.concatenate([small[:-1], xs])
    eta_e = _SUPPORT_ETA * s
    d = _density(model, xs, _inside_half_line(model, xs), eta_e)
    typical = (1.0 - model.atom) / s
    thr = _SUPPORT_THRESHOLD * typical
    inside = d > thr
    if not inside.any():
        raise ConvergenceError(
            f"no bulk found on (0, {s:.4g}]: the density never exceeds {thr:.3g}", [])
    # brackets for each edge: (outside point, inside point)
    idx = np.flatnonzero(np.diff(inside.astype(np.int8)))
    lo_br = []   # (out, in) pairs for left edges
    hi_br = []
    if inside[0]:
        lo_br.append((0.0, xs[0]))
    for i in idx:
        if inside[i + 1]:
            lo_br.append((xs[i], xs[i + 1]))
        else:
            hi_br.append((xs[i + 1], xs[i]))
    if inside[-1]:
        raise ConvergenceError(
            f"the density is still positive at the scale bound {s:.4g}; the bulk bound is "
            f"wrong", [])
    br = np.array(lo_br + hi_br, dtype=float)
    out_pt, in_pt = br[:, 0].copy(), br[:, 1].copy()
    tol = rtol * s
    while np.max(np.abs(in_pt - out_pt)) > tol:
        mid = 0.5 * (in_pt + out_pt)
        dm = np.zeros_like(mid)
        pos = mid > 0
        if np.any(pos):
            xm = mid[pos]
            dm[pos] = _density(model, xm, _inside_half_line(model, xm), eta_e)
        ins = dm > thr
        in_pt = np.where(ins, mid, in_pt)
        out_pt = np.where(ins, out_pt, mid)
    edges = 0.5 * (in_pt + out_pt)
    nl = len(lo_br)
    los = np.sort(edges[:nl])
    his = np.sort(edges[nl:])
    if los.size != his.size:
        raise ConvergenceError("unbalanced support edges (internal error)", [])
    return tuple((float(a), float(b)) for a, b in zip(los, his))
