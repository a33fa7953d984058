"""Engine "table": cached piecewise-Chebyshev interpolants of the Gaussian moments.

Per activation, the nine moments of :class:`rmt_deq.moments.result.GaussianMoments` are
interpolated in s = log tau on TABLE_TAU_RANGE from the quadrature engine
(:mod:`rmt_deq.moments._quadrature`), and validated against that engine at off-node points
before use; an activation whose table fails validation is never served from it.  The
four-equation solver uses the table for smooth activations (Newton steps, uniqueness scan,
moments at the root); ``gaussian_moments(..., method="table")`` exposes it.

Tables are cached per Activation object (weakly: a table is freed with its activation).
The registry interns the activation of a spec string (:func:`rmt_deq.activations.get_activation`
returns the same object for the same spec), so every use of ``"tanh"`` shares one table,
and re-registering a name gives a new activation, hence a new table.
"""
from __future__ import annotations

import math
import time
import weakref
from bisect import bisect_left, bisect_right
from typing import Any

import numpy as np

from rmt_deq.activations import Activation, ActivationLike, get_activation
from rmt_deq.errors import DivergentMomentError
from rmt_deq.moments._engines import numerical_raw
from rmt_deq.moments._quadrature import quadrature_raw
from rmt_deq.moments.result import FIELDS, GaussianMoments, moments_from_raw

__all__ = ["TABLE_TAU_RANGE", "MomentTable", "moment_table", "table_moments",
           "clear_table_cache"]

TABLE_TAU_RANGE = (5e-2, 1e3)   # tau range covered by a moment table
_TABLE_FIELDS = FIELDS
_TABLE_PANELS = 21              # panels of equal width in s = log tau (0.47 each)
_TABLE_DEGREES = (16, 24, 32)   # Chebyshev points per panel tried, in order
_TABLE_REL_TOL = 2e-15          # validation: relative part of the admissible error
# validation points in y: cos(k pi / 8), k = 0, 1, 3, 4, 5, 7, 8 -- extrema of T_n for every n
# in _TABLE_DEGREES (midway between interpolation nodes, and the panel ends), where the
# interpolation error peaks
_TABLE_PROBES = (1.0, 0.9238795325112867, 0.3826834323650898, 0.0, -0.3826834323650898,
                 -0.9238795325112867, -1.0)
#: the uniqueness-scan lattice: tau_lo 10^(k / _SCAN_PER_DECADE) (5 points per decade of q)
_SCAN_PER_DECADE = 10.0
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
    error_factor : ndarray
        Per field, the multiple of the admissible error (2e-15 relative or the quadrature's
        rounding floor, :meth:`_noise_floor`) that bounds the table's error: 2 (the
        interpolation, validated to 1) plus the largest ratio of the quadrature engine's
        own error estimate to the admissible error at the validation points.
    reason : str
        Why the table is invalid or its range shortened ("" otherwise).
    p0, d0 : float
        phi(0) and phi'(0), the centring constants of the engines (NaN when the build
        failed before evaluating them).
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
        self.p0 = self.d0 = math.nan
        self.scan_tau = self.scan_q = self.scan_v0 = np.zeros(0)
        self._scan_tau_list: list = []
        self._coef = np.zeros((_TABLE_PANELS, len(_TABLE_FIELDS), 1))
        self._coef_v0 = self._coef[:, 2, :]
        self._k = np.zeros(1)
        self.error_factor = np.full(len(_TABLE_FIELDS), math.inf)
        try:
            zero = np.zeros(1)
            with np.errstate(all="ignore"):
                p0, d0 = float(act.fn(zero)[0]), float(act.d1(zero)[0])
            if not (math.isfinite(p0) and math.isfinite(d0)):
                raise DivergentMomentError("phi or phi' is not finite at 0")
            probes = np.array(_TABLE_PROBES)
            tau_probe = edges[:-1, None] * np.exp(0.5 * (probes[None, :] + 1.0) * widths[:, None])
            ref, ref_err = self._direct(act, tau_probe, with_error=True)
            self.p0, self.d0, self._kinked = p0, d0, bool(act.kinks)
            floor = self._noise_floor(ref, tau_probe, p0, d0, kinked=bool(act.kinks))
            admissible = _TABLE_REL_TOL * np.abs(ref) + floor
            with np.errstate(all="ignore"):
                ratio = np.where(ref_err == 0.0, 0.0, ref_err / admissible)
            best = None
            for n in _TABLE_DEGREES:
                y = np.cos(math.pi * (np.arange(n) + 0.5) / n)
                tau_nodes = edges[:-1, None] * np.exp(0.5 * (y[None, :] + 1.0) * widths[:, None])
                vals = self._direct(act, tau_nodes)[0]                # (Q, P, n)
                coef = _chebyshev_coefficients(vals)
                self._coef, self._k = coef, np.arange(n, dtype=float)
                got = self._evaluate(tau_probe.reshape(-1)).reshape(ref.shape)
                with np.errstate(divide="ignore", invalid="ignore"):
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
                r = ratio[:, first:, :].reshape(len(_TABLE_FIELDS), -1)
                self.error_factor = 2.0 + np.max(np.where(np.isfinite(r), r, np.inf), axis=1)
                if first > 0:
                    self.reason = (f"panels below tau = {self.tau_lo:.3g} did not validate "
                                   f"(range starts there)")
                # V0 on a fixed geometric lattice (10 points per decade of tau, i.e. 5 per
                # decade of q = tau^2) for the solver's uniqueness scan
                decades = math.log10(TABLE_TAU_RANGE[1] / TABLE_TAU_RANGE[0])
                # (+ 1e-9: the last point is kept despite the rounding of the logarithm)
                k = np.arange(int(math.floor(_SCAN_PER_DECADE * decades + 1e-9)) + 1)
                lat = TABLE_TAU_RANGE[0] * 10.0 ** (k / _SCAN_PER_DECADE)
                self.scan_tau = lat[(lat >= self.tau_lo) & (lat <= self.tau_hi)]
                self.scan_q = self.scan_tau ** 2
                self.scan_v0 = self.v0(self.scan_tau)
                self._scan_tau_list = self.scan_tau.tolist()
        except (DivergentMomentError, FloatingPointError, ValueError) as exc:
            self.valid, self.reason = False, f"quadrature failed on the table range: {exc}"
        self.build_seconds = time.perf_counter() - t_start

    # -- construction helpers --------------------------------------------------------------
    @staticmethod
    def _direct(act: Activation, tau: np.ndarray, with_error: bool = False
                ) -> tuple[np.ndarray, np.ndarray | None]:
        """The quadrature engine's fields at tau, stacked: shape (Q,) + tau.shape; and
        their error estimates (same shape) when ``with_error``."""
        flat = tau.reshape(-1)
        m = moments_from_raw(quadrature_raw(act, flat, with_error), flat, "quadrature")
        shape = (len(_TABLE_FIELDS),) + tau.shape
        out = np.stack([np.asarray(getattr(m, f), dtype=float) for f in _TABLE_FIELDS])
        if not np.all(np.isfinite(out)):
            raise DivergentMomentError("non-finite moments on the table range")
        err = None
        if with_error:
            err = np.stack([np.asarray(m.errors[f], dtype=float)
                            for f in _TABLE_FIELDS]).reshape(shape)
        return out.reshape(shape), err

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

    def errors(self, tau: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Error estimates of the fields ``values`` (shape (Q, N)) at tau (shape (N,)):
        ``error_factor`` times the admissible error of the validation."""
        floor = self._noise_floor(values, tau, self.p0, self.d0, kinked=self._kinked)
        return self.error_factor[:, None] * (_TABLE_REL_TOL * np.abs(values) + floor)

    def moments(self, tau: Any, with_errors: bool = False) -> GaussianMoments:
        """:class:`GaussianMoments` (method ``"table"``) at tau (scalar or array) in range;
        with ``with_errors`` their error estimates too (:meth:`errors`)."""
        if np.ndim(tau) == 0:
            vals = self.values(float(tau))
            errors = None
            if with_errors:
                e = self.errors(np.array([float(tau)]), vals[:, None])[:, 0]
                errors = dict(zip(_TABLE_FIELDS, e.tolist()))
            return GaussianMoments(tau=float(tau), **dict(zip(_TABLE_FIELDS, vals.tolist())),
                                   method="table", errors=errors)
        t = np.asarray(tau, dtype=float)
        v = self._evaluate(t.reshape(-1))
        errors = None
        if with_errors:
            e = self.errors(t.reshape(-1), v)
            errors = {f: row.reshape(t.shape) for f, row in zip(_TABLE_FIELDS, e)}
        return GaussianMoments(tau=t, **{f: row.reshape(t.shape)
                                         for f, row in zip(_TABLE_FIELDS, v)}, method="table",
                               errors=errors)


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


#: tables by Activation object (weak: freed with the object)
_TABLES: "weakref.WeakKeyDictionary[Activation, MomentTable]" = weakref.WeakKeyDictionary()


def moment_table(activation: ActivationLike) -> MomentTable:
    """The (cached) :class:`MomentTable` of an activation; built on first request.

    The cache lives in this process, per Activation object; a spec string resolves to the
    registry's interned activation, so ``"tanh"`` reuses one table however often it is
    passed.  Check ``table.valid`` before use; an invalid table records ``reason``.
    """
    act = get_activation(activation)
    tab = _TABLES.get(act)
    if tab is None:
        tab = MomentTable(act)
        _TABLES[act] = tab
    return tab


def clear_table_cache() -> None:
    """Forget every cached table (the next :func:`moment_table` builds again; for
    measuring the one-off cost of a build)."""
    _TABLES.clear()


def table_moments(act: Activation, tau: np.ndarray, with_errors: bool = False
                  ) -> GaussianMoments:
    """Fields from the table where it covers tau, from the quadrature engine (with the
    series engine below its threshold) elsewhere; ``method`` names the engines used."""
    tab = moment_table(act)
    flat = tau.reshape(-1)
    inside = (flat >= tab.tau_lo) & (flat <= tab.tau_hi) if tab.valid else np.zeros(flat.size, bool)
    if np.all(inside):
        return tab.moments(tau, with_errors)
    raw, used = numerical_raw(act, flat[~inside], with_errors)
    direct = moments_from_raw(raw, flat[~inside], used)
    if not np.any(inside):
        return GaussianMoments(
            tau=tau, **{f: np.asarray(getattr(direct, f)).reshape(tau.shape)
                        for f in _TABLE_FIELDS}, method=used,
            errors=None if not with_errors else
            {f: np.asarray(direct.errors[f]).reshape(tau.shape) for f in _TABLE_FIELDS})
    out, errs = {}, {}
    vals = tab._evaluate(flat[inside])
    verr = tab.errors(flat[inside], vals) if with_errors else None
    for q, f in enumerate(_TABLE_FIELDS):
        col = np.empty(flat.size)
        col[inside], col[~inside] = vals[q], np.asarray(getattr(direct, f))
        out[f] = col.reshape(tau.shape)
        if with_errors:
            ecol = np.empty(flat.size)
            ecol[inside], ecol[~inside] = verr[q], np.asarray(direct.errors[f])
            errs[f] = ecol.reshape(tau.shape)
    return GaussianMoments(tau=tau, **out, method=f"table+{used}",
                           errors=errs if with_errors else None)
