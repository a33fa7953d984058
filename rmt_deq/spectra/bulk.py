"""The limiting bulk of a kernel surrogate ``c1 X^T X + V L V^T + c0 I``: density, support,
atom and cumulative distribution function (docs/theory.md §7.1, §7.4).

A surrogate of that form (the CK of docs/theory.md §4, the NTK of §5, or anything with a
(K+1) x (K+1) low-rank part L) has the bulk of ``c1 X^T X + c0``: the low-rank part
V L V^T does not move it (it creates isolated eigenvalues, see
:mod:`rmt_deq.spectra.spikes`).  :func:`kernel_bulk` maps the density, the support and the
atom of X^T X (:mod:`rmt_deq.spectra.stieltjes`) accordingly.

About the atom (n > p, docs/theory.md §7.4).  The surrogate has an atom of mass 1 - p/n at
c0.  The *exact* infinite-width kernel spreads these n - p eigenvalues over a width
O(p^{-1/2}) around c0 (the fluctuating part of the higher Hermite terms, absent from the
surrogate), so a Kolmogorov-Smirnov distance to the exact spectrum is large at the atom even
though the 1-Wasserstein distance is small.  The package reports the atom as its mass and
position (``atom``, ``atom_at``) and the absolutely continuous part as the density; the CDF
(:meth:`BulkSpectrum.cdf`) includes the atom as a jump, which is what the distances of
:func:`rmt_deq.metrics.spectral_distances` compare observed eigenvalues with; plots may draw
the atom Gaussian-smoothed with a width chosen by the caller (see
:func:`rmt_deq.plotting.plot_spectrum`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from rmt_deq._io import json_ready
from rmt_deq._results import readonly
from rmt_deq._validation import as_real_array, check_positive_finite
from rmt_deq.errors import InvalidParameterError, NonFiniteInputError, ShapeMismatchError
from rmt_deq.spectra.model import GramModel
from rmt_deq.spectra.stieltjes import (ETA_MIN_REL, check_grid_memory, gram_density,
                                       gram_support)

__all__ = ["BulkSpectrum", "kernel_bulk", "as_low_rank_coefficients"]

#: names under which coefficient objects carry the (K+1) x (K+1) low-rank matrix, in the
#: order they are looked up
LOW_RANK_KEYS = ("A", "D", "low_rank")
#: half-width of the default grid around c0 of a kernel with c1 = 0 (no bulk: only the atom)
_ATOM_ONLY_HALF_WIDTH = 1.0


def as_low_rank_coefficients(coefficients: Any) -> tuple[float, np.ndarray, float]:
    """(c1, L, c0) of a surrogate ``c1 X^T X + V L V^T + c0 I`` (docs/theory.md §7.1).

    Duck-typed: accepts any object with attributes ``c1``, ``c0`` and one of ``A``/``D``/
    ``low_rank`` ((K+1) x (K+1)) -- the coefficients of the CK surrogate (docs/theory.md
    §4) and of the NTK surrogate (§5) are such objects --, a mapping with those keys, or
    a tuple (c1, L, c0).

    Returns
    -------
    (c1, L, c0)
        Finite floats and the symmetrised low-rank matrix (a new array).

    Raises
    ------
    InvalidParameterError, ShapeMismatchError, NonFiniteInputError
    """
    if isinstance(coefficients, tuple) and len(coefficients) == 3:
        c1, L, c0 = coefficients
    else:
        get = (coefficients.get if isinstance(coefficients, dict)
               else lambda k, d=None: getattr(coefficients, k, d))
        c1, c0 = get("c1"), get("c0")
        L = None
        for key in LOW_RANK_KEYS:
            L = get(key)
            if L is not None:
                break
        if c1 is None or c0 is None or L is None:
            raise InvalidParameterError(
                f"coefficients must provide c1, c0 and a (K+1) x (K+1) low-rank matrix "
                f"(A, D or low_rank); got {type(coefficients).__name__}")
    try:
        c1, c0 = float(c1), float(c0)
    except (TypeError, ValueError):
        raise InvalidParameterError("c1 and c0 must be real numbers") from None
    L = as_real_array(L, "low-rank matrix")
    if L.ndim != 2 or L.shape[0] != L.shape[1] or L.shape[0] < 2:
        raise ShapeMismatchError(f"the low-rank matrix must be (K+1) x (K+1); got {L.shape}")
    if not (math.isfinite(c1) and math.isfinite(c0)):
        raise NonFiniteInputError("c1 and c0 must be finite")
    return c1, 0.5 * (L + L.T), c0


@dataclass(frozen=True, eq=False)
class BulkSpectrum:
    """Limiting spectrum (bulk and atom) of ``c1 X^T X + c0 I`` (+ any low-rank part).

    Immutable: every array is read-only.  It is a spectral distribution in the sense of
    :func:`rmt_deq.metrics.spectral_distances` (``cdf``, ``quantile``, ``atom``,
    ``atom_at``, ``width``).

    Attributes
    ----------
    x : ndarray, shape (N,)
        Grid (eigenvalue units of the kernel).
    density : ndarray, shape (N,)
        Density of the absolutely continuous part on the grid; integrates to 1 - atom.
    support : tuple of (lo, hi)
        Support intervals of the absolutely continuous part (kernel units, increasing).
    atom : float
        Mass of the point atom (max(0, 1 - p_eff/n)), 0 if none.
    atom_at : float
        Its position, c0.
    c1, c0 : float
        The kernel is c1 X^T X + c0 I (+ low rank).
    gram_support : tuple of (lo, hi)
        Support of the bulk of X^T X (its own units).
    model : GramModel
    cdf_x, cdf_values : ndarray
        Nodes (Chebyshev-clustered at the edges) and values of the cumulative distribution
        function of the bulk + atom, for :meth:`cdf` and :meth:`quantile`.
    mass : float
        Numerical integral of the density (should be 1 - atom; the difference is reported
        as ``mass_error``).
    mass_error : float
    eta_min : float
        Im z of the density evaluation (X^T X units).
    """

    x: np.ndarray
    density: np.ndarray
    support: tuple
    atom: float
    atom_at: float
    c1: float
    c0: float
    gram_support: tuple
    model: GramModel = field(repr=False)
    cdf_x: np.ndarray = field(repr=False)
    cdf_values: np.ndarray = field(repr=False)
    mass: float
    mass_error: float
    eta_min: float

    @property
    def width(self) -> float:
        """Extent of the spectrum (hull of the support and the atom)."""
        lo = min([a for a, _ in self.support] + ([self.atom_at] if self.atom > 0 else []))
        hi = max([b for _, b in self.support] + ([self.atom_at] if self.atom > 0 else []))
        return float(hi - lo)

    def cdf(self, y: Any) -> np.ndarray:
        """Cumulative distribution function of the limiting spectrum (right-continuous;
        linear between the nodes ``cdf_x``, a jump at the atom)."""
        y = np.asarray(y, dtype=float)
        xs, F = self.cdf_x, self.cdf_values
        # right-continuous: at a jump (repeated node) take the upper value
        idx = np.searchsorted(xs, y, side="right")
        out = np.where(idx == 0, 0.0, 1.0)
        inner = (idx > 0) & (idx < xs.size)
        i = idx[inner]
        x0, x1 = xs[i - 1], xs[i]
        f0, f1 = F[i - 1], F[i]
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.where(x1 > x0, (y[inner] - x0) / (x1 - x0), 1.0)
        out = out.astype(float)
        out[inner] = f0 + t * (f1 - f0)
        out[idx >= xs.size] = F[-1]
        return out

    def quantile(self, t: Any) -> np.ndarray:
        """Quantile function (generalised inverse of :meth:`cdf`), t in [0, 1]."""
        t = np.clip(np.asarray(t, dtype=float), 0.0, 1.0)
        return np.interp(t, self.cdf_values, self.cdf_x)

    def to_dict(self) -> dict:
        """JSON-ready dictionary: x, density, support, atom, atom_at, c1, c0, gram_support,
        mass, mass_error."""
        return json_ready({
            "x": self.x, "density": self.density,
            "support": [[float(a), float(b)] for a, b in self.support],
            "atom": self.atom, "atom_at": self.atom_at, "c1": self.c1, "c0": self.c0,
            "gram_support": [[float(a), float(b)] for a, b in self.gram_support],
            "mass": self.mass, "mass_error": self.mass_error})


def _cdf_table(model: GramModel, gsup: Sequence[tuple[float, float]], c1: float, c0: float,
               nodes: int, eta_min: float | None) -> tuple[np.ndarray, np.ndarray, float]:
    """CDF of c1 X^T X + c0 on Chebyshev nodes of each support interval, with the atom."""
    # x = lo + (hi - lo)(1 - cos theta)/2: the substitution makes square-root edges (and
    # inverse square-root hard edges) smooth; midpoint rule in theta (open at the edges)
    theta = np.linspace(0.0, math.pi, nodes + 1)
    mid = 0.5 * (theta[1:] + theta[:-1])
    pieces = []   # (x_kernel_nodes, cumulative mass within interval)
    total = 0.0
    for lo, hi in gsup:
        xb = lo + (hi - lo) * 0.5 * (1.0 - np.cos(theta))
        xm = lo + (hi - lo) * 0.5 * (1.0 - np.cos(mid))
        d = gram_density(model, xm, eta_min=eta_min)
        integrand = d * 0.5 * (hi - lo) * np.sin(mid)
        cum = np.concatenate([[0.0], np.cumsum(integrand * np.diff(theta))])
        pieces.append((xb, cum))
        total += float(cum[-1])
    ac = 1.0 - model.atom
    # assemble in kernel units, increasing
    segs = []
    for xg, cum in pieces:
        y = c1 * xg + c0
        m = cum * (ac / total) if total > 0 else cum
        if c1 < 0:
            y, m = y[::-1], (m[-1] - m)[::-1]
        segs.append((y, m))
    segs.sort(key=lambda s: s[0][0])
    events = []
    for y, m in segs:
        events.append((float(y[0]), "seg", (y, m)))
    if model.atom > 0:
        events.append((float(c0), "atom", None))
    events.sort(key=lambda e: (e[0], 0 if e[1] == "atom" else 1))
    xs, F = [], []
    acc = 0.0
    for pos, kind, data in events:
        if kind == "atom":
            xs += [pos, pos]
            F += [acc, acc + model.atom]
            acc += model.atom
        else:
            y, m = data
            xs += list(y)
            F += list(acc + m)
            acc += float(m[-1])
    xs = np.asarray(xs)
    F = np.minimum(np.maximum.accumulate(np.asarray(F)), 1.0)
    order = np.argsort(xs, kind="stable")
    return xs[order], F[order], total


def _check_size(name: str, value: Any) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 2:
        raise InvalidParameterError(f"{name} must be an integer >= 2, got {value!r}")
    return int(value)


def kernel_bulk(model: GramModel, coefficients: Any = None, *, c1: float | None = None,
                c0: float | None = None, x: Any = None, num: int = 1000,
                margin: float = 0.05, scan: int = 1024, cdf_nodes: int = 400,
                eta_min: float | None = None, max_memory: float | None = None
                ) -> BulkSpectrum:
    """Limiting bulk (density, support, atom) of a surrogate ``c1 X^T X + V L V^T + c0 I``
    (docs/theory.md §7.1).

    Parameters
    ----------
    model : GramModel
    coefficients : optional
        Anything :func:`as_low_rank_coefficients` accepts (only c1 and c0 matter for the
        bulk); or give ``c1`` and ``c0`` directly.  ``c1 = 1, c0 = 0`` is X^T X itself.
    x : array_like, shape (N,), optional
        Grid (kernel units); default ``num`` points spanning the support (and the atom)
        with a relative ``margin`` on both sides.
    num : int
        Default grid size.
    margin : float
        Relative margin of the default grid.
    scan : int
        Scan points of :func:`~rmt_deq.spectra.stieltjes.gram_support`.
    cdf_nodes : int
        Chebyshev nodes per support interval for the CDF.
    eta_min : float, optional
        See :func:`~rmt_deq.spectra.stieltjes.stieltjes`.
    max_memory : float, optional
        Bytes the grids (``num``, ``scan``, ``cdf_nodes`` per support interval) may use
        (default 2 GiB); checked before anything is allocated.

    Returns
    -------
    BulkSpectrum

    Raises
    ------
    MemoryBudgetError
        A grid size whose arrays would exceed ``max_memory`` (the message gives the
        estimate).

    Notes
    -----
    A kernel with c1 = 0 has no bulk: the whole spectrum (up to the low-rank part) is the
    atom at c0, reported with ``atom = 1`` and an empty support.
    """
    if not isinstance(model, GramModel):
        raise InvalidParameterError(f"model must be a GramModel, got {type(model).__name__}")
    if coefficients is not None:
        if c1 is not None or c0 is not None:
            raise InvalidParameterError("give coefficients or (c1, c0), not both")
        c1, _, c0 = as_low_rank_coefficients(coefficients)
    if c1 is None or c0 is None:
        c1 = 1.0 if c1 is None else c1
        c0 = 0.0 if c0 is None else c0
    c1, c0 = float(c1), float(c0)
    if not (math.isfinite(c1) and math.isfinite(c0)):
        raise NonFiniteInputError("c1 and c0 must be finite")
    num = _check_size("num", num)
    cdf_nodes = _check_size("cdf_nodes", cdf_nodes)
    for what, size in (("the density grid (num)", num), ("the support scan (scan)", scan),
                       ("the CDF nodes of one support interval (cdf_nodes)", cdf_nodes)):
        if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
            check_grid_memory(int(size), model.K, max_memory, what,
                              "use a smaller grid, or raise max_memory")
    eta = ETA_MIN_REL * model.scale if eta_min is None else check_positive_finite(
        eta_min, "eta_min")
    if c1 == 0.0:
        xg = (np.linspace(c0 - _ATOM_ONLY_HALF_WIDTH, c0 + _ATOM_ONLY_HALF_WIDTH, num)
              if x is None else np.atleast_1d(as_real_array(x, "x")))
        return BulkSpectrum(x=readonly(np.array(xg)), density=readonly(np.zeros(xg.shape)),
                            support=(), atom=1.0, atom_at=c0, c1=c1, c0=c0,
                            gram_support=(), model=model,
                            cdf_x=readonly(np.array([c0, c0])),
                            cdf_values=readonly(np.array([0.0, 1.0])), mass=0.0,
                            mass_error=0.0, eta_min=eta)
    gsup = gram_support(model, scan=scan)
    ksup = sorted((min(c1 * a + c0, c1 * b + c0), max(c1 * a + c0, c1 * b + c0))
                  for a, b in gsup)
    atom = model.atom
    if x is None:
        lo = min([a for a, _ in ksup] + ([c0] if atom > 0 else []))
        hi = max([b for _, b in ksup] + ([c0] if atom > 0 else []))
        w = hi - lo
        xg = np.linspace(lo - margin * w, hi + margin * w, num)
    else:
        xg = np.atleast_1d(as_real_array(x, "x")).astype(float)
    zeta = (xg - c0) / c1
    dens = gram_density(model, zeta, eta_min=eta) / abs(c1)
    cx, cF, total = _cdf_table(model, gsup, c1, c0, cdf_nodes, eta)
    ac = 1.0 - atom
    return BulkSpectrum(x=readonly(xg), density=readonly(dens),
                        support=tuple((float(a), float(b)) for a, b in ksup),
                        atom=float(atom), atom_at=c0, c1=c1, c0=c0,
                        gram_support=gsup, model=model, cdf_x=readonly(cx),
                        cdf_values=readonly(cF), mass=float(total),
                        mass_error=float(total - ac), eta_min=eta)
