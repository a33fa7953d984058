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
    points against it (:func:`moment_table`); outside the range, or when the table could not
    be validated, the quadrature engine is used (``GaussianMoments.method`` says which).

Higher derivative moments use Stein's lemma, so no second or third derivative of a kinked
phi is ever needed: E[phi''] = E[He1 phi']/tau, E[phi'''] = E[He2 phi']/tau^2,
E[(phi^2)''] = 2 E[He1 phi phi']/tau, E[(phi'^2)''] = E[He2 phi'^2]/tau^2 (valid because
phi' is of bounded variation: its jumps are the delta terms).  The quadrature applies Stein
to phi' rather than to phi, which costs one power of 1/tau less in rounding at small tau.
"""
from __future__ import annotations

import math
import time
import weakref
from dataclasses import dataclass, fields
from bisect import bisect_left, bisect_right
from functools import lru_cache
from typing import Any, Callable

import mpmath as mp
import numpy as np

from .activations import Activation, ActivationLike, get_activation
from .closed_forms import RAW_KEYS, piecewise_raw_moments
from .errors import DivergentMomentError, InvalidParameterError, UnknownOptionError

__all__ = ["GaussianMoments", "gaussian_moments", "raw_moments", "gaussian_expectation",
           "quadrature_rule", "second_central_moment", "METHODS", "MomentTable",
           "moment_table", "TABLE_TAU_RANGE"]

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
# interpolation table (engine "table")
# ----------------------------------------------------------------------------------------
TABLE_TAU_RANGE = (5e-2, 1e3)   # tau range covered by a moment table
_TABLE_FIELDS = ("mean", "second", "V0", "e1", "e2", "e3", "h0", "h2", "g4")
_TABLE_PANELS = 21              # panels of equal width in s = log tau (0.47 each)
_TABLE_DEGREES = (16, 24, 32)   # Chebyshev points per panel tried, in order
_TABLE_REL_TOL = 2e-15          # validation: relative part of the admissible error
# validation points in y: cos(k pi / 8), k = 0, 1, 3, 4, 5, 7, 8 -- extrema of T_n for every n
# in _TABLE_DEGREES (midway between interpolation nodes, and the panel ends), where the
# interpolation error peaks
_TABLE_PROBES = (1.0, 0.9238795325112867, 0.3826834323650898, 0.0, -0.3826834323650898,
                 -0.9238795325112867, -1.0)
_EPS = float(np.finfo(float).eps)
# pi to the precision of np.longdouble (np.longdouble(math.pi) would carry float64's 1e-16
# error into every node angle, and j times it into cos(j theta))
_PI_LD = np.longdouble("3.14159265358979323846264338327950288")


class MomentTable:
    """Piecewise Chebyshev interpolants of the Gaussian moments of one activation.

    The range :data:`TABLE_TAU_RANGE` is cut into panels of equal width in s = log tau; on
    each, every field of :class:`GaussianMoments` (mean, second, V0, e1, e2, e3, h0, h2, g4)
    is interpolated at Chebyshev points of the first kind from the quadrature engine.  The
    local coordinate is y = 2 log(tau / a_i) / log(a_{i+1} / a_i) - 1 on panel [a_i, a_{i+1}]
    (no cancellation: its rounding is that of tau itself), and the interpolant is evaluated
    as sum_j c_j cos(j arccos y).  The moments are analytic in tau > 0 (a Gaussian average
    of phi, kinked or not), so the coefficients decay geometrically.

    Build with :func:`moment_table` (cached).  Use :meth:`covers`, :meth:`values`,
    :meth:`v0` and :meth:`moments`; ``scan_tau``, ``scan_q``, ``scan_v0`` hold V0 (from the
    table) on the lattice tau_lo 10^(k/10) that the solver's uniqueness scan samples.

    Attributes
    ----------
    name : str
        Name of the activation the table was built for.
    valid : bool
        Whether validation passed; an invalid table is never used for evaluation.
    tau_lo, tau_hi : float
        The range the table covers: TABLE_TAU_RANGE, except that tau_lo is raised past
        low-end panels that did not validate (``reason`` says so).
    degree : int
        Chebyshev points per panel (the first of ``_TABLE_DEGREES`` that validated).
    max_error : float
        Largest validation error, relative to the admissible error (<= 1 when valid).
    build_seconds : float
        Wall time of the build (quadrature at all nodes and probes, and the validation).
    reason : str
        Why the table is invalid or its range shortened ("" otherwise).
    """

    def __init__(self, act: Activation) -> None:
        t_start = time.perf_counter()
        self.name = act.name
        self.tau_lo, self.tau_hi = TABLE_TAU_RANGE
        s_edges = np.linspace(math.log(self.tau_lo), math.log(self.tau_hi), _TABLE_PANELS + 1)
        edges = np.exp(s_edges)
        edges[0], edges[-1] = self.tau_lo, self.tau_hi
        self._edges = edges
        self._edges_list = [float(e) for e in edges]
        widths = np.log(edges[1:] / edges[:-1])            # exact panel widths in s
        self._tow = 2.0 / widths
        self._two_over_width = [float(v) for v in self._tow]
        self.valid, self.degree, self.max_error, self.reason = False, 0, math.inf, ""
        self.scan_tau = self.scan_q = self.scan_v0 = np.zeros(0)
        self._scan_tau_list: list = []
        self._coef = np.zeros((_TABLE_PANELS, len(_TABLE_FIELDS), 1))
        self._coef_v0 = self._coef[:, 2, :]
        self._k = np.zeros(1)
        try:
            zero = np.zeros(1)
            with np.errstate(all="ignore"):
                p0, d0 = float(act.fn(zero)[0]), float(act.d1(zero)[0])
            if not (math.isfinite(p0) and math.isfinite(d0)):
                raise DivergentMomentError("phi or phi' is not finite at 0")
            probes = np.array(_TABLE_PROBES)
            tau_probe = edges[:-1, None] * np.exp(0.5 * (probes[None, :] + 1.0) * widths[:, None])
            ref = self._direct(act, tau_probe)
            floor = self._noise_floor(ref, tau_probe, p0, d0, kinked=bool(act.kinks))
            best = None
            for n in _TABLE_DEGREES:
                y = np.cos(math.pi * (np.arange(n) + 0.5) / n)
                tau_nodes = edges[:-1, None] * np.exp(0.5 * (y[None, :] + 1.0) * widths[:, None])
                vals = self._direct(act, tau_nodes)                   # (Q, P, n)
                coef = _chebyshev_coefficients(vals)
                self._coef, self._k = coef, np.arange(n, dtype=float)
                got = self._evaluate(tau_probe.reshape(-1)).reshape(ref.shape)
                err = np.abs(got - ref) / (_TABLE_REL_TOL * np.abs(ref) + floor)
                err[~np.isfinite(err)] = math.inf
                panel_err = np.max(err, axis=(0, 2))                   # (P,)
                # the table keeps the panels from the first one above which all validate
                bad = np.nonzero(panel_err > 1.0)[0]
                first = int(bad[-1]) + 1 if bad.size else 0
                if best is None or first < best[0]:
                    best = (first, n, coef, float(np.max(panel_err[first:], initial=0.0)))
                if first == 0:
                    break
            first, n, coef, worst = best
            self._coef, self._k = coef, np.arange(n, dtype=float)
            self._coef_v0 = np.ascontiguousarray(coef[:, 2, :])
            self.degree, self.max_error = n, worst
            if first >= _TABLE_PANELS:
                self.reason = (f"interpolation error above the admissible error on every "
                               f"panel up to {n} points per panel")
            else:
                self.valid = True
                self.tau_lo = float(edges[first])
                if first > 0:
                    self.reason = (f"panels below tau = {self.tau_lo:.3g} did not validate "
                                   f"(range starts there)")
                # V0 on a fixed geometric lattice (10 points per decade of tau, i.e. 5 per
                # decade of q = tau^2) for the solver's uniqueness scan
                k = np.arange(int(math.floor(10.0 * math.log10(TABLE_TAU_RANGE[1]
                                                               / TABLE_TAU_RANGE[0])
                                             + 1e-9)) + 1)
                lat = TABLE_TAU_RANGE[0] * 10.0 ** (k / 10.0)
                self.scan_tau = lat[(lat >= self.tau_lo) & (lat <= self.tau_hi)]
                self.scan_q = self.scan_tau ** 2
                self.scan_v0 = self.v0(self.scan_tau)
                self._scan_tau_list = self.scan_tau.tolist()
        except (DivergentMomentError, FloatingPointError, ValueError) as exc:
            self.valid, self.reason = False, f"quadrature failed on the table range: {exc}"
        self.build_seconds = time.perf_counter() - t_start

    # -- construction helpers --------------------------------------------------------------
    @staticmethod
    def _direct(act: Activation, tau: np.ndarray) -> np.ndarray:
        """The quadrature engine's fields at tau, stacked: shape (Q,) + tau.shape."""
        flat = tau.reshape(-1)
        m = moments_from_raw(_quadrature_raw(act, flat), flat, "quadrature")
        out = np.stack([np.asarray(getattr(m, f), dtype=float) for f in _TABLE_FIELDS])
        if not np.all(np.isfinite(out)):
            raise DivergentMomentError("non-finite moments on the table range")
        return out.reshape((len(_TABLE_FIELDS),) + tau.shape)

    @staticmethod
    def _noise_floor(ref: np.ndarray, tau: np.ndarray, p0: float, d0: float,
                     kinked: bool = False) -> np.ndarray:
        """Absolute rounding level of the quadrature engine for each field at tau.

        The engine's sums carry rounding of about eps times the size of their terms; the
        Hermite-weighted ones are divided by tau or tau^2 (Stein), so e2, g4 (1/tau) and e3,
        h2 (1/tau^2) have a floor growing at small tau.  The table is required to reproduce
        the engine to 2e-15 relative or to this floor, whichever is larger.
        """
        mean, second, h0 = np.abs(ref[0]), np.abs(ref[1]), np.abs(ref[6])
        if kinked:
            # phi' jumps at a kink: the engine's small-tau Hermite sums are noisier than the
            # interpolation can be trusted to reproduce, so no 1/tau growth is granted
            # (panels that fail then drop out at the lower end of the range)
            tau = np.maximum(tau, 1.0)
        rphi, rdphi = np.sqrt(second), np.sqrt(h0) + abs(d0)
        fl = np.empty_like(ref)
        fl[0] = 2.0 * (rphi + abs(p0))    # mean: ~1e3 terms of size |phi| (0 for odd phi)
        fl[1] = second                                             # second
        fl[2] = 8.0 * second              # V0 = second - mean^2: two rounded sums cancel
        fl[3] = rdphi                                              # e1
        fl[4] = rdphi / tau                                        # e2
        fl[5] = rdphi / tau ** 2                                   # e3
        fl[6] = h0                                                 # h0
        fl[7] = rdphi ** 2 / tau ** 2                              # h2
        fl[8] = 2.0 * (rphi + mean + abs(p0)) * rdphi / tau        # g4
        return _EPS * fl

    # -- evaluation ------------------------------------------------------------------------
    def covers(self, tau: float) -> bool:
        """Whether the table is valid and tau lies in its range."""
        return self.valid and self.tau_lo <= tau <= self.tau_hi

    def _locate(self, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        idx = np.searchsorted(self._edges, tau, side="right") - 1
        np.clip(idx, 0, _TABLE_PANELS - 1, out=idx)
        y = np.log(tau / self._edges[idx])
        y *= self._tow[idx]
        y -= 1.0
        np.minimum(y, 1.0, out=y)               # rounding may leave |y| a few ulp above 1
        return idx, np.maximum(y, -1.0, out=y)

    def _evaluate(self, tau: np.ndarray) -> np.ndarray:
        """All fields at a 1-d array of tau in range: shape (Q, N)."""
        idx, y = self._locate(tau)
        cheb = np.cos(np.arccos(y)[:, None] * self._k[None, :])         # (N, n)
        return np.einsum("nqj,nj->qn", self._coef[idx], cheb)

    def values(self, tau: float) -> np.ndarray:
        """The fields (order of ``_TABLE_FIELDS``) at one tau in range, shape (Q,)."""
        i = bisect_right(self._edges_list, tau) - 1
        i = 0 if i < 0 else (_TABLE_PANELS - 1 if i >= _TABLE_PANELS else i)
        y = math.log(tau / self._edges_list[i]) * self._two_over_width[i] - 1.0
        y = -1.0 if y < -1.0 else (1.0 if y > 1.0 else y)
        return self._coef[i] @ np.cos(self._k * math.acos(y))

    def v0(self, tau: np.ndarray) -> np.ndarray:
        """V0 = E[phi_c^2] at a 1-d array of tau in range."""
        idx, y = self._locate(tau)
        cheb = np.cos(np.multiply.outer(np.arccos(y), self._k))
        cheb *= self._coef_v0[idx]
        return cheb.sum(axis=1)

    def scan_slice(self, tau_min: float, tau_max: float) -> tuple[int, int]:
        """Indices [i, j) of the scan lattice points in [tau_min, tau_max]."""
        return (bisect_left(self._scan_tau_list, tau_min),
                bisect_right(self._scan_tau_list, tau_max))

    def moments(self, tau: Any) -> GaussianMoments:
        """:class:`GaussianMoments` (method ``"table"``) at tau (scalar or array) in range."""
        if np.ndim(tau) == 0:
            v = self.values(float(tau)).tolist()
            return GaussianMoments(tau=float(tau), **dict(zip(_TABLE_FIELDS, v)),
                                   method="table")
        t = np.asarray(tau, dtype=float)
        v = self._evaluate(t.reshape(-1))
        return GaussianMoments(tau=t, **{f: row.reshape(t.shape)
                                         for f, row in zip(_TABLE_FIELDS, v)}, method="table")

def _chebyshev_coefficients(vals: np.ndarray) -> np.ndarray:
    """Chebyshev coefficients from values at the n first-kind points, shape (P, Q, n).

    ``vals`` has shape (Q, P, n) at the nodes y_k = cos(pi (k + 1/2) / n).  The
    discrete cosine sums are accumulated in extended precision (np.longdouble where the
    platform has it): in float64 each coefficient would carry ~sqrt(n) eps |f| of rounding,
    which the evaluation sums again over n terms (~n eps |f| in all, 5e-15 at n = 32).
    """
    n = vals.shape[-1]
    j = np.arange(n, dtype=np.longdouble)
    theta = _PI_LD * (j + np.longdouble(0.5)) / np.longdouble(n)
    cos_jk = np.cos(np.outer(j, theta))
    coef = np.einsum("qpk,jk->pqj", vals.astype(np.longdouble), cos_jk) * (
        np.longdouble(2) / np.longdouble(n))
    coef[..., 0] *= np.longdouble(0.5)
    return coef.astype(float)


# tables by Activation object (weak: freed with the object), and by registry spec
_TABLES: "weakref.WeakKeyDictionary[Activation, MomentTable]" = weakref.WeakKeyDictionary()
_SPEC_TABLES: dict = {}
_STR_TABLES: dict = {}     # spec string -> (registry name, factory, table)


def _same_callable(f: Any, g: Any, depth: int = 0) -> bool:
    """True when f and g are provably the same function (same object, or same code with the
    same captured values); False when unsure."""
    if f is g:
        return True
    if depth > 3:
        return False
    cf, cg = getattr(f, "__code__", None), getattr(g, "__code__", None)
    if cf is None or cf is not cg:
        return False
    if getattr(f, "__defaults__", None) != getattr(g, "__defaults__", None):
        return False
    clf, clg = f.__closure__ or (), g.__closure__ or ()
    if len(clf) != len(clg):
        return False
    for a, b in zip(clf, clg):
        va, vb = a.cell_contents, b.cell_contents
        if va is vb:
            continue
        if isinstance(va, (int, float)) and type(va) is type(vb) and va == vb:
            continue
        if callable(va) and callable(vb) and _same_callable(va, vb, depth + 1):
            continue
        return False
    return True


def _registry_key(act: Activation) -> tuple | None:
    """A cache key shared by every Activation the registry builds for ``act.name``.

    ``get_activation(name)`` returns a new object per call; an object is recognised as the
    registry's when the registry's fresh build has the same functions (code and captured
    values), kinks, scale and parameters.  The key holds the factory, so re-registering a
    name under ``overwrite=True`` cannot return a stale table.
    """
    from . import activations as _acts
    base = act.name.partition(":")[0]
    factory = _acts._REGISTRY.get(base)
    if factory is None:
        return None
    try:
        ref = get_activation(act.name)
    except Exception:  # noqa: BLE001 - a name that does not rebuild is simply not shared
        return None
    same = (ref.name == act.name and ref.kinks == act.kinks and ref.scale == act.scale
            and ref.params == act.params and ref.pieces == act.pieces
            and _same_callable(ref.fn, act.fn) and _same_callable(ref.d1, act.d1))
    return ("registry", act.name, factory) if same else None


def moment_table(activation: ActivationLike) -> MomentTable:
    """The (cached) :class:`MomentTable` of an activation; built on first request.

    The cache lives in this process: per Activation object, and shared by all objects the
    registry builds for the same spec (so ``"tanh"`` passed as a string reuses one table).
    Check ``table.valid`` before use; an invalid table records ``reason``.
    """
    if isinstance(activation, str):
        # a spec string: the registry builds the activation, so the table is shared by spec
        # (the factory is part of the entry: re-registering the name invalidates it)
        from . import activations as _acts
        hit = _STR_TABLES.get(activation)
        if hit is not None and _acts._REGISTRY.get(hit[0]) is hit[1]:
            return hit[2]
        act = get_activation(activation)
        key = _registry_key(act)
        tab = _SPEC_TABLES.get(key) if key is not None else None
        if tab is None:
            tab = MomentTable(act)
            if key is not None:
                _SPEC_TABLES[key] = tab
        if key is not None:
            _STR_TABLES[activation] = (act.name.partition(":")[0], key[2], tab)
        return tab
    act = get_activation(activation)
    tab = _TABLES.get(act)
    if tab is not None:
        return tab
    key = _registry_key(act)
    if key is not None:
        tab = _SPEC_TABLES.get(key)
    if tab is None:
        tab = MomentTable(act)
        if key is not None:
            _SPEC_TABLES[key] = tab
    _TABLES[act] = tab
    return tab


def _table_moments(act: Activation, tau: np.ndarray) -> GaussianMoments:
    """Fields from the table where it covers tau, from the quadrature engine elsewhere."""
    tab = moment_table(act)
    flat = tau.reshape(-1)
    inside = (flat >= tab.tau_lo) & (flat <= tab.tau_hi) if tab.valid else np.zeros(flat.size, bool)
    if np.all(inside):
        return tab.moments(tau)
    direct = moments_from_raw(_quadrature_raw(act, np.atleast_1d(tau)), tau, "quadrature")
    if not np.any(inside):
        return direct
    out = {}
    vals = tab._evaluate(flat[inside])
    for q, f in enumerate(_TABLE_FIELDS):
        col = np.array(np.asarray(getattr(direct, f), dtype=float).reshape(-1))
        col[inside] = vals[q]
        out[f] = col.reshape(tau.shape)
    return GaussianMoments(tau=tau, **out, method="table+quadrature")


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
        ``"table"``: the cached interpolation table (:func:`moment_table`, built on first
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
        m = _table_moments(act, np.atleast_1d(t))
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
