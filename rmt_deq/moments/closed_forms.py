"""Exact Gaussian moments: piecewise polynomials (ReLU family, hard tanh, polynomials) and erf.

The raw moments used throughout the package are, for xi ~ N(0, 1) and He_k the
probabilists' Hermite polynomials (He_1 = xi, He_2 = xi^2 - 1, He_3 = xi^3 - 3 xi)::

    "phi"       E[phi(tau xi)]
    "He1_phi"   E[He_1(xi) phi(tau xi)]          (= tau E[phi'] by Stein)
    "He2_phi"   E[He_2(xi) phi(tau xi)]          (= tau^2 E[phi''])
    "He3_phi"   E[He_3(xi) phi(tau xi)]          (= tau^3 E[phi'''])
    "phi2"      E[phi(tau xi)^2]
    "He2_phi2"  E[He_2(xi) phi(tau xi)^2]        (= tau^2 E[(phi^2)''])
    "dphi2"     E[phi'(tau xi)^2]
    "He2_dphi2" E[He_2(xi) phi'(tau xi)^2]       (= tau^2 E[(phi'^2)''])

For a piecewise polynomial every one of these is, through Stein's lemma and exact
distributional derivatives (docs/theory.md §3.4, §3.6), a finite sum of point terms at the
breakpoints and of truncated Gaussian moments int_a^b xi^j pdf(xi) d xi, which are computed
exactly (recursion on half-lines, a 40-point Gauss-Legendre rule -- exact for these
polynomial-times-Gaussian integrands to rounding -- on finite pieces, avoiding the
cancellation of the recursion on short intervals).
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence

import numpy as np
from numpy.polynomial import hermite_e as He
from numpy.polynomial import polynomial as P
from scipy import special

from rmt_deq.activations import PolyPiece

__all__ = ["RAW_KEYS", "CLOSED_FORMS", "truncated_normal_moments", "piecewise_raw_moments",
           "erf_raw_moments", "shifted_pieces"]

RAW_KEYS = ("phi", "He1_phi", "He2_phi", "He3_phi", "phi2", "He2_phi2", "dphi2", "He2_dphi2")

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_EPS = float(np.finfo(float).eps)
_GL_NODES = 40          # Gauss-Legendre nodes per unit panel of a finite piece
_GL_X, _GL_W = np.polynomial.legendre.leggauss(_GL_NODES)
_XI_CLIP = 40.0         # beyond |xi| = 40 the Gaussian density is below 1e-300
_ROUNDING = 8.0 * _EPS  # error of a moment, relative to its sum of |terms|
_UNIT = [[0] * r + [1] for r in range(4)]  # He_r in the Hermite-e basis
_HERMITE_MONO = [He.herme2poly(u) for u in _UNIT]  # He_r in the monomial basis


def _pdf(x: float) -> float:
    return 0.0 if math.isinf(x) else _INV_SQRT_2PI * math.exp(-0.5 * x * x)


def truncated_normal_moments(a: float, b: float, jmax: int) -> np.ndarray:
    """M_j = int_a^b xi^j pdf(xi) d xi for j = 0..jmax (a < b, either may be infinite)."""
    out = np.zeros(jmax + 1)
    if not a < b:
        return out
    if math.isfinite(a) and math.isfinite(b):
        # composite Gauss-Legendre on unit panels, clipped where the Gaussian is < 1e-300
        lo, hi = max(a, -_XI_CLIP), min(b, _XI_CLIP)
        if lo >= hi:
            return out
        npan = max(1, int(math.ceil(hi - lo)))
        edges = np.linspace(lo, hi, npan + 1)
        half = 0.5 * np.diff(edges)
        x = (0.5 * (edges[:-1] + edges[1:]))[:, None] + half[:, None] * _GL_X
        w = (half[:, None] * _GL_W) * _INV_SQRT_2PI * np.exp(-0.5 * x * x)
        x, w = x.ravel(), w.ravel()
        pw = np.ones_like(x)
        for j in range(jmax + 1):
            out[j] = np.dot(w, pw)
            pw = pw * x
        return out
    # at least one infinite end: the recursion M_j = (j-1) M_{j-2} + a^{j-1}pdf(a) - b^{j-1}pdf(b)
    if a >= 0:
        out[0] = special.ndtr(-a) - special.ndtr(-b)
    else:
        out[0] = special.ndtr(b) - special.ndtr(a)
    pa, pb = _pdf(a), _pdf(b)
    if jmax >= 1:
        out[1] = pa - pb
    for j in range(2, jmax + 1):
        ta = a ** (j - 1) * pa if pa else 0.0
        tb = b ** (j - 1) * pb if pb else 0.0
        out[j] = (j - 1) * out[j - 2] + ta - tb
    return out


def _poly_in_xi(coeffs: np.ndarray, tau: float) -> np.ndarray:
    """Coefficients in xi of x -> poly(x) evaluated at x = tau xi (inf where they overflow:
    the callers report a moment that is not finite)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return coeffs * tau ** np.arange(len(coeffs))


def _der(c: np.ndarray, k: int) -> np.ndarray:
    return P.polyder(c, k) if k < len(c) else np.zeros(1)


def _hermite_pdf(r: int, y: float) -> float:
    """He_r(y) pdf(y); pdf^(r)(y) = (-1)^r He_r(y) pdf(y)."""
    return float(He.hermeval(y, _UNIT[r])) * _pdf(y)


@lru_cache(maxsize=256)
def _piecewise_plan(pieces: tuple) -> tuple:
    """tau-independent parts of the eight raw moments of a piecewise polynomial.

    For each raw key (F, k) with F in {phi, phi^2, phi'^2}: the x-coefficients of F and of
    F^(k) on each piece, and the jump terms (kappa, r, [F^(j)]_kappa) of the distributional
    derivative.
    """
    phi = [np.array(pc.coeffs, float) for pc in pieces]
    fam = {"phi": phi, "phi2": [P.polymul(c, c) for c in phi],
           "dphi2": [P.polymul(_der(c, 1), _der(c, 1)) for c in phi]}
    spec = {"phi": ("phi", 0), "He1_phi": ("phi", 1), "He2_phi": ("phi", 2),
            "He3_phi": ("phi", 3), "phi2": ("phi2", 0), "He2_phi2": ("phi2", 2),
            "dphi2": ("dphi2", 0), "He2_dphi2": ("dphi2", 2)}
    kappas = [pc.hi for pc in pieces[:-1]]
    plan, jmax = {}, 0
    for key, (F, k) in spec.items():
        derivs = [_der(c, k) for c in fam[F]]
        jmax = max(jmax, max(len(c) for c in fam[F]) - 1 + k)
        jl = []
        for i, kappa in enumerate(kappas):
            for j in range(k):
                jump = float(P.polyval(kappa, _der(fam[F][i + 1], j))
                             - P.polyval(kappa, _der(fam[F][i], j)))
                if jump:
                    jl.append((kappa, k - 1 - j, jump))
        plan[key] = (k, fam[F], derivs, jl)
    bounds = [(pc.lo, pc.hi) for pc in pieces]
    return bounds, plan, jmax


def _stein_form(k: int, F: list, Ms: list, t: float, As: list | None = None
                ) -> tuple[float, float, float]:
    """E[He_k(xi) F(tau xi)] summed over pieces; the sum of |terms| (its rounding scale,
    which picks the form); and, given the absolute moments ``As``, the sum of
    |coefficient| x absolute moment (the error scale of the truncated moments themselves)."""
    val = mag = amag = 0.0
    for i, (c, M) in enumerate(zip(F, Ms)):
        poly = P.polymul(_HERMITE_MONO[k], _poly_in_xi(c, t))
        terms = poly * M[: len(poly)]
        val += float(np.sum(terms))
        mag += float(np.sum(np.abs(terms)))
        if As is not None:
            amag += float(np.sum(np.abs(poly) * As[i][: len(poly)]))
    return val, mag, amag


def _distributional_form(k: int, derivs: list, jumps: list, Ms: list,
                         t: float, As: list | None = None) -> tuple[float, float, float]:
    """tau^k E[F^(k)(tau xi)] with jump terms; the sum of |terms|; its error scale."""
    val = mag = amag = 0.0
    for i, (d, M) in enumerate(zip(derivs, Ms)):
        poly = _poly_in_xi(d, t)
        terms = poly * M[: len(d)]
        val += float(np.sum(terms))
        mag += float(np.sum(np.abs(terms)))
        if As is not None:
            amag += float(np.sum(np.abs(poly) * As[i][: len(d)]))
    for kappa, r, jump in jumps:
        term = jump * t ** (-(r + 1)) * _hermite_pdf(r, kappa / t)
        val += term
        mag += abs(term)
        amag += abs(term)
    scale = t ** k
    return scale * val, scale * mag, scale * amag


def _absolute_moments(a: float, b: float, jmax: int) -> np.ndarray:
    """int_a^b |xi|^j pdf(xi) d xi for j = 0..jmax (the error scale of M_j)."""
    if a < 0.0 < b:
        return np.abs(truncated_normal_moments(a, 0.0, jmax)) + \
            truncated_normal_moments(0.0, b, jmax)
    return np.abs(truncated_normal_moments(a, b, jmax))


def piecewise_raw_moments(pieces: Sequence[PolyPiece], tau: np.ndarray,
                          with_error: bool = False) -> dict:
    """Exact raw moments (see module docstring) of a piecewise polynomial, for each tau.

    Each Hermite-weighted moment E[He_k(xi) F(tau xi)] has two exact expressions: the
    direct one (He_k times F integrated piece by piece), and Stein's lemma read backwards,
    tau^k E[F^(k)(tau xi)], with the exact distributional derivative (the piecewise
    derivative plus, at each breakpoint kappa, sum_j [F^(j)]_kappa delta^(k-1-j)(x - kappa),
    where E[delta^(r)(tau xi - kappa)] = tau^-(r+1) He_r(kappa/tau) pdf(kappa/tau)).
    They cancel in opposite regimes (the first at small tau, the second when a piece is
    narrow compared with tau), so both are evaluated and the one whose sum of absolute
    terms -- its rounding-error scale -- is smaller is returned.  With ``with_error`` the
    result also holds ``"err"``: 8 eps times that sum for each key (the truncated moments
    and the polynomial coefficients carry a few ulps each).
    """
    tau = np.atleast_1d(np.asarray(tau, float))
    pieces = tuple(pieces)
    k_hom = homogeneous_degree(pieces)
    if k_hom is not None:
        # phi(tau x) = tau^k phi(x): every raw moment is a power of tau times its value at
        # tau = 1 (exact; the unit values are computed once per activation)
        unit, unit_mag = _unit_raw_moments(pieces)
        # F = phi: tau^k;  F = phi^2: tau^(2k);  F = phi'^2: tau^(2k - 2)
        t_k = tau ** k_hom
        t_2k = t_k * t_k
        scale = {"phi": t_k, "phi2": t_2k, "dphi2": t_2k / (tau * tau)}
        out, err = {}, {}
        for key in RAW_KEYS:
            sc = scale[_RAW_FUNCTION[key]]
            out[key] = unit[key] * sc
            if with_error:
                err[key] = (_ROUNDING * unit_mag[key]) * sc
        if with_error:
            out["err"] = err
        return out
    out, mag = _piecewise_raw_direct(pieces, tau, with_error)
    if with_error:
        out["err"] = {key: _ROUNDING * mag[key] for key in RAW_KEYS}
    return out


@lru_cache(maxsize=256)
def shifted_pieces(pieces: tuple, p0: float) -> tuple:
    """The pieces of phi - p0 (the constant coefficient of every piece lowered by p0).

    The engines integrate phi centred at p0 = phi(0): at small tau its moments then keep
    their digits instead of cancelling against p0.
    """
    if p0 == 0.0:
        return tuple(pieces)
    out = []
    for pc in pieces:
        c = list(pc.coeffs) or [0.0]
        c[0] = c[0] - p0
        out.append(type(pc)(pc.lo, pc.hi, tuple(c)))
    return tuple(out)


#: raw key -> the function F whose Hermite-weighted moment it is
_RAW_FUNCTION = {"phi": "phi", "He1_phi": "phi", "He2_phi": "phi", "He3_phi": "phi",
                 "phi2": "phi2", "He2_phi2": "phi2", "dphi2": "dphi2", "He2_dphi2": "dphi2"}


@lru_cache(maxsize=256)
def homogeneous_degree(pieces: Sequence[PolyPiece]) -> int | None:
    """k if phi(t x) = t^k phi(x) for all t > 0 (pieces split only at 0, each a monomial
    of the same degree k >= 1), else None.  The ReLU family has k = 1."""
    degrees = set()
    for pc in pieces:
        if (math.isfinite(pc.lo) and pc.lo != 0.0) or (math.isfinite(pc.hi) and pc.hi != 0.0):
            return None
        nz = [j for j, c in enumerate(pc.coeffs) if c != 0.0]
        if len(nz) > 1:
            return None
        degrees.update(nz)
    if len(degrees) != 1 or 0 in degrees:
        return None
    return degrees.pop()


@lru_cache(maxsize=256)
def _unit_raw_moments(pieces: tuple) -> tuple[dict, dict]:
    unit, mag = _piecewise_raw_direct(pieces, np.ones(1), True)
    return ({k: float(v[0]) for k, v in unit.items()},
            {k: float(v[0]) for k, v in mag.items()})


def _piecewise_raw_direct(pieces: tuple, tau: np.ndarray, with_error: bool = False
                         ) -> tuple[dict, dict]:
    """piecewise_raw_moments without the homogeneity shortcut; also, with ``with_error``,
    the error scale of each value (sums of |coefficient| x absolute truncated moment)."""
    bounds, plan, jmax = _piecewise_plan(tuple(pieces))
    out = {k: np.empty(tau.shape) for k in RAW_KEYS}
    mag = {k: np.zeros(tau.shape) for k in RAW_KEYS}
    for idx, t in np.ndenumerate(tau):
        t = float(t)
        Ms = [truncated_normal_moments(lo / t, hi / t, jmax) for lo, hi in bounds]
        As = [_absolute_moments(lo / t, hi / t, jmax) for lo, hi in bounds] \
            if with_error else None
        for key in RAW_KEYS:
            k, F, derivs, jumps = plan[key]
            v_s, m_s, a_s = _stein_form(k, F, Ms, t, As)
            if k == 0:
                out[key][idx], mag[key][idx] = v_s, a_s
                continue
            v_d, m_d, a_d = _distributional_form(k, derivs, jumps, Ms, t, As)
            out[key][idx], mag[key][idx] = (v_d, a_d) if m_d < m_s else (v_s, a_s)
    return out, mag


def erf_raw_moments(tau: np.ndarray) -> dict:
    """Exact raw moments of phi = erf (odd, so the odd-order-weight moments vanish).

    E[erf(tau xi)^2] = (2/pi) arcsin(2 tau^2 / (1 + 2 tau^2)) is evaluated as
    (2/pi) arctan(2 tau^2 / sqrt(1 + 4 tau^2)): the arcsine of an argument near 1 would
    turn its rounding into an error of sqrt(eps) at large tau.
    """
    tau = np.atleast_1d(np.asarray(tau, float))
    t2 = tau * tau
    b1, b2 = 1.0 + 2.0 * t2, 1.0 + 4.0 * t2
    two_over_sqrtpi = 2.0 / math.sqrt(math.pi)
    zero = np.zeros_like(tau)
    return {
        "phi": zero,
        "He1_phi": tau * two_over_sqrtpi / np.sqrt(b1),                   # tau E[phi']
        "He2_phi": zero.copy(),
        "He3_phi": -2.0 * two_over_sqrtpi * tau ** 3 * b1 ** -1.5,        # tau^3 E[phi''']
        "phi2": 2.0 / math.pi * np.arctan(2.0 * t2 / np.sqrt(b2)),
        "He2_phi2": 8.0 * t2 / (math.pi * b1 * np.sqrt(b2)),
        "dphi2": 4.0 / (math.pi * np.sqrt(b2)),
        "He2_dphi2": -16.0 * t2 / math.pi * b2 ** -1.5,
    }


#: closed forms of the raw moments by the name an activation gives in ``closed_form``
CLOSED_FORMS = {"erf": erf_raw_moments}
