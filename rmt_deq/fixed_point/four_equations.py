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

What a returned solution guarantees: the residual of every equation is within its
tolerance (else :class:`ConvergenceError`), and the estimated error of tau and of each
alpha -- propagated from the moment engine's error estimates -- is below
:data:`ACCURACY` relative; alpha2 and alpha3 vanish for odd phi, so where E[phi''] is not
resolved from zero they are held to that accuracy relative to the value they take at
g2 = :func:`g2_zero_level` (E[phi''] at 1e-6 of its rounding scale); else
:class:`PrecisionLossError`.  Checked against mpmath on a grid of
scales 1e-12 .. 1e12 (tests/test_trust_numerics.py), where every returned result is
within 1e-10.

Supported scales: tau0, sqrt(sb) tau0 (the input part of tau; tau >= sqrt(sb) tau0), sa
and sb in :data:`rmt_deq._validation.SCALE_RANGE` = [1e-50, 1e50]; outside,
:class:`InvalidParameterError` says what to change.  The solved tau is at most 1e8 times
sqrt(sb) tau0 (beyond, the tau equation is declared without a root).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from rmt_deq._validation import SCALE_RANGE, check_positive_finite, check_scale, check_tolerance
from rmt_deq.activations import ActivationLike, get_activation
from rmt_deq.errors import (ConvergenceError, InvalidParameterError, NoFixedPointError,
                     PrecisionLossError, UnknownOptionError)
from rmt_deq.moments.closed_forms import homogeneous_degree
from rmt_deq.moments.gaussian import (GaussianMoments, _check_dps_for, _origin, gaussian_moments,
                       second_central_moment,
                       tau_map_terms)
from rmt_deq.moments.table import MomentTable, moment_table

__all__ = ["FixedPointSolution", "solve_four_equations", "check_variances", "ACCURACY",
           "ZERO_LEVEL", "g2_zero_level"]

#: a solution whose estimated relative error (tau, alpha1..alpha4) exceeds this is not
#: returned (PrecisionLossError); the tests check every returned one against mpmath to
#: 1e-10 -- ten times this, for the error estimates themselves
ACCURACY = 1e-11
_EPS = float(np.finfo(float).eps)


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
    _check_variance_range(sa_f, "sa", "the recurrent variance of a contracting DEQ is O(1)")
    if sb is None:
        if sa_f >= 1:
            raise InvalidParameterError(
                f"sa = {sa_f:g} >= 1 leaves no variance for the input weights (sb = 1 - sa); "
                f"use sa in (0, 1) or pass sb explicitly")
        _check_variance_range(1.0 - sa_f, "sb = 1 - sa", "use sa further from 1")
        return sa_f, 1.0 - sa_f
    try:
        sb_f = float(sb)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"sb must be a number, got {sb!r}") from None
    if not math.isfinite(sb_f) or sb_f <= 0:
        raise InvalidParameterError(
            f"sb (the variance of the input weights B) must be finite and > 0, got {sb!r}")
    _check_variance_range(sb_f, "sb", "rescale the data instead (sb tau0^2 is what enters "
                          "the fixed point)")
    return sa_f, sb_f


def _check_variance_range(value: float, name: str, hint: str) -> None:
    """sa, sb in SCALE_RANGE: outside, alpha2 ~ sa g2 alpha^2 under- or overflows float64
    (a subnormal sa = 1e-320 would return alpha2 with three significant digits)."""
    lo, hi = SCALE_RANGE
    if not lo <= value <= hi:
        raise InvalidParameterError(
            f"{name} = {value:.3g} is outside the supported range [{lo:g}, {hi:g}] (the "
            f"coefficients alpha2, alpha3 would underflow or overflow float64); {hint}")


@dataclass(frozen=True)
class FixedPointSolution:
    """Solution of the four equations, with diagnostics.

    A solution is only returned when it converged: its residual met its tolerance (else
    :class:`ConvergenceError`) and its estimated error is below :data:`ACCURACY` (else
    :class:`PrecisionLossError`).

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
        Max absolute residual of the four equations (tau equation relative to tau^2;
        for ``method="mpmath"`` evaluated at ``dps + 10`` digits).
    tolerance : float
        The tolerance the residual met.
    error_estimate : dict
        Estimated relative error of ``tau``, ``alpha1``..``alpha4`` due to the precision of
        the moments (propagated from the moment engine's error estimates; alpha2, alpha3
        relative to the larger of |alpha| and their size at :func:`g2_zero_level`); each is
        below :data:`ACCURACY`.  The iteration's tolerance ``tol`` comes on top.  Empty for
        ``method="mpmath"`` (its error is about 10^-dps).
    iterations : int
        Newton iterations on q = tau^2 (secant iterations for ``method="mpmath"``).
    residual_history : tuple of float
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
    tolerance: float = 0.0
    error_estimate: dict = field(default_factory=dict)
    iterations: int = 0
    residual_history: tuple = ()
    unique: bool = True
    q_scan: float = 0.0
    method: str = "auto"
    message: str = ""

    @property
    def converged(self) -> bool:
        """Always True: a solution is returned only when its residual met ``tolerance``
        (kept for code that checks it; failures raise instead)."""
        return True

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
        d["converged"] = True
        return d


def _moments(act: Any, tau: float, method: str, with_errors: bool = False) -> GaussianMoments:
    return gaussian_moments(act, tau, method=method, with_errors=with_errors)


def solve_four_equations(
    activation: ActivationLike,
    sa: float,
    tau0: float = 1.0,
    sb: float | None = None,
    *,
    method: str = "auto",
    tol: float = 1e-15,
    max_iter: int = 100,
    dps: int | None = None,
    check_uniqueness: bool = True,
) -> FixedPointSolution:
    """Solve the four-equation system (the fixed point of the kernel map on mixture data).

    Parameters
    ----------
    activation : name, Activation or callable
        phi (it is centred at the solved tau; pass it uncentred).
    sa : float
        Variance of the recurrent weights, > 0.
    tau0 : float
        Data scale sqrt(tr C°/p) > 0 (the typical norm of a column of X), in
        :data:`rmt_deq._validation.SCALE_RANGE` together with sqrt(sb) tau0.
    sb : float, optional
        Variance of the input weights; default 1 - sa.
    method : {"auto", "closed", "quadrature", "mpmath", "table"}
        Moment engine.  ``"auto"``: the closed form when the activation has one, else the
        cached interpolation table (:func:`rmt_deq.moments.table.moment_table`, built on the
        first call for the activation, ~0.1 s) wherever it is valid and covers tau, else
        the quadrature engine (which hands small tau of analytic activations to the
        Taylor-series engine); ``"table"`` the same for any activation; ``"quadrature"``
        the quadrature engine only.  The Newton iterations, the uniqueness scan and the
        moments at the root use the same engine (``solution.method`` names the one of the
        moments).  ``"mpmath"`` solves at ``dps`` digits (slow; a reference): a secant
        iteration on tau^2 from the float64 root, every moment at ``dps`` digits, and the
        residual checked at ``dps + 10`` digits.
    tol : float
        Relative tolerance on q = tau^2 for Newton's method; for ``method="mpmath"`` the
        tolerance of the residual evaluated at ``dps + 10`` digits (at least 10^(5-dps)).
    max_iter : int
        Iteration cap (a :class:`ConvergenceError` with the history is raised past it);
        for ``method="mpmath"`` the cap of the secant iterations.
    dps : int, optional
        Decimal digits of ``method="mpmath"`` (default 50; range
        :data:`rmt_deq._validation.DPS_RANGE`); refused with the other methods.
    check_uniqueness : bool
        Scan T(q) - q for other roots (``method="mpmath"``: the float64 scan, which does not
        depend on the precision).

    Returns
    -------
    FixedPointSolution

    Raises
    ------
    InvalidParameterError
        variances or tau0 out of range (:data:`rmt_deq._validation.SCALE_RANGE`), ``dps``
        outside its range or given with another method, ``tol`` not achievable.
    PrecisionLossError
        the estimated error of the result exceeds :data:`ACCURACY` (rounding amplified at
        an extreme scale, or a numerical derivative): rescale the data or give the
        activation an analytic derivative / an mpmath implementation.
    NoFixedPointError
        the tau equation has no root (phi grows too fast for this sa), or a contraction
        condition fails: sa g1 >= 1 (alpha1 diverges) or sa g4/2 >= 1 (unstable tau map).
    ConvergenceError
        Newton did not reach ``tol`` in ``max_iter`` iterations, or the final residual
        fails its tolerance.
    DivergentMomentError
        phi's Gaussian moments do not exist.
    """
    act = get_activation(activation)
    sa, sb = check_variances(sa, sb)
    tau0 = check_positive_finite(tau0, "tau0 (the data scale sqrt(tr C°/p))")
    check_scale(tau0, "tau0")
    check_scale(math.sqrt(sb) * tau0, "sqrt(sb)*tau0", " (the input part of tau)")
    if method not in ("auto", "closed", "quadrature", "mpmath", "table"):
        raise UnknownOptionError(
            f"unknown method {method!r}; choose auto, closed, quadrature, mpmath or table")
    if isinstance(max_iter, bool) or not (isinstance(max_iter, (int, np.integer))
                                          and max_iter > 0):
        raise InvalidParameterError(f"max_iter must be a positive integer, got {max_iter!r}")
    tol = check_tolerance(tol)
    dps = _check_dps_for(method, dps)
    if method == "mpmath":
        from rmt_deq.fixed_point.high_precision import solve_mpmath
        return solve_mpmath(act, sa, sb, tau0, dps, tol, max_iter, check_uniqueness)
    c = sb * tau0 * tau0
    q, m, it, history, table, method = _float_root(act, activation, sa, c, method, tol,
                                                   max_iter)
    tau = math.sqrt(q)
    if m is None or m.errors is None:
        m = (table.moments(tau, with_errors=True) if table is not None and table.covers(tau)
             else _moments(act, tau, method, with_errors=True))
    sol = _assemble(act.name, sa, sb, tau0, tau, m, it, history)
    sol["tolerance"] = _residual_tolerance(sol, tol)
    _check_residual(sol, history)
    d0 = table._d0 if table is not None else _origin(act)[1]      # phi'(0)
    sol["error_estimate"] = _check_accuracy(sol, d0)
    if check_uniqueness:
        _with_scan(sol, *_scan_uniqueness(act, sa, c, q, table))
    return FixedPointSolution(**sol)


def _with_scan(sol: dict, unique: bool, q_scan: float) -> None:
    """Record the result of the uniqueness scan in the solution's fields ``sol``."""
    sol["q_scan"] = q_scan
    if not unique:
        sol["unique"] = False
        sol["message"] += ("; WARNING: the tau equation has another root in "
                           f"[0, {q_scan:.3g}] (returned the stable one)")


def _float_root(act: Any, activation: Any, sa: float, c: float, method: str, tol: float,
                max_iter: int) -> tuple:
    """Newton on q = tau^2 in float64: (q, moments at q or None, iterations, history,
    the moment table used or None, the engine name)."""
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
        m = _moments(act, tau, method, with_errors=True)   # closed forms: cheap errors
        return sa * float(m.V0) + c - q, sa * float(m.g4) / 2.0 - 1.0, m

    # f(q) > 0 on (0, c]: V0 >= 0.  Newton from q = c with a lazily built bracket [lo, hi]:
    # steps that leave it bisect (hi finite) or expand geometrically (no upper end yet).
    lo, hi, q = 0.0, math.inf, c
    # no root below q_max: 16 decades above sb tau0^2 and above the bending scale of phi
    # (a tau map steeper than 1 near 0 -- sa phi'(0)^2 > 1 -- reaches its stable root only
    # where phi saturates, on the scale of phi however small tau0 is)
    q_max = 1e16 * max(c, act.scale ** 2)
    growth = 4.0
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
                q_new, growth = growth * q, growth * 4.0     # expand ever faster
            else:
                # bisect, geometrically while the bracket spans more than a factor 4
                q_new = math.sqrt(lo * hi) if hi > 4.0 * lo > 0.0 else 0.5 * (lo + hi)
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


def _residual_tolerance(sol: dict, tol: float) -> float:
    """What the residual of a solution to ``tol`` can be: Newton stops when its step is
    below tol q, i.e. |f| <= tol q |f'| (f' = sa g4/2 - 1); the alpha equations carry the
    rounding of their solved forms, amplified by 1/(1 - sa g) near the contraction limit."""
    k = max(sol["contraction"]["alpha1"], sol["contraction"]["tau_map"], 0.0)
    return max(tol, 8 * _EPS) * max(1.0, abs(1.0 - sol["contraction"]["tau_map"])) \
        + 16 * _EPS / (1.0 - k)


def _check_residual(sol: dict, history: list) -> None:
    """ConvergenceError (with the history) when the residual fails its tolerance."""
    if not sol["residual"] <= sol["tolerance"]:
        raise ConvergenceError(
            f"the four-equation residual {sol['residual']:.3g} of {sol['activation']!r} at "
            f"sa = {sol['sa']:g}, tau0 = {sol['tau0']:g} fails its tolerance "
            f"{sol['tolerance']:.3g} "
            f"(the moments at the root disagree with those the iteration used); the result "
            f"is not returned -- rescale the data or try method='mpmath'", history)


#: E[phi''] below ZERO_LEVEL x its rounding scale (|phi'(0)| + E[phi'^2]^(1/2))/tau counts as
#: zero when it is not resolved from zero (odd phi): alpha2, alpha3 are then held to an
#: absolute accuracy on the size they take at that level
ZERO_LEVEL = 1e-6


def g2_zero_level(d0: float, h0: float, tau: float) -> float:
    """The level of g2 = E[phi'']^2 at which alpha2, alpha3 count as zero (see
    :data:`ZERO_LEVEL`); ``d0`` = phi'(0), ``h0`` = E[phi'^2] at tau."""
    return (ZERO_LEVEL * (abs(d0) + math.sqrt(max(h0, 0.0))) / tau) ** 2


def _solution_errors(sol: dict, d0: float) -> dict:
    """Relative errors of tau and the alphas propagated from the moments' error estimates
    (the precision of the moment engine; the iteration's own tolerance comes on top and is
    the caller's choice).

    tau: the root moves by sa dV0 / (1 - sa g4/2); a moment
    moves with tau as the heat equation says, d/dtau E[h(tau xi)] = tau E[h''(tau xi)]:
    exactly tau e3 for e1, and taken as 4 |e2| for e2 (which scales like a power of tau, and
    vanishes identically for odd phi) and 4 (|g4| + 2 h0) for g4 (times the relative change
    of tau: a second-order term, since that change is of the order of the rounding);
    alpha1, alpha4 by sa dg / (1 - sa g); alpha2, alpha3 also through g2 = e2^2: relative
    to g2 when e2 is resolved from zero (|e2| > 2 de2), else relative to the larger of g2
    and :func:`g2_zero_level` (an absolute accuracy where E[phi''] vanishes, e.g. odd phi).
    """
    m = sol["moments"]
    E = m.errors
    sa, tau = sol["sa"], sol["tau"]
    q = tau * tau
    k1, k4 = sol["contraction"]["alpha1"], sol["contraction"]["tau_map"]
    e1, e2, g4, h0 = float(m.e1), float(m.e2), float(m.g4), float(m.h0)
    e3 = abs(float(m.e3))
    rel_tau = sa * float(E["V0"]) / (1.0 - k4) / (2.0 * q)
    shift = 4.0 * rel_tau
    de1 = float(E["e1"]) + shift * q * e3
    de2 = float(E["e2"]) + shift * abs(e2)
    dg4 = float(E["g4"]) + shift * (abs(g4) + 2.0 * h0)
    rel_a1 = sa * (2.0 * abs(e1) * de1 + de1 * de1) / (1.0 - k1)
    rel_a4 = sa * dg4 / 2.0 / (1.0 - k4)
    dg2 = 2.0 * abs(e2) * de2 + de2 * de2
    g2_low = max(abs(e2) - de2, 0.0) ** 2
    size = g2_low if abs(e2) > 2.0 * de2 else max(g2_low, g2_zero_level(d0, h0, tau))
    rel_g2 = dg2 / size if size > 0 else (0.0 if dg2 == 0 else math.inf)
    out = {"tau": rel_tau, "alpha1": rel_a1, "alpha2": rel_g2 + 2.0 * rel_a4 + rel_a1,
           "alpha3": rel_g2 + 3.0 * rel_a1, "alpha4": rel_a4}
    return {k: (v if math.isfinite(v) else math.inf) for k, v in out.items()}


#: which moment drives the error of each output (for the message)
_DRIVER = {"tau": "V0 = E[phi_c^2]", "alpha1": "E[phi']", "alpha2": "E[phi'']",
           "alpha3": "E[phi'']", "alpha4": "g4 = E[(phi_c^2)'']"}


def _check_accuracy(sol: dict, d0: float) -> dict:
    """The error estimate of the solution's fields ``sol``; PrecisionLossError past
    ACCURACY."""
    est = _solution_errors(sol, d0)
    name = sol["activation"]
    worst = max(est, key=est.get)
    if not est[worst] <= ACCURACY:
        k = max(sol["contraction"]["alpha1"], sol["contraction"]["tau_map"])
        near = (f" (amplified by 1/(1 - sa g) = {1 / (1 - k):.3g}: the fixed point is near "
                f"the contraction limit; a smaller sa helps)") if k > 0.99 else ""
        raise PrecisionLossError(
            f"{name!r} at sa = {sol['sa']:g}, tau0 = {sol['tau0']:g}: the estimated relative "
            f"error of {worst} is {est[worst]:.2g} (through {_DRIVER[worst]} at tau = "
            f"{sol['tau']:.3g}, engine {sol['method']}){near}, above the guaranteed "
            f"{ACCURACY:g}; the "
            f"moments lose their digits to rounding at this scale.  Rescale the data so that "
            f"tau0 is nearer 1 (X -> c X), or give the activation an analytic derivative= "
            f"and an mp_fn= (exact small-scale series), or use method='mpmath'")
    return est


def _assemble(name: str, sa: Any, sb: Any, tau0: Any, tau: Any, m: GaussianMoments,
              iterations: int, history: list) -> dict:
    """The fields of a :class:`FixedPointSolution` (a dict, completed by the caller) from
    the moments at the root; NoFixedPointError when a contraction condition fails."""
    g1, g2, g4 = m.g1, m.g2, m.g4
    k1, k4 = sa * g1, sa * g4 / 2
    if not k4 < 1:
        raise NoFixedPointError(
            f"the tau map is not contracting at the fixed point: sa*g4/2 = {float(k4):.6g} >= 1 "
            f"({name}, sa = {float(sa):g}); the fixed point is unstable and alpha4 diverges; "
            f"reduce sa")
    if not k1 < 1:
        raise NoFixedPointError(
            f"sa*E[phi']^2 = {float(k1):.6g} >= 1 ({name}, sa = {float(sa):g}, tau = "
            f"{float(tau):.6g}): the linear part of the Implicit-CK (alpha1 = sb/(1 - sa g1)) "
            f"diverges; reduce sa")
    alpha1 = sb / (1 - k1)
    alpha4 = sb / (1 - k4)
    alpha2 = sa * g2 * alpha4 ** 2 / (4 * (1 - k1))
    alpha3 = sa * g2 * alpha1 ** 2 / (2 * (1 - k1))
    # residuals of the four equations as written (not the solved forms)
    r_tau = abs(sa * m.V0 + sb * tau0 ** 2 - tau ** 2) / tau ** 2
    r1 = abs(sa * g1 * alpha1 + sb - alpha1) / abs(alpha1)
    r2 = abs(sa * (g1 * alpha2 + g2 * alpha4 ** 2 / 4) - alpha2) / max(abs(alpha2), 1.0)
    r3 = abs(sa * (g1 * alpha3 + g2 * alpha1 ** 2 / 2) - alpha3) / max(abs(alpha3), 1.0)
    r4 = abs(sa * g4 / 2 * alpha4 + sb - alpha4) / abs(alpha4)
    residual = float(max(r_tau, r1, r2, r3, r4))
    contraction = {"tau_map": float(k4), "alpha1": float(k1), "deq_jacobian": float(sa * m.h0)}
    return dict(
        activation=name, sa=float(sa), sb=float(sb), tau0=float(tau0), tau=float(tau),
        alpha1=float(alpha1), alpha2=float(alpha2), alpha3=float(alpha3),
        alpha4=float(alpha4), g1=float(g1), g2=float(g2), g4=float(g4),
        centring=float(m.mean), moments=m, contraction=contraction, residual=residual,
        iterations=iterations, residual_history=tuple(float(h) for h in history),
        method=m.method, message="converged")


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
