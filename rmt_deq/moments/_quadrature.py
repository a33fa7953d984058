"""The float64 quadrature engine of the Gaussian moments (shared by the moment modules and
the four-equation solver; its inputs are trusted: a resolved Activation and tau > 0).

A composite Gauss-Legendre rule on xi in [-XI_MAX, XI_MAX] (the Gaussian tail beyond is
below 1e-31), with panel edges on a uniform grid in xi, on a geometric grid in x = tau xi
around the activation's bending scale, and at every kink: each panel holds a smooth
integrand, so the rule converges to rounding (docs/theory.md §3.5).  Vectorised over tau.

phi is integrated centred at phi(0) (P = phi - phi(0)), and V0 is the centred second
moment E[P^2] - E[P]^2: with phi(0) != 0 (sigmoid, softplus) the textbook
E[phi^2] - E[phi]^2 would cancel all its digits at small tau.  Stein's lemma
(docs/theory.md §3.4) is applied to phi' rather than to phi, which costs one power of
1/tau less in rounding at small tau; the error of every raw moment is estimated from the
size of the terms summed and of the error of phi and phi'.
"""
from __future__ import annotations

import math
import weakref
from functools import lru_cache

import numpy as np

from rmt_deq.activations import Activation
from rmt_deq.errors import DivergentMomentError

__all__ = ["XI_MAX", "NODES", "quadrature_rule", "origin", "centred_values", "v0_sums",
           "quadrature_raw", "second_central_moment", "guarded", "tail_check"]

_EPS = float(np.finfo(float).eps)
_U = 4.0 * _EPS        # error of one evaluation of phi or phi' (a few ulps) and of a node

XI_MAX = 12.0          # half-width of the xi domain (pdf(12) ~ 5e-32)
_XI_STEP = 0.5         # uniform panel width in xi
NODES = 16             # Gauss-Legendre nodes per panel of the accurate rule
_GL_X, _GL_W = np.polynomial.legendre.leggauss(NODES)
_X_GRID = np.concatenate([[0.0], 2.0 ** np.arange(-5, 7), -(2.0 ** np.arange(-5, 7))])
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TAIL_TOL = 1e-15      # max admissible |integrand| at |xi| = XI_MAX, relative to the moment
_TINY = 1e-300         # below this a moment (or a tail) counts as zero in the tail check


def quadrature_rule(act: Activation, tau: np.ndarray, nodes: int = NODES
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Nodes xi and weights w (pdf included) with sum(w * h(xi)) ~ E[h(xi)].

    Returns arrays of shape ``tau.shape + (N,)``; every tau gets the same number of
    nodes (edges outside the domain collapse to zero-width panels), so evaluation is one
    vectorised call.  ``nodes`` Gauss-Legendre nodes per panel (16: the accurate engine;
    fewer for sign scans).
    """
    gl_x, gl_w = (_GL_X, _GL_W) if nodes == NODES else _gauss_legendre(nodes)
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


def guarded(values: np.ndarray, what: str, act: Activation, tau: np.ndarray) -> np.ndarray:
    """``values`` (of ``what`` on the rule's nodes, shape ``tau.shape + (N,)``) if all are
    finite, else DivergentMomentError naming the first scales where they are not."""
    if not np.all(np.isfinite(values)):
        bad = np.atleast_1d(tau)[np.any(~np.isfinite(np.atleast_2d(values)), axis=-1)]
        raise DivergentMomentError(
            f"{what} of activation {act.name!r} is not finite at tau = {bad[:3]} "
            f"(phi overflows or returns NaN on the Gaussian range |x| <= {XI_MAX:g} tau); "
            f"its Gaussian moments do not exist there: use a slower-growing activation or "
            f"a smaller scale")
    return values


def tail_check(ends: np.ndarray, total: np.ndarray, what: str, act: Activation,
               tau: np.ndarray) -> None:
    """Raise if the integrand of ``what`` has not decayed at xi = +-XI_MAX.

    ``ends`` holds the integrand (without the Gaussian weight) at xi = -XI_MAX and +XI_MAX,
    shape ``tau.shape + (2,)``.  The neglected tail is about pdf(XI_MAX)/XI_MAX times it.
    """
    dens = np.max(np.abs(ends), axis=-1) * (_INV_SQRT_2PI * math.exp(-0.5 * XI_MAX ** 2))
    bad = ~np.isfinite(dens) | (dens > _TAIL_TOL * np.maximum(np.abs(total), _TINY))
    bad &= ~(dens <= _TINY)
    if np.any(bad):
        t = np.atleast_1d(tau)[np.atleast_1d(bad)]
        raise DivergentMomentError(
            f"{what} of activation {act.name!r} at tau = {t[:3]}: the Gaussian-weighted "
            f"integrand has not decayed at |xi| = {XI_MAX:g} (phi grows like exp(c x^2) or "
            f"faster), so the moment diverges or is not computable; choose an activation with "
            f"at most polynomial/sub-Gaussian growth or reduce tau")


_ORIGINS: "weakref.WeakKeyDictionary[Activation, tuple]" = weakref.WeakKeyDictionary()


def origin(act: Activation) -> tuple[float, float]:
    """(phi(0), phi'(0)): the centring constants of the engines (cached per activation)."""
    hit = _ORIGINS.get(act)
    if hit is None:
        zero = np.zeros(1)
        with np.errstate(all="ignore"):
            hit = (float(act.fn(zero)[0]), float(act.d1(zero)[0]))
        _ORIGINS[act] = hit
    return hit


def centred_values(act: Activation, x: np.ndarray, p0: float, d0: float
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


def v0_sums(w: np.ndarray, P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(E[P], E[P^2]): the one arithmetic of V0 = E[P^2] - E[P]^2 shared by every
    quadrature path."""
    return np.sum(w * P, axis=-1), np.sum(w * (P * P), axis=-1)


def quadrature_raw(act: Activation, tau: np.ndarray, with_error: bool = False) -> dict:
    """Centred raw moments (as :func:`rmt_deq.moments.result.moments_from_raw` reads them)
    by the composite rule, at each tau of a 1-d array.

    With ``with_error`` the result also holds ``"err"``: for each raw key an estimate of
    its absolute error, the sum over the nodes of |weight| times the error of the
    integrand, itself from the error of phi (a few ulps, plus phi(0)'s when P = phi - phi(0)
    is formed by subtraction) and of phi' (``act.d1_error`` for a numerical derivative).
    """
    tt = np.asarray(tau)
    p0, d0 = origin(act)
    ends_x = tt[..., None] * np.array([-XI_MAX, XI_MAX])
    with np.errstate(all="ignore"):
        # divergence first: a phi that overflows should be reported as such, not as NaN
        P_end, _, _, dphi_end = centred_values(act, ends_x, p0, d0)
    xi, w = quadrature_rule(act, tau)
    x = tt[..., None] * xi
    P, phi, D, dphi = centred_values(act, x, p0, d0)
    with np.errstate(all="ignore"):
        mP, P2 = v0_sums(w, P)
        h0 = np.sum(w * (dphi * dphi), axis=-1)
    tail_check(XI_MAX ** 2 * P_end ** 2, P2, "E[phi^2]", act, tau)
    tail_check(XI_MAX ** 2 * dphi_end ** 2, h0, "E[phi'^2]", act, tau)
    guarded(phi, "phi", act, tau)
    guarded(dphi, "phi'", act, tau)
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
    """Absolute error estimates of the raw sums of :func:`quadrature_raw`."""
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


def second_central_moment(act: Activation, tau: np.ndarray, nodes: int = NODES
                          ) -> np.ndarray:
    """V0(tau) = E[phi(tau xi)^2] - E[phi(tau xi)]^2 by the quadrature rule only, at each
    tau of a 1-d array.

    A light evaluation (no derivatives, no divergence checks) for scans over many tau,
    e.g. the uniqueness scan of the tau equation; it assumes the moments exist.  With the
    default ``nodes`` it is the same arithmetic as the V0 of :func:`quadrature_raw`;
    fewer nodes per panel make a cheaper, less accurate scan.
    """
    xi, w = quadrature_rule(act, tau, nodes)
    p0, d0 = origin(act)
    x = tau[..., None] * xi
    with np.errstate(all="ignore"):
        P = act.fn_shift(x) if act.fn_shift is not None else act.fn(x) - p0
        mP, P2 = v0_sums(w, P)
        return P2 - mP * mP
