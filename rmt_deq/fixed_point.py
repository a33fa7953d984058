"""The four-equation system (theory.md section 3): tau, alpha1..alpha3, helper alpha4.

With g1 = E[phi']^2, g2 = E[phi'']^2, g4 = E[(phi_c^2)''] at tau::

    tau^2 = sa E[phi_c(tau xi)^2] + sb tau0^2
    alpha1 = sb / (1 - sa g1)
    alpha4 = sb / (1 - sa g4 / 2)
    alpha2 = sa g2 alpha4^2 / (4 (1 - sa g1))
    alpha3 = sa g2 alpha1^2 / (2 (1 - sa g1))

Only the tau equation is nonlinear.  In q = tau^2 it reads q = T(q) with
T(q) = sa V0(sqrt q) + sb tau0^2, and by the heat equation dT/dq = sa g4 / 2: the
contraction condition of the tau map *is* the alpha4 condition.  It is solved by Newton's
method on q, safeguarded by a bracket, to machine precision; the solution is unique when
T(q) - q changes sign once on [0, q_max] (checked on a grid and reported).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import mpmath as mp
import numpy as np

from .activations import ActivationLike, get_activation
from .errors import (ConvergenceError, InvalidParameterError, NoFixedPointError,
                     UnknownOptionError)
from .closed_forms import homogeneous_degree
from .gaussian import (GaussianMoments, gaussian_moments, mp_gaussian_moments,
                       second_central_moment, tau_map_terms)
from .moment_table import MomentTable, moment_table

__all__ = ["FixedPointSolution", "solve_four_equations", "check_variances"]


def check_variances(sa: Any, sb: Any = None) -> tuple[float, float]:
    """Validate (sa, sb); sb defaults to 1 - sa.  Returns floats.

    Raises
    ------
    InvalidParameterError
        if sa is not in (0, 1) when sb is omitted, sa <= 0, sb < 0, or either is not finite.
    """
    try:
        sa_f = float(sa)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"sa must be a number, got {sa!r}") from None
    if not math.isfinite(sa_f) or sa_f <= 0:
        raise InvalidParameterError(
            f"sa (the variance of the recurrent weights A) must be finite and > 0, got {sa!r}")
    if sb is None:
        if sa_f >= 1:
            raise InvalidParameterError(
                f"sa = {sa_f:g} >= 1 leaves no variance for the input weights (sb = 1 - sa); "
                f"use sa in (0, 1) or pass sb explicitly")
        return sa_f, 1.0 - sa_f
    try:
        sb_f = float(sb)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"sb must be a number, got {sb!r}") from None
    if not math.isfinite(sb_f) or sb_f <= 0:
        raise InvalidParameterError(
            f"sb (the variance of the input weights B) must be finite and > 0, got {sb!r}")
    return sa_f, sb_f


@dataclass(frozen=True)
class FixedPointSolution:
    """Solution of the four equations, with diagnostics.

    Attributes
    ----------
    activation : str
        Canonical activation spec.
    sa, sb, tau0 : float
        Inputs: weight variances and the data scale tau0 = sqrt(tr C°/p).
    tau : float
        Fixed-point scale of the preactivations (sqrt of the diagonal of Sigma).
    alpha1, alpha2, alpha3, alpha4 : float
        Coefficients of the CK surrogate (alpha4 is the helper for the diagonal).
    g1, g2, g4 : float
        E[phi']^2, E[phi'']^2, E[(phi_c^2)''] at tau.
    centring : float
        E[phi(tau xi)], subtracted from phi to make phi_c.
    moments : GaussianMoments
        Every Gaussian moment at tau (e1, e2, e3, h0, h2, V0...).
    contraction : dict
        ``tau_map`` = sa g4/2 (derivative of the tau map, must be < 1), ``alpha1`` = sa g1
        (< 1), ``deq_jacobian`` = sa h0 = sa E[phi'^2] (< 1 for the infinite-width NTK and the
        finite-width forward map to be stable; reported, not required by the CK).
    residual : float
        Max absolute residual of the four equations (tau equation relative to tau^2).
    iterations : int
        Newton iterations on q = tau^2.
    residual_history : tuple of float
    converged : bool
    unique : bool
        Whether T(q) - q has a single sign change on the scanned range [0, q_scan].
    q_scan : float
        Upper end of the uniqueness scan (in q = tau^2).
    method : str
        Moment engine used.
    message : str
    """

    activation: str
    sa: float
    sb: float
    tau0: float
    tau: float
    alpha1: float
    alpha2: float
    alpha3: float
    alpha4: float
    g1: float
    g2: float
    g4: float
    centring: float
    moments: GaussianMoments = field(repr=False)
    contraction: dict = field(default_factory=dict)
    residual: float = 0.0
    iterations: int = 0
    residual_history: tuple = ()
    converged: bool = True
    unique: bool = True
    q_scan: float = 0.0
    method: str = "auto"
    message: str = ""

    @property
    def V0(self) -> float:
        """E[phi_c(tau xi)^2] = (tau^2 - sb tau0^2)/sa."""
        return float(self.moments.V0)

    def to_dict(self) -> dict:
        """JSON-ready dictionary (floats, strings, lists)."""
        d = asdict(self)
        d["moments"] = {k: float(v) if not isinstance(v, str) else v
                        for k, v in self.moments.as_dict().items()}
        d["residual_history"] = list(self.residual_history)
        return d


def _moments(act: Any, tau: float, method: str, dps: int) -> GaussianMoments:
    if method == "mpmath":
        return mp_gaussian_moments(act, tau, dps=dps)
    return gaussian_moments(act, tau, method=method)


def solve_four_equations(
    activation: ActivationLike,
    sa: float,
    tau0: float = 1.0,
    sb: float | None = None,
    *,
    method: str = "auto",
    tol: float = 1e-15,
    max_iter: int = 100,
    dps: int = 50,
    check_uniqueness: bool = True,
) -> FixedPointSolution:
    """Solve the four-equation system of theory.md section 3.

    Parameters
    ----------
    activation : name, Activation or callable
        phi (it is centred at the solved tau; pass it uncentred).
    sa : float
        Variance of the recurrent weights, > 0.
    tau0 : float
        Data scale sqrt(tr C°/p) > 0 (the typical norm of a column of X).
    sb : float, optional
        Variance of the input weights; default 1 - sa.
    method : {"auto", "closed", "quadrature", "mpmath", "table"}
        Moment engine.  ``"auto"``: the closed form when the activation has one, else the
        cached interpolation table (:func:`rmt_deq.moment_table.moment_table`, built on the
        first call for the activation, ~0.1 s) wherever it is valid and covers tau, else
        the quadrature engine; ``"table"`` the same for any activation; ``"quadrature"``
        the quadrature engine only.  The Newton iterations, the uniqueness scan and the
        moments at the root use the same engine (``solution.method`` names the one of the
        moments).  ``"mpmath"`` solves at ``dps`` digits (slow; a reference).
    tol : float
        Relative tolerance on q = tau^2 for Newton's method.
    max_iter : int
        Iteration cap (a :class:`ConvergenceError` with the history is raised past it).

    Returns
    -------
    FixedPointSolution

    Raises
    ------
    InvalidParameterError
        variances or tau0 out of range.
    NoFixedPointError
        the tau equation has no root (phi grows too fast for this sa), or a contraction
        condition fails: sa g1 >= 1 (alpha1 diverges) or sa g4/2 >= 1 (unstable tau map).
    ConvergenceError
        Newton did not reach ``tol`` in ``max_iter`` iterations.
    DivergentMomentError
        phi's Gaussian moments do not exist.
    """
    act = get_activation(activation)
    sa, sb = check_variances(sa, sb)
    try:
        tau0 = float(tau0)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"tau0 must be a number, got {tau0!r}") from None
    if not math.isfinite(tau0) or tau0 <= 0:
        raise InvalidParameterError(
            f"tau0 (the data scale sqrt(tr C°/p)) must be finite and > 0, got {tau0!r}")
    if method not in ("auto", "closed", "quadrature", "mpmath", "table"):
        raise UnknownOptionError(
            f"unknown method {method!r}; choose auto, closed, quadrature, mpmath or table")
    if not (isinstance(max_iter, (int, np.integer)) and max_iter > 0):
        raise InvalidParameterError(f"max_iter must be a positive integer, got {max_iter!r}")
    if not (math.isfinite(tol) and tol > 0):
        raise InvalidParameterError(f"tol must be finite and > 0, got {tol!r}")
    if method == "mpmath":
        return _solve_mpmath(act, sa, sb, tau0, dps)

    c = sb * tau0 * tau0
    # the table engine (auto for activations without closed forms): where the cached table
    # covers tau, every evaluation is an interpolation; elsewhere the quadrature engine
    table = None
    if method == "table" or (method == "auto" and not act.has_closed_form):
        table = moment_table(activation if isinstance(activation, str) else act)
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
        m = _moments(act, tau, method, dps)
        return sa * float(m.V0) + c - q, sa * float(m.g4) / 2.0 - 1.0, m

    # f(q) > 0 on (0, c]: V0 >= 0.  Newton from q = c with a lazily built bracket [lo, hi]:
    # steps that leave it bisect (hi finite) or expand geometrically (no upper end yet).
    lo, hi, q = 0.0, math.inf, c
    history: list[float] = []
    converged = diverged = False
    it = 0
    for it in range(1, max_iter + 1):
        f, df, m = F(q)
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
                if q > 1e16 * c:  # f > 0 over 16 decades above sb tau0^2: no root
                    diverged = True
                    break
                q_new = 4.0 * q
            else:
                q_new = 0.5 * (lo + hi)
                if hi - lo <= tol * q:
                    converged = True
                    break
        q = q_new
    if diverged:
        raise NoFixedPointError(
            f"the tau equation tau^2 = sa E[phi_c(tau xi)^2] + sb tau0^2 has no root for "
            f"{act.name!r} at sa = {sa:g}, tau0 = {tau0:g} (none up to tau^2 = {q:.3g}): "
            f"E[phi_c^2] grows at least like tau^2/sa; reduce sa or tau0, or use an "
            f"activation with slower growth")
    if not converged:
        raise ConvergenceError(
            f"Newton's method on tau^2 did not converge for {act.name!r} at sa = {sa:g} within "
            f"{max_iter} iterations; raise max_iter or check the activation", history)
    tau = math.sqrt(q)
    if m is None:
        m = (table.moments(tau) if table is not None and table.covers(tau)
             else _moments(act, tau, method, dps))
    unique, q_scan = _scan_uniqueness(act, sa, c, q, table) if check_uniqueness else (True, 0.0)
    return _assemble(act.name, sa, sb, tau0, tau, m, method, it, history, unique, q_scan)


def _assemble(name: str, sa: float, sb: float, tau0: float, tau: Any, m: GaussianMoments,
              method: str, iterations: int, history: list, unique: bool = True,
              q_scan: float = 0.0) -> FixedPointSolution:
    g1, g2, g4 = m.g1, m.g2, m.g4
    k1, k4 = sa * g1, sa * g4 / 2
    if not k4 < 1:
        raise NoFixedPointError(
            f"the tau map is not contracting at the fixed point: sa*g4/2 = {float(k4):.6g} >= 1 "
            f"({name}, sa = {sa:g}); the fixed point is unstable and alpha4 diverges; "
            f"reduce sa")
    if not k1 < 1:
        raise NoFixedPointError(
            f"sa*E[phi']^2 = {float(k1):.6g} >= 1 ({name}, sa = {sa:g}, tau = {float(tau):.6g}): "
            f"the linear part of the Implicit-CK (alpha1 = sb/(1 - sa g1)) diverges; reduce sa")
    alpha1 = sb / (1 - k1)
    alpha4 = sb / (1 - k4)
    alpha2 = sa * g2 * alpha4 ** 2 / (4 * (1 - k1))
    alpha3 = sa * g2 * alpha1 ** 2 / (2 * (1 - k1))
    # residuals of the four equations as written in theory.md (not the solved forms)
    r_tau = abs(sa * m.V0 + sb * tau0 ** 2 - tau ** 2) / tau ** 2
    r1 = abs(sa * g1 * alpha1 + sb - alpha1) / abs(alpha1)
    r2 = abs(sa * (g1 * alpha2 + g2 * alpha4 ** 2 / 4) - alpha2) / max(abs(alpha2), 1.0)
    r3 = abs(sa * (g1 * alpha3 + g2 * alpha1 ** 2 / 2) - alpha3) / max(abs(alpha3), 1.0)
    r4 = abs(sa * g4 / 2 * alpha4 + sb - alpha4) / abs(alpha4)
    residual = float(max(r_tau, r1, r2, r3, r4))
    contraction = {"tau_map": float(k4), "alpha1": float(k1), "deq_jacobian": float(sa * m.h0)}
    return FixedPointSolution(
        activation=name, sa=sa, sb=sb, tau0=tau0, tau=float(tau), alpha1=float(alpha1),
        alpha2=float(alpha2), alpha3=float(alpha3), alpha4=float(alpha4), g1=float(g1),
        g2=float(g2), g4=float(g4), centring=float(m.mean), moments=m,
        contraction=contraction, residual=residual, iterations=iterations,
        residual_history=tuple(float(h) for h in history), converged=True, unique=unique,
        q_scan=q_scan, method=m.method,
        message="converged" + ("" if unique else "; WARNING: the tau equation has another "
                               f"root in [0, {q_scan:.3g}] (returned the stable one)"))


_SCAN_GRID = np.logspace(-4, 4, 41)


def _scan_uniqueness(act: Any, sa: float, c: float, q_star: float,
                     table: MomentTable | None = None) -> tuple[bool, float]:
    """Count sign changes of T(q) - q on a log grid (5 per decade) of [q*/1e4, 1e4 q*].

    For a positively homogeneous phi of degree 1 (the ReLU family) T is affine in q, so
    the root is unique on all of [0, inf) and no scan is needed.  Below q = c = sb tau0^2
    no evaluation is needed either: T(q) - q >= c - q > 0 there (V0 >= 0).  With a moment
    ``table`` covering the rest of the range, the grid is the table's fixed lattice (same
    density, V0 tabulated at build time; ``q_scan`` is then the last lattice point, within
    a factor 10^0.2 of 1e4 q*); otherwise the grid is anchored at q* and V0 comes from the
    table where it covers sqrt(q), else from a light quadrature.
    """
    if act.pieces is not None and homogeneous_degree(act.pieces) == 1:
        return True, math.inf
    if table is not None:
        # the table's lattice (5 points per decade of q, as the grid below) when it covers
        # the part of [q*/1e4, 1e4 q*] where q >= c: V0 there was tabulated at build time
        t_star = math.sqrt(q_star)
        t_min, t_max = max(1e-2 * t_star, math.sqrt(c)), 1e2 * t_star
        if table.tau_lo <= t_min and t_max <= table.tau_hi:
            i, j = table.scan_slice(t_min, t_max)
            f = sa * table.scan_v0[i:j] + (c - table.scan_q[i:j])
            s = np.sign(f)
            s = s[s != 0]
            # q < c (all of [q*/1e4, c) is in the scan range): f >= c - q > 0 there
            changes = int(np.count_nonzero(s[1:] != s[:-1])) + int(s.size > 0 and s[0] < 0)
            return changes <= 1, float(table.scan_q[j - 1]) if j > i else 1e4 * q_star
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
        # the scan only needs signs: a light 6-node-per-panel quadrature of V0 (relative
        # error ~1e-10) suffices
        f[rest] += sa * second_central_moment(act, tau[rest], nodes=6)
    s = np.sign(f) if i0 == 0 else np.concatenate(([1.0], np.sign(f)))
    s = s[s != 0]
    changes = int(np.count_nonzero(np.diff(s)))
    return changes <= 1, float(q[-1])


def _solve_mpmath(act: Any, sa: float, sb: float, tau0: float, dps: int) -> FixedPointSolution:
    """Reference solution with every moment and the root at ``dps`` digits."""
    with mp.workdps(dps):
        sa_m, sb_m, t0 = mp.mpf(sa), mp.mpf(sb), mp.mpf(tau0)
        start = solve_four_equations(act, sa, tau0, sb, check_uniqueness=False).tau
        hist: list[float] = []

        def f(tau: Any) -> Any:
            m = mp_gaussian_moments(act, tau, dps=dps)
            r = sa_m * m.V0 + sb_m * t0 ** 2 - tau ** 2
            hist.append(float(abs(r)))
            return r

        try:
            tau = mp.findroot(f, mp.mpf(start), tol=mp.mpf(10) ** (-dps + 5))
        except ValueError as exc:
            raise ConvergenceError(f"mpmath root-finding failed: {exc}", hist) from None
        m = mp_gaussian_moments(act, tau, dps=dps)
        sol = _assemble(act.name, sa_m, sb_m, t0, tau, m, "mpmath", len(hist), hist)
        return FixedPointSolution(**{**sol.__dict__, "sa": sa, "sb": sb, "tau0": tau0})
