"""Newton's method for the spectral equations, shared by :mod:`rmt_deq.spectra.stieltjes`
(docs/theory.md §7.3).

The K complex unknowns (delta when n >= p_eff, g when n < p_eff) are found at each point
z = x + i eta by Newton's method vectorised over the points, lowering Im z geometrically
from the spectral scale with warm starts (:func:`solve_points`).  For the dense backend
(non-commuting full covariances, one p x p inverse per point and evaluation),
:func:`solve_sweep` instead continues the solution along the real part of the grid at the
target Im z, warm-started by extrapolation from the neighbouring points and, where the
previous point converged easily, from its (Broyden-updated) Jacobian, so that most points
cost two p x p inverses and no Jacobian; it falls back to :func:`solve_points` wherever
that is not safe (docs/theory.md §7.3).

A private module: its names are shared within :mod:`rmt_deq.spectra` only.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from rmt_deq.errors import ConvergenceError
from rmt_deq.spectra.model import GramModel

__all__ = ["residual_jacobian", "fixed_point", "stieltjes_class", "newton", "solve_points",
           "herglotz_floor", "solve_sweep"]

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
#: solve_sweep: Newton evaluations allowed at one point before it falls back to the Im z
#: continuation, and how many previous points the predictor extrapolates from (a
#: polynomial of degree one less)
SWEEP_MAX_ITER = 10
SWEEP_NODES = 8
#: solve_sweep: once a step is below SWEEP_CHORD_STEP (relative), the next evaluation
#: reuses the Jacobian (a chord step: the Jacobian changes by about that much), as long as
#: the steps keep shrinking by at least SWEEP_CHORD_RATE
SWEEP_CHORD_STEP = 1e-6
SWEEP_CHORD_RATE = 0.1
#: solve_sweep: with SWEEP_REUSE a point that follows one solved within SWEEP_EASY
#: evaluations starts from that point's Jacobian, corrected by Broyden's rank-one update
#: after each step (re-evaluated only when a step does not contract by SWEEP_CHORD_RATE),
#: and from the extrapolation of SWEEP_NODES nodes (else: a fresh Jacobian and
#: SWEEP_NODES_BEFORE nodes); the nodes are the Newton-corrected values.  False: the
#: method before (every point evaluates its own Jacobian, SWEEP_NODES_BEFORE nodes), kept
#: only so that benchmarks/bench_spectra_fullcov.py measures both in one process.
SWEEP_REUSE = True
SWEEP_NODES_BEFORE = 5
SWEEP_EASY = 2
#: herglotz_floor: the measures of the unknowns live on [0, scale]; the floor is computed
#: for [0, HERGLOTZ_SUPPORT * scale] (a weaker bound, safe if the scale were not a strict
#: bound) and then multiplied by HERGLOTZ_MARGIN (room for round-off)
HERGLOTZ_SUPPORT = 2.0
HERGLOTZ_MARGIN = 0.5
#: floor of the magnitudes that divide
_TINY = 1e-300


def residual_jacobian(model: GramModel, u: np.ndarray, z: np.ndarray, form: str, *,
                      jacobian: bool = True, mean: bool = False
                      ) -> tuple[np.ndarray, np.ndarray | None, tuple]:
    """The residual F(u) of the equations in the unknown ``form`` at the points z, its
    Jacobian dF/du (None without ``jacobian``) and (tr(C_a Y)/p, tr(Y)/p, M^T Y M or None)
    of the same evaluation (the derived quantities of a solution)."""
    r = model.ratios
    K = model.K
    eye = np.eye(K)
    J = None
    if form == "delta":
        w = 1.0 / (1.0 + u)
        first, sec, trace, mq = model.moments(r * w, -z, second=jacobian, mean=mean)
        F = u - first
        if jacobian:
            J = eye - sec * (r * w * w)[:, None, :]
    else:
        first, sec, trace, mq = model.moments(r * u, np.ones_like(z), second=jacobian,
                                              mean=mean)
        sz = first - z[:, None]
        F = u * sz - 1.0
        if jacobian:
            J = eye * sz[:, :, None] - u[:, :, None] * sec * r[None, None, :]
    return F, J, (first, trace, mq)


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


def herglotz_floor(model: GramModel, z: np.ndarray, form: str) -> np.ndarray:
    """A lower bound, shape (N, K), of Im u_a(z) for the solution at the points z.

    Each unknown is the Stieltjes transform of a positive measure on [0, scale]: g_a (n <
    p_eff) of a probability measure (a diagonal entry of the co-resolvent), delta_a (n >=
    p_eff) of a measure of mass tr(C_a)/p (tr(C_a (X X^T - z)^{-1})/p).  Hence
    Im u_a(x + i eta) = eta * integral dmu_a(l)/|l - z|^2 >= eta * mass_a / D^2 with
    D^2 = max over l in [0, S] of |l - z|^2 = max(x^2, (S - x)^2) + eta^2.  The bound is
    computed with S = HERGLOTZ_SUPPORT * scale and multiplied by HERGLOTZ_MARGIN.  A root
    of the equations below it is not the solution: next to a support edge the spurious
    root (the other sheet of the square-root branch point) has Im u of the opposite sign,
    which the relative round-off allowance of :func:`stieltjes_class` cannot see at
    Im z = 1e-10 scale.
    """
    S = HERGLOTZ_SUPPORT * model.scale
    x, eta = z.real, z.imag
    D2 = np.maximum(x * x, (S - x) ** 2) + eta * eta
    mass = np.ones(model.K) if form == "g" else np.asarray(model.traces, dtype=float)
    return HERGLOTZ_MARGIN * (eta / D2)[:, None] * mass[None, :]


def _extrapolate(nodes: list, x: float) -> np.ndarray:
    """The polynomial through the (x_j, u_j) of ``nodes`` (distinct x_j), at x."""
    xs = [n[0] for n in nodes]
    out = np.zeros_like(nodes[0][1])
    for j, (xj, uj) in enumerate(nodes):
        lj = 1.0
        for k, xk in enumerate(xs):
            if k != j:
                lj *= (x - xk) / (xj - xk)
        out = out + lj * uj
    return out


def _sweep_point(model: GramModel, u0: np.ndarray, z: complex, form: str, uscale: float,
                 mean: bool, history: list, J: np.ndarray | None) -> tuple:
    """Newton at the single point z from the predictor u0, starting from the Jacobian J
    of an earlier point of the sweep (None: evaluate it here).

    Returns (ok, u, relative step, evaluations, first, trace, mean quadratic, J, node).
    ``ok`` when the relative Newton step computed *at the returned u* is below NEWTON_TOL within
    SWEEP_MAX_ITER evaluations and u passes :func:`stieltjes_class` and
    :func:`herglotz_floor`; the first, trace and mean quadratic are those of that same
    evaluation, so the returned point's residual is the one that was tested.  The
    Jacobian is re-evaluated whenever a step is above SWEEP_CHORD_STEP or does not
    contract by SWEEP_CHORD_RATE, and otherwise corrected by Broyden's update along each
    step; the returned J is the one last used (for the next point), ``node`` is u minus
    the last step (a more accurate value, used only to extrapolate to the next points).
    """
    zz = np.array([z])
    u = u0[None, :].copy()
    prev = math.inf
    floor = herglotz_floor(model, zz, form)
    F_old = step = None
    for it in range(1, SWEEP_MAX_ITER + 1):
        need_j = J is None
        F, Jn, (first, trace, mq) = residual_jacobian(model, u, zz, form, jacobian=need_j,
                                                      mean=mean)
        if need_j:
            J = Jn
        elif F_old is not None and SWEEP_REUSE:
            # Broyden's update along the last step: J du = dF exactly in that direction
            du, dF = -step[0], F[0] - F_old[0]
            norm2 = max(float(np.vdot(du, du).real), _TINY)
            J = J + np.outer(dF - J[0] @ du, du.conj())[None] / norm2
        try:
            step = np.linalg.solve(J, F[..., None])[..., 0]
        except np.linalg.LinAlgError:
            return False, u[0], math.inf, it, None, None, None, None, u[0]
        rel = float(np.max(np.abs(step) / (np.abs(u) + uscale)))
        history.append(rel if math.isfinite(rel) else math.inf)
        if not math.isfinite(rel):
            return False, u[0], math.inf, it, None, None, None, None, u[0]
        if rel <= NEWTON_TOL:
            ok = bool(stieltjes_class(u, zz)[0]) and bool(np.all(u.imag >= floor))
            return (ok, u[0], rel, it, first[0], trace[0], None if mq is None else mq[0],
                    J if ok else None, (u - step)[0])
        if rel > SWEEP_CHORD_STEP or (not need_j and rel > SWEEP_CHORD_RATE * prev):
            J = None         # far from the root, or the reused Jacobian stopped contracting
        prev = rel if J is not None else math.inf
        F_old = F
        u = u - step
    return False, u[0], math.inf, it, None, None, None, None, u[0]


def solve_sweep(model: GramModel, x: np.ndarray, eta: np.ndarray, form: str, mean: bool,
                history: list) -> tuple:
    """Solve at z = x + i eta (eta > 0) by continuation along x (docs/theory.md §7.3).

    For the dense backend, where every evaluation costs a p x p inverse per point.  The
    points are visited in order of (eta, x); the first point of each run of equal eta is
    solved by :func:`solve_points` (Im z continuation from the scale), every later one by
    Newton at its own z from the polynomial extrapolation of the previous solutions: after
    a point that converged within SWEEP_EASY evaluations, from SWEEP_NODES of them and
    starting from that point's Jacobian (Broyden-updated, re-evaluated when the steps do
    not contract, see :func:`_sweep_point`); otherwise from SWEEP_NODES_BEFORE of them
    with a freshly evaluated Jacobian.  A point is accepted only when the
    relative Newton step at the returned unknowns is below NEWTON_TOL and they pass
    :func:`stieltjes_class` and :func:`herglotz_floor` (the spurious root next to a
    support edge fails the latter); otherwise, and where Newton does not reach NEWTON_TOL
    within SWEEP_MAX_ITER evaluations (next to an edge), the point is solved by
    :func:`solve_points`, with its guarantees.

    Returns
    -------
    (u, last_step, evals, first, trace, meanq, continued)
        The unknowns (N, K); the final relative Newton step of each point; the number of
        evaluations (each of one point or of a batch); tr(C_a Y)/p (N, K), tr(Y)/p (N,)
        and M^T Y M (N, K, K) (or None) at the returned unknowns; the number of points
        solved by Im z continuation.
    """
    N, K = x.shape[0], model.K
    uscale = STEP_FLOOR if form == "delta" else STEP_FLOOR / model.scale
    u = np.empty((N, K), dtype=complex)
    last = np.empty(N)
    first = np.empty((N, K), dtype=complex)
    trace = np.empty(N, dtype=complex)
    mq = np.empty((N, K, K), dtype=complex) if mean else None
    evals = 0
    continued = 0
    nodes: list = []
    run_eta = None
    J = None
    easy = False
    for i in np.lexsort((x, eta)):
        if eta[i] != run_eta:
            nodes, run_eta, J = [], eta[i], None
        ok = False
        if nodes:
            # after a point that took more than SWEEP_EASY evaluations, the method before
            # (fresh Jacobian, fewer nodes), which converges in fewer steps there
            use = nodes if easy else nodes[-SWEEP_NODES_BEFORE:]
            u0 = (use[-1][1] if use[-1][0] == x[i] else _extrapolate(use, x[i]))
            ok, ui, st, e, f, tr, m, J, node = _sweep_point(
                model, u0, x[i] + 1j * eta[i], form, uscale, mean, history,
                J if easy else None)
            evals += e
            easy = ok and e <= SWEEP_EASY
        if not ok:
            us, ls, e = solve_points(model, x[i:i + 1], eta[i:i + 1], form, history)
            ui, st = us[0], float(ls[0])
            evals += e
            _, _, (f, tr, m) = residual_jacobian(model, ui[None, :],
                                                 x[i:i + 1] + 1j * eta[i:i + 1],
                                                 form, jacobian=False, mean=mean)
            f, tr, m = f[0], tr[0], None if m is None else m[0]
            evals += 1
            continued += 1
            J, node, easy = None, ui, False
        u[i], last[i], first[i], trace[i] = ui, st, f, tr
        if mean:
            mq[i] = m
        if nodes and nodes[-1][0] == x[i]:
            nodes.pop()             # a repeated point: the nodes keep distinct x
        if SWEEP_REUSE:
            nodes = (nodes + [(float(x[i]), node)])[-SWEEP_NODES:]
        else:
            nodes, J = (nodes + [(float(x[i]), ui)])[-SWEEP_NODES_BEFORE:], None
    return u, last, evals, first, trace, mq, continued
