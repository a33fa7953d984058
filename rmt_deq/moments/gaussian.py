"""Gaussian moments E[h(tau xi)], xi ~ N(0, 1), of an activation and its derivatives.

The engines compute the same *raw moments* (listed in :mod:`rmt_deq.moments.closed_forms`):

``"closed"``
    exact formulas (piecewise polynomials, erf);
``"quadrature"``
    a composite Gauss-Legendre rule on xi in [-12, 12] (the Gaussian tail beyond is below
    1e-31), with panel edges on a uniform grid in xi, on a geometric grid in x = tau xi
    around the activation's bending scale, and at every kink: each panel holds a smooth
    integrand, so the rule converges to rounding.  Vectorised over tau;
``"series"``
    below a per-activation threshold (at most tau = 0.04: where the truncation of phi's
    Taylor series at 0 is below 1e-17), the Gaussian moments of that series, for analytic
    activations with an mpmath implementation (:mod:`rmt_deq.moments.series`): the quadrature rule
    loses digits there, the series does not.  The quadrature engine hands such tau to it;
``"mpmath"``
    tanh-sinh quadrature in mpmath at ``dps`` digits, split at the same points (the working
    precision is raised by the digits small scales cancel);
``"table"``
    piecewise Chebyshev interpolants in s = log tau of the final moments, built once per
    activation from the quadrature engine on TABLE_TAU_RANGE and validated at off-node
    points against it (:mod:`rmt_deq.moments.table`); outside the range, or when the table could not
    be validated, the quadrature engine is used (``GaussianMoments.method`` says which).

Every engine integrates phi centred at phi(0) (P = phi - phi(0)), and V0 is the centred
second moment E[P^2] - E[P]^2: with phi(0) != 0 (sigmoid, softplus) the textbook
E[phi^2] - E[phi]^2 would cancel all its digits at small tau.  The float64 engines also
return an estimate of the absolute error of each moment (``GaussianMoments.errors``), from
the size of the terms they sum and of the error of phi and phi'.

Higher derivative moments use Stein's lemma, so no second or third derivative of a kinked
phi is ever needed: E[phi''] = E[He1 phi']/tau, E[phi'''] = E[He2 phi']/tau^2,
E[(phi^2)''] = 2 E[He1 phi phi']/tau, E[(phi'^2)''] = E[He2 phi'^2]/tau^2 (valid because
phi' is of bounded variation: its jumps are the delta terms).  The quadrature applies Stein
to phi' rather than to phi, which costs one power of 1/tau less in rounding at small tau.
"""
from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Any, Callable

import numpy as np

from rmt_deq.activations import Activation, ActivationLike, get_activation
from rmt_deq._validation import check_dps
from rmt_deq.moments.closed_forms import CLOSED_FORMS, RAW_KEYS, piecewise_raw_moments, shifted_pieces
from rmt_deq.errors import DivergentMomentError, InvalidParameterError, UnknownOptionError
from rmt_deq.moments.series import series_for, series_raw

__all__ = ["GaussianMoments", "gaussian_moments", "raw_moments", "gaussian_expectation",
           "quadrature_rule", "second_central_moment", "mp_gaussian_moments", "METHODS",
           "FIELDS"]

METHODS = ("auto", "closed", "quadrature", "mpmath", "table")
#: moment fields (the order of the table engine)
FIELDS = ("mean", "second", "V0", "e1", "e2", "e3", "h0", "h2", "g4")
_EPS = float(np.finfo(float).eps)
_U = 4.0 * _EPS        # error of one evaluation of phi or phi' (a few ulps) and of a node

XI_MAX = 12.0          # half-width of the xi domain (pdf(12) ~ 5e-32)
_XI_STEP = 0.5         # uniform panel width in xi
_NODES = 16            # Gauss-Legendre nodes per panel
_GL_X, _GL_W = np.polynomial.legendre.leggauss(_NODES)
_X_GRID = np.concatenate([[0.0], 2.0 ** np.arange(-5, 7), -(2.0 ** np.arange(-5, 7))])
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TAIL_TOL = 1e-15      # max admissible |integrand| at |xi| = XI_MAX, relative to the moment


@dataclass(frozen=True)
class GaussianMoments:
    """Gaussian moments of phi at scale tau (arrays of tau's shape, or floats).

    Attributes
    ----------
    tau : the scale (standard deviation of the preactivation)
    mean : E[phi(tau xi)], the centring constant of phi_c = phi - mean
    second : E[phi^2]
    V0 : E[phi_c^2] = second - mean^2
    e1, e2, e3 : E[phi'], E[phi''], E[phi''']
    h0 : E[phi'^2]
    h2 : E[(phi'^2)'']
    g4 : E[(phi_c^2)'']  (phi_c centred at this tau)
    method : the engine that produced them
    errors : dict or None
        Estimated absolute error of each field above (same shapes), from the float64
        engines; ``None`` where no estimate was made (mpmath, or not requested).
    """

    tau: Any
    mean: Any
    second: Any
    V0: Any
    e1: Any
    e2: Any
    e3: Any
    h0: Any
    h2: Any
    g4: Any
    method: str
    errors: Any = field(default=None, compare=False, repr=False)

    @property
    def g1(self) -> Any:
        """E[phi']^2."""
        return self.e1 * self.e1

    @property
    def g2(self) -> Any:
        """E[phi'']^2."""
        return self.e2 * self.e2

    def as_dict(self) -> dict:
        """The moments (and g1, g2, method) by name; the error estimates are left out."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "errors"}
        d["g1"], d["g2"] = self.g1, self.g2
        return d


def _check_tau(tau: Any) -> np.ndarray:
    t = np.asarray(tau, dtype=float)
    if not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise InvalidParameterError(
            f"tau must be finite and > 0 (the Gaussian scale), got {tau!r}")
    return t


# ----------------------------------------------------------------------------------------
# quadrature rule
# ----------------------------------------------------------------------------------------
def quadrature_rule(act: Activation, tau: np.ndarray, nodes: int = _NODES
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Nodes xi and weights w (pdf included) with sum(w * h(xi)) ~ E[h(xi)].

    Returns arrays of shape ``tau.shape + (N,)``; every tau gets the same number of
    nodes (edges outside the domain collapse to zero-width panels), so evaluation is one
    vectorised call.  ``nodes`` Gauss-Legendre nodes per panel (16: the accurate engine;
    fewer for sign scans).
    """
    gl_x, gl_w = (_GL_X, _GL_W) if nodes == _NODES else _gauss_legendre(nodes)
    tau = np.atleast_1d(tau)
    flat = tau.reshape(-1)
    base = np.arange(-XI_MAX, XI_MAX + 0.5 * _XI_STEP, _XI_STEP)
    xpts = np.concatenate([act.scale * _X_GRID, np.asarray(act.kinks, float)])
    extra = np.clip(xpts[None, :] / flat[:, None], -XI_MAX, XI_MAX)
    edges = np.sort(np.concatenate([np.broadcast_to(base, (flat.size, base.size)), extra],
                                   axis=1), axis=1)
    a, b = edges[:, :-1], edges[:, 1:]
    half, mid = 0.5 * (b - a), 0.5 * (a + b)
    xi = mid[..., None] + half[..., None] * gl_x
    w = half[..., None] * gl_w * _INV_SQRT_2PI * np.exp(-0.5 * xi * xi)
    shape = tau.shape + (-1,)
    return xi.reshape(shape), w.reshape(shape)


@lru_cache(maxsize=8)
def _gauss_legendre(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(nodes)


def _guarded(values: np.ndarray, what: str, act: Activation, tau: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(values)):
        bad = np.atleast_1d(tau)[np.any(~np.isfinite(np.atleast_2d(values)), axis=-1)]
        raise DivergentMomentError(
            f"{what} of activation {act.name!r} is not finite at tau = {bad[:3]} "
            f"(phi overflows or returns NaN on the Gaussian range |x| <= {XI_MAX:g} tau); "
            f"its Gaussian moments do not exist there: use a slower-growing activation or "
            f"a smaller scale")
    return values


def _tail_check(ends: np.ndarray, total: np.ndarray, what: str, act: Activation,
                tau: np.ndarray) -> None:
    """Raise if the integrand of ``what`` has not decayed at xi = +-XI_MAX.

    ``ends`` holds the integrand (without the Gaussian weight) at xi = -XI_MAX and +XI_MAX,
    shape ``tau.shape + (2,)``.  The neglected tail is about pdf(XI_MAX)/XI_MAX times it.
    """
    dens = np.max(np.abs(ends), axis=-1) * (_INV_SQRT_2PI * math.exp(-0.5 * XI_MAX ** 2))
    bad = ~np.isfinite(dens) | (dens > _TAIL_TOL * np.maximum(np.abs(total), 1e-300))
    bad &= ~(dens <= 1e-300)
    if np.any(bad):
        t = np.atleast_1d(tau)[np.atleast_1d(bad)]
        raise DivergentMomentError(
            f"{what} of activation {act.name!r} at tau = {t[:3]}: the Gaussian-weighted "
            f"integrand has not decayed at |xi| = {XI_MAX:g} (phi grows like exp(c x^2) or "
            f"faster), so the moment diverges or is not computable; choose an activation with "
            f"at most polynomial/sub-Gaussian growth or reduce tau")


_ORIGINS: "weakref.WeakKeyDictionary[Activation, tuple]" = weakref.WeakKeyDictionary()


def _origin(act: Activation) -> tuple[float, float]:
    """(phi(0), phi'(0)): the centring constants of the engines (cached per activation)."""
    hit = _ORIGINS.get(act)
    if hit is None:
        zero = np.zeros(1)
        with np.errstate(all="ignore"):
            hit = (float(act.fn(zero)[0]), float(act.d1(zero)[0]))
        _ORIGINS[act] = hit
    return hit


def _centred_values(act: Activation, x: np.ndarray, p0: float, d0: float
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(P, phi, D, phi') at x with P = phi - phi(0), D = phi' - phi'(0), the differences
    from the activation's cancellation-free ``fn_shift``/``d1_shift`` where it has them."""
    with np.errstate(all="ignore"):
        if act.fn_shift is not None:
            P = act.fn_shift(x)
            phi = P + p0
        else:
            phi = act.fn(x)
            P = phi - p0
        if act.d1_shift is not None:
            D = act.d1_shift(x)
            dphi = D + d0
        else:
            dphi = act.d1(x)
            D = dphi - d0
    return P, phi, D, dphi


def _hsum(terms: np.ndarray) -> np.ndarray:
    """Sum over the last axis in extended precision (np.longdouble where it exists)."""
    return np.sum(terms.astype(np.longdouble), axis=-1).astype(float)


def _v0_sums(w: np.ndarray, P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(E[P], E[P^2]): the one arithmetic of V0 = E[P^2] - E[P]^2 shared by every
    quadrature path (and by :func:`moments_from_raw`)."""
    return np.sum(w * P, axis=-1), np.sum(w * (P * P), axis=-1)


def _quadrature_raw(act: Activation, tau: np.ndarray, with_error: bool = False) -> dict:
    """Centred raw moments (see :func:`moments_from_raw`) by the composite rule.

    With ``with_error`` the result also holds ``"err"``: for each raw key an estimate of
    its absolute error, the sum over the nodes of |weight| times the error of the
    integrand, itself from the error of phi (a few ulps, plus phi(0)'s when P = phi - phi(0)
    is formed by subtraction) and of phi' (``act.d1_error`` for a numerical derivative).
    """
    tt = np.asarray(tau)
    p0, d0 = _origin(act)
    ends_x = tt[..., None] * np.array([-XI_MAX, XI_MAX])
    with np.errstate(all="ignore"):
        # divergence first: a phi that overflows should be reported as such, not as NaN
        P_end, _, _, dphi_end = _centred_values(act, ends_x, p0, d0)
    xi, w = quadrature_rule(act, tau)
    x = tt[..., None] * xi
    P, phi, D, dphi = _centred_values(act, x, p0, d0)
    with np.errstate(all="ignore"):
        mP, P2 = _v0_sums(w, P)
        h0 = np.sum(w * (dphi * dphi), axis=-1)
    _tail_check(XI_MAX ** 2 * P_end ** 2, P2, "E[phi^2]", act, tau)
    _tail_check(XI_MAX ** 2 * dphi_end ** 2, h0, "E[phi'^2]", act, tau)
    _guarded(phi, "phi", act, tau)
    _guarded(dphi, "phi'", act, tau)
    he2 = xi * xi - 1.0
    # Stein applied to phi' (not phi): E[He_k phi(tau xi)] = tau E[He_{k-1} phi'(tau xi)],
    # exact for phi' of bounded variation and one power of tau better conditioned.  The
    # Hermite-weighted sums integrate D = phi' - phi'(0) (E[He_k] = 0): that removes the
    # rounding of sum(w He_k) that would otherwise be amplified by 1/tau^k at small tau.
    # They are accumulated in extended precision (np.longdouble where the platform has
    # it): the residual rounding is then that of the rule's nodes, ~1e-17.
    with np.errstate(all="ignore"):
        raw = {
            "p0": p0,
            "phi": mP,
            "He1_phi": tt * np.sum(w * dphi, axis=-1),
            "He2_phi": tt * _hsum(w * xi * D),
            "He3_phi": tt * _hsum(w * he2 * D),
            "phi2": P2,
            # E[He2 P^2] = tau E[xi (P^2)'] = 2 tau E[xi P phi']
            "He2_phi2": 2.0 * tt * _hsum(w * xi * (P * dphi)),
            "dphi2": h0,
            # E[He2 phi'^2] = E[He2 (phi'^2 - phi'(0)^2)] = E[He2 D (phi' + phi'(0))]
            "He2_dphi2": _hsum(w * he2 * (D * (dphi + d0))),
        }
    if with_error:
        raw["err"] = _quadrature_errors(act, tt, x, xi, w, P, phi, D, dphi, p0, d0)
    return raw


def _quadrature_errors(act: Activation, tt: np.ndarray, x: np.ndarray, xi: np.ndarray,
                       w: np.ndarray, P: np.ndarray, phi: np.ndarray, D: np.ndarray,
                       dphi: np.ndarray, p0: float, d0: float) -> dict:
    """Absolute error estimates of the raw sums of :func:`_quadrature_raw`."""
    aP, adphi, aD = np.abs(P), np.abs(dphi), np.abs(D)
    with np.errstate(all="ignore"):
        node = _U * np.abs(x * dphi)                  # rounding of the node x = tau xi
        dP = _U * aP + node if act.fn_shift is not None else \
            _U * (np.abs(phi) + abs(p0)) + node       # phi(x) - phi(0): both rounded
        dd = act.d1_error(x) if act.d1_error is not None else _U * adphi
        dD = _U * aD if act.d1_shift is not None else dd + _U * abs(d0)
        axi, ahe2 = np.abs(xi), np.abs(xi * xi - 1.0)

        def tot(terms: np.ndarray) -> np.ndarray:
            return np.sum(w * terms, axis=-1)

        err = {
            "phi": tot(dP + _EPS * aP),
            "He1_phi": tt * tot(dd + _EPS * adphi),
            "He2_phi": tt * tot(axi * (dD + _EPS * aD)),
            "He3_phi": tt * tot(ahe2 * (dD + _EPS * aD)),
            "phi2": tot(2.0 * aP * dP + _EPS * aP * aP),
            "He2_phi2": 2.0 * tt * tot(axi * (aP * dd + adphi * dP + _EPS * aP * adphi)),
            "dphi2": tot(2.0 * adphi * dd + _EPS * adphi * adphi),
            "He2_dphi2": tot(ahe2 * (np.abs(dphi + d0) * (dD + _EPS * aD) + aD * dd)),
        }
    return {k: np.where(np.isfinite(v), v, np.inf) for k, v in err.items()}


def second_central_moment(activation: ActivationLike, tau: Any, nodes: int = _NODES
                          ) -> np.ndarray:
    """V0(tau) = E[phi(tau xi)^2] - E[phi(tau xi)]^2 by the quadrature rule only.

    A light evaluation (no derivatives, no divergence checks) for scans over many tau,
    e.g. the uniqueness scan of the tau equation; it assumes the moments exist.  phi is
    centred at phi(0) first (see the module docstring).  With the default ``nodes`` it is
    the same arithmetic as ``gaussian_moments(...).V0`` by quadrature; fewer nodes per
    panel make a cheaper, less accurate scan.
    """
    act = get_activation(activation)
    t = np.atleast_1d(_check_tau(tau))
    xi, w = quadrature_rule(act, t, nodes)
    p0, d0 = _origin(act)
    x = t[..., None] * xi
    with np.errstate(all="ignore"):
        P = act.fn_shift(x) if act.fn_shift is not None else act.fn(x) - p0
        mP, P2 = _v0_sums(w, P)
        return P2 - mP * mP


def tau_map_terms(activation: ActivationLike, tau: float) -> tuple[float, float]:
    """(V0, g4) at one tau, without the other moments or checks.

    By the series engine where it serves tau, else by the quadrature rule with V0 the same
    arithmetic as ``gaussian_moments(..., method="quadrature").V0``; g4 (the slope of the
    tau map, used only as a Newton derivative) is summed in plain float64.  For the inner
    loop of the four-equation solver.
    """
    act = get_activation(activation)
    t = np.atleast_1d(float(tau))
    ts = series_for(act)
    if ts is not None and t[0] <= ts.tau_max:
        m = moments_from_raw(series_raw(ts, t), t, "series")
        return float(m.V0[0]), float(m.g4[0])
    xi, w = quadrature_rule(act, t)
    p0, d0 = _origin(act)
    P, phi, D, dphi = _centred_values(act, t[..., None] * xi, p0, d0)
    with np.errstate(all="ignore"):
        mP, P2 = _v0_sums(w, P)
        V0 = P2 - mP * mP
        wx = w * xi
        he2_phi = t[0] * float(np.sum(wx * D))
        he2_phi2 = 2.0 * t[0] * float(np.sum(wx * (P * dphi)))
    g4 = (he2_phi2 - 2.0 * float(mP[0]) * he2_phi) / (t[0] * t[0])
    return float(V0[0]), g4


def _numerical_raw(act: Activation, tau: np.ndarray, with_error: bool) -> tuple[dict, str]:
    """The quadrature engine, handing the tau below the series threshold to the series.

    Returns the centred raw moments and the engine label: ``"quadrature"``, ``"series"``,
    or ``"quadrature+series"`` when both served part of the array.
    """
    ts = series_for(act)
    small = np.zeros(tau.shape, bool) if ts is None else tau <= ts.tau_max
    if not small.any():
        return _quadrature_raw(act, tau, with_error), "quadrature"
    if small.all():
        return series_raw(ts, tau, with_error), "series"
    a = _quadrature_raw(act, tau[~small], with_error)
    b = series_raw(ts, tau[small], with_error)
    out = {"p0": a["p0"]}
    for key in RAW_KEYS:
        col = np.empty(tau.shape)
        col[~small], col[small] = a[key], b[key]
        out[key] = col
    if with_error:
        out["err"] = {}
        for key in RAW_KEYS:
            col = np.empty(tau.shape)
            col[~small], col[small] = a["err"][key], b["err"][key]
            out["err"][key] = col
    return out, "quadrature+series"


def _closed_raw(act: Activation, tau: np.ndarray, with_error: bool) -> dict:
    """Centred raw moments from the exact closed forms."""
    if act.pieces is not None:
        p0 = _origin(act)[0]
        raw = piecewise_raw_moments(shifted_pieces(act.pieces, p0), tau, with_error)
        return {**raw, "p0": p0}
    if act.closed_form is not None:
        raw = dict(CLOSED_FORMS[act.closed_form](tau))   # phi(0) = 0 for the registered (erf)
        if with_error:
            # each closed-form moment is a product of a few correctly rounded factors
            raw["err"] = {k: 4.0 * _EPS * np.abs(raw[k]) for k in RAW_KEYS}
        return {**raw, "p0": 0.0}
    raise UnknownOptionError(
        f"activation {act.name!r} has no closed-form moments; use method='quadrature'")


def _check_dps_for(method: str, dps: Any) -> int | None:
    """dps is for method="mpmath" only (validated there; refused elsewhere)."""
    if method == "mpmath":
        return check_dps(50 if dps is None else dps)
    if dps is not None:
        raise InvalidParameterError(
            f"dps = {dps!r} sets the digits of method='mpmath' only and has no effect with "
            f"method={method!r}; drop it or use method='mpmath'")
    return None


# ----------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------
def _centred_raw(act: Activation, t: np.ndarray, method: str, dps: int | None,
                 with_error: bool = False) -> tuple[dict, str]:
    """Centred raw moments by engine ``method`` (not "table"), and the engine used."""
    if method not in METHODS:
        raise UnknownOptionError(f"unknown moment method {method!r}; choose from {METHODS}")
    if method == "auto":
        method = "closed" if act.has_closed_form else "quadrature"
    if method == "closed":
        return _closed_raw(act, np.atleast_1d(t), with_error), "closed"
    if method == "quadrature":
        return _numerical_raw(act, np.atleast_1d(t), with_error)
    from rmt_deq.fixed_point.high_precision import mpmath_raw
    return mpmath_raw(act, t, int(dps)), "mpmath"


def raw_moments(activation: ActivationLike, tau: Any, method: str = "auto",
                dps: int | None = None) -> dict:
    """Raw moments (keys in :data:`rmt_deq.moments.closed_forms.RAW_KEYS`) at each tau.

    Parameters
    ----------
    activation : name, Activation or callable
    tau : float or array of float, > 0
    method : {"auto", "closed", "quadrature", "mpmath"}
        ``"auto"`` uses the closed form when the activation has one, else quadrature
        (with the series engine below its threshold, see the module docstring).
        (``"table"`` is refused: tables hold assembled moments only.)
    dps : int, optional
        Decimal digits for ``method="mpmath"`` (default 50, range
        :data:`rmt_deq._validation.DPS_RANGE`); refused with other methods.

    Returns
    -------
    dict of str -> ndarray of shape ``np.shape(tau)`` (``(1,)`` for scalar tau)
        The moments of phi itself (the engines integrate phi - phi(0) and add phi(0) back).
    """
    act = get_activation(activation)
    t = _check_tau(tau)
    if method == "table":
        raise UnknownOptionError(
            "the table engine interpolates the assembled moments, not the raw moments; use "
            "gaussian_moments(..., method='table') or raw_moments(..., method='quadrature')")
    dps = _check_dps_for(method, dps)
    raw, _ = _centred_raw(act, t, method, dps)
    p0, mP = raw["p0"], raw["phi"]
    out = {k: raw[k] for k in RAW_KEYS}
    # back from P = phi - p0 to phi (E[He_k] = 0 leaves the Hermite moments of P unchanged)
    out["phi"] = p0 + mP
    out["phi2"] = raw["phi2"] + 2.0 * p0 * mP + p0 * p0
    out["He2_phi2"] = raw["He2_phi2"] + 2.0 * p0 * raw["He2_phi"]
    return out


def moments_from_raw(raw: dict, tau: Any, method: str) -> GaussianMoments:
    """Assemble :class:`GaussianMoments` from centred raw moments (floats or mpf).

    ``raw`` holds the raw moments of P = phi - p0 with ``p0 = raw["p0"]`` (0 when absent:
    the raw moments of phi itself), and optionally ``raw["err"]``, their absolute error
    estimates, which are propagated to the fields (``GaussianMoments.errors``).
    """
    t = tau
    p0 = raw.get("p0", 0.0)
    mP = raw["phi"]
    mean = p0 + mP
    V0 = raw["phi2"] - mP * mP
    g4 = (raw["He2_phi2"] - 2.0 * mP * raw["He2_phi"]) / t ** 2
    errors = None
    if "err" in raw:
        e = raw["err"]
        amP, ahe2 = abs(mP), abs(raw["He2_phi"])
        e_mean = e["phi"] + _EPS * (abs(p0) + abs(mean))
        e_V0 = e["phi2"] + 2.0 * amP * e["phi"] + _EPS * (abs(raw["phi2"]) + mP * mP)
        errors = {
            "mean": e_mean, "V0": e_V0,
            "second": e_V0 + 2.0 * abs(mean) * e_mean,
            "e1": e["He1_phi"] / t, "e2": e["He2_phi"] / t ** 2, "e3": e["He3_phi"] / t ** 3,
            "h0": e["dphi2"], "h2": e["He2_dphi2"] / t ** 2,
            "g4": (e["He2_phi2"] + 2.0 * (amP * e["He2_phi"] + ahe2 * e["phi"])
                   + _EPS * (abs(raw["He2_phi2"]) + 2.0 * amP * ahe2)) / t ** 2,
        }
    return GaussianMoments(
        tau=t, mean=mean, second=V0 + mean * mean, V0=V0,
        e1=raw["He1_phi"] / t, e2=raw["He2_phi"] / t ** 2, e3=raw["He3_phi"] / t ** 3,
        h0=raw["dphi2"], h2=raw["He2_dphi2"] / t ** 2, g4=g4, method=method, errors=errors)


def _one(v: Any) -> float:
    """The single value of a scalar or one-element array, as a float."""
    return float(v[0]) if type(v) is np.ndarray and v.ndim == 1 else \
        float(np.asarray(v).reshape(-1)[0])


def _scalar_moments(m: GaussianMoments) -> GaussianMoments:
    """The fields of a one-element GaussianMoments as floats."""
    errors = None if m.errors is None else {k: _one(v) for k, v in m.errors.items()}
    return GaussianMoments(
        tau=_one(m.tau), mean=_one(m.mean), second=_one(m.second), V0=_one(m.V0),
        e1=_one(m.e1), e2=_one(m.e2), e3=_one(m.e3), h0=_one(m.h0), h2=_one(m.h2),
        g4=_one(m.g4), method=m.method, errors=errors)


def gaussian_moments(activation: ActivationLike, tau: Any, method: str = "auto",
                     dps: int | None = None, *, with_errors: bool = False) -> GaussianMoments:
    """All Gaussian moments of phi at scale tau that the theory uses.

    Parameters
    ----------
    activation : name (``"tanh"``, ``"leaky_relu:0.1"``...), Activation or callable
    tau : float or array_like of float
        Scale(s) > 0; the result's fields have the shape of ``tau`` (floats for a scalar).
    method : {"auto", "closed", "quadrature", "mpmath", "table"}
        ``"auto"``: the closed form when the activation has one, else quadrature (which
        hands small tau of analytic activations to the series engine; ``method`` of the
        result says ``"series"`` or ``"quadrature+series"`` then).
        ``"table"``: the cached interpolation table (:func:`rmt_deq.moments.table.moment_table`, built on first
        use) where it is valid and covers tau, the quadrature engine elsewhere; ``method``
        of the result is ``"table"``, ``"quadrature"`` or ``"table+quadrature"``.
    dps : int, optional
        Working precision (decimal digits, default 50) of ``method="mpmath"``; refused with
        the other methods.  Results are float64 unless you call
        :func:`mp_gaussian_moments`.
    with_errors : bool
        Also estimate the absolute error of every field (``result.errors``; float64
        engines only).

    Examples
    --------
    >>> m = gaussian_moments("relu", 1.0)
    >>> round(m.e1, 12), round(m.h0, 12)
    (0.5, 0.5)
    """
    act = get_activation(activation)
    scalar = np.ndim(tau) == 0
    t = _check_tau(tau)
    dps = _check_dps_for(method, dps)
    if with_errors and method == "mpmath":
        raise InvalidParameterError(
            "with_errors applies to the float64 engines; method='mpmath' is the reference "
            "(its error is about 10^-dps)")
    if method == "table":
        from rmt_deq.moments.table import table_moments
        m = table_moments(act, np.atleast_1d(t), with_errors)
        return _scalar_moments(m) if scalar else m
    raw, used = _centred_raw(act, t, method, dps, with_errors)
    if scalar:
        # float arithmetic for one tau (the solver's inner loop)
        one = {k: _one(raw[k]) for k in RAW_KEYS}
        one["p0"] = float(raw["p0"])
        if with_errors:
            one["err"] = {k: _one(v) for k, v in raw["err"].items()}
        return moments_from_raw(one, float(t), used)
    return _reshape_moments(moments_from_raw(raw, np.atleast_1d(t), used), t.shape)


def _reshape_moments(m: GaussianMoments, shape: tuple) -> GaussianMoments:
    r = lambda v: np.asarray(v).reshape(shape)  # noqa: E731
    errors = None if m.errors is None else {k: r(v) for k, v in m.errors.items()}
    return GaussianMoments(tau=r(m.tau), **{f: r(getattr(m, f)) for f in FIELDS},
                           method=m.method, errors=errors)


def gaussian_expectation(h: Callable[[np.ndarray], np.ndarray], tau: Any,
                         kinks: tuple[float, ...] = (), scale: float = 1.0) -> np.ndarray:
    """E[h(tau xi)] for any vectorised h, with the package's kink-split quadrature."""
    act = Activation(name=getattr(h, "__name__", "h"), fn=h, d1=h, kinks=tuple(kinks),
                     scale=float(scale))
    t = _check_tau(tau)
    xi, w = quadrature_rule(act, np.atleast_1d(t))
    with np.errstate(all="ignore"):
        vals = _guarded(np.asarray(h(np.atleast_1d(t)[..., None] * xi), float), "h", act, t)
    res = np.sum(w * vals, axis=-1)
    with np.errstate(all="ignore"):
        ends = np.asarray(h(np.atleast_1d(t)[..., None] * np.array([-XI_MAX, XI_MAX])), float)
    _tail_check(ends, res, "E[h]", act, t)
    return res.reshape(np.shape(t)) if np.ndim(t) else float(res[0])


from rmt_deq.fixed_point.high_precision import mp_gaussian_moments  # noqa: E402  (re-exported: the reference)
