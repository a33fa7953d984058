"""Engine "series": Gaussian moments at small tau from the Taylor series of phi at 0.

At small tau the quadrature rule cannot keep the digits of the centred and Stein-weighted
moments: phi(tau xi) - phi(0) and phi'(tau xi) - phi'(0) are rounded relative to phi(0),
phi'(0), and the Hermite-weighted sums are divided by tau^k.  For an analytic phi the
moments are instead exact functions of its Taylor coefficients a_k = phi^(k)(0)/k!: with
P(x) = sum_{k>=1} a_k x^k (so phi = a_0 + P) and m_j = E[xi^j] = (j-1)!! (j even),

    E[He_n(xi) Q(tau xi)] = sum_j q_j tau^j j!/(j-n)! m_{j-n}      (Stein on monomials)

for any polynomial Q (P, P^2, phi'^2), whose terms all have the sign of q_j m_{j-n}: no
cancellation at small tau.  The coefficients (to degree :data:`DEGREE`) come once per
activation from its mpmath implementation (``mpmath.taylor`` at 40 digits).

The series is asymptotic in tau (the Gaussian moments m_j grow like sqrt(j!)), so it is used
only below ``tau_max``: the largest tau on a geometric grid in [1e-6, 0.04] at which the
truncation (the change of every moment between degree DEGREE - 6 and DEGREE) is below
1e-17 of the moment's natural size, and where the series agrees with the quadrature engine
within the quadrature's error estimate (a check that the coefficients describe phi: an
activation with kinks, without ``mp_fn``, or failing this check gets no series).
The moments of a series are computed by Stein's lemma on monomials (docs/theory.md §3.4).
"""
from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field
from typing import Any

import mpmath as mp
import numpy as np

from rmt_deq._results import readonly
from rmt_deq.activations import Activation
from rmt_deq.moments._quadrature import quadrature_raw
from rmt_deq.moments.closed_forms import RAW_KEYS

__all__ = ["DEGREE", "TaylorSeries", "series_for", "series_raw"]

DEGREE = 30                 # Taylor degree of phi
_TRUNC = 6                  # truncation estimate: degree DEGREE - _TRUNC against DEGREE
_TAU_GRID = np.geomspace(0.04, 1e-6, 43)     # candidate thresholds, largest first
_TRUNC_TOL = 1e-17          # admissible truncation, relative to a moment's natural size
_TAYLOR_DPS = 40            # digits of mpmath.taylor (the coefficients are rounded to float64)
_EPS = float(np.finfo(float).eps)
_ROUNDING = 16.0 * _EPS     # rounding of a series moment, relative to the sum of |terms|
#: the cross-check with quadrature: the series must agree within this multiple of the two
#: engines' error estimates plus _CHECK_FLOOR of the moment's natural size
_CHECK_FACTOR = 4.0
_CHECK_FLOOR = 1e-14


def _gaussian_monomials(n: int) -> np.ndarray:
    """m_j = E[xi^j], j = 0..n (0 for odd j, (j-1)!! for even j)."""
    m = np.zeros(n + 1)
    m[0] = 1.0
    for j in range(2, n + 1, 2):
        m[j] = m[j - 2] * (j - 1)
    return m


_NMAX = 2 * DEGREE + 2
_MOM = _gaussian_monomials(_NMAX + 3)
#: _W[n][j] = E[He_n(xi) xi^j] = j!/(j-n)! m_{j-n}  (n = 0..3)
_W = np.zeros((4, _NMAX + 1))
for _n in range(4):
    for _j in range(_n, _NMAX + 1):
        _W[_n, _j] = math.perm(_j, _n) * _MOM[_j - _n]


@dataclass(frozen=True, eq=False)
class TaylorSeries:
    """Taylor coefficients of an activation at 0 and the range the series serves.

    Attributes
    ----------
    coeffs : ndarray
        a_0..a_DEGREE (float64, read-only).
    tau_max : float
        The series engine serves tau <= tau_max (0 when it is not used).
    reason : str
        Why the series is not used ("" when it is).
    """

    coeffs: np.ndarray = field(repr=False)
    tau_max: float
    reason: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "coeffs", readonly(self.coeffs, float))

    @property
    def usable(self) -> bool:
        """Whether the series engine serves any tau (tau_max > 0)."""
        return self.tau_max > 0


def _polys(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x-coefficients of P (a with a_0 = 0), P^2 and phi'^2."""
    p = a.copy()
    p[0] = 0.0
    d = np.arange(1, len(a)) * a[1:]
    return p, np.convolve(p, p), np.convolve(d, d)


def _raw_from(a: np.ndarray, tau: np.ndarray, with_error: bool) -> dict:
    """Centred raw moments of the series with coefficients ``a`` at each tau (1-d)."""
    p, p2, d2 = _polys(a)
    out: dict = {"p0": float(a[0])}
    err: dict = {}
    lt = np.log(tau)[:, None]

    def moment(q: np.ndarray, n: int, key: str) -> None:
        j = np.arange(len(q))
        with np.errstate(under="ignore"):
            terms = q * np.exp(j * lt) * _W[n, : len(q)]     # q_j tau^j E[He_n xi^j]
        out[key] = terms.sum(axis=1)
        if with_error:
            err[key] = _ROUNDING * np.abs(terms).sum(axis=1)

    moment(p, 0, "phi")
    moment(p, 1, "He1_phi")
    moment(p, 2, "He2_phi")
    moment(p, 3, "He3_phi")
    moment(p2, 0, "phi2")
    moment(p2, 2, "He2_phi2")
    moment(d2, 0, "dphi2")
    moment(d2, 2, "He2_dphi2")
    if with_error:
        out["err"] = err
    return out


def series_raw(ts: TaylorSeries, tau: Any, with_error: bool = False) -> dict:
    """Centred raw moments (as :func:`rmt_deq.moments.result.moments_from_raw` reads them)
    of the activation at each tau <= ``ts.tau_max``, shape of ``tau`` (1-d at least).

    With ``with_error``, ``"err"`` holds the rounding (16 eps times the sum of |terms|) plus
    the truncation estimate (the change from degree DEGREE - 6 to DEGREE).
    """
    t = np.atleast_1d(np.asarray(tau, float))
    flat = t.reshape(-1)
    full = _raw_from(ts.coeffs, flat, with_error)
    if with_error:
        low = _raw_from(ts.coeffs[: DEGREE + 1 - _TRUNC], flat, False)
        for key in RAW_KEYS:
            full["err"][key] = full["err"][key] + np.abs(full[key] - low[key])
    out = {"p0": full["p0"]}
    for key in RAW_KEYS:
        out[key] = full[key].reshape(t.shape)
    if with_error:
        out["err"] = {k: v.reshape(t.shape) for k, v in full["err"].items()}
    return out


def _natural_sizes(raw: dict, tau: np.ndarray) -> dict:
    """The size each raw moment is measured against (it may vanish, e.g. for odd phi):
    the rms of P (and of phi') times tau^n for a weight He_n."""
    sp = np.sqrt(np.abs(raw["phi2"]))
    sd = np.abs(raw["dphi2"])
    return {"phi": sp, "He1_phi": sp, "He2_phi": sp, "He3_phi": sp,
            "phi2": sp * sp, "He2_phi2": sp * sp, "dphi2": sd, "He2_dphi2": sd}


def _build(act: Activation) -> TaylorSeries:
    empty = np.zeros(DEGREE + 1)
    if act.mp_fn is None:
        return TaylorSeries(empty, 0.0, "no mpmath implementation (mp_fn)")
    if act.kinks or act.pieces is not None or act.closed_form is not None:
        return TaylorSeries(empty, 0.0, "kinked or with closed forms")
    try:
        with mp.workdps(_TAYLOR_DPS):
            c = mp.taylor(act.mp_fn, mp.mpf(0), DEGREE)
        a = np.array([float(v) for v in c])
    except Exception as exc:  # noqa: BLE001 - a phi mpmath cannot expand gets no series
        return TaylorSeries(empty, 0.0, f"mpmath.taylor failed: {exc}")
    if not np.all(np.isfinite(a)):
        return TaylorSeries(empty, 0.0, "non-finite Taylor coefficients")
    # the largest candidate tau whose truncation is below _TRUNC_TOL of the natural size
    full = _raw_from(a, _TAU_GRID, False)
    low = _raw_from(a[: DEGREE + 1 - _TRUNC], _TAU_GRID, False)
    size = _natural_sizes(full, _TAU_GRID)
    ok = np.ones(_TAU_GRID.size, bool)
    for key in RAW_KEYS:
        ok &= np.abs(full[key] - low[key]) <= _TRUNC_TOL * (np.abs(full[key]) + size[key])
    # the grid is decreasing: keep tau from the first index below which all pass
    bad = np.nonzero(~ok)[0]
    first = int(bad[-1]) + 1 if bad.size else 0
    if first >= _TAU_GRID.size:
        return TaylorSeries(a, 0.0, "the series does not converge fast enough at 1e-6")
    tau_max = float(_TAU_GRID[first])
    # cross-check against the quadrature engine at tau_max (coefficients describe phi)
    t = np.array([tau_max])
    quad = quadrature_raw(act, t, with_error=True)
    ser = series_raw(TaylorSeries(a, tau_max), t, with_error=True)
    for key in RAW_KEYS:
        dq = float(quad[key][0] + (quad["p0"] - ser["p0"] if key == "phi" else 0.0))
        tol = _CHECK_FACTOR * (float(quad["err"][key][0]) + float(ser["err"][key][0])) \
            + _CHECK_FLOOR * float(size[key][first])
        if not abs(dq - float(ser[key][0])) <= tol:
            return TaylorSeries(a, 0.0, f"the series disagrees with quadrature at tau = "
                                        f"{tau_max:.3g} ({key})")
    return TaylorSeries(a, tau_max)


#: the series by Activation object (weak: freed with it; the registry interns the
#: activations of spec strings, so every use of a spec shares one entry)
_SERIES: "weakref.WeakKeyDictionary[Activation, TaylorSeries]" = weakref.WeakKeyDictionary()


def series_for(act: Activation) -> TaylorSeries | None:
    """The (cached) usable :class:`TaylorSeries` of ``act``, or None when it has none."""
    if act.mp_fn is None or act.kinks or act.pieces is not None:
        return None
    ts = _SERIES.get(act)
    if ts is None:
        ts = _build(act)
        _SERIES[act] = ts
    return ts if ts.usable else None
