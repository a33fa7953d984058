"""Limiting spectra without sampling (docs/theory.md §7): rmt_deq.spectra (model, stieltjes,
bulk, spikes, the box expansion) and the spectral distances of rmt_deq.metrics.

Every check is against an independent computation: the Marchenko-Pastur closed form, the
eigenvalues of sampled matrices (Gram matrices and kernel surrogates), the second
expression of the Stieltjes transform, and basic identities (mass, atom).

Tolerances.
* Deterministic comparisons (closed forms, identities) are limited by the solver: Newton to
  1e-13 relative at Im z = 1e-10 x scale, so the density is exact to ~1e-9 relative away
  from the edges (eta/distance); we allow 1e-6.
* Sampled eigenvalues: the empirical spectral CDF of an n x n Gram matrix sits within
  O(log n / n) of its deterministic equivalent (eigenvalue rigidity), not the O(n^-1/2)
  of iid samples; we allow KS <= 3 log(n)/n (measured: about 0.5 log(n)/n over seeds).
* Isolated eigenvalues fluctuate by O(p^-1/2) around the prediction (and carry an O(1/p)
  bias): single-sample spike positions are allowed 4/sqrt(p) relative, alignments
  4/sqrt(p) absolute, averaged over a few seeds.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

import rmt_deq as rd
from rmt_deq.errors import (DataFileError, InvalidParameterError, NonFiniteInputError,
                            ShapeMismatchError, UnknownOptionError)
from rmt_deq.metrics import spectral_distances
from rmt_deq.spectra._box_expansion import q_thresholds
from rmt_deq.spectra.bulk import kernel_bulk
from rmt_deq.spectra.model import gram_model, gram_model_from_mixture
from rmt_deq.spectra.spikes import isolated_eigenvalues, observed_alignments, spike_matrix
from rmt_deq.spectra.stieltjes import gram_density, gram_support, stieltjes
from rmt_deq.jobs.spectrum import load_mixture_spec, spectrum_report


# ---------------------------------------------------------------------------------------
# helpers (independent of the package)
# ---------------------------------------------------------------------------------------
def mp_density(x, c, s2=1.0):
    """Marchenko-Pastur density of X^T X, X p x n with iid N(0, s2/p) entries, c = n/p:
    the absolutely continuous part (mass min(1, 1/c))."""
    a, b = s2 * (1 - math.sqrt(c)) ** 2, s2 * (1 + math.sqrt(c)) ** 2
    x = np.asarray(x, dtype=float)
    out = np.zeros_like(x)
    ins = (x > a) & (x < b)
    out[ins] = np.sqrt((b - x[ins]) * (x[ins] - a)) / (2 * math.pi * c * s2 * x[ins])
    return out


def ks_rigidity_tol(n: int) -> float:
    return 3.0 * math.log(n) / n


def gram_sample(var, sizes, rng):
    """Z (p x n) with class-a columns N(0, diag(var[a]))/sqrt(p), classes in order."""
    gen = np.random.default_rng(rng)
    p = var.shape[1]
    return np.hstack([np.sqrt(var[a])[:, None] * gen.standard_normal((p, s))
                      for a, s in enumerate(sizes)]) / math.sqrt(p)


def two_profiles(p):
    """A continuous variance profile and a two-valued one (non-isotropic, K = 2)."""
    h = p // 2
    return np.vstack([np.linspace(0.4, 1.6, p),
                      np.concatenate([np.full(h, 1.5), np.full(p - h, 0.5)])])


def spike_mixture(p, seed=0):
    """Orthogonal means of norms 2.5 and 4 (well-separated spikes), proportions 0.4/0.6."""
    gen = np.random.default_rng(seed)
    q, _ = np.linalg.qr(gen.standard_normal((p, 2)))
    means = np.vstack([2.5 * q[:, 0], 4.0 * q[:, 1]])
    h = p // 2
    covs = np.vstack([np.ones(p), np.concatenate([np.full(h, 1.5),
                                                  np.full(p - h, 0.5 + 2 / math.sqrt(p))])])
    return rd.GaussianMixture(means, covs, np.array([0.4, 0.6]))


# ---------------------------------------------------------------------------------------
# the density of X^T X
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [300, 900])
def test_isotropic_density_is_marchenko_pastur(n):
    p, s2 = 500, 1.3
    # two classes with the same covariance: the class split must not matter
    model = gram_model(np.full((2, p), s2), [n // 3, n - n // 3])
    c = n / p
    a, b = s2 * (1 - math.sqrt(c)) ** 2, s2 * (1 + math.sqrt(c)) ** 2
    x = np.linspace(a, b, 402)[1:-1]
    x = x[(x - a > 0.01 * (b - a)) & (b - x > 0.01 * (b - a))]
    np.testing.assert_allclose(gram_density(model, x), mp_density(x, c, s2), rtol=1e-6)
    # outside the support: zero up to the Lorentzian tail eta/(pi dist^2) of Im z = eta
    assert np.all(gram_density(model, np.array([0.5 * a, 1.1 * b])) < 1e-7)
    # support edges, atom and mass
    (lo, hi), = gram_support(model)
    assert lo == pytest.approx(a, rel=1e-8) and hi == pytest.approx(b, rel=1e-8)
    bulk = kernel_bulk(model)
    assert bulk.atom == pytest.approx(max(0.0, 1 - p / n), abs=1e-15)
    assert bulk.mass == pytest.approx(1 - bulk.atom, abs=1e-6)
    assert bulk.cdf(np.array([b * 1.01]))[0] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("n", [300, 900])
def test_identity_m_equals_sum_of_class_g(n):
    """m_{X^TX} from the trace of Qbar equals sum_a (n_a/n) g_a (docs/theory.md §7)."""
    p = 400
    model = gram_model(two_profiles(p), [n // 3, n - n // 3])
    z = np.array([0.3 + 0.2j, 1.0 + 1e-3j, 2.5 + 1e-6j, -0.5 + 0.1j, 4.0 + 2.0j])
    sol = stieltjes(model, z)
    np.testing.assert_allclose(sol.m_gram, sol.m_gram_from_g, rtol=1e-10)
    # Stieltjes class: Im m > 0 above the axis, m ~ -1/z at infinity
    assert np.all(sol.m_gram.imag > 0)
    far = stieltjes(model, np.array([1e6j]))
    assert far.m_gram[0] * 1e6j == pytest.approx(-1.0, rel=1e-5)


@pytest.mark.parametrize("n", [600, 1200])
def test_density_against_sampled_gram(n):
    """Non-isotropic diagonal covariances (one continuous profile, one two-valued)."""
    p = 800
    var = two_profiles(p)
    sizes = [n // 2, n - n // 2]
    model = gram_model(var, sizes)
    bulk = kernel_bulk(model, num=64, cdf_nodes=300)
    assert bulk.atom == pytest.approx(max(0.0, 1 - p / n))
    assert abs(bulk.mass_error) < 1e-6
    Z = gram_sample(var, sizes, rng=7)
    ev = np.linalg.eigvalsh(Z.T @ Z)
    d = spectral_distances(ev, bulk)
    assert d.ks <= ks_rigidity_tol(n)
    assert d.w1_relative <= ks_rigidity_tol(n)
    # the atom: exactly n - p zero eigenvalues when n > p
    if n > p:
        assert int(np.sum(ev < 1e-8 * ev.max())) == n - p
    (lo, hi), = bulk.support
    pos = ev[ev > 1e-8 * ev.max()]
    # extreme eigenvalues within O(n^-2/3) (Tracy-Widom scale) of the edges; allow 5 n^-2/3
    assert abs(pos.min() - lo) <= 5 * n ** (-2 / 3) * (hi - lo)
    assert abs(pos.max() - hi) <= 5 * n ** (-2 / 3) * (hi - lo)


def test_commuting_full_covariances_equal_diagonal_and_dense_backend():
    p = 60
    var = two_profiles(p)
    gen = np.random.default_rng(3)
    Q, _ = np.linalg.qr(gen.standard_normal((p, p)))
    full = np.stack([Q @ np.diag(v) @ Q.T for v in var])
    sizes = [40, 50]
    x = np.linspace(0.05, 3.0, 40)
    d_diag = gram_density(gram_model(var, sizes), x)
    m_joint = gram_model(full, sizes)
    assert m_joint.basis == "joint-eigenbasis"
    np.testing.assert_allclose(gram_density(m_joint, x), d_diag, rtol=1e-6, atol=1e-9)
    m_dense = gram_model(full, sizes, joint_diagonalise=False)
    assert m_dense.backend == "dense"
    np.testing.assert_allclose(gram_density(m_dense, x[::4]), d_diag[::4], rtol=1e-6,
                               atol=1e-9)


def test_large_p_structured_covariance_is_scale_free():
    """With a two-valued profile the model has 2 coordinate groups whatever p: the density
    at p = 1e5 equals that at p = 1e3 with the same ratios (and is as cheap)."""
    x = np.linspace(0.05, 4.0, 50)
    dens = []
    for p in (1000, 100_000):
        h = p // 2
        var = np.vstack([np.ones(p), np.concatenate([np.full(h, 1.5), np.full(h, 0.5)])])
        m = gram_model(var, [3 * p // 10, 4 * p // 10])
        assert m.n_distinct == 2
        dens.append(gram_density(m, x))
    np.testing.assert_allclose(dens[1], dens[0], rtol=1e-8, atol=1e-12)


def test_compressed_model_is_close():
    """max_atoms merges near-equal variances (second order in the merged spread)."""
    p = 4000
    var = two_profiles(p)
    sizes = [1000, 1200]
    x = np.linspace(0.1, 3.0, 30)
    exact = gram_density(gram_model(var, sizes), x)
    m = gram_model(var, sizes, max_atoms=256)
    assert m.compressed and m.n_distinct <= 256
    np.testing.assert_allclose(gram_density(m, x), exact, rtol=0, atol=2e-3 * exact.max())


# ---------------------------------------------------------------------------------------
# the box expansion of the coordinate sums (summation="expansion")
# ---------------------------------------------------------------------------------------
def direct_sums(var, w, coeff, shift):
    """sum_u w t_a/D, sum_u w/D, sum_u w t_a t_b/D^2 and the sums of the absolute values of
    the terms, D_u = shift + coeff . t_u, term by term (independent of the package)."""
    D = shift[:, None] + coeff @ var
    Y = 1.0 / D
    first = (Y * w) @ var.T
    trace = (Y * w).sum(axis=1)
    sec = np.einsum("nu,au,bu->nab", Y * Y * w, var, var)
    abs1 = (np.abs(Y) * w) @ var.T
    abs0 = (np.abs(Y) * w).sum(axis=1)
    abs2 = np.einsum("nu,au,bu->nab", np.abs(Y) ** 2 * w, var, var)
    return first, trace, sec, abs1, abs0, abs2


@pytest.mark.parametrize("K", [1, 2, 3])
def test_expansion_sums_within_their_bound(K):
    """Each expanded sum is within 1e-14 (the bound) + round-off of the direct sum, relative
    to the sum of the absolute values of its terms; points far from every box (expansion)
    and near some box (direct fallback) both occur."""
    gen = np.random.default_rng(K)
    p = 5000
    var = gen.uniform(0.2, 2.0, (K, p))
    m = gram_model(var, [600] * K, summation="expansion")
    ex = m.expansion
    assert ex is not None and m.to_dict()["summation"] == "expansion"
    N = 40
    coeff = (gen.standard_normal((N, K)) + 1j * gen.uniform(-0.5, 0.0, (N, K))) * 0.5
    shift = np.ones(N, dtype=complex)
    # half the points resonate with a coordinate (D close to 0 there: the fallback)
    j = gen.integers(0, p, N // 2)
    shift[: N // 2] = -(coeff[: N // 2] * var[:, j].T).sum(axis=1) + 1e-3j
    first, sec, trace, _ = m.moments(coeff, shift)
    wts = m.weights
    f0, t0, s0, a1, a0, a2 = direct_sums(m.variances, wts, coeff, shift)
    tol = 1e-13
    assert np.all(np.abs(first - f0) <= tol * a1)
    assert np.all(np.abs(trace - t0) <= tol * a0)
    assert np.all(np.abs(sec - s0) <= tol * a2)
    D0 = shift[:, None] + coeff @ ex.centers.T
    q = (np.abs(coeff) @ ex.radii.T) / np.abs(D0)
    assert np.any(q <= ex.qmax[-1]) and np.any(q > ex.qmax[-1])
    # without the second moments: the same first moments and trace
    f2, s2, t2, _ = m.moments(coeff, shift, second=False)
    assert s2 is None
    # two summation orders of the same terms: a few ulps of the sum of their magnitudes
    ulps = 16 * np.finfo(float).eps
    assert np.all(np.abs(f2 - first) <= ulps * a1)
    assert np.all(np.abs(t2 - trace) <= ulps * a0)


def test_expansion_truncation_bounds():
    """At |eps| <= qmax[k] the degree-k Taylor polynomials of 1/(1+eps) and 1/(1+eps)^2
    are within the tolerance of the functions, relative to their absolute values."""
    tol = 1e-14
    qmax = q_thresholds(30, tol)
    assert np.all(np.diff(qmax) > 0) and qmax[0] < 1e-7 and qmax[-1] < 1
    gen = np.random.default_rng(0)
    for k in (0, 5, 12, 24, 30):
        eps = qmax[k] * np.exp(2j * np.pi * gen.uniform(size=200))
        eps = np.append(eps, -qmax[k])
        j = np.arange(k + 1)
        t1 = ((-eps[:, None]) ** j).sum(axis=1)
        t2 = ((j + 1) * (-eps[:, None]) ** j).sum(axis=1)
        # the remainders in closed form (no cancellation): eps^(k+1) terms
        r1 = np.abs((-eps) ** (k + 1) / (1 + eps))
        r2 = np.abs(1 / (1 + eps) ** 2 - t2)
        assert np.all(r1 * np.abs(1 + eps) <= tol * 1.0000001)
        assert np.all(r2 * np.abs(1 + eps) ** 2 <= tol + 1e-15)
        assert np.all(np.abs(1 / (1 + eps) - t1) * np.abs(1 + eps) <= tol + 1e-15)


@pytest.mark.parametrize("n", [3000, 9000])
def test_expansion_density_equals_direct(n):
    """p = 6000 distinct variances (auto: expansion) against the direct sums, n < p and
    n > p: the densities agree to 1e-10 of the peak (the solver's own precision)."""
    p = 6000
    var = two_profiles(p)
    sizes = [n // 2, n - n // 2]
    fast = gram_model(var, sizes)
    slow = gram_model(var, sizes, summation="direct")
    assert fast.expansion is not None and slow.expansion is None
    assert fast.n_distinct == p
    sup = gram_support(fast, scan=128)
    assert np.allclose(np.ravel(sup), np.ravel(gram_support(slow, scan=128)), rtol=0,
                       atol=1e-8 * fast.scale)
    x = np.linspace(0.5 * sup[0][0], 1.05 * sup[-1][1], 40)
    d_fast, d_slow = gram_density(fast, x), gram_density(slow, x)
    np.testing.assert_allclose(d_fast, d_slow, rtol=0, atol=1e-10 * d_slow.max())
    z = x[::8] + 0.01j
    np.testing.assert_allclose(stieltjes(fast, z).m_gram, stieltjes(slow, z).m_gram,
                               rtol=1e-11)


def test_expansion_spikes_equal_direct():
    """The spike equation (it also uses the means' quadratic form) with the expansion."""
    p = 800
    mix = spike_mixture(p)
    stats = mix.statistics(600)
    sol = rd.solve_four_equations("relu", 0.2, stats.tau0)
    coef = rd.ck_surrogate_coefficients(sol, stats, form="G")
    out = []
    for summation in ("expansion", "direct"):
        model = gram_model_from_mixture(mix, 600, summation=summation)
        bulk = kernel_bulk(model, coef, num=64)
        out.append(isolated_eigenvalues(model, coef, bulk=bulk))
    assert out[0].positions.size == out[1].positions.size > 0
    np.testing.assert_allclose(out[0].positions, out[1].positions, rtol=1e-9)
    np.testing.assert_allclose(out[0].alignments, out[1].alignments, rtol=0, atol=1e-9)


def test_summation_choice_and_bad_values():
    small = gram_model(two_profiles(1000), [300, 400])
    assert small.expansion is None and small.to_dict()["summation"] == "direct"
    with pytest.raises(InvalidParameterError, match="summation"):
        gram_model(two_profiles(100), [30, 40], summation="fast")
    with pytest.raises(InvalidParameterError, match="K <= 3"):
        gram_model(np.ones((4, 50)), [10] * 4, summation="expansion")
    # K = 4 with many distinct coordinates: auto falls back to direct sums
    var4 = np.vstack([np.linspace(0.5, 1.5, 5000)] * 4)
    assert gram_model(var4, [100] * 4).expansion is None


# ---------------------------------------------------------------------------------------
# kernels: bulk of c1 X^T X + V L V^T + c0 I, spikes, alignments
# ---------------------------------------------------------------------------------------
def test_kernel_bulk_is_affine_image():
    p = 300
    model = gram_model(np.ones((1, p)), [450])
    c1, c0 = 0.7, 0.25
    kb = kernel_bulk(model, c1=c1, c0=c0)
    gb = kernel_bulk(model)
    np.testing.assert_allclose(kb.density, gram_density(model, (kb.x - c0) / c1) / c1,
                               rtol=1e-12)
    assert kb.atom_at == c0 and kb.atom == pytest.approx(1 / 3)
    np.testing.assert_allclose(np.array(kb.support), c1 * np.array(gb.support) + c0,
                               rtol=1e-12)


@pytest.fixture(scope="module")
def ck_case():
    """ReLU CK surrogate of a sample at p = 1200 (n = 960 < p), three seeds."""
    p, n = 1200, 960
    mix = spike_mixture(p)
    out = []
    for seed in (1, 2, 3):
        sample = mix.sample(n, rng=seed)
        sur = rd.mixture_ck_surrogate(mix, sample, "relu", 0.2)
        model = gram_model_from_mixture(mix, sample)
        coef = sur.info.coefficients["G"]
        bulk = kernel_bulk(model, coef, num=64, cdf_nodes=300)
        spikes = isolated_eigenvalues(model, coef, bulk=bulk)
        ev, U = np.linalg.eigh(sur.ck)
        out.append((mix, sample, bulk, spikes, ev, U))
    return p, n, out


def test_surrogate_bulk_against_its_eigenvalues(ck_case):
    """The low-rank part does not move the bulk: KS of the sampled surrogate's spectrum
    (spikes removed) to the prediction at the rigidity scale."""
    p, n, cases = ck_case
    for _, _, bulk, spikes, ev, _ in cases:
        d = spectral_distances(ev, bulk, exclude=spikes.positions)
        assert d.n_used == n - spikes.count
        assert d.ks <= ks_rigidity_tol(n)


def test_spikes_and_alignments_against_sampled_surrogate(ck_case):
    p, n, cases = ck_case
    spikes = cases[0][3]
    assert spikes.count == 2                      # one per class mean, right of the bulk
    hi = max(b for _, b in cases[0][2].support)
    assert np.all(spikes.positions > hi)
    tol = 4 / math.sqrt(p)
    obs = np.array([ev[-spikes.count:] for *_, ev, _ in cases])
    np.testing.assert_allclose(obs.mean(axis=0), spikes.positions, rtol=tol)
    al = np.array([observed_alignments(U[:, -spikes.count:], s.labels, 2)
                   for _, s, _, _, _, U in cases])
    np.testing.assert_allclose(al.mean(axis=0), spikes.alignments, atol=tol)
    # the alignments of one spike sum to at most 1 (projection on an orthonormal pair)
    assert np.all(spikes.alignments.sum(axis=1) <= 1 + 1e-12)
    assert np.all(spikes.alignments >= 0)


def test_ntk_spikes_and_atom_gap_against_sampled_surrogate():
    """NTK surrogate with n > p: bulk, atom and spikes (including those in the gap between
    the atom and the bulk, visible in the surrogate) against its eigenvalues."""
    from rmt_deq.kernels.ntk_surrogate import mixture_ntk_surrogate

    p, n = 600, 900
    mix = spike_mixture(p)
    sample = mix.sample(n, rng=4)
    sur = mixture_ntk_surrogate(mix, sample, "relu", 0.2)
    coef = sur.info.coefficients["total"]
    model = gram_model_from_mixture(mix, sample)
    bulk = kernel_bulk(model, coef, num=64)
    spikes = isolated_eigenvalues(model, coef, bulk=bulk)
    ev = np.linalg.eigvalsh(np.asarray(sur.ntk))
    assert bulk.atom == pytest.approx(1 - p / n)
    # the n - p - (spikes leaving the atom) eigenvalues exactly at c0
    at_atom = int(np.sum(np.abs(ev - bulk.atom_at) < 1e-9 * bulk.width))
    in_gap = int(np.sum((spikes.positions > bulk.atom_at)
                        & (spikes.positions < bulk.support[0][0])))
    assert n - p - 2 * model.K - 1 <= at_atom <= n - p
    # two spikes leave the atom into the (atom, bulk) gap, two lie right of the bulk; each
    # observed within 4 p^-1/2 of its natural scale (the gap's width, or its distance to
    # the bulk's right edge)
    assert in_gap == 2 and spikes.count == 4
    lo, hi = bulk.support[0]
    for s in spikes.positions:
        scale = lo - bulk.atom_at if s < lo else s - hi
        assert np.min(np.abs(ev - s)) <= 4 / math.sqrt(p) * scale
    d = spectral_distances(ev, bulk, exclude=spikes.positions)
    assert d.ks <= ks_rigidity_tol(n)


def test_spike_matrix_against_a_sample():
    """B and H of the spike equation (docs/theory.md §7.5) against a sample, independently
    of the package: with Z = omega/sqrt(p), M = [mu_1, mu_2], U = [J/sqrt(p), Z^T M, psi],

    * c1 X^T X + V L V^T + c0 I = c1 Z^T Z + c0 I + U B U^T exactly (an algebraic identity:
      a few ulps of the sums of magnitudes, p-term inner products);
    * H(lambda) is the deterministic equivalent of U^T (c1 Z^T Z + c0 I - lambda)^{-1} U
      outside the bulk: each block (a, b), averaged over three samples, within 4/sqrt(p) of
      its Cauchy-Schwarz scale ||U_a|| ||R|| ||U_b|| (the fluctuations are O(p^-1/2) of it).
    """
    p, n = 400, 300
    mix = spike_mixture(p)
    gen = np.random.default_rng(0)
    L = gen.standard_normal((3, 3))
    c1, c0 = 0.7, 0.3
    model = gram_model_from_mixture(mix, n)
    sup = gram_support(model, scan=128)
    lo, hi = sup[0][0], sup[-1][1]
    # right of the bulk, and left of it (n < p: no atom), in kernel units
    lams = np.array([c1 * (hi + 0.5 * (hi - lo)) + c0, c1 * (lo - 0.3 * (hi - lo)) + c0])
    H, B = spike_matrix(model, (c1, L, c0), lams)
    assert H.shape == (2, 5, 5) and B.shape == (5, 5)
    assert np.max(np.abs(H.imag)) <= 1e-8 * np.max(np.abs(H.real))
    blocks = [slice(0, 2), slice(2, 4), slice(4, 5)]
    Ls = 0.5 * (L + L.T)
    M = mix.means.T
    tr = mix.covs.sum(axis=1) / p
    mean_H, scales = np.zeros((2, 5, 5)), np.zeros((2, 3, 3))
    eps = np.finfo(float).eps
    for seed in (1, 2, 3):
        s = mix.sample(n, rng=seed)
        J = np.zeros((n, 2))
        J[np.arange(n), s.labels] = 1.0
        Z = np.asarray(s.omega) / math.sqrt(p)
        psi = np.sum(np.asarray(s.omega) ** 2, axis=0) / p - tr[s.labels]
        X = np.asarray(s.X)
        V = np.column_stack([J / math.sqrt(p), psi])
        U = np.column_stack([J / math.sqrt(p), Z.T @ M, psi])
        lhs = c1 * X.T @ X + V @ Ls @ V.T + c0 * np.eye(n)
        rhs = c1 * Z.T @ Z + c0 * np.eye(n) + U @ B @ U.T
        mag = (abs(c1) * np.abs(X).T @ np.abs(X) + np.abs(V) @ np.abs(Ls) @ np.abs(V).T
               + abs(c1) * np.abs(Z).T @ np.abs(Z) + np.abs(U) @ np.abs(B) @ np.abs(U).T
               + abs(c0))
        assert np.all(np.abs(lhs - rhs) <= 4 * p * eps * mag)
        for i, lam in enumerate(lams):
            R = np.linalg.inv(c1 * Z.T @ Z + (c0 - lam) * np.eye(n))
            mean_H[i] += U.T @ R @ U / 3
            norms = [np.linalg.norm(U[:, a], 2) for a in blocks]
            scales[i] += np.linalg.norm(R, 2) * np.outer(norms, norms) / 3
    for i in range(2):
        for ia, a in enumerate(blocks):
            for ib, b in enumerate(blocks):
                err = np.max(np.abs(mean_H[i][a, b] - H[i].real[a, b]))
                assert err <= 4 / math.sqrt(p) * scales[i, ia, ib], (i, ia, ib)


# ---------------------------------------------------------------------------------------
# the report / CLI job and the figure
# ---------------------------------------------------------------------------------------
def test_spectrum_report_from_spec_matches_library(tmp_path):
    p = 200
    mix = spike_mixture(p)
    spec = {"means": mix.means.tolist(), "covs": mix.covs.tolist(), "sizes": [60, 90]}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    rep = spectrum_report("tanh", 0.3, mixture=str(path), kind="ck", num=200)
    mix2, sizes = load_mixture_spec(str(path))
    sol = rd.solve_four_equations("tanh", 0.3, mix2.statistics(sizes).tau0)
    coef = rd.ck_surrogate_coefficients(sol, mix2.statistics(sizes), form="G")
    model = gram_model(mix2.covs, sizes, means=mix2.means)
    bulk = kernel_bulk(model, coef, num=200)
    np.testing.assert_allclose(rep["density"], bulk.density, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(rep["spikes"],
                               isolated_eigenvalues(model, coef, bulk=bulk).positions,
                               rtol=1e-9)
    assert rep["atom"] == 0.0 and rep["atom_at"] is None
    assert json.loads(json.dumps(rep))["p"] == p


def test_plot_spectrum_returns_axes():
    from matplotlib.figure import Figure

    from rmt_deq.plotting import plot_spectrum

    model = gram_model(np.ones((1, 100)), [150])
    bulk = kernel_bulk(model, c1=1.0, c0=0.1, num=100)
    ax = Figure().add_subplot(1, 1, 1)
    ev = np.linspace(0.2, 2.0, 50)
    assert plot_spectrum(bulk, [3.0], eigenvalues=ev, ax=ax) is ax
    ax2 = plot_spectrum(bulk, atom_width=0.01)
    assert ax2 is not ax and len(ax2.lines) >= 1


# ---------------------------------------------------------------------------------------
# bad inputs
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("covs, sizes, exc, match", [
    (np.ones((2, 3, 4)), [1, 1], ShapeMismatchError, "covs must have shape"),
    (np.ones((2, 5)), [1, 1, 1], ShapeMismatchError, "sizes must have shape"),
    (np.array([[1.0, np.nan]]), [3], NonFiniteInputError, "NaN"),
    (-np.ones((1, 4)), [3], InvalidParameterError, "non-negative"),
    (np.zeros((1, 4)), [3], InvalidParameterError, "all zero"),
    (np.ones((1, 4)), [0], InvalidParameterError, "positive sum"),
    (np.ones((1, 4)), [2.5], InvalidParameterError, "integers"),
    (np.stack([-np.eye(3)]), [2], InvalidParameterError, "positive semi-definite"),
])
def test_gram_model_bad_inputs(covs, sizes, exc, match):
    with pytest.raises(exc, match=match):
        gram_model(covs, sizes)


def test_bad_inputs_of_solvers_and_spikes():
    model = gram_model(np.ones((2, 10)), [4, 4], means=np.ones((2, 10)))
    with pytest.raises(ShapeMismatchError, match="means must have shape"):
        gram_model(np.ones((2, 10)), [4, 4], means=np.ones((3, 10)))
    with pytest.raises(InvalidParameterError, match="max_atoms"):
        gram_model(np.ones((2, 10)), [4, 4], max_atoms=1)
    with pytest.raises(NonFiniteInputError, match="z has NaN"):
        stieltjes(model, np.array([np.nan]))
    with pytest.raises(InvalidParameterError, match="eta_min"):
        stieltjes(model, np.array([1.0]), eta_min=0.0)
    with pytest.raises(InvalidParameterError, match="GramModel"):
        stieltjes("model", np.array([1.0]))
    with pytest.raises(InvalidParameterError, match="num"):
        kernel_bulk(model, num=1)
    with pytest.raises(InvalidParameterError, match="scan"):
        gram_support(model, scan=4)
    with pytest.raises(InvalidParameterError, match="not both"):
        kernel_bulk(model, (1.0, np.zeros((3, 3)), 0.0), c1=1.0)
    L = np.zeros((3, 3))
    with pytest.raises(InvalidParameterError, match="c1 = 0"):
        isolated_eigenvalues(model, (0.0, L, 1.0))
    with pytest.raises(ShapeMismatchError, match=r"\(K\+1\) x \(K\+1\)"):
        isolated_eigenvalues(model, (1.0, np.zeros((4, 4)), 0.0))
    with pytest.raises(InvalidParameterError, match="c1, c0"):
        isolated_eigenvalues(model, {"c1": 1.0})
    with pytest.raises(UnknownOptionError, match="bogus"):
        isolated_eigenvalues(model, (1.0, L, 0.0), bogus=1)
    other = kernel_bulk(model, c1=2.0, c0=0.0, num=8)
    with pytest.raises(InvalidParameterError, match="same c1 and c0"):
        isolated_eigenvalues(model, (1.0, L, 0.0), bulk=other)
    with pytest.raises(InvalidParameterError, match="no eigenvalues"):
        spectral_distances(np.array([1.0, 2.0]), other, exclude=[1.0, 2.0])
    with pytest.raises(NonFiniteInputError):
        spectral_distances(np.array([1.0, np.inf]), other)
    with pytest.raises(ShapeMismatchError, match="labels"):
        observed_alignments(np.eye(3), [0, 1])


def test_bad_specs_and_report_options(tmp_path):
    with pytest.raises(DataFileError, match="missing"):
        load_mixture_spec({"means": [[0.0]], "covs": [[1.0]]})
    with pytest.raises(UnknownOptionError, match="unknown key"):
        load_mixture_spec({"means": [[0.0]], "covs": [[1.0]], "sizes": [3], "extra": 1})
    with pytest.raises(InvalidParameterError, match="sizes"):
        load_mixture_spec({"means": [[0.0]], "covs": [[1.0]], "sizes": [-3]})
    with pytest.raises(DataFileError, match="does not exist"):
        load_mixture_spec(str(tmp_path / "missing.json"))
    spec = {"means": [[0.0, 1.0]], "covs": [[1.0, 1.0]], "sizes": [3]}
    with pytest.raises(InvalidParameterError, match="exactly one"):
        spectrum_report("relu", 0.2)
    with pytest.raises(InvalidParameterError, match="exactly one"):
        spectrum_report("relu", 0.2, mixture=spec, data={"X": np.ones((2, 3))})
    with pytest.raises(UnknownOptionError, match="kind"):
        spectrum_report("relu", 0.2, mixture=spec, kind="gp")
    with pytest.raises(InvalidParameterError, match="groups"):
        spectrum_report("relu", 0.2, mixture=spec, kind="ck", groups=("v",))
    with pytest.raises(DataFileError, match="labels"):
        spectrum_report("relu", 0.2, data={"X": np.ones((2, 3))})


@pytest.mark.parametrize("dense", [False, True])
def test_support_finds_a_band_of_tiny_variances(dense):
    """Three coordinates of variance 1e-5 (as near-constant pixels of real data) make a
    narrow band far below scale/scan: the support scan finds it, the bulk's mass is whole,
    and the band holds the mass of the 3 eigenvalues a sample puts there."""
    p, sizes = 60, [70, 80]
    var = np.ones((2, p))
    var[1] *= 1.5
    var[:, :3] = 1e-5
    covs = np.stack([np.diag(v) for v in var]) if dense else var
    if dense:                                     # rotate: non-diagonal, same spectrum
        Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((p, p)))
        covs = np.stack([Q @ C @ Q.T for C in covs])
    model = gram_model(covs, sizes, joint_diagonalise=False)
    assert model.backend == ("dense" if dense else "diagonal")
    bulk = kernel_bulk(model, c1=1.0, c0=0.0, num=200)
    assert abs(bulk.mass_error) < 1e-4
    n = sum(sizes)
    small = [b for b in bulk.gram_support if b[1] < 1e-3 * model.scale]
    assert len(small) == 1
    lo, hi = small[0]
    band_mass = float(bulk.cdf(np.array([hi]))[0] - bulk.cdf(np.array([lo / 2]))[0])
    assert band_mass * n == pytest.approx(3.0, abs=0.05)
    rng = np.random.default_rng(1)
    X = np.concatenate([np.sqrt(var[a])[:, None] * rng.standard_normal((p, sizes[a]))
                        for a in range(2)], axis=1) / math.sqrt(p)
    ev = np.linalg.eigvalsh(X.T @ X)
    assert np.sum((ev > 1e-12) & (ev < 1e-3 * model.scale)) == 3
