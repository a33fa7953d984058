"""Bivariate Gaussian expectations E[f(u) f(v)] of an activation.

For a centred Gaussian pair (u, v) with standard deviations s_u, s_v and correlation rho,
this module computes

* ``kind="phi"``:  E[phi_c(u) phi_c(v)] with phi_c = phi - c for a fixed constant c (the
  DEQ's centring E[phi(tau xi)]; pass ``centring=0`` for the raw E[phi(u) phi(v)]);
* ``kind="dphi"``: E[phi'(u) phi'(v)] (uncentred derivative, phi' as ``Activation.d1``),

and the one-dimensional E[phi(s xi)] (:func:`gaussian_mean`).  By linearity
E[phi_c(u) phi_c(v)] = E[phi(u) phi(v)] - c (E[phi(u)] + E[phi(v)]) + c^2.

Engines
-------
``"closed"``
    ReLU family (phi = d + a x + (b - a) relu(x), e.g. relu, leaky_relu) through the
    arc-cosine kernel, E[relu(u) relu(v)] = s_u s_v (sin t + (pi - t) cos t) / (2 pi) with
    cos t = rho, E[u relu(v)] = Cov/2, E[relu'(u) relu'(v)] = (pi - t)/(2 pi); erf through
    the arcsine kernel, E[erf(u) erf(v)] = (2/pi) asin(2 S_uv / sqrt((1 + 2 S_uu)(1 + 2 S_vv)))
    and E[erf'(u) erf'(v)] = (4/pi) / sqrt((1 + 2 S_uu)(1 + 2 S_vv) - 4 S_uv^2).
``"mehler"``
    the Mehler (Hermite) expansion E[f(s_u x1) f(s_v x2)] = sum_k c_k(s_u) c_k(s_v) rho^k,
    c_k(s) = E[f(s xi) He_k(xi)] / sqrt(k!), with the coefficients computed on a
    kink-split composite Gauss-Legendre rule by the stable three-term recurrence of the
    normalised Hermite polynomials, summed by Horner's rule in rho.  The order K is chosen
    from the rigorous Parseval bound
    ``|remainder| <= |rho|^(K+1) sqrt(tail_u(K) tail_v(K))``, tail(K) = E[f^2] - sum_{k<=K} c_k^2;
    pairs for which no K <= ``kmax`` meets the tolerance (|rho| close to 1) are handed to
    the 2-D quadrature.
``"quadrature"``
    2-D composite Gauss-Legendre quadrature conditioned on x1: the inner integral over x2
    (a Gaussian smoothing of f at width s_v sqrt(1 - rho^2)) is split at the kinks of phi in
    v, the outer one at the kinks in u and refined geometrically around the points where the
    smoothed function varies on the scale sqrt(1 - rho^2)/|rho|.  Each value carries an
    error estimate (difference of a 12- and a 16-node rule on the same panels);
    |rho| = 1 reduces to a 1-D integral.
``"auto"``
    closed form when the activation has one, else Mehler with the quadrature fallback.

No engine returns a value silently: when a tolerance cannot be certified a
:class:`~rmt_deq.errors.ConvergenceError` is raised.  Tolerances are absolute errors
relative to the natural scale sqrt(E[f(u)^2] E[f(v)^2]).
"""
from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np

from rmt_deq._validation import check_tolerance, check_workers
from rmt_deq.activations import Activation, ActivationLike, get_activation
from rmt_deq.errors import (ConvergenceError, DivergentMomentError, InvalidParameterError,
                     UnknownOptionError)
from rmt_deq.moments.gaussian import raw_moments

__all__ = [
    "KINDS",
    "METHODS",
    "gaussian_mean",
    "hermite_coefficients",
    "bivariate_expectation",
    "has_closed_form",
    "one_dimensional_moments",
    "MOMENT_KEYS",
    "PairExpectations",
]

KINDS = ("phi", "dphi")
_FN_TEXT = {"phi": "phi", "dphi": "phi'"}
_KIND_TEXT = {"phi": "E[phi_c(u) phi_c(v)]", "dphi": "E[phi'(u) phi'(v)]"}
METHODS = ("auto", "closed", "mehler", "quadrature")

DEFAULT_TOL = 1e-13     # absolute error relative to sqrt(E f(u)^2 E f(v)^2)
DEFAULT_KMAX = 256      # largest Mehler order before falling back to 2-D quadrature

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GL = {n: np.polynomial.legendre.leggauss(n) for n in (12, 16)}
_L_HERMITE = 16.0       # xi range of the Hermite projections (e^{-L^2/4} ~ 1.6e-28)
_STEP_HERMITE = 0.5     # panel width of the Hermite rule (exact to ~1e-16 up to k ~ 256)
_L_QUAD = 12.0          # xi range of the 2-D quadrature (pdf(12) ~ 5e-32)
_STEP_QUAD = 1.0
_EPS = np.finfo(float).eps


# ----------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------
def _pdf(x: np.ndarray) -> np.ndarray:
    return _INV_SQRT_2PI * np.exp(-0.5 * x * x)


def _gl_panels(edges: np.ndarray, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre on sorted panel edges (..., E) -> nodes, weights (..., (E-1)n).

    Weights do not include the Gaussian density.  Zero-width panels get zero weight.
    """
    x, w = _GL[n_nodes]
    a, b = edges[..., :-1], edges[..., 1:]
    half, mid = 0.5 * (b - a), 0.5 * (a + b)
    nodes = mid[..., None] + half[..., None] * x
    weights = half[..., None] * w
    shape = edges.shape[:-1] + (-1,)
    return nodes.reshape(shape), weights.reshape(shape)


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise UnknownOptionError(
            f"unknown expectation kind {kind!r}; choose 'phi' (E[phi_c(u) phi_c(v)]) or "
            f"'dphi' (E[phi'(u) phi'(v)])")
    return kind


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise UnknownOptionError(f"unknown method {method!r}; choose one of {METHODS}")
    return method




def _kind_function(act: Activation, kind: str, centring: float) -> Callable[[np.ndarray],
                                                                            np.ndarray]:
    if kind == "phi":
        c = float(centring)
        return lambda x: act.fn(x) - c
    return act.d1


def _scale_points(act: Activation, s: float, j_hi: int = 6) -> np.ndarray:
    """xi points +-scale 2^j / s (j = -5..j_hi) where phi bends, for panel refinement."""
    pts = act.scale * 2.0 ** np.arange(-5, j_hi + 1) / s
    return np.concatenate([pts, -pts])


# ----------------------------------------------------------------------------------------
# closed forms
# ----------------------------------------------------------------------------------------
def _relu_family(act: Activation) -> tuple[float, float, float] | None:
    """(d, a, b) with phi(x) = d + a x (x < 0), d + b x (x > 0), or None."""
    pcs = act.pieces
    if pcs is None or len(pcs) != 2 or pcs[0].hi != 0.0 or pcs[1].lo != 0.0:
        return None
    out = []
    for pc in pcs:
        c = list(pc.coeffs)
        while len(c) > 1 and c[-1] == 0.0:
            c.pop()
        if len(c) > 2:
            return None
        c = c + [0.0] * (2 - len(c))
        out.append(c)
    (d0, a), (d1, b) = out
    if d0 != d1:
        return None
    return float(d0), float(a), float(b)


def _is_erf(act: Activation) -> bool:
    return act.closed_form == "erf"


def has_closed_form(activation: ActivationLike) -> bool:
    """Whether the bivariate expectations of phi have a closed form here (ReLU family, erf)."""
    act = get_activation(activation)
    return _relu_family(act) is not None or _is_erf(act)


def _closed_both(act: Activation, centring: float, su: np.ndarray, sv: np.ndarray,
                 rho: np.ndarray, kinds: tuple[str, ...] = KINDS) -> dict[str, np.ndarray]:
    """Closed-form expectations, elementwise on broadcast arrays (rho clipped to [-1, 1])."""
    rho = np.clip(rho, -1.0, 1.0)
    out: dict[str, np.ndarray] = {}
    fam = _relu_family(act)
    if fam is not None:
        d, a, b = fam
        g = b - a
        theta = np.arccos(rho)
        if "dphi" in kinds:
            out["dphi"] = a * a + a * g + (g * g / (2.0 * np.pi)) * (np.pi - theta)
        if "phi" in kinds:
            dc = d - float(centring)
            ss = su * sv
            # s_u s_v [ (a^2 + a g) rho + g^2 (sin t + (pi - t) rho) / (2 pi) ]
            arc = np.sqrt((1.0 - rho) * (1.0 + rho))
            arc += (np.pi - theta) * rho
            val = ss * ((a * a + a * g) * rho + (g * g / (2.0 * np.pi)) * arc)
            if dc != 0.0:
                val += dc * dc + dc * g * (su + sv) * _INV_SQRT_2PI
            out["phi"] = val
        return out
    if _is_erf(act):
        prod = (1.0 + 2.0 * su * su) * (1.0 + 2.0 * sv * sv)
        cov = rho * su * sv
        if "dphi" in kinds:
            out["dphi"] = (4.0 / np.pi) / np.sqrt(prod - 4.0 * cov * cov)
        if "phi" in kinds:
            c = float(centring)
            arg = np.clip(2.0 * cov / np.sqrt(prod), -1.0, 1.0)
            out["phi"] = (2.0 / np.pi) * np.arcsin(arg) + c * c   # E[erf] = 0
        return out
    raise UnknownOptionError(
        f"activation {act.name!r} has no closed-form bivariate expectation (closed forms: the "
        f"ReLU family and erf); use method='mehler' or 'quadrature'")


def _closed(act: Activation, kind: str, centring: float, su: np.ndarray, sv: np.ndarray,
            rho: np.ndarray) -> np.ndarray:
    return _closed_both(act, centring, su, sv, rho, (kind,))[kind]


# ----------------------------------------------------------------------------------------
# one-dimensional moments
# ----------------------------------------------------------------------------------------
def _check_kmax(kmax: Any) -> int:
    if isinstance(kmax, bool) or not isinstance(kmax, (int, np.integer)) or kmax < 1:
        raise InvalidParameterError(f"kmax must be a positive integer, got {kmax!r}")
    return int(kmax)


def _check_scales(s: Any, name: str = "s") -> np.ndarray:
    arr = np.asarray(s, dtype=float)
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise InvalidParameterError(f"{name} (standard deviations) must be finite and > 0")
    return arr


def gaussian_mean(activation: ActivationLike, s: Any) -> Any:
    """E[phi(s xi)], xi ~ N(0, 1), for each standard deviation s (closed form or quadrature).

    Parameters
    ----------
    activation : name, Activation or callable
    s : float or array_like of float, > 0

    Returns
    -------
    float or ndarray of the shape of ``s``
    """
    act = get_activation(activation)
    arr = _check_scales(s)
    m = raw_moments(act, arr)["phi"]
    return float(np.asarray(m).reshape(-1)[0]) if arr.ndim == 0 else np.asarray(m).reshape(
        arr.shape)


MOMENT_KEYS = ("mean", "e1", "m2", "dm2", "d2")


def one_dimensional_moments(activation: ActivationLike, s: Any, centring: float = 0.0, *,
                            keys: tuple[str, ...] = MOMENT_KEYS, check: bool = True
                            ) -> dict[str, np.ndarray]:
    """The 1-D moments the kernel fixed point needs, vectorised over scales s.

    The ReLU family has closed forms; other activations use a composite Gauss-Legendre rule
    shared by all scales (split at each scale's kinks), whose accuracy is checked against
    a 12-node rule on the same panels.

    Parameters
    ----------
    activation : name, Activation or callable
    s : array_like of float, > 0
        Standard deviations.
    centring : float
        c in phi_c = phi - c.
    keys : tuple of str
        Which moments to return (a subset of ``MOMENT_KEYS``).
    check : bool
        Certify the quadrature against the 12-node rule (relative agreement 1e-12 on
        E[phi_c^2] and E[phi'^2]); raises :class:`~rmt_deq.errors.ConvergenceError` if not.

    Returns
    -------
    dict of str -> ndarray of the shape of ``s``
        ``mean`` E[phi(s xi)], ``e1`` E[phi'(s xi)], ``m2`` E[phi_c^2],
        ``dm2`` d E[phi_c(sqrt(S) xi)^2] / dS = E[He_2(xi) phi_c(s xi)^2] / (2 s^2),
        ``d2`` E[phi'(s xi)^2].
    """
    act = get_activation(activation)
    s = _check_scales(s)
    keys = tuple(keys)
    unknown = [k for k in keys if k not in MOMENT_KEYS]
    if unknown:
        raise UnknownOptionError(f"unknown moment key(s) {unknown}; choose from {MOMENT_KEYS}")
    c = float(centring)
    fam = _relu_family(act)
    if fam is not None:     # phi = d + a x + g relu(x): every moment in closed form
        d, a, b = fam
        g = b - a
        dc = d - c
        full = {
            "mean": d + g * s * _INV_SQRT_2PI + 0.0 * s,
            "e1": a + 0.5 * g + 0.0 * s,
            "m2": dc * dc + 2.0 * dc * g * s * _INV_SQRT_2PI
            + s * s * (a * a + a * g + 0.5 * g * g),
            "dm2": 0.5 * (a * a + b * b) + dc * g * _INV_SQRT_2PI / s,
            "d2": 0.5 * (a * a + b * b) + 0.0 * s,
        }
        return {k: np.asarray(full[k], float) for k in keys}
    if check:
        mom, _values = _rule_moments(act, s.reshape(-1), c)
    else:
        mom = _SampleRule(act, s.reshape(-1), 16).moments(act, c, keys)
    return {k: np.asarray(mom[k], float).reshape(s.shape) for k in keys}


def _rule_moments(act: Activation, s: np.ndarray, c: float) -> tuple[dict, tuple]:
    """1-D moments on the shared 16-node rule, checked against the 12-node rule.

    Returns the moments and (rule, F, Fe, D, De): phi and phi' on the rule's nodes.
    """
    rule = _SampleRule(act, s, 16)
    F, Fe = rule.evaluate(act.fn, "phi", act.name)
    D, De = rule.evaluate(act.d1, "phi'", act.name)
    mom = rule.moments_from_values(F, Fe, D, De, c)
    check = _SampleRule(act, s, 12).moments(act, c, ("m2", "d2"))
    for key, what in (("m2", "E[phi_c^2]"), ("d2", "E[phi'^2]")):
        err = np.abs(mom[key] - check[key]) / np.maximum(np.abs(mom[key]), 1e-300)
        if np.any(err > _RULE_CHECK):
            i = int(np.argmax(err))
            raise ConvergenceError(
                f"the Gaussian quadrature rule does not resolve {act.name!r} at scale "
                f"s = {rule.s[i]:.6g} (12- and 16-node rules differ by {err[i]:.2g} in {what}); "
                f"phi bends on a scale far from Activation.scale = {act.scale:g}, or a kink "
                f"is not listed in Activation.kinks")
    return mom, (rule, F, Fe, D, De)


# ----------------------------------------------------------------------------------------
# a Gauss-Legendre rule shared by many scales
# ----------------------------------------------------------------------------------------
_RULE_CHECK = 1e-12


class _SampleRule:
    """Composite Gauss-Legendre rules in xi for E[h(s_i xi)], one per scale s_i, sharing nodes.

    All scales share one rule on [-16, 16] (uniform panels of width 1/2 plus a geometric
    refinement where phi bends, at +-scale 2^j / s); the panels that contain a kink of
    phi(s_i .) are replaced, for that scale only, by sub-panels split at the kink.  Sums
    over the shared nodes are then matrix products.  The Gaussian density is in the weights.
    """

    def __init__(self, act: Activation, s: np.ndarray, n_nodes: int = 16) -> None:
        self.s = np.asarray(s, float).reshape(-1)
        s_min, s_max = float(self.s.min()), float(self.s.max())
        L = _L_HERMITE
        base = np.arange(-L, L + 0.5 * _STEP_HERMITE, _STEP_HERMITE)
        j_hi = 6 + int(math.ceil(math.log2(s_max / s_min)))
        pts = _scale_points(act, s_max, j_hi)
        edges = np.unique(np.concatenate([base, pts[np.abs(pts) < L]]))
        xi, w = _gl_panels(edges, n_nodes)
        w = w * _pdf(xi)
        n, n_pan = self.s.size, edges.size - 1
        self.xi = xi
        self.xe: np.ndarray | None = None
        self.we: np.ndarray | None = None
        kinks = np.asarray(act.kinks, float)
        if kinks.size:
            xk = np.clip(kinks[None, :] / self.s[:, None], -L, L)          # (n, nk)
            pidx = np.clip(np.searchsorted(edges, xk, side="right") - 1, 0, n_pan - 1)
            hit = np.zeros((n, n_pan), bool)
            hit[np.arange(n)[:, None], pidx] = True
            self.W = np.where(np.repeat(hit, n_nodes, axis=1), 0.0, w[None, :])
            ex = np.sort(np.concatenate([edges[pidx], xk, edges[pidx + 1]], axis=1), axis=1)
            mids = 0.5 * (ex[:, :-1] + ex[:, 1:])
            midp = np.clip(np.searchsorted(edges, mids, side="right") - 1, 0, n_pan - 1)
            keep = hit[np.arange(n)[:, None], midp]
            xe, we = _gl_panels(ex, n_nodes)
            self.xe, self.we = xe, we * _pdf(xe) * np.repeat(keep, n_nodes, axis=1)
        else:
            self.W = w[None, :]

    def evaluate(self, f: Callable[[np.ndarray], np.ndarray], what: str, name: str
                 ) -> tuple[np.ndarray, np.ndarray | None]:
        """f(s_i xi) on the shared nodes (n, N) and on the kink sub-panels (n, Ne) or None."""
        with np.errstate(all="ignore"):
            F = np.asarray(f(self.s[:, None] * self.xi[None, :]), float)
            Fe = None if self.xe is None else np.asarray(f(self.s[:, None] * self.xe), float)
        if not (np.all(np.isfinite(F)) and (Fe is None or np.all(np.isfinite(Fe)))):
            raise DivergentMomentError(
                f"{what} of activation {name!r} is not finite on the Gaussian range "
                f"|x| <= {_L_HERMITE:g} s of the scales given; its Gaussian moments do not "
                f"exist there")
        return F, Fe

    def integrate(self, F: np.ndarray, Fe: np.ndarray | None,
                  weight: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
        """sum_m w_im F_im weight(xi_m) for each i: E[weight(xi) h(s_i xi)]."""
        wc = self.W if weight is None else self.W * weight(self.xi)
        if wc.shape[0] == 1:             # shared weights: a matrix-vector product
            out = F @ wc[0]
        else:
            out = np.einsum("ij,ij->i", wc, F)
        if Fe is not None:
            assert self.xe is not None and self.we is not None
            we = self.we if weight is None else self.we * weight(self.xe)
            out = out + np.einsum("ij,ij->i", we, Fe)
        return out

    def moments(self, act: Activation, c: float, keys: tuple[str, ...] = MOMENT_KEYS
                ) -> dict[str, np.ndarray]:
        """The moments in ``keys`` (see :func:`one_dimensional_moments`)."""
        F, Fe = self.evaluate(act.fn, "phi", act.name)
        if "d2" in keys:
            D, De = self.evaluate(act.d1, "phi'", act.name)
        else:
            D, De = None, None
        return self.moments_from_values(F, Fe, D, De, c, keys)

    def moments_from_values(self, F: np.ndarray, Fe: np.ndarray | None,
                            D: np.ndarray | None, De: np.ndarray | None, c: float,
                            keys: tuple[str, ...] = MOMENT_KEYS) -> dict[str, np.ndarray]:
        s = self.s
        out: dict[str, np.ndarray] = {}
        if "mean" in keys:
            out["mean"] = self.integrate(F, Fe)
        if "e1" in keys:
            out["e1"] = self.integrate(F, Fe, lambda x: x) / s
        if "m2" in keys or "dm2" in keys:
            Fc2 = (F - c) ** 2
            Fec2 = None if Fe is None else (Fe - c) ** 2
            if "m2" in keys:
                out["m2"] = self.integrate(Fc2, Fec2)
            if "dm2" in keys:
                out["dm2"] = self.integrate(Fc2, Fec2, lambda x: x * x - 1.0) / (2.0 * s * s)
        if "d2" in keys:
            assert D is not None
            out["d2"] = self.integrate(D * D, None if De is None else De * De)
        return out


# ----------------------------------------------------------------------------------------
# Hermite coefficients (Mehler engine)
# ----------------------------------------------------------------------------------------
def _hermite_rows(x: np.ndarray, kmax: int) -> np.ndarray:
    """He_k(x)/sqrt(k!) for k = 0..kmax (normalised probabilists' Hermite), shape (kmax+1, ...).

    Three-term recurrence h_{k+1} = (x h_k - sqrt(k) h_{k-1}) / sqrt(k+1), stable for the
    |x| <= 16, k <= 256 used here (no overflow: max_k h_k(16) ~ e^64).
    """
    out = np.empty((kmax + 1,) + x.shape)
    out[0] = 1.0
    if kmax >= 1:
        out[1] = x
    for k in range(1, kmax):
        out[k + 1] = (x * out[k] - math.sqrt(k) * out[k - 1]) / math.sqrt(k + 1)
    return out


class _HermiteTable:
    """Normalised Hermite coefficients c_k(s_i) of f(s_i xi) for many scales s_i.

    Built on a :class:`_SampleRule` (shared nodes: one matrix product per table) and the
    values of f on its nodes.
    """

    def __init__(self, rule: _SampleRule, F: np.ndarray, Fe: np.ndarray | None) -> None:
        self.rule = rule
        self.xi = rule.xi
        self.WF = rule.W * F
        self.xe = rule.xe
        self.WFe = None if Fe is None else rule.we * Fe
        self.norm2 = rule.integrate(F * F, None if Fe is None else Fe * Fe)
        self._C = np.zeros((F.shape[0], 0))

    @classmethod
    def build(cls, act: Activation, s: np.ndarray, kind: str, centring: float
              ) -> "_HermiteTable":
        rule = _SampleRule(act, s, 16)
        F, Fe = rule.evaluate(_kind_function(act, kind, centring), _FN_TEXT[kind], act.name)
        return cls(rule, F, Fe)

    def coefficients(self, kmax: int) -> np.ndarray:
        """c_k(s_i) for k = 0..kmax, shape (n, kmax + 1) (cached, extended on demand)."""
        if self._C.shape[1] < kmax + 1:
            H = _hermite_rows(self.xi, kmax)                       # (K+1, N)
            C = self.WF @ H.T
            if self.xe is not None:
                h_prev = np.ones_like(self.xe)
                h = self.xe.copy()
                assert self.WFe is not None
                C[:, 0] += np.sum(self.WFe, axis=1)
                if kmax >= 1:
                    C[:, 1] += np.sum(self.WFe * h, axis=1)
                for k in range(1, kmax):
                    h_prev, h = h, (self.xe * h - math.sqrt(k) * h_prev) / math.sqrt(k + 1)
                    C[:, k + 1] += np.sum(self.WFe * h, axis=1)
            self._C = C
        return self._C[:, : kmax + 1]

    def relative_tails(self, kmax: int) -> np.ndarray:
        """tail_i(K)/E[f_i^2] for K = 0..kmax (with a rounding floor), shape (n, kmax+1)."""
        C = self.coefficients(kmax)
        n2 = np.maximum(self.norm2, 1e-300)
        t = (self.norm2[:, None] - np.cumsum(C * C, axis=1)) / n2[:, None]
        floor = 8.0 * _EPS * (np.arange(kmax + 1) + 1.0)
        return np.maximum(t, 0.0) + floor[None, :]


def _rho_limits(tails_max: np.ndarray, tol: float) -> np.ndarray:
    """rho_max(K): the series truncated at K is certified for |rho| <= rho_max(K)."""
    K = np.arange(tails_max.size)
    with np.errstate(divide="ignore"):
        lim = np.exp((math.log(tol) - np.log(tails_max)) / (K + 1.0))
    lim = np.where(tails_max <= tol, 1.0, np.minimum(lim, 1.0))
    return np.maximum.accumulate(lim)


def hermite_coefficients(activation: ActivationLike, s: Any, order: int, *,
                         kind: str = "phi", centring: float = 0.0
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Normalised Hermite coefficients c_k(s) = E[f(s xi) He_k(xi)] / sqrt(k!).

    Parameters
    ----------
    activation : name, Activation or callable
    s : float or array_like of float, > 0
        Standard deviations.
    order : int
        Highest k (0 <= k <= order).  The shared rule (panels of width 1/2 on
        [-16, 16], 16 nodes each) resolves the Hermite oscillations to rounding for
        k <= 256 (the engines' ``kmax``); beyond that the coefficients are not certified.
    kind : {"phi", "dphi"}
        f = phi - centring, or f = phi'.
    centring : float
        The constant subtracted from phi (only for ``kind="phi"``).

    Returns
    -------
    coeffs : ndarray, shape ``np.shape(s) + (order + 1,)``
    second_moment : ndarray, shape ``np.shape(s)``
        E[f(s xi)^2] on the same rule (Parseval: sum_k c_k^2 -> second_moment).
    """
    act = get_activation(activation)
    _check_kind(kind)
    arr = _check_scales(s)
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 0:
        raise InvalidParameterError(f"order must be a non-negative integer, got {order!r}")
    tab = _HermiteTable.build(act, arr.reshape(-1), kind, centring)
    C = tab.coefficients(int(order))
    return C.reshape(arr.shape + (int(order) + 1,)), tab.norm2.reshape(arr.shape)


# ----------------------------------------------------------------------------------------
# 2-D quadrature
# ----------------------------------------------------------------------------------------
def _quad_1d_pair(act: Activation, f: Callable, su: float, sv: float, sign: float,
                  n_nodes: int) -> float:
    """E[f(su x) f(sign sv x)] for |rho| = 1."""
    L = _L_QUAD
    kinks = np.asarray(act.kinks, float)
    pts = np.concatenate([np.arange(-L, L + 0.5, _STEP_QUAD), kinks / su, sign * kinks / sv,
                          _scale_points(act, su), _scale_points(act, sv)])
    edges = np.unique(np.clip(pts, -L, L))
    x, w = _gl_panels(edges, n_nodes)
    return float(np.sum(w * _pdf(x) * f(su * x) * f(sign * sv * x)))


def _geometric_around(center: float, h: float, top: float) -> np.ndarray:
    """center +- h 2^j for j = -2, -1, ... while h 2^j <= top."""
    if not (h > 0 and math.isfinite(center)):
        return np.array([center]) if math.isfinite(center) else np.zeros(0)
    j_hi = int(math.floor(math.log2(top / h))) if top > h else -2
    off = h * 2.0 ** np.arange(-2, max(j_hi, -2) + 1)
    return np.concatenate([[center], center + off, center - off])


def _quad_2d_pair(act: Activation, f: Callable, su: float, sv: float, rho: float,
                  n_nodes: int) -> float:
    """E[f(su x1) f(sv (rho x1 + r x2))], r = sqrt(1 - rho^2) > 0, by nested Gauss-Legendre."""
    L = _L_QUAD
    r = math.sqrt((1.0 - rho) * (1.0 + rho))
    kinks = np.asarray(act.kinks, float)
    sig = sv * r                             # inner smoothing width, in v
    outer = [np.arange(-L, L + 0.5, _STEP_QUAD), kinks / su, _scale_points(act, su)]
    if rho != 0.0:
        h = r / abs(rho)                     # scale of the smoothed f in x1
        for k in kinks:
            outer.append(_geometric_around(k / (sv * rho), h, 1.0))
        # smooth phi bends at |v| ~ scale: x1 ~ scale 2^j / (sv |rho|), and on scale h
        outer.append(_scale_points(act, sv * abs(rho)))
        outer.append(_geometric_around(0.0, h, 1.0))
    edges1 = np.unique(np.clip(np.concatenate(outer), -L, L))
    x1, w1 = _gl_panels(edges1, n_nodes)
    w1 = w1 * _pdf(x1)
    m = sv * rho * x1                        # inner mean (in v) at each outer node
    base2 = np.arange(-L, L + 0.5, _STEP_QUAD)
    vpts = np.concatenate([kinks, act.scale * 2.0 ** np.arange(-5, 7),
                           -act.scale * 2.0 ** np.arange(-5, 7), [0.0]])
    inner_pts = (vpts[None, :] - m[:, None]) / sig
    edges2 = np.sort(np.concatenate(
        [np.broadcast_to(base2, (x1.size, base2.size)), np.clip(inner_pts, -L, L)], axis=1),
        axis=1)
    x2, w2 = _gl_panels(edges2, n_nodes)
    w2 = w2 * _pdf(x2)
    with np.errstate(all="ignore"):
        inner = np.sum(w2 * f(m[:, None] + sig * x2), axis=1)
        val = float(np.sum(w1 * f(su * x1) * inner))
    return val


def _quad_pairs(act: Activation, kind: str, centring: float, su: np.ndarray, sv: np.ndarray,
                rho: np.ndarray, scale: np.ndarray, tol: float) -> np.ndarray:
    """2-D quadrature for flat arrays of pairs, each certified to ``tol * scale``."""
    f = _kind_function(act, kind, centring)
    out = np.empty(su.size)
    for i in range(su.size):
        a, b, p = float(su[i]), float(sv[i]), float(min(1.0, max(-1.0, rho[i])))
        if abs(p) >= 1.0:
            q16 = _quad_1d_pair(act, f, a, b, math.copysign(1.0, p), 16)
            q12 = _quad_1d_pair(act, f, a, b, math.copysign(1.0, p), 12)
        else:
            q16 = _quad_2d_pair(act, f, a, b, p, 16)
            q12 = _quad_2d_pair(act, f, a, b, p, 12)
        err = abs(q16 - q12)
        if not math.isfinite(q16) or err > tol * scale[i]:
            raise ConvergenceError(
                f"2-D quadrature of {_KIND_TEXT[kind]} for {act.name!r} at s_u = {a:.6g}, "
                f"s_v = {b:.6g}, rho = {p:.17g}: error "
                f"estimate {err:.3g} exceeds the tolerance {tol * scale[i]:.3g}; loosen the "
                f"tolerance or check the activation's kinks/scale", [err])
        out[i] = q16
    return out


# ----------------------------------------------------------------------------------------
# Mehler series on flat pairs
# ----------------------------------------------------------------------------------------
def _horner_flat(Cu: np.ndarray, Cv: np.ndarray, rho: np.ndarray, K: int) -> np.ndarray:
    acc = Cu[:, K] * Cv[:, K]
    for k in range(K - 1, -1, -1):
        acc = acc * rho + Cu[:, k] * Cv[:, k]
    return acc


def bivariate_expectation(activation: ActivationLike, s_u: Any, s_v: Any, rho: Any, *,
                          kind: str = "phi", centring: float = 0.0, method: str = "auto",
                          tol: float = DEFAULT_TOL, kmax: int = DEFAULT_KMAX) -> Any:
    """E[phi_c(u) phi_c(v)] or E[phi'(u) phi'(v)] for (u, v) centred Gaussian.

    Parameters
    ----------
    activation : name, Activation or callable
    s_u, s_v : float or array_like, > 0
        Standard deviations of u and v.
    rho : float or array_like in [-1, 1]
        Correlation; the three arguments broadcast together.
    kind : {"phi", "dphi"}
        ``"phi"``: E[(phi(u) - c)(phi(v) - c)] with c = ``centring``;
        ``"dphi"``: E[phi'(u) phi'(v)].
    centring : float
        The constant c (0 gives the raw E[phi(u) phi(v)]).
    method : {"auto", "closed", "mehler", "quadrature"}
        See the module docstring.  ``"closed"`` raises
        :class:`~rmt_deq.errors.UnknownOptionError` for activations without a closed form.
    tol : float
        Absolute accuracy, relative to sqrt(E[f(u)^2] E[f(v)^2]), that the Mehler bound
        and the quadrature error estimate must certify.
    kmax : int
        Largest Mehler order tried before the quadrature fallback.

    Returns
    -------
    float or ndarray of the broadcast shape

    Raises
    ------
    ConvergenceError
        The tolerance cannot be certified.
    """
    act = get_activation(activation)
    _check_kind(kind)
    _check_method(method)
    tol = check_tolerance(tol)
    su, sv, r = np.broadcast_arrays(_check_scales(s_u, "s_u"), _check_scales(s_v, "s_v"),
                                    np.asarray(rho, float))
    if not np.all(np.isfinite(r)) or np.any(np.abs(r) > 1.0 + 1e-12):
        raise InvalidParameterError("rho must be a correlation in [-1, 1]")
    shape = su.shape
    su, sv, r = su.reshape(-1), sv.reshape(-1), np.clip(r.reshape(-1), -1.0, 1.0)
    if method == "auto":
        method = "closed" if has_closed_form(act) else "mehler"
    if method == "closed":
        out = _closed(act, kind, centring, su, sv, r)
    else:
        svals = np.concatenate([su, sv])
        m2 = one_dimensional_moments(act, svals, centring)["m2" if kind == "phi" else "d2"]
        scale = np.sqrt(np.abs(m2[: su.size] * m2[su.size:]))
        scale = np.where(scale > 0, scale, 1.0)
        if method == "quadrature":
            out = _quad_pairs(act, kind, centring, su, sv, r, scale, tol)
        else:
            tab = _HermiteTable.build(act, svals, kind, centring)
            kmax = _check_kmax(kmax)
            tails = tab.relative_tails(kmax)
            C = tab.coefficients(kmax)
            Cu, Cv = C[: su.size], C[su.size:]
            tu, tv = tails[: su.size], tails[su.size:]
            bound_ok = np.abs(r)[:, None] ** (np.arange(kmax + 1) + 1.0) * np.sqrt(tu * tv) \
                <= tol
            good = bound_ok.any(axis=1)
            Kreq = np.where(good, np.argmax(bound_ok, axis=1), kmax)
            out = np.empty(su.size)
            if good.any():
                K = int(Kreq[good].max())
                out[good] = _horner_flat(Cu[good], Cv[good], r[good], K)
            bad = ~good
            if bad.any():
                out[bad] = _quad_pairs(act, kind, centring, su[bad], sv[bad], r[bad],
                                       scale[bad], tol)
    out = out.reshape(shape)
    return float(out) if out.ndim == 0 else out


# ----------------------------------------------------------------------------------------
# all pairs of n Gaussian variables (the kernel engine)
# ----------------------------------------------------------------------------------------
def _default_workers() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


class PairExpectations:
    """E[phi_c(u_i) phi_c(u_j)] and E[phi'(u_i) phi'(u_j)] for n jointly Gaussian u_i.

    The variances Sigma_ii are fixed at construction (so the per-sample Hermite
    coefficients are computed once); :meth:`evaluate` then takes any covariance with that
    diagonal.  This is the inner loop of the exact-kernel fixed point.

    Parameters
    ----------
    activation : name, Activation or callable
    variances : array_like, shape (n,)
        Sigma_ii > 0.
    centring : float
        c in phi_c = phi - c.
    method : {"auto", "closed", "mehler", "quadrature"}
    tol : float
        Accuracy of each entry relative to sqrt(E[f(u_i)^2] E[f(u_j)^2]).
    kmax : int
        Largest Mehler order; pairs whose |rho| needs more go to 2-D quadrature.
    workers : int, optional
        Threads for the O(K n^2) series (numpy releases the GIL); default: the CPUs
        available, at most 8.

    Attributes
    ----------
    diag_phi, diag_dphi : ndarray, shape (n,)
        E[phi_c(u_i)^2] and E[phi'(u_i)^2] (the diagonals of G and Gdot).
    moments : dict of str -> ndarray, shape (n,)
        The 1-D moments of :func:`one_dimensional_moments` at the n scales.
    last_order : int
        Largest Mehler order used by the last :meth:`evaluate` (0 for closed forms).
    last_quadrature_pairs : int
        Number of pairs (i < j) evaluated by 2-D quadrature in the last call.
    """

    _BLOCK_ELEMS = 1 << 16

    def __init__(self, activation: ActivationLike, variances: Any, centring: float = 0.0, *,
                 method: str = "auto", tol: float = DEFAULT_TOL, kmax: int = DEFAULT_KMAX,
                 workers: int | None = None) -> None:
        self.act = get_activation(activation)
        _check_method(method)
        self.tol = check_tolerance(tol)
        var = np.asarray(variances, float).reshape(-1)
        if not np.all(np.isfinite(var)) or np.any(var <= 0):
            raise InvalidParameterError("variances must be finite and > 0")
        self.s = np.sqrt(var)
        self.n = var.size
        self.centring = float(centring)
        if method == "auto":
            method = "closed" if has_closed_form(self.act) else "mehler"
        if method == "closed" and not has_closed_form(self.act):
            _closed(self.act, "phi", 0.0, self.s[:1], self.s[:1], np.zeros(1))  # raises
        self.method = method
        self.kmax = _check_kmax(kmax)
        workers = check_workers(workers)
        self.workers = _default_workers() if workers is None else workers
        self._tables: dict[str, _HermiteTable] = {}
        self._limits: dict[str, np.ndarray] = {}
        self._CT: dict[str, np.ndarray] = {}
        if method == "mehler":
            mom, (rule, F, Fe, D, De) = _rule_moments(self.act, self.s, self.centring)
            c = self.centring
            self._tables["phi"] = _HermiteTable(rule, F - c, None if Fe is None else Fe - c)
            self._tables["dphi"] = _HermiteTable(rule, D, De)
            for kind in KINDS:
                self._extend(kind, 32)
            if _relu_family(self.act) is not None:
                mom = one_dimensional_moments(self.act, self.s, c)
        else:
            mom = one_dimensional_moments(self.act, self.s, self.centring)
        self.moments = {k: np.asarray(v, float) for k, v in mom.items()}
        self.diag_phi, self.diag_dphi = self.moments["m2"], self.moments["d2"]
        self.last_order = 0
        self.last_quadrature_pairs = 0

    # --- Mehler helpers ---------------------------------------------------------------
    def _extend(self, kind: str, K: int) -> None:
        tab = self._tables[kind]
        K = min(K, self.kmax)
        tails = tab.relative_tails(K)
        self._limits[kind] = _rho_limits(tails.max(axis=0), self.tol)
        self._CT[kind] = np.ascontiguousarray(tab.coefficients(K).T)   # (K+1, n)

    def _order_for(self, kind: str, absrho: float) -> int:
        """Smallest certified K for |rho| <= absrho, or -1 if K > kmax would be needed."""
        while True:
            lim = self._limits[kind]
            K = int(np.searchsorted(lim, absrho, side="left"))
            if K < lim.size:
                return K
            if lim.size - 1 >= self.kmax:
                return -1
            self._extend(kind, 2 * (lim.size - 1))

    def _series_block(self, kind: str, r0: int, r1: int, R: np.ndarray, K: int
                      ) -> np.ndarray:
        CT = self._CT[kind]
        acc = np.multiply.outer(CT[K, r0:r1], CT[K, r0:])
        tmp = np.empty_like(acc)
        for k in range(K - 1, -1, -1):
            acc *= R
            np.multiply.outer(CT[k, r0:r1], CT[k, r0:], out=tmp)
            acc += tmp
        return acc

    def _run_blocks(self, task: Callable[[int, int], None]) -> None:
        """Run task(r0, r1) over row blocks of the upper triangle (threaded)."""
        n = self.n
        rows = max(1, self._BLOCK_ELEMS // max(n, 1))
        blocks = [(r0, min(n, r0 + rows)) for r0 in range(0, n, rows)]
        if self.workers > 1 and len(blocks) > 1:
            with ThreadPoolExecutor(max_workers=self.workers) as ex:
                for fut in [ex.submit(task, r0, r1) for r0, r1 in blocks]:
                    fut.result()
        else:
            for r0, r1 in blocks:
                task(r0, r1)

    def _closed_matrix(self, rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = self.n
        G = np.empty((n, n))
        D = np.empty((n, n))

        def task(r0: int, r1: int) -> None:
            res = _closed_both(self.act, self.centring, self.s[r0:r1, None],
                               self.s[None, r0:], rho[r0:r1, r0:])
            for kind, out in (("phi", G), ("dphi", D)):
                out[r0:r1, r0:] = res[kind]
                out[r0:, r0:r1] = res[kind].T

        self._run_blocks(task)
        self.last_order, self.last_quadrature_pairs = 0, 0
        return G, D

    def _mehler(self, rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = self.n
        absr = np.abs(rho)
        np.fill_diagonal(absr, 0.0)
        amax = float(absr.max()) if n > 1 else 0.0
        # extend the coefficient tables to the order the largest |rho| needs (or kmax);
        # pairs beyond the reach of kmax go to the 2-D quadrature.  The tables are final
        # before the threaded blocks start, so the tasks only read shared state.
        cut = 1.0
        for kind in KINDS:
            if self._order_for(kind, amax) < 0:
                cut = min(cut, float(self._limits[kind][-1]))
        far = absr > cut if cut < 1.0 else None
        if far is not None:
            absr[far] = 0.0
        G = np.empty((n, n))
        D = np.empty((n, n))
        orders: list[int] = []

        def task(r0: int, r1: int) -> None:
            R = rho[r0:r1, r0:]
            bmax = float(absr[r0:r1, r0:].max())
            for kind, out in (("phi", G), ("dphi", D)):
                K = max(self._order_for(kind, bmax), 0)
                orders.append(K)
                acc = self._series_block(kind, r0, r1, R, K)
                out[r0:r1, r0:] = acc
                out[r0:, r0:r1] = acc.T

        self._run_blocks(task)
        self.last_order = max(orders) if orders else 0
        self.last_quadrature_pairs = 0
        if far is not None:
            iu, ju = np.nonzero(np.triu(far, 1))
            self.last_quadrature_pairs = int(iu.size)
            if iu.size:
                self._fill_quadrature(rho, iu, ju, G, D)
        return G, D

    def _fill_quadrature(self, rho: np.ndarray, iu: np.ndarray, ju: np.ndarray,
                         G: np.ndarray, D: np.ndarray) -> None:
        su, sv, r = self.s[iu], self.s[ju], rho[iu, ju]
        for kind, out, d in (("phi", G, self.diag_phi), ("dphi", D, self.diag_dphi)):
            scale = np.sqrt(np.abs(d[iu] * d[ju]))
            scale = np.where(scale > 0, scale, 1.0)
            vals = _quad_pairs(self.act, kind, self.centring, su, sv, r, scale, self.tol)
            out[iu, ju] = vals
            out[ju, iu] = vals

    # --- public -----------------------------------------------------------------------
    def evaluate(self, Sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """G and Gdot for the covariance ``Sigma`` (n x n; its diagonal is ignored).

        Returns
        -------
        G : ndarray, shape (n, n)
            E[phi_c(u_i) phi_c(u_j)].
        Gdot : ndarray, shape (n, n)
            E[phi'(u_i) phi'(u_j)].
        """
        S = np.asarray(Sigma, float)
        rho = S / np.multiply.outer(self.s, self.s)
        np.clip(rho, -1.0, 1.0, out=rho)
        np.fill_diagonal(rho, 1.0)
        if self.method == "closed":
            G, D = self._closed_matrix(rho)
        elif self.method == "mehler":
            G, D = self._mehler(rho)
        else:
            iu, ju = np.triu_indices(self.n, 1)
            G = np.empty((self.n, self.n))
            D = np.empty((self.n, self.n))
            self._fill_quadrature(rho, iu, ju, G, D)
            self.last_order, self.last_quadrature_pairs = 0, int(iu.size)
        np.fill_diagonal(G, self.diag_phi)
        np.fill_diagonal(D, self.diag_dphi)
        return G, D
