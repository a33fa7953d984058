"""Newton's method for the spectral equations, shared by :mod:`rmt_deq.spectra.stieltjes`
(docs/theory.md §7.3).

The K complex unknowns (delta when n >= p_eff, g when n < p_eff) are found at each point
z = x + i eta by Newton's method vectorised over the points, lowering Im z geometrically
from the spectral scale with warm starts (:func:`solve_points`).  For the dense backend
(non-commuting full covariances, one p x p inverse per point and evaluation),
:func:`solve_sweep` instead continues the solution along the real part of the grid at the
target Im z, warm-started by extrapolation from the neighbouring points, and falls back to
:func:`solve_points` wherever that is not safe (docs/theory.md §7.3).

A private module: its names are shared within :mod:`rmt_deq.spectra` only.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from rmt_deq.errors import ConvergenceError
from rmt_deq.spectra.model import GramModel

__all__ = ["residual_jacobian", "fixed_point", "stieltjes_class", "newton", "solve_points"]

#: relative Newton tolerance on the unknowns (on the step, at the target Im z)
NEWTON_TOL = 1e-13
#: relative Newton tolerance on the intermediate levels of the Im z continuation
LEVEL_TOL = 1e-7
#: a step below this (relative) that no longer halves is accepted as converged: round-off
#: stagnation next to a support edge, where the Jacobian is nearly singular
STAGNATION_STEP = 1e-7
#: "no longer halving": the step is at least this fraction of the previous one
STAGNATION_RATIO = 0.5
#: floor of |u| in the relative step, in units of the unknown (delta is dimensionless, g is
#: divided by the scale)
STEP_FLOOR = 1e-6
#: Newton iterations at the starting level Im z = scale, and per continuation level
START_MAX_ITER = 30
LEVEL_MAX_ITER = 12
#: plain fixed-point iterations bringing the large-|z| guess into Newton's basin, and the
#: relative change at which they stop
WARMUP_ITERS = 200
WARMUP_TOL = 1e-3
#: Im z continuation: first ratio of consecutive levels; after a success the ratio r
#: becomes max(r^1.5, smallest ratio), after a failure sqrt(r); the solve gives up when r
#: exceeds the last value
ETA_RATIO_START = 0.05
ETA_RATIO_GROWTH = 1.5
ETA_RATIO_SMALLEST = 1e-3
ETA_RATIO_GIVE_UP = 0.999
#: a level is replaced by the target when it would leave a last step of less than this factor
ETA_LAST_STEP = 10.0
#: relative tolerance of "Im z has reached its target"
ETA_REACHED = 1e-12
#: the Stieltjes-class test (Im u >= 0, Im(z u) >= 0) allows this relative round-off
STIELTJES_RTOL = 1e-9
#: floor of the magnitudes that divide
_TINY = 1e-300


def residual_jacobian(model: GramModel, u: np.ndarray, z: np.ndarray, form: str
                       ) -> tuple[np.ndarray, np.ndarray, tuple]:
    r = model.ratios
    K = model.K
    eye = np.eye(K)
    if form == "delta":
        w = 1.0 / (1.0 + u)
        first, sec, trace, _ = model.moments(r * w, -z)
        F = u - first
        J = eye - sec * (r * w * w)[:, None, :]
    else:
        first, sec, trace, _ = model.moments(r * u, np.ones_like(z))
        sz = first - z[:, None]
        F = u * sz - 1.0
        J = eye * sz[:, :, None] - u[:, :, None] * sec * r[None, None, :]
    return F, J, (first, trace)


def fixed_point(model: GramModel, u: np.ndarray, z: np.ndarray, form: str, iters: int,
                 tol: float) -> np.ndarray:
    """Plain fixed-point iteration (robust at Im z of the order of the scale), until the
    relative change is below ``tol`` (a loose ``tol`` only brings Newton into its basin)."""
    r = model.ratios
    for _ in range(iters):
        if form == "delta":
            first, _, _, _ = model.moments(r / (1.0 + u), -z, second=False)
            new = first
        else:
            first, _, _, _ = model.moments(r * u, np.ones_like(z), second=False)
            new = 1.0 / (first - z[:, None])
        if np.all(np.abs(new - u) <= tol * (np.abs(new) + _TINY)):
            return new
        u = new
    return u


def stieltjes_class(u: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Stieltjes-class check: Im u >= 0 and Im(z u) >= 0 (both up to round-off)."""
    au = np.abs(u)
    zu = z[:, None] * u
    tol = STIELTJES_RTOL
    ok = (u.imag >= -tol * au) & (zu.imag >= -tol * np.abs(zu))
    return np.all(ok & np.isfinite(u), axis=1)


def newton(model: GramModel, u0: np.ndarray, z: np.ndarray, form: str, max_iter: int,
            uscale: float, tol: Any, history: list
            ) -> tuple[np.ndarray, np.ndarray, int, np.ndarray, np.ndarray]:
    """Undamped Newton from u0; returns (u, converged, evaluations, last residual, last
    relative step); appends the largest relative step after each evaluation to
    ``history``.

    A point has converged when its relative step falls below ``tol`` (``NEWTON_TOL`` at
    the target Im z; looser on the intermediate levels of the continuation, whose solutions
    only serve as warm starts), or when the step stagnates at round-off level (below
    ``STAGNATION_STEP`` and no longer halving), which happens next to a support edge where
    the Jacobian is nearly singular.
    """
    u = u0.copy()
    N = z.shape[0]
    tol = np.broadcast_to(np.asarray(tol, dtype=float), (N,))
    conv = np.zeros(N, dtype=bool)
    res = np.full(N, np.inf)
    prev = np.full(N, np.inf)
    active = np.arange(N)
    evals = 0
    for _ in range(max_iter):
        if active.size == 0:
            break
        F, J, _ = residual_jacobian(model, u[active], z[active], form)
        evals += 1
        try:
            step = np.linalg.solve(J, F[..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = np.full_like(F, np.nan)
        res[active] = np.max(np.abs(F), axis=1)
        u[active] -= step
        rel = np.max(np.abs(step) / (np.abs(u[active]) + uscale), axis=1)
        small = (rel <= tol[active]) | ((rel <= STAGNATION_STEP)
                                        & (rel >= STAGNATION_RATIO * prev[active]))
        prev[active] = rel
        bad = ~np.isfinite(rel)
        finite = rel[~bad]
        history.append(float(finite.max()) if finite.size else math.inf)
        conv[active[small]] = True
        u[active[bad]] = np.nan
        active = active[~(small | bad)]
    return u, conv, evals, res, prev


def solve_points(model: GramModel, x: np.ndarray, eta: np.ndarray, form: str,
                  history: list) -> tuple[np.ndarray, np.ndarray, int]:
    """Solve at z = x + i eta (eta > 0) by lowering Im z from the scale with warm starts.

    Returns the unknowns, the final relative Newton step of each point and the number of
    Newton evaluations."""
    N = x.shape[0]
    s = model.scale
    uscale = STEP_FLOOR if form == "delta" else STEP_FLOOR / s
    eta0 = np.maximum(eta, s)
    z0 = x + 1j * eta0
    reached = 1.0 + ETA_REACHED
    # initial guess from the large-|z| expansion, then fixed point, then Newton
    if form == "delta":
        u = -(model.traces[None, :] / z0[:, None]).astype(complex)
    else:
        u = (-1.0 / z0[:, None]) * np.ones((1, model.K), dtype=complex)
    u = fixed_point(model, u, z0, form, WARMUP_ITERS, WARMUP_TOL)
    final = eta0 <= eta * reached
    u, conv, evals, res, step = newton(model, u, z0, form, START_MAX_ITER, uscale,
                                        np.where(final, NEWTON_TOL, LEVEL_TOL), history)
    ok = conv & stieltjes_class(u, z0)
    if not np.all(ok):
        i = int(np.flatnonzero(~ok)[0])
        raise ConvergenceError(
            f"the equations of docs/theory.md §7.2 did not converge at the starting point "
            f"z = {z0[i]:.6g} (Im z = scale)", [float(res[i])])
    last_step = np.where(final, step, np.nan)
    cur = eta0.copy()
    ratio = np.full(N, ETA_RATIO_START)
    todo = cur > eta * reached
    while np.any(todo):
        idx = np.flatnonzero(todo)
        new_eta = cur[idx] * ratio[idx]
        # land on the target instead of leaving a last step of less than a decade
        new_eta = np.where(new_eta < ETA_LAST_STEP * eta[idx], eta[idx], new_eta)
        zt = x[idx] + 1j * new_eta
        final = new_eta <= eta[idx] * reached
        ut, ct, e, rt, st = newton(model, u[idx], zt, form, LEVEL_MAX_ITER, uscale,
                                    np.where(final, NEWTON_TOL, LEVEL_TOL), history)
        evals += e
        good = ct & stieltjes_class(ut, zt)
        gi, bi = idx[good], idx[~good]
        u[gi] = ut[good]
        cur[gi] = new_eta[good]
        last_step[gi] = np.where(final[good], st[good], np.nan)
        ratio[gi] = np.maximum(ratio[gi] ** ETA_RATIO_GROWTH, ETA_RATIO_SMALLEST)
        ratio[bi] = np.sqrt(ratio[bi])
        if np.any(ratio[bi] > ETA_RATIO_GIVE_UP):
            i = int(bi[np.argmax(ratio[bi])])
            raise ConvergenceError(
                f"the equations of docs/theory.md §7.2 could not be continued towards the "
                f"real axis at x = {x[i]:.8g} (Im z = {cur[i]:.3g}, target {eta[i]:.3g})",
                [float(v) for v in rt[~good][:5]])
        todo = cur > eta * reached
    return u, last_step, evals
