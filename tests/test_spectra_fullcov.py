"""Limiting spectra with full, non-commuting class covariances (docs/theory.md §7.2-7.3):
the dense backend of rmt_deq.spectra (batched traces, continuation along the grid).

Every check is against an independent computation:
* commuting covariances given as full matrices and kept dense must give what the
  diagonal backend gives from their eigenvalues (different code: sums over coordinates),
  to 1e-10 relative (both solve to a relative Newton step of 1e-13); the same for three
  independent diagonal profiles given as diagonal matrices, in the Stieltjes transforms
  and pointwise in the density;
* non-commuting covariances: a plain fixed-point iteration of the equations written
  directly with numpy.linalg.solve (at Im z = 0.2 x scale, where it contracts), the
  residual of the equations recomputed the same way at the returned unknowns, and the
  eigenvalues of a sampled Gram matrix (Kolmogorov-Smirnov within the rigidity tolerance
  3 log(n)/n of tests/test_spectra.py);
* the root guard: the two roots of the one-class (Marchenko-Pastur) equation in closed
  form, one of which is the spurious sheet next to an edge.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from rmt_deq.errors import ConvergenceError
from rmt_deq.spectra._newton import herglotz_floor
from rmt_deq.spectra.model import gram_model
from rmt_deq.spectra.stieltjes import _report, gram_density, stieltjes


def rotation(p, gen):
    q, _ = np.linalg.qr(gen.standard_normal((p, p)))
    return q


def noncommuting(p, seed=0):
    """Three covariances Q_a diag(d_a) Q_a^T with independent rotations (and their square
    roots), spectra spread over [0.3, 2.3]."""
    gen = np.random.default_rng(seed)
    covs, roots = [], []
    for a in range(3):
        q = rotation(p, gen)
        d = np.linspace(0.3 + 0.2 * a, 1.5 + 0.4 * a, p)
        covs.append((q * d) @ q.T)
        roots.append((q * np.sqrt(d)) @ q.T)
    return np.array(covs), np.array(roots)


def residual(C, sizes, delta, z):
    """|delta_a - tr(C_a Qbar)/p| / |delta_a| with Qbar = (-z I + sum_a r_a C_a/(1 +
    delta_a))^{-1}, written out directly (docs/theory.md §7.2)."""
    K, p, _ = C.shape
    r = np.asarray(sizes) / p
    out = np.empty(len(z))
    for i, (d, zi) in enumerate(zip(delta, z)):
        Q = np.linalg.inv(-zi * np.eye(p) + np.tensordot(r / (1 + d), C, axes=1))
        new = np.array([np.trace(C[a] @ Q) / p for a in range(K)])
        out[i] = np.max(np.abs(d - new) / np.abs(d))
    return out


def _assert_paths_agree(diag, dense, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The diagonal and dense models agree to 1e-10 (relative) in the Stieltjes transforms
    on the real grid x and at two heights above and below it, and in the density (relative
    to its peak); returns the two densities on x."""
    s = diag.scale
    for z in (x, x[::10] + 0.01j * s, x[::10] - 0.3j * s):
        a, b = stieltjes(diag, z), stieltjes(dense, z)
        for f in ("g", "delta", "m_gram", "m_cov_kept"):
            u, v = getattr(a, f), getattr(b, f)
            assert np.max(np.abs(u - v) / np.abs(u)) < 1e-10, f
    d_diag, d_dense = gram_density(diag, x), gram_density(dense, x)
    assert np.max(np.abs(d_diag - d_dense)) < 1e-10 * d_diag.max()
    return d_diag, d_dense


@pytest.mark.parametrize("sizes", [[8, 10, 12], [30, 40, 50]])   # n < p and n > p
def test_dense_backend_equals_diagonal_backend_on_commuting_covariances(sizes):
    p = 40
    gen = np.random.default_rng(1)
    var = np.vstack([np.linspace(0.4, 1.6, p), np.where(np.arange(p) < p // 2, 1.5, 0.5),
                     1.0 + 0.4 * np.sin(6 * math.pi * np.arange(p) / p)])
    q = rotation(p, gen)
    full = np.stack([(q * v) @ q.T for v in var])
    diag = gram_model(var, sizes, summation="direct")
    dense = gram_model(full, sizes, joint_diagonalise=False)
    assert dense.backend == "dense" and diag.backend == "diagonal"
    _assert_paths_agree(diag, dense, np.linspace(-0.02 * diag.scale, 0.9 * diag.scale, 150))


@pytest.mark.parametrize("sizes", [[15, 20, 25], [30, 40, 50]])   # n < p and n > p
def test_dense_path_equals_diagonal_path_on_diagonal_covariances(sizes):
    """Three independent uniform variance profiles (not proportional, not commuting with
    anything but diagonals) as diagonal matrices, kept dense."""
    p = 72
    gen = np.random.default_rng(3)
    var = np.vstack([gen.uniform(0.4, 1.6, p), gen.uniform(0.5, 1.5, p),
                     gen.uniform(0.3, 1.7, p)])
    diag = gram_model(var, sizes, summation="direct")
    dense = gram_model(np.stack([np.diag(v) for v in var]), sizes, joint_diagonalise=False)
    assert dense.backend == "dense" and diag.backend == "diagonal"
    d_diag, d_dense = _assert_paths_agree(
        diag, dense, np.linspace(-0.02 * diag.scale, 0.8 * diag.scale, 100))
    big = d_diag > 1e-6 * d_diag.max()
    assert big.sum() > 50
    assert np.max(np.abs(d_diag - d_dense)[big] / d_diag[big]) < 1e-10


def test_noncommuting_against_direct_fixed_point_and_residual():
    """Points at one Im z are continued along the grid: each must equal the fixed point of
    the equations iterated independently, and (at Im z = 1e-10 scale) satisfy them."""
    p, sizes = 30, [12, 15, 20]
    C, _ = noncommuting(p)
    model = gram_model(C, sizes)
    assert model.backend == "dense" and model.unknown == "delta"
    s = model.scale
    z = np.linspace(0.02 * s, 0.8 * s, 12) + 0.2j * s
    sol = stieltjes(model, z)
    r = np.asarray(sizes) / p
    for zi, d in zip(z, sol.delta):
        u = -np.trace(C, axis1=1, axis2=2) / (p * zi)
        for _ in range(400):
            Q = np.linalg.solve(-zi * np.eye(p) + np.tensordot(r / (1 + u), C, axes=1),
                                np.eye(p))
            u = np.einsum("aij,ji->a", C, Q) / p
        np.testing.assert_allclose(d, u, rtol=1e-10)
    # on the real axis: the returned unknowns satisfy the equations at every point
    x = np.linspace(0.0, 0.85 * s, 60)
    sol = stieltjes(model, x)
    assert sol.report.converged and sol.report.residual <= sol.report.tolerance
    assert "continued along the grid" in sol.report.message
    assert np.max(residual(C, sizes, sol.delta, sol.z)) < 1e-11


def test_noncommuting_density_against_sampled_gram():
    p, sizes = 160, [30, 30, 40]             # n = 100 < p: no atom, KS meaningful
    C, roots = noncommuting(p, seed=2)
    model = gram_model(C, sizes)
    gen = np.random.default_rng(5)
    X = np.hstack([roots[a] @ gen.standard_normal((p, n)) for a, n in enumerate(sizes)])
    ev = np.linalg.eigvalsh(X.T @ X / p)
    x = np.linspace(0.0, model.scale, 301)
    d = gram_density(model, x)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (d[1:] + d[:-1]) * np.diff(x))])
    # the trapezoid rule loses O(h^1.5) of mass at the square-root edges: normalise
    assert cdf[-1] == pytest.approx(1.0, abs=1e-2)
    cdf /= cdf[-1]
    ecdf = np.arange(1, ev.size + 1) / ev.size
    pred = np.interp(ev, x, cdf)
    ks = max(np.max(np.abs(ecdf - pred)), np.max(np.abs(ecdf - 1.0 / ev.size - pred)))
    n = sum(sizes)
    assert ks <= 3 * math.log(n) / n


def test_root_guard_separates_the_spurious_sheet():
    """One isotropic class: g(1/(1 + r g) - z) = 1, i.e. r z g^2 + (z + r - 1) g + 1 = 0
    (g-form, r = n/p < 1).  Just right of the edge at Im z = 1e-10 scale both roots have
    |Im g| ~ 1e-10 |g|, below the relative round-off allowance of the Stieltjes-class
    test; the lower bound of herglotz_floor keeps the solution and rejects the other."""
    p, n = 100, 50
    model = gram_model(np.ones((1, p)), [n])
    r = n / p
    edge = (1 + math.sqrt(r)) ** 2
    eta = 1e-10 * model.scale
    for x in (1.001 * edge, 1.05 * edge, 0.999 * edge, 0.5 * edge):
        z = np.array([x + 1j * eta])
        a, b, c = r * z[0], z[0] + r - 1, 1.0
        disc = np.sqrt(b * b - 4 * a * c)
        roots = [(-b + disc) / (2 * a), (-b - disc) / (2 * a)]
        g = stieltjes(model, z).g[0, 0]
        true = min(roots, key=lambda v: abs(v - g))
        other = max(roots, key=lambda v: abs(v - g))
        assert abs(true - g) < 1e-9 * abs(g)
        floor = herglotz_floor(model, z, "g")[0, 0]
        assert true.imag >= floor
        assert other.imag < floor


def test_report_never_says_converged_above_its_tolerance():
    with pytest.raises(ConvergenceError, match="did not converge"):
        _report(np.array([1e-14, 3e-7]), 10, [3e-7], 2, "test")
    with pytest.raises(ConvergenceError):
        _report(np.array([np.nan]), 1, [math.inf], 1, "test")
    rep = _report(np.array([1e-14, 5e-8]), 10, [5e-8], 2, "test")
    assert rep.converged and rep.residual == 5e-8 <= rep.tolerance
