"""The tau equation in float64: its root by safeguarded Newton, and the uniqueness scan
(shared by the float64 and the mpmath solves; inputs are trusted: a resolved Activation,
validated sa, c = sb tau0^2 and options).

In q = tau^2 the tau equation reads q = T(q) with T(q) = sa V0(sqrt q) + sb tau0^2, and by
the heat equation dT/dq = sa g4 / 2 (docs/theory.md §3.3-3.4): the contraction condition of
the tau map is the alpha4 condition.  f(q) = T(q) - q > 0 on (0, c] since V0 >= 0.
"""
from __future__ import annotations

import math
import numpy as np

from rmt_deq.activations import Activation
from rmt_deq.errors import ConvergenceError, NoFixedPointError
from rmt_deq.moments._engines import moments, tau_map_terms
from rmt_deq.moments._quadrature import second_central_moment
from rmt_deq.moments.closed_forms import homogeneous_degree
from rmt_deq.moments.result import GaussianMoments
from rmt_deq.moments.table import MomentTable, moment_table

__all__ = ["float_root", "scan_uniqueness"]

#: no root below q_max = _NO_ROOT_SPAN x max(sb tau0^2, scale^2): 16 decades above the
#: input part of tau^2 and above the bending scale of phi
_NO_ROOT_SPAN = 1e16
#: the first expansion of q without an upper bracket, and the factor by which each
#: further expansion grows (expand ever faster)
_GROWTH_START = 4.0
_GROWTH_ACCEL = 4.0
#: inside a bracket [lo, hi], bisect geometrically while hi/lo exceeds this
_GEOMETRIC_RATIO = 4.0

#: the uniqueness scan covers q in [q*/1e4, 1e4 q*], i.e. tau in [1e-2 tau*, 1e2 tau*]
_SCAN_Q_HI = 1e4
_SCAN_TAU_LO, _SCAN_TAU_HI = 1e-2, 1e2
#: the anchored scan grid: 5 points per decade of q on [q*/1e4, 1e4 q*]
_SCAN_GRID = np.logspace(-4, 4, 41)
#: Gauss-Legendre nodes per panel of the scan's light quadrature (it only needs signs)
_SCAN_NODES = 6


def float_root(act: Activation, sa: float, c: float, method: str, tol: float,
               max_iter: int) -> tuple:
    """Newton on q = tau^2 in float64: (q, moments at q or None, iterations, history,
    the moment table used or None, the engine name)."""
    # the table engine (auto for activations without closed forms): where the cached table
    # covers tau, every evaluation is an interpolation; elsewhere the quadrature engine
    table = None
    if method == "table" or (method == "auto" and not act.has_closed_form):
        table = moment_table(act)
        table = table if table.valid else None
        method = "quadrature"   # the engine wherever the table does not cover tau
    # quadrature engine: iterate on (V0, g4) alone, all moments once at the root
    lean = method == "quadrature"

    def F(q: float) -> tuple[float, float, GaussianMoments | None]:
        """f(q) = T(q) - q and f'(q) = sa g4/2 - 1."""
        tau = math.sqrt(q)
        if table is not None and table.tau_lo <= tau <= table.tau_hi:
            v = table.values(tau)
            return sa * float(v[2]) + c - q, sa * float(v[8]) / 2.0 - 1.0, None
        if lean:
            V0, g4 = tau_map_terms(act, tau)
            return sa * V0 + c - q, sa * g4 / 2.0 - 1.0, None
        m = moments(act, tau, method, with_errors=True)   # closed forms: cheap errors
        return sa * float(m.V0) + c - q, sa * float(m.g4) / 2.0 - 1.0, m

    # Newton from q = c with a lazily built bracket [lo, hi]: steps that leave it bisect
    # (hi finite) or expand geometrically (no upper end yet).
    lo, hi, q = 0.0, math.inf, c
    # (a tau map steeper than 1 near 0 -- sa phi'(0)^2 > 1 -- reaches its stable root only
    # where phi saturates, on the scale of phi however small tau0 is)
    q_max = _NO_ROOT_SPAN * max(c, act.scale ** 2)
    growth = _GROWTH_START
    history: list[float] = []
    converged = diverged = False
    m = None
    it = 0
    for it in range(1, max_iter + 1):
        f, df, m = F(q)
        if not (math.isfinite(f) and math.isfinite(df)):
            raise NoFixedPointError(
                f"the tau map of {act.name!r} is not finite at tau^2 = {q:.3g} (sa = "
                f"{sa:g}): E[phi_c^2] overflows before a root is reached; reduce sa or "
                f"tau0, or use an activation with slower growth")
        history.append(abs(f) / q)
        if f > 0:
            lo = q
        else:
            hi = q
        step = -f / df if df < 0 else math.inf
        if abs(step) <= tol * q:
            converged = True  # q (where m was evaluated) is the solution to tol
            break
        q_new = q + step
        if not (lo < q_new < hi):
            if math.isinf(hi):
                if q > q_max:  # f > 0 over 16 decades above sb tau0^2 and the scale
                    diverged = True
                    break
                q_new, growth = growth * q, growth * _GROWTH_ACCEL    # expand ever faster
            else:
                q_new = (math.sqrt(lo * hi) if hi > _GEOMETRIC_RATIO * lo > 0.0
                         else 0.5 * (lo + hi))
                if hi - lo <= tol * q:
                    converged = True
                    break
        q = q_new
    if diverged:
        raise NoFixedPointError(
            f"the tau equation tau^2 = sa E[phi_c(tau xi)^2] + sb tau0^2 has no root for "
            f"{act.name!r} at sa = {sa:g}, sb tau0^2 = {c:.3g} (none up to tau^2 = "
            f"{q:.3g}): E[phi_c^2] grows at least like tau^2/sa; reduce sa or tau0, or use "
            f"an activation with slower growth")
    if not converged:
        raise ConvergenceError(
            f"Newton's method on tau^2 did not converge for {act.name!r} at sa = {sa:g} within "
            f"{max_iter} iterations; raise max_iter or check the activation", history)
    return q, m, it, history, table, method


def scan_uniqueness(act: Activation, sa: float, c: float, q_star: float,
                    table: MomentTable | None = None) -> tuple[bool, float]:
    """Count sign changes of T(q) - q on a log grid (5 per decade) of [q*/1e4, 1e4 q*];
    returns (unique, q_scan), the upper end of the scanned range.

    For a positively homogeneous phi of degree 1 (the ReLU family) T is affine in q, so
    the root is unique on all of [0, inf) and no scan is needed (q_scan infinite).  Below
    q = c = sb tau0^2 no evaluation is needed either: T(q) - q >= c - q > 0 there
    (V0 >= 0).  With a moment ``table`` (a :class:`MomentTable`, or anything with its
    scan attributes) covering the rest of the range, the grid is the table's fixed lattice
    (same density, V0 tabulated at build time; ``q_scan`` is then the last lattice point,
    within a factor 10^0.2 of 1e4 q*); otherwise the grid is anchored at q* and V0 comes
    from the table where it covers sqrt(q), else from a light quadrature.
    """
    if act.pieces is not None and homogeneous_degree(act.pieces) == 1:
        return True, math.inf
    if table is not None:
        # the table's lattice (5 points per decade of q, as the grid below) when it covers
        # the part of [q*/1e4, 1e4 q*] where q >= c: V0 there was tabulated at build time
        t_star = math.sqrt(q_star)
        t_min, t_max = max(_SCAN_TAU_LO * t_star, math.sqrt(c)), _SCAN_TAU_HI * t_star
        if table.tau_lo <= t_min and t_max <= table.tau_hi:
            i, j = table.scan_slice(t_min, t_max)
            f = sa * table.scan_v0[i:j] + (c - table.scan_q[i:j])
            s = np.sign(f)
            s = s[s != 0]
            # q < c (all of [q*/1e4, c) is in the scan range): f >= c - q > 0 there
            changes = int(np.count_nonzero(s[1:] != s[:-1])) + int(s.size > 0 and s[0] < 0)
            return changes <= 1, float(table.scan_q[j - 1]) if j > i else _SCAN_Q_HI * q_star
    q = q_star * _SCAN_GRID
    i0 = int(np.searchsorted(q, c))               # q[:i0] < c: f > 0 there, not evaluated
    tau = np.sqrt(q[i0:])
    f = c - q[i0:]
    a, b = 0, tau.size                            # tau[a:b] is covered by the table
    if table is not None:
        a = int(np.searchsorted(tau, table.tau_lo))
        b = int(np.searchsorted(tau, table.tau_hi, side="right"))
        if b > a:
            f[a:b] += sa * table.v0(tau[a:b])
    if a > 0 or b < tau.size:
        rest = np.concatenate((np.arange(a), np.arange(b, tau.size)))
        # the scan only needs signs: a light quadrature of V0 suffices
        f[rest] += sa * second_central_moment(act, tau[rest], _SCAN_NODES)
    s = np.sign(f) if i0 == 0 else np.concatenate(([1.0], np.sign(f)))
    s = s[s != 0]
    changes = int(np.count_nonzero(np.diff(s)))
    return changes <= 1, float(q[-1])
