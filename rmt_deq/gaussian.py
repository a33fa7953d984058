"""Gaussian moments E[h(tau xi)], xi ~ N(0, 1), of an activation and its derivatives.

Three engines compute the same *raw moments* (listed in :mod:`rmt_deq.closed_forms`):

``"closed"``
    exact formulas (piecewise polynomials, erf);
``"quadrature"``
    a composite Gauss-Legendre rule on xi in [-12, 12] (the Gaussian tail beyond is below
    1e-31), with panel edges on a uniform grid in xi, on a geometric grid in x = tau xi
    around the activation's bending scale, and at every kink: each panel holds a smooth
    integrand, so the rule converges to rounding.  Vectorised over tau;
``"mpmath"``
    tanh-sinh quadrature in mpmath at ``dps`` digits, split at the same points;
``"table"``
    piecewise Chebyshev interpolants in s = log tau of the final moments, built once per
    activation from the quadrature engine on TABLE_TAU_RANGE and validated at off-node
    points against it (:mod:`rmt_deq.moment_table`); outside the range, or when the table could not
    be validated, the quadrature engine is used (``GaussianMoments.method`` says which).

Higher derivative moments use Stein's lemma, so no second or third derivative of a kinked
phi is ever needed: E[phi''] = E[He1 phi']/tau, E[phi'''] = E[He2 phi']/tau^2,
E[(phi^2)''] = 2 E[He1 phi phi']/tau, E[(phi'^2)''] = E[He2 phi'^2]/tau^2 (valid because
phi' is of bounded variation: its jumps are the delta terms).  The quadrature applies Stein
to phi' rather than to phi, which costs one power of 1/tau less in rounding at small tau.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any, Callable

import mpmath as mp
import numpy as np

from .activations import Activation, ActivationLike, get_activation
from .closed_forms import RAW_KEYS, piecewise_raw_moments
from .errors import DivergentMomentError, InvalidParameterError, UnknownOptionError

__all__ = ["GaussianMoments", "gaussian_moments", "raw_moments", "gaussian_expectation",
           "quadrature_rule", "second_central_moment", "METHODS"]

METHODS = ("auto", "closed", "quadrature", "mpmath", "table")

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

    @property
    def g1(self) -> Any:
        """E[phi']^2."""
        return self.e1 * self.e1

    @property
    def g2(self) -> Any:
        """E[phi'']^2."""
        return self.e2 * self.e2

    def as_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
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


def _quadrature_raw(act: Activation, tau: np.ndarray) -> dict:
    tt = np.asarray(tau)
    ends_x = tt[..., None] * np.array([-XI_MAX, XI_MAX])
    with np.errstate(all="ignore"):
        # divergence first: a phi that overflows should be reported as such, not as NaN
        phi_end, dphi_end = act.fn(ends_x), act.d1(ends_x)
    xi, w = quadrature_rule(act, tau)
    x = tt[..., None] * xi
    with np.errstate(all="ignore"):
        phi = act.fn(x)
        dphi = act.d1(x)
        phi2, dphi2 = phi * phi, dphi * dphi
        second = np.sum(w * phi2, axis=-1)
        h0 = np.sum(w * dphi2, axis=-1)
    _tail_check(XI_MAX ** 2 * phi_end ** 2, second, "E[phi^2]", act, tau)
    _tail_check(XI_MAX ** 2 * dphi_end ** 2, h0, "E[phi'^2]", act, tau)
    _guarded(phi, "phi", act, tau)
    _guarded(dphi, "phi'", act, tau)
    he2 = xi * xi - 1.0
    # Stein applied to phi' (not phi): E[He_k phi(tau xi)] = tau E[He_{k-1} phi'(tau xi)],
    # exact for phi' of bounded variation and one power of tau better conditioned.  Each
    # Hermite-weighted sum uses the control variate F - F(0) (E[He_k] = 0): it removes the
    # rounding of sum(w He_k) that would otherwise be amplified by 1/tau^k at small tau.
    # The sums are accumulated in extended precision (np.longdouble where the platform has
    # it): the residual rounding is then that of the rule's nodes, ~1e-17.
    zero = np.zeros(1)
    d0, p0 = float(act.d1(zero)[0]), float(act.fn(zero)[0])

    def hsum(terms: np.ndarray) -> np.ndarray:
        return np.sum(terms.astype(np.longdouble), axis=-1).astype(float)

    return {
        "phi": np.sum(w * phi, axis=-1),
        "He1_phi": tt * np.sum(w * dphi, axis=-1),
        "He2_phi": tt * hsum(w * xi * (dphi - d0)),
        "He3_phi": tt * hsum(w * he2 * (dphi - d0)),
        "phi2": second,
        "He2_phi2": 2.0 * tt * hsum(w * xi * (phi * dphi - p0 * d0)),
        "dphi2": h0,
        "He2_dphi2": hsum(w * he2 * (dphi2 - d0 * d0)),
    }


def second_central_moment(activation: ActivationLike, tau: Any, nodes: int = _NODES
                          ) -> np.ndarray:
    """V0(tau) = E[phi(tau xi)^2] - E[phi(tau xi)]^2 by the quadrature rule only.

    A light evaluation (no derivatives, no divergence checks) for scans over many tau,
    e.g. the uniqueness scan of the tau equation; it assumes the moments exist.  With the
    default ``nodes`` it is the same arithmetic as ``gaussian_moments(...).V0`` by
    quadrature; fewer nodes per panel make a cheaper, less accurate scan.
    """
    act = get_activation(activation)
    t = np.atleast_1d(_check_tau(tau))
    xi, w = quadrature_rule(act, t, nodes)
    with np.errstate(all="ignore"):
        phi = act.fn(t[..., None] * xi)
    mean = np.sum(w * phi, axis=-1)
    return np.sum(w * phi * phi, axis=-1) - mean * mean


def tau_map_terms(activation: ActivationLike, tau: float) -> tuple[float, float]:
    """(V0, g4) at one tau by the quadrature rule, without the other moments or checks.

    V0 is the same arithmetic as ``gaussian_moments(..., method="quadrature").V0``; g4
    (the slope of the tau map, used only as a Newton derivative) is summed in plain
    float64.  For the inner loop of the four-equation solver.
    """
    act = get_activation(activation)
    t = np.atleast_1d(float(tau))
    xi, w = quadrature_rule(act, t)
    x = t[..., None] * xi
    with np.errstate(all="ignore"):
        phi, dphi = act.fn(x), act.d1(x)
    mean = float(np.sum(w * phi))
    V0 = float(np.sum(w * (phi * phi))) - mean * mean
    zero = np.zeros(1)
    d0, p0 = float(act.d1(zero)[0]), float(act.fn(zero)[0])
    wx = w * xi
    he2_phi = t[0] * float(np.sum(wx * (dphi - d0)))
    he2_phi2 = 2.0 * t[0] * float(np.sum(wx * (phi * dphi - p0 * d0)))
    g4 = (he2_phi2 - 2.0 * mean * he2_phi) / (t[0] * t[0])
    return V0, g4


# ----------------------------------------------------------------------------------------
# mpmath path
# ----------------------------------------------------------------------------------------
def _mp_breakpoints(act: Activation, tau: Any) -> list:
    pts = {mp.mpf(0)}
    for x in list(act.kinks) + [s * act.scale for s in (-4, -1, -0.25, 0.25, 1, 4)]:
        xi = mp.mpf(x) / tau
        if abs(xi) < 40:
            pts.add(xi)
    for xi in (-8, -4, -2, 2, 4, 8):
        pts.add(mp.mpf(xi))
    return [-mp.inf] + sorted(pts) + [mp.inf]


def _mpmath_raw_one(act: Activation, tau: float, dps: int) -> dict:
    if act.mp_fn is None:
        raise UnknownOptionError(
            f"activation {act.name!r} has no mpmath implementation; pass mp_fn= to "
            f"Activation.from_callable to enable method='mpmath'")
    with mp.workdps(dps):
        t = mp.mpf(tau)
        pts = _mp_breakpoints(act, t)
        c = 1 / mp.sqrt(2 * mp.pi)
        f, d = act.mp_fn, act.mp_d1

        def E(h: Callable) -> Any:
            return mp.quad(lambda s: h(s) * mp.exp(-s * s / 2) * c, pts)

        res = {
            "phi": E(lambda s: f(t * s)),
            "He1_phi": E(lambda s: s * f(t * s)),
            "He2_phi": E(lambda s: (s * s - 1) * f(t * s)),
            "He3_phi": E(lambda s: (s ** 3 - 3 * s) * f(t * s)),
            "phi2": E(lambda s: f(t * s) ** 2),
            "He2_phi2": E(lambda s: (s * s - 1) * f(t * s) ** 2),
            "dphi2": E(lambda s: d(t * s) ** 2),
            "He2_dphi2": E(lambda s: (s * s - 1) * d(t * s) ** 2),
        }
    return res


def _mpmath_raw(act: Activation, tau: np.ndarray, dps: int, as_mpf: bool) -> dict:
    flat = np.atleast_1d(tau).reshape(-1)
    rows = [_mpmath_raw_one(act, float(t), dps) for t in flat]
    if as_mpf:
        return {k: [r[k] for r in rows] for k in RAW_KEYS}
    return {k: np.array([float(r[k]) for r in rows]).reshape(np.shape(tau) or (1,))
            for k in RAW_KEYS}


# ----------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------
def raw_moments(activation: ActivationLike, tau: Any, method: str = "auto",
                dps: int = 50) -> dict:
    """Raw moments (keys in :data:`rmt_deq.closed_forms.RAW_KEYS`) at each tau.

    Parameters
    ----------
    activation : name, Activation or callable
    tau : float or array of float, > 0
    method : {"auto", "closed", "quadrature", "mpmath"}
        ``"auto"`` uses the closed form when the activation has one, else quadrature.
        (``"table"`` is refused: tables hold assembled moments only.)
    dps : int
        Decimal digits for ``method="mpmath"``.

    Returns
    -------
    dict of str -> ndarray of shape ``np.shape(tau)`` (``(1,)`` for scalar tau)
    """
    act = get_activation(activation)
    t = _check_tau(tau)
    if method not in METHODS:
        raise UnknownOptionError(f"unknown moment method {method!r}; choose from {METHODS}")
    if method == "table":
        raise UnknownOptionError(
            "the table engine interpolates the assembled moments, not the raw moments; use "
            "gaussian_moments(..., method='table') or raw_moments(..., method='quadrature')")
    if method == "auto":
        method = "closed" if act.has_closed_form else "quadrature"
    if method == "closed":
        if act.pieces is not None:
            return piecewise_raw_moments(act.pieces, t)
        if act.closed_moments is not None:
            return act.closed_moments(t)
        raise UnknownOptionError(
            f"activation {act.name!r} has no closed-form moments; use method='quadrature'")
    if method == "quadrature":
        return _quadrature_raw(act, np.atleast_1d(t))
    return _mpmath_raw(act, t, int(dps), as_mpf=False)


def moments_from_raw(raw: dict, tau: Any, method: str) -> GaussianMoments:
    """Assemble :class:`GaussianMoments` from raw moments (works for floats and mpf)."""
    t = tau
    mean = raw["phi"]
    return GaussianMoments(
        tau=t, mean=mean, second=raw["phi2"], V0=raw["phi2"] - mean * mean,
        e1=raw["He1_phi"] / t, e2=raw["He2_phi"] / t ** 2, e3=raw["He3_phi"] / t ** 3,
        h0=raw["dphi2"], h2=raw["He2_dphi2"] / t ** 2,
        # E[He2 phi_c^2] = E[He2 phi^2] - 2 mean E[He2 phi]   (E[He2] = 0)
        g4=(raw["He2_phi2"] - 2.0 * mean * raw["He2_phi"]) / t ** 2,
        method=method)


def gaussian_moments(activation: ActivationLike, tau: Any, method: str = "auto",
                     dps: int = 50) -> GaussianMoments:
    """All Gaussian moments of phi at scale tau that the theory uses.

    Parameters
    ----------
    activation : name (``"tanh"``, ``"leaky_relu:0.1"``...), Activation or callable
    tau : float or array_like of float
        Scale(s) > 0; the result's fields have the shape of ``tau`` (floats for a scalar).
    method : {"auto", "closed", "quadrature", "mpmath", "table"}
        ``"auto"``: the closed form when the activation has one, else quadrature.
        ``"table"``: the cached interpolation table (:func:`rmt_deq.moment_table.moment_table`, built on first
        use) where it is valid and covers tau, the quadrature engine elsewhere; ``method``
        of the result is ``"table"``, ``"quadrature"`` or ``"table+quadrature"``.
    dps : int
        Working precision (decimal digits) of ``method="mpmath"``; results are returned as
        float64 unless you call :func:`raw_moments` / :func:`mp_gaussian_moments`.

    Examples
    --------
    >>> m = gaussian_moments("relu", 1.0)
    >>> round(m.e1, 12), round(m.h0, 12)
    (0.5, 0.5)
    """
    act = get_activation(activation)
    scalar = np.ndim(tau) == 0
    if method == "table":
        t = _check_tau(tau)
        from .moment_table import table_moments
        m = table_moments(act, np.atleast_1d(t))
        if scalar:
            return GaussianMoments(**{f.name: (getattr(m, f.name) if f.name == "method" else
                                               float(np.asarray(getattr(m, f.name))[0]))
                                      for f in fields(GaussianMoments)})
        return m
    raw = raw_moments(act, tau, method=method, dps=dps)
    used = method if method != "auto" else ("closed" if act.has_closed_form else "quadrature")
    t = _check_tau(tau)
    if scalar:
        raw = {k: float(np.asarray(v).reshape(-1)[0]) for k, v in raw.items()}
        return moments_from_raw(raw, float(t), used)
    return moments_from_raw(raw, t, used)


def mp_gaussian_moments(activation: ActivationLike, tau: Any, dps: int = 50) -> GaussianMoments:
    """Moments as mpmath numbers at ``dps`` digits (a single tau; independent reference)."""
    act = get_activation(activation)
    with mp.workdps(dps):
        raw = _mpmath_raw_one(act, tau, dps)
        return moments_from_raw(raw, mp.mpf(tau), "mpmath")


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
