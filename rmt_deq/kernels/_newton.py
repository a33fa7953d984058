"""The Implicit-CK fixed point of the DEQ, solved entrywise by Newton's method
(docs/theory.md §2).

Sigma = sa G(Sigma) + sb X^T X is solved in two stages, for inputs that
:func:`rmt_deq.kernels.exact.exact_kernels` has validated:

* the diagonal Sigma_ii solves a scalar equation per sample (a bracketed, safeguarded
  Newton iteration on all samples at once, :func:`solve_diagonal`);
* the off-diagonal entries then solve Sigma_ij = sa G_ij(Sigma_ij) + sb x_i.x_j, with
  dG_ij/dSigma_ij = Gdot_ij (Price's theorem): Newton on the whole matrix at once,
  started from the linearised equation (:func:`solve_fixed_point`).

With a backend other than numpy (:mod:`rmt_deq._xp`) the off-diagonal iteration runs in
that array namespace on the closed forms (:func:`_offdiagonal_array_api`); the diagonal
stays on the host.

Both report their convergence in a :class:`~rmt_deq._results.SolverReport`; failures raise
(:class:`~rmt_deq.errors.ConvergenceError` with the residual history,
:class:`~rmt_deq.errors.NoFixedPointError` when the fixed point is not unique).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rmt_deq._results import SolverReport
from rmt_deq._xp import NUMPY, Backend
from rmt_deq.activations import Activation
from rmt_deq.errors import ConvergenceError, NoFixedPointError
from rmt_deq.fixed_point.solution import FixedPointSolution
from rmt_deq.moments.scales import one_dimensional_moments
from rmt_deq.moments.pair_closed import closed_pair_expectations
from rmt_deq.moments.pairs import PairExpectations

__all__ = ["NewtonOptions", "FixedPoint", "solve_diagonal", "prepare", "linearised_start",
           "solve_fixed_point"]

# ---- the diagonal solve
#: the Newton start is at least this fraction of sb ||x_i||^2 (the root lies above it)
DIAG_START_FLOOR = 1e-3
#: growth factor of the upper bracket while F(hi) = sa m2(hi) + b - hi >= 0 ...
DIAG_BRACKET_GROWTH = 4.0
#: ... for at most this many steps (4^80 ~ 1e48: beyond it the root does not exist)
DIAG_BRACKET_STEPS = 80
#: the diagonal is solved to this fraction of ``tol`` ...
DIAG_TOL_RATIO = 1e-2
#: ... but never tighter than needed below this (the off-diagonal residual is relative to
#: max Sigma_ii, so 1e-14 on the diagonal is already at the rounding level)
DIAG_TOL_CAP = 1e-14
#: a sample stops when its Newton step is within this many ulps of Sigma_ii (the residual
#: cannot decrease further)
DIAG_STALL_ULPS = 4.0
# ---- the off-diagonal start
#: the linearised start divides by 1 - sa E[phi'(u_i)] E[phi'(u_j)] only where that is
#: above this floor (elsewhere by 1: the start need not be accurate, only inside the box)
LINEARISED_DENOM_MIN = 0.05


# ----------------------------------------------------------------------------------------
# the diagonal: one scalar equation per sample
# ----------------------------------------------------------------------------------------
def _diag_terms(act: Activation, S: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    """E[phi_c(sqrt(S) xi)^2] and its derivative in S, E[He_2 phi_c^2] / (2 S)."""
    m = one_dimensional_moments(act, np.sqrt(S), c, keys=("m2", "dm2"), check=False)
    return m["m2"], m["dm2"]


def solve_diagonal(act: Activation, sa: float, sb: float, norms2: np.ndarray, c: float,
                   start: np.ndarray, tol: float, max_iter: int
                   ) -> tuple[np.ndarray, SolverReport]:
    """Bracketed Newton for S_i = sa E[phi_c(sqrt(S_i) xi)^2] + sb ||x_i||^2 (all i)."""
    b = sb * norms2
    S = np.maximum(start, DIAG_START_FLOOR * np.maximum(b, 1e-300))
    lo = np.zeros_like(S)               # F(0+) = sa (phi(0) - c)^2 + sb ||x||^2 > 0
    hi = np.maximum(2.0 * S, b)
    for _ in range(DIAG_BRACKET_STEPS):
        m2, _d = _diag_terms(act, hi, c)
        pos = sa * m2 + b - hi >= 0
        if not pos.any():
            break
        lo = np.where(pos, hi, lo)
        hi = np.where(pos, DIAG_BRACKET_GROWTH * hi, hi)
    else:
        raise NoFixedPointError(
            f"the diagonal equation Sigma_ii = sa E[phi_c(sqrt(Sigma_ii) xi)^2] + sb ||x_i||^2 "
            f"has no root for {act.name!r} at sa = {sa:g}: E[phi_c^2] grows at least like "
            f"Sigma/sa; reduce sa")
    S = np.clip(S, lo, hi)
    S = np.where((S <= lo) | (S >= hi), 0.5 * (lo + hi), S)
    history: list[float] = []

    def report(it: int, how: str) -> SolverReport:
        return SolverReport(
            converged=True, residual=history[-1], tolerance=tol, iterations=it,
            history=history,
            message=f"the diagonal of the Implicit-CK ({act.name!r}, sa = {sa:g}): {how} "
                    f"after {it} Newton iterations")

    for it in range(1, max_iter + 1):
        m2, dm2 = _diag_terms(act, S, c)
        F = sa * m2 + b - S
        res = np.abs(F) / S
        history.append(float(res.max()))
        if history[-1] <= tol:
            return S, report(it, f"residual below tol = {tol:g}")
        dF = sa * dm2 - 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            Sn = S - F / dF
        # converged samples stay where they are (residual below tol, or a Newton step at
        # the rounding level of S: the residual cannot decrease further)
        active = (res > tol) & ~(np.abs(Sn - S) <= DIAG_STALL_ULPS * np.finfo(float).eps * S)
        if not active.any():
            return S, report(it, f"every sample below tol = {tol:g} or at a Newton step at "
                                 f"the rounding level of Sigma_ii")
        lo = np.where(active & (F > 0), S, lo)
        hi = np.where(active & (F < 0), S, hi)
        bad = ~np.isfinite(Sn) | (dF >= 0) | (Sn < lo) | (Sn > hi)
        S = np.where(active, np.where(bad, 0.5 * (lo + hi), Sn), S)
    raise ConvergenceError(
        f"the diagonal of the Implicit-CK ({act.name!r}, sa = {sa:g}) did not converge in "
        f"{max_iter} Newton iterations; raise max_iter", history)


# ----------------------------------------------------------------------------------------
# the fixed point
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class FixedPoint:
    """What :func:`solve_fixed_point` found (arrays owned by the caller)."""

    G: np.ndarray
    Gdot: np.ndarray
    Sigma: np.ndarray
    XtX: np.ndarray
    report: SolverReport
    diagonal: SolverReport
    method: str
    series_order: int
    quadrature_pairs: int


@dataclass(frozen=True)
class NewtonOptions:
    """Resolved (validated) options of the fixed point."""

    method: str
    tol: float
    max_iter: int
    expectation_tol: float
    kmax: int
    workers: int | None


def prepare(act: Activation, sa: float, sb: float, norms2: np.ndarray,
            sol: FixedPointSolution, opts: NewtonOptions
            ) -> tuple[np.ndarray, SolverReport, PairExpectations]:
    """The diagonal Sigma_ii (solved first: every pair needs it), its report, and the pair
    engine at those variances; NoFixedPointError when sa E[phi'(u_i)^2] >= 1."""
    c = float(sol.centring)
    tol, max_iter = opts.tol, opts.max_iter
    # ---- diagonal: scalar equations, started from the first-order prediction
    start = sol.tau ** 2 + sol.alpha4 * (norms2 - sol.tau0 ** 2)
    start = np.where(start > 0, start, sol.tau ** 2)
    diag_tol = min(DIAG_TOL_RATIO * tol, DIAG_TOL_CAP) if tol > DIAG_TOL_CAP else tol
    Sd, diag_report = solve_diagonal(act, sa, sb, norms2, c, start, diag_tol, max_iter)
    engine = PairExpectations(act, Sd, c, method=opts.method, tol=opts.expectation_tol,
                              kmax=opts.kmax, workers=opts.workers)
    worst = float(np.max(sa * engine.diag_dphi))
    if not worst < 1.0:
        i = int(np.argmax(sa * engine.diag_dphi))
        raise NoFixedPointError(
            f"sa E[phi'(u_i)^2] = {worst:.6g} >= 1 at sample {i} ({act.name!r}, sa = {sa:g}): "
            f"1 - sa Gdot vanishes, so the Implicit-CK fixed point is not unique and the NTK "
            f"diverges; reduce sa")
    return Sd, diag_report, engine


def linearised_start(engine: PairExpectations, sa: float, sb: float, c: float,
                     XtX: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    """The off-diagonal Newton start on the block ``rows`` x ``cols`` of Sigma (the
    linearised equation, clipped to |Sigma_ij| <= sqrt(Sigma_ii Sigma_jj)); ``XtX`` is that
    block of X^T X.  The caller sets Sigma_ii on a block of the diagonal."""
    s = engine.s
    mom = engine.moments                                  # certified 1-D moments at s
    c0 = mom["mean"] - c                                  # E[phi_c(u_i)]
    e1 = mom["e1"]                                        # E[phi'(u_i)]
    denom = 1.0 - sa * np.multiply.outer(e1[rows], e1[cols])
    Sigma = (sa * np.multiply.outer(c0[rows], c0[cols]) + sb * XtX) / np.where(
        denom > LINEARISED_DENOM_MIN, denom, 1.0)
    ss = np.multiply.outer(s[rows], s[cols])
    np.clip(Sigma, -ss, ss, out=Sigma)
    return Sigma


def _offdiagonal_array_api(engine: PairExpectations, sa: float, sb: float, Sigma: np.ndarray,
                           XtX: np.ndarray, Sd: np.ndarray, tol: float, max_iter: int,
                           history: list[float], backend: Backend
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The off-diagonal Newton iteration of :func:`solve_fixed_point` in an array API
    namespace, the closed forms only: the same entrywise operations, with the diagonal
    set through ``where`` on the identity pattern (the standard has no fill_diagonal).
    Returns G, Gdot and Sigma at the last step as numpy float64; ``history`` is filled."""
    xp, f64 = backend.xp, np.float64
    n = Sd.size
    eye = backend.asarray(np.eye(n, dtype=bool), bool)
    s = backend.asarray(engine.s, f64)
    su, sv = s[:, None], s[None, :]
    ss = su * sv
    Sd_row = backend.asarray(Sd, f64)[None, :]
    g_row = backend.asarray(engine.diag_phi, f64)[None, :]
    d_row = backend.asarray(engine.diag_dphi, f64)[None, :]
    S, B = backend.asarray(Sigma, f64), backend.asarray(XtX, f64)
    scale = float(Sd.max())
    for _ in range(max_iter):
        rho = xp.where(eye, 1.0, xp.clip(S / ss, -1.0, 1.0))
        res = closed_pair_expectations(engine.act, engine.centring, su, sv, rho, xp=xp)
        G, D = xp.where(eye, g_row, res["phi"]), xp.where(eye, d_row, res["dphi"])
        R = S - sa * G - sb * B
        history.append(float(xp.max(xp.abs(R))) / scale)
        if not math.isfinite(history[-1]) or history[-1] <= tol:
            break
        step = xp.where(eye, 0.0, R / (1.0 - sa * D))
        S = xp.where(eye, Sd_row, xp.clip(S - step, -ss, ss))
    return backend.to_numpy(G), backend.to_numpy(D), backend.to_numpy(S)


def solve_fixed_point(act: Activation, sa: float, sb: float, X: np.ndarray,
                      norms2: np.ndarray, sol: FixedPointSolution, opts: NewtonOptions,
                      backend: Backend = NUMPY) -> FixedPoint:
    """The Implicit-CK fixed point for validated inputs (see the module docstring); a
    backend other than numpy runs the off-diagonal iteration there (closed forms only,
    checked by the caller)."""
    c = float(sol.centring)
    XtX = X.T @ X
    n = XtX.shape[0]
    tol, max_iter = opts.tol, opts.max_iter
    Sd, diag_report, engine = prepare(act, sa, sb, norms2, sol, opts)

    # ---- off-diagonal: Newton on the whole matrix, started from the linearised equation
    s = np.sqrt(Sd)
    everything = slice(None)
    Sigma = linearised_start(engine, sa, sb, c, XtX, everything, everything)
    ss = np.multiply.outer(s, s)
    np.fill_diagonal(Sigma, Sd)
    scale = float(Sd.max())
    history: list[float] = []
    if backend.is_numpy:
        for _it in range(1, max_iter + 1):
            G, D = engine.evaluate(Sigma)
            R = Sigma - sa * G - sb * XtX
            res = float(np.max(np.abs(R))) / scale
            history.append(res)
            if not math.isfinite(res):
                break
            if res <= tol:
                break
            step = R / (1.0 - sa * D)
            np.fill_diagonal(step, 0.0)
            Sigma = Sigma - step
            np.clip(Sigma, -ss, ss, out=Sigma)
            np.fill_diagonal(Sigma, Sd)
    else:
        G, D, Sigma = _offdiagonal_array_api(engine, sa, sb, Sigma, XtX, Sd, tol, max_iter,
                                             history, backend)
    if not history[-1] <= tol:
        raise ConvergenceError(
            f"the off-diagonal Newton iteration of the Implicit-CK ({act.name!r}, sa = {sa:g}, "
            f"n = {n}) did not reach tol = {tol:g} in {max_iter} iterations; raise max_iter "
            f"or loosen tol", history)
    if not float(np.max(D)) * sa < 1.0:    # |Gdot_ij| <= sqrt(Gdot_ii Gdot_jj): rounding only
        raise NoFixedPointError(
            f"sa Gdot = {sa * float(np.max(D)):.6g} >= 1 at the fixed point ({act.name!r}, "
            f"sa = {sa:g}): the NTK factor 1/(1 - sa Gdot) diverges; reduce sa")
    report = SolverReport(
        converged=True, residual=history[-1], tolerance=tol, iterations=len(history),
        history=history,
        message=f"the off-diagonal Newton iteration of the Implicit-CK ({act.name!r}, "
                f"sa = {sa:g}, n = {n}) reached max|Sigma - sa G - sb X^T X| / max Sigma_ii "
                f"<= {tol:g} in {len(history)} iterations")
    return FixedPoint(G=G, Gdot=D, Sigma=Sigma, XtX=XtX, report=report, diagonal=diag_report,
                      method=engine.method, series_order=engine.last_order,
                      quadrature_pairs=engine.last_quadrature_pairs)
