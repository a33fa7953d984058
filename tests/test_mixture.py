"""The K-class Gaussian mixture (docs/theory.md §1): statistics, sampling, plug-in estimates.

Tolerances on random quantities are derived from their (Gaussian) standard deviations and
set at 5-6 sigma with fixed seeds.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from rmt_deq.errors import (InvalidParameterError, NonFiniteInputError, ShapeMismatchError,
                            UnknownOptionError)
from rmt_deq.data.mixture import GaussianMixture, MixtureSample, class_sizes
from rmt_deq.data.statistics import (build_V, class_indicators, compute_psi, plugin_statistics,
                                     statistics_from_traces)
from rmt_deq.data import statistics as statistics_module


# ------------------------------------------------------------------------------ helpers
def _random_spd(p: int, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """A well-conditioned symmetric positive-definite matrix with O(1) norm."""
    G = rng.standard_normal((p, 2 * p)) / math.sqrt(2 * p)
    C = scale * (0.3 * np.eye(p) + G @ G.T)
    return 0.5 * (C + C.T)


def _brute_force_stats(covs: list[np.ndarray], sizes: np.ndarray) -> dict:
    """The section-1 statistics by their definitions, with explicit p x p matrices."""
    p = covs[0].shape[0]
    c = sizes / sizes.sum()
    Cbar = sum(ca * C for ca, C in zip(c, covs))
    Cc = [C - Cbar for C in covs]
    K = len(covs)
    T = np.array([[np.trace(covs[a] @ covs[b]) / p for b in range(K)] for a in range(K)])
    Tc = np.array([[np.trace(Cc[a] @ Cc[b]) / p for b in range(K)] for a in range(K)])
    return {"T": T, "T_centred": Tc, "tau0": math.sqrt(np.trace(Cbar) / p),
            "t": np.array([np.trace(C) / math.sqrt(p) for C in Cc]),
            "s2": np.trace(Cbar @ Cbar) / p,
            "traces": np.array([np.trace(C) / p for C in covs])}


def _assert_stats_close(st, ref: dict, rtol: float = 1e-12, atol: float = 1e-12) -> None:
    for key, val in ref.items():
        np.testing.assert_allclose(getattr(st, key), val, rtol=rtol, atol=atol, err_msg=key)


# ------------------------------------------------------------------------------ statistics
def test_diagonal_and_full_representations_agree():
    rng = np.random.default_rng(1)
    K, p = 3, 40
    diag = rng.uniform(0.5, 2.0, size=(K, p))
    means = rng.standard_normal((K, p))
    mix_d = GaussianMixture(means, diag, [0.2, 0.3, 0.5])
    mix_f = GaussianMixture(means, np.stack([np.diag(d) for d in diag]), [0.2, 0.3, 0.5])
    assert mix_d.diagonal and not mix_f.diagonal
    assert (mix_d.K, mix_d.p) == (K, p)
    for n in (17, 100, [3, 50, 9]):
        sd, sf = mix_d.statistics(n), mix_f.statistics(n)
        for key in ("traces", "t", "T", "T_centred", "tau0", "s2", "proportions", "sizes"):
            np.testing.assert_allclose(getattr(sd, key), getattr(sf, key), rtol=1e-13,
                                       atol=1e-13, err_msg=key)
        _assert_stats_close(sd, _brute_force_stats([np.diag(d) for d in diag],
                                                   np.asarray(sd.sizes)))


@pytest.mark.parametrize("commuting", [True, False])
def test_statistics_match_brute_force_full(commuting):
    rng = np.random.default_rng(2 + commuting)
    K, p = 3, 30
    if commuting:  # same eigenvectors, different spectra
        Q, _ = np.linalg.qr(rng.standard_normal((p, p)))
        covs = [(Q * rng.uniform(0.2, 2.0, p)) @ Q.T for _ in range(K)]
    else:
        covs = [_random_spd(p, rng, s) for s in (0.7, 1.0, 1.6)]
    commutator = np.linalg.norm(covs[0] @ covs[1] - covs[1] @ covs[0])
    assert (commutator < 1e-10) == commuting
    mix = GaussianMixture(np.zeros((K, p)), np.stack(covs), [0.5, 0.25, 0.25])
    sizes = np.array([40, 25, 35])
    st = mix.statistics(sizes)
    _assert_stats_close(st, _brute_force_stats(covs, sizes))
    # the uncentred T is a matrix product inside the trace, not a product of diagonals
    diag_product = np.array([[np.dot(np.diag(covs[a]), np.diag(covs[b])) / p
                              for b in range(K)] for a in range(K)])
    assert np.max(np.abs(st.T - diag_product)) > 1e-3


def test_statistics_use_sample_proportions():
    p = 50
    mix = GaussianMixture(np.zeros((2, p)), np.stack([np.full(p, 1.0), np.full(p, 3.0)]),
                          [0.5, 0.5])
    st = mix.statistics([10, 30])
    assert st.n == 40 and st.p == p and st.K == 2
    np.testing.assert_allclose(st.proportions, [0.25, 0.75])
    np.testing.assert_allclose(st.tau0 ** 2, 0.25 * 1.0 + 0.75 * 3.0)
    # C° = 2.5 I: s2 = 6.25, t = sqrt(p) (tr C_a/p - 2.5), T° = (s_a - 2.5)(s_b - 2.5)
    np.testing.assert_allclose(st.s2, 6.25)
    np.testing.assert_allclose(st.t, math.sqrt(p) * np.array([-1.5, 0.5]))
    np.testing.assert_allclose(st.T_centred, np.outer([-1.5, 0.5], [-1.5, 0.5]), atol=1e-12)
    # sizes of a sample are used when a sample is passed
    s = mix.sample(rng=0, sizes=[10, 30])
    np.testing.assert_allclose(mix.statistics(s).T, st.T)


def test_statistics_from_traces_identities():
    rng = np.random.default_rng(4)
    K, p = 4, 64
    traces = rng.uniform(0.5, 2, K)
    B = rng.standard_normal((K, K))
    T = B @ B.T
    sizes = np.array([5, 7, 11, 13])
    st = statistics_from_traces(traces, T, sizes, p)
    c = sizes / sizes.sum()
    # sum_a c_a C_a° = 0 => c^T T° = 0 and c . t = 0
    np.testing.assert_allclose(c @ st.T_centred, 0, atol=1e-12)
    np.testing.assert_allclose(c @ st.t, 0, atol=1e-12)
    np.testing.assert_allclose(st.s2, c @ T @ c)
    np.testing.assert_allclose(st.T_centred,
                               T - np.outer(T @ c, np.ones(K)) - np.outer(np.ones(K), T @ c)
                               + st.s2, atol=1e-12)


def test_class_sizes_largest_remainder():
    assert class_sizes(10, [1 / 3, 1 / 3, 1 / 3]).tolist() == [4, 3, 3]
    # 3.5, 1.75, 1.75 -> floors 3,1,1; the two extra go to the largest fractions
    assert class_sizes(7, [0.5, 0.25, 0.25]).tolist() == [3, 2, 2]
    assert class_sizes(5, [1.0]).tolist() == [5]
    rng = np.random.default_rng(5)
    for _ in range(50):
        c = rng.dirichlet(np.ones(4))
        n = int(rng.integers(1, 500))
        s = class_sizes(n, c)
        assert s.sum() == n and np.all(np.abs(s - n * c) < 1)


# ------------------------------------------------------------------------------ sampling
def _two_class_full(p: int = 20, seed: int = 6) -> GaussianMixture:
    rng = np.random.default_rng(seed)
    means = np.zeros((2, p))
    means[0, 0], means[1, 1] = 2.0, -1.5
    return GaussianMixture(means, np.stack([_random_spd(p, rng, 0.8), _random_spd(p, rng, 1.3)]),
                           [0.35, 0.65])


def test_sampling_reproducible_and_shapes():
    mix = _two_class_full()
    a = mix.sample(101, 42)
    b = mix.sample(101, np.random.default_rng(42))
    c = mix.sample(101, 43)
    assert isinstance(a, MixtureSample)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.omega, b.omega)
    assert not np.array_equal(a.X, c.X)
    assert a.X.shape == (20, 101) and a.omega.shape == (20, 101) and a.labels.shape == (101,)
    assert (a.p, a.n) == (20, 101)
    assert a.sizes.tolist() == mix.sizes(101).tolist() == [35, 66]
    assert np.all(np.diff(a.labels) >= 0)  # grouped by class
    assert np.bincount(a.labels).tolist() == a.sizes.tolist()
    mu = mix.means.T[:, a.labels]
    bound = 4 * np.finfo(float).eps * (np.abs(mu) + np.abs(a.omega)) / math.sqrt(20)
    assert np.all(np.abs(a.X - (mu + a.omega) / math.sqrt(20)) <= bound)
    # explicit sizes (n optional; if given it must agree)
    s = mix.sample(rng=1, sizes=[3, 4])
    assert s.sizes.tolist() == [3, 4] and s.n == 7
    assert mix.sample(7, 1, sizes=[3, 4]).X.tolist() == s.X.tolist()
    with pytest.raises(ShapeMismatchError):
        mix.sample(8, 1, sizes=[3, 4])
    with pytest.raises(ShapeMismatchError):
        mix.sample(rng=1, sizes=[3, 4, 5])
    with pytest.raises(InvalidParameterError):
        mix.sample(0, 1)
    with pytest.raises(InvalidParameterError):
        mix.sample(10, "seed")
    # outputs are read-only
    with pytest.raises(ValueError):
        a.X[0, 0] = 1.0


@pytest.mark.parametrize("diagonal", [True, False])
def test_sample_moments_match_spec(diagonal):
    """Class means and covariances of omega against the spec (5-sigma entrywise)."""
    rng = np.random.default_rng(7)
    p, n_a = 6, 20000
    if diagonal:
        covs = np.stack([rng.uniform(0.3, 2, p), rng.uniform(0.3, 2, p)])
        full = [np.diag(c) for c in covs]
    else:
        full = [_random_spd(p, rng, 1.0), _random_spd(p, rng, 0.5)]
        covs = np.stack(full)
    means = rng.standard_normal((2, p))
    mix = GaussianMixture(means, covs)
    s = mix.sample(rng=8, sizes=[n_a, n_a])
    for a in range(2):
        Y = math.sqrt(p) * s.X[:, s.labels == a]  # = mu_a + omega
        C = full[a]
        sd_mean = np.sqrt(np.diag(C) / n_a)
        assert np.all(np.abs(Y.mean(axis=1) - means[a]) < 5 * sd_mean)
        W = s.omega[:, s.labels == a]
        S = W @ W.T / n_a  # the true mean is 0
        sd_cov = np.sqrt((C ** 2 + np.outer(np.diag(C), np.diag(C))) / n_a)
        assert np.all(np.abs(S - C) < 5 * sd_cov)


def test_singular_psd_covariance_is_accepted():
    p = 5
    u = np.arange(1.0, p + 1)
    C = np.outer(u, u) / (u @ u)  # rank one
    mix = GaussianMixture(np.zeros((1, p)), C[None])
    s = mix.sample(200, 0)
    # all noise lies on the line spanned by u
    resid = s.omega - np.outer(u, u @ s.omega) / (u @ u)
    assert np.max(np.abs(resid)) < 1e-12


def test_psi_and_V():
    mix = _two_class_full(p=40)
    s = mix.sample(300, 9)
    psi = mix.psi(s)
    tr = np.array([np.trace(mix.cov(a)) for a in range(2)])
    direct = np.array([(s.omega[:, i] @ s.omega[:, i] - tr[s.labels[i]]) / 40
                       for i in range(s.n)])
    np.testing.assert_allclose(psi, direct, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(compute_psi(s.omega, s.labels, mix.traces), psi)
    V = mix.V(s)
    assert V.shape == (300, 3)
    np.testing.assert_allclose(V[:, :2] * math.sqrt(40), class_indicators(s.labels, 2))
    np.testing.assert_array_equal(V[:, 2], psi)
    np.testing.assert_array_equal(build_V(s.labels, psi, 40, 2), V)
    # psi is centred with variance 2 tr(C_a^2)/p^2 (Gaussian omega)
    for a in range(2):
        x = psi[s.labels == a]
        var = 2 * mix.T[a, a] / 40
        assert abs(x.mean()) < 5 * math.sqrt(var / x.size)
        assert abs(x.var() / var - 1) < 5 * math.sqrt(2 / x.size) + 0.05


# ------------------------------------------------------------------------------ plug-in
def _plugin_sigmas(mix: GaussianMixture, sizes: np.ndarray) -> dict:
    """Standard deviations (Gaussian data) of the plug-in estimates."""
    p = mix.p
    C = [mix.cov(a) for a in range(mix.K)]
    m = sizes - 1.0
    v_tr = np.array([2 * np.trace(Ca @ Ca) / (mi * p * p) for Ca, mi in zip(C, m)])
    c = sizes / sizes.sum()
    K = mix.K
    sd_T = np.zeros((K, K))
    for a in range(K):
        for b in range(K):
            if a == b:  # U-statistic: 4 (tr C^2)^2/m^2 + 8 tr C^4/m (leading order)
                C2 = C[a] @ C[a]
                var = 4 * np.trace(C2) ** 2 / m[a] ** 2 + 8 * np.trace(C2 @ C2) / m[a]
            else:  # exact for independent Wishart S_a, S_b
                P = C[a] @ C[b]
                var = (2 * np.trace(P @ P) * (1 / m[a] + 1 / m[b] + 1 / (m[a] * m[b]))
                       + 2 * np.trace(P) ** 2 / (m[a] * m[b]))
            sd_T[a, b] = math.sqrt(var) / p
    v_t = np.array([p * ((1 - c[a]) ** 2 * v_tr[a]
                         + sum(c[b] ** 2 * v_tr[b] for b in range(K) if b != a))
                    for a in range(K)])
    return {"traces": np.sqrt(v_tr), "T": sd_T, "t": np.sqrt(v_t),
            "tau0_sq": math.sqrt(float(c ** 2 @ v_tr))}


def test_plugin_statistics_match_exact():
    rng = np.random.default_rng(10)
    p = 120
    covs = np.stack([_random_spd(p, rng, 0.8), _random_spd(p, rng, 1.2),
                     np.diag(rng.uniform(0.5, 1.5, p))])
    means = 2 * rng.standard_normal((3, p)) / math.sqrt(p)
    means[0, :3] += 2.0
    mix = GaussianMixture(means, covs, [0.3, 0.3, 0.4])
    sample = mix.sample(900, 11)
    est = plugin_statistics(sample.X, sample.labels)
    exact = mix.statistics(sample)
    sig = _plugin_sigmas(mix, np.asarray(sample.sizes))
    k = 5.0
    got = est.statistics
    assert np.all(np.abs(got.traces - exact.traces) < k * sig["traces"])
    assert np.all(np.abs(got.t - exact.t) < k * sig["t"])
    assert np.all(np.abs(got.T - exact.T) < k * sig["T"])
    assert abs(got.tau0 ** 2 - exact.tau0 ** 2) < k * sig["tau0_sq"]
    np.testing.assert_array_equal(got.sizes, exact.sizes)
    # derived statistics are the same linear functions of the estimates
    c = got.proportions
    P = np.eye(3) - np.outer(np.ones(3), c)
    np.testing.assert_allclose(got.T_centred, P @ got.T @ P.T, atol=1e-12)
    np.testing.assert_allclose(got.s2, c @ got.T @ c)
    # means: ||mu^_a - mu_a||^2 has mean tr(C_a)/n_a and sd sqrt(2 tr C_a^2)/n_a
    for a in range(3):
        na = sample.sizes[a]
        err2 = np.sum((est.means[a] - means[a]) ** 2)
        tr_a, tr2_a = p * exact.traces[a], p * exact.T[a, a]
        assert abs(err2 - tr_a / na) < k * math.sqrt(2 * tr2_a) / na
    # residuals are the data minus the estimated class means
    np.testing.assert_allclose(est.omega, math.sqrt(p) * sample.X
                               - est.means.T[:, sample.labels], atol=1e-12)
    # psi^ estimates psi minus its class mean; the error is dominated by
    # -2 w_i.(sum_{j!=i} w_j)/(n_a p) (variance 4 tr(C_a^2)/(n_a p^2) per entry) while
    # E psi_i^2 = 2 tr(C_a^2)/p^2, so the relative error is about
    # sqrt(2 sum_a T_aa / sum_a n_a T_aa) (~ sqrt(2/n_a)); over 30 seeds the ratio
    # rel/predicted stayed within [0.8, 1.2]
    psi = mix.psi(sample)
    centred = psi - (class_indicators(sample.labels, 3)
                     @ (np.bincount(sample.labels, psi) / sample.sizes))
    rel = np.linalg.norm(est.psi - centred) / np.linalg.norm(psi)
    Td = np.diag(exact.T)
    predicted = math.sqrt(2 * Td.sum() / (np.asarray(sample.sizes) @ Td))
    assert 0.7 * predicted < rel < 1.4 * predicted
    for a in range(3):  # sums to zero within each class
        assert abs(est.psi[sample.labels == a].sum()) < 1e-10
    assert est.V.shape == (900, 4)


def test_plugin_is_location_invariant_and_label_agnostic():
    mix = _two_class_full(p=30)
    s = mix.sample(200, 12)
    est = plugin_statistics(s.X, s.labels)
    shifted = plugin_statistics(s.X + 3.0 * np.arange(30)[:, None] * (s.labels == 1),
                                np.where(s.labels == 0, "cat", "dog"))
    for key in ("traces", "t", "T", "T_centred", "tau0", "s2"):
        np.testing.assert_allclose(getattr(est.statistics, key),
                                   getattr(shifted.statistics, key), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(est.psi, shifted.psi, rtol=1e-9, atol=1e-10)
    assert shifted.classes.tolist() == ["cat", "dog"]


def test_plugin_gram_route_equals_covariance_route():
    """The p <= n (p x p) and p > n (n x n Gram) code paths compute the same numbers."""
    mix = _two_class_full(p=40)
    s = mix.sample(60, 13)  # p < n
    est_small_p = plugin_statistics(s.X, s.labels)
    # embed in p = 100 > n = 60 with zero rows, keeping sqrt(p) x_i (the unnormalised
    # data) unchanged: the unnormalised traces, T and psi (times p) must be identical
    X_big = np.vstack([s.X, np.zeros((60, 60))]) * math.sqrt(40 / 100)
    est_big_p = plugin_statistics(X_big, s.labels)
    np.testing.assert_allclose(est_big_p.statistics.traces * 100,
                               est_small_p.statistics.traces * 40, rtol=1e-10)
    np.testing.assert_allclose(est_big_p.statistics.T * 100,
                               est_small_p.statistics.T * 40, rtol=1e-10)
    np.testing.assert_allclose(est_big_p.psi * 100, est_small_p.psi * 40, rtol=1e-9,
                               atol=1e-10)


@pytest.mark.parametrize("noise", ["gaussian", "exponential"])
def test_trace_square_estimator_is_unbiased(noise):
    """Monte Carlo over many small classes (p = 3, n_a = 6): mean within 4 standard errors.

    The distribution-free estimator is unbiased for any noise; the Gaussian one only for
    Gaussian noise (its bias for centred exponential noise is large and detected).
    """
    rng = np.random.default_rng(14)
    p, m, R = 3, 6, 60000
    C = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 0.5]])
    L = np.linalg.cholesky(C)
    Z = (rng.standard_normal((R, p, m)) if noise == "gaussian"
         else rng.exponential(size=(R, p, m)) - 1.0)
    W = np.einsum("ij,rjk->rik", L, Z) + np.array([1.0, -2.0, 3.0])[None, :, None]
    W = W - W.mean(axis=2, keepdims=True)
    G = np.einsum("rik,ril->rkl", W, W)
    fro2 = np.einsum("rkl,rkl->r", G, G)
    d = np.einsum("rkk->rk", G)
    truth = np.trace(C @ C)
    free = statistics_module._trace_square_estimate(fro2, (d * d).sum(1), d.sum(1), m,
                                                 "distribution_free")
    gauss = statistics_module._trace_square_estimate(fro2, (d * d).sum(1), d.sum(1), m,
                                                  "gaussian")
    assert abs(free.mean() - truth) < 4 * free.std() / math.sqrt(R)
    if noise == "gaussian":
        assert abs(gauss.mean() - truth) < 4 * gauss.std() / math.sqrt(R)
    else:
        assert gauss.mean() - truth > 10 * gauss.std() / math.sqrt(R)
    # the private estimator is what plugin_statistics uses (one replicate, one class)
    X = W[0] / math.sqrt(p)
    for est in ("distribution_free", "gaussian"):
        st = plugin_statistics(X, np.zeros(m, dtype=int), diag_estimator=est).statistics
        ref = free[0] if est == "distribution_free" else gauss[0]
        np.testing.assert_allclose(st.T[0, 0] * p, ref, rtol=1e-10)


def test_off_diagonal_T_estimator_is_unbiased():
    rng = np.random.default_rng(15)
    p, na, nb, R = 3, 4, 5, 40000
    Ca = np.diag([1.0, 2.0, 0.5])
    Cb = np.array([[1.0, 0.4, 0.0], [0.4, 1.0, 0.2], [0.0, 0.2, 2.0]])
    Wa = np.einsum("ij,rjk->rik", np.linalg.cholesky(Ca), rng.standard_normal((R, p, na)))
    Wb = np.einsum("ij,rjk->rik", np.linalg.cholesky(Cb), rng.standard_normal((R, p, nb)))
    Wa -= Wa.mean(axis=2, keepdims=True)
    Wb -= Wb.mean(axis=2, keepdims=True)
    cross = np.einsum("rik,ril->rkl", Wa, Wb)
    est = np.einsum("rkl,rkl->r", cross, cross) / ((na - 1) * (nb - 1))
    truth = np.trace(Ca @ Cb)
    assert abs(est.mean() - truth) < 4 * est.std() / math.sqrt(R)
    X = np.hstack([Wa[0], Wb[0]]) / math.sqrt(p)
    st = plugin_statistics(X, [0] * na + [1] * nb).statistics
    np.testing.assert_allclose(st.T[0, 1] * p, est[0], rtol=1e-10)


# ------------------------------------------------------------------------------ bad inputs
def test_bad_mixture_inputs():
    p = 4
    good_means = np.zeros((2, p))
    good_covs = np.ones((2, p))
    with pytest.raises(ShapeMismatchError, match="means"):
        GaussianMixture(np.zeros(p), good_covs)
    with pytest.raises(ShapeMismatchError, match="covs"):
        GaussianMixture(good_means, np.ones((2, p + 1)))
    with pytest.raises(ShapeMismatchError, match="covs"):
        GaussianMixture(good_means, np.ones((3, p)))
    with pytest.raises(ShapeMismatchError, match="covs"):
        GaussianMixture(good_means, np.ones((2, p, p + 1)))
    bad = good_means.copy()
    bad[1, 2] = np.nan
    with pytest.raises(NonFiniteInputError, match="means"):
        GaussianMixture(bad, good_covs)
    badc = good_covs.copy()
    badc[0, 0] = np.inf
    with pytest.raises(NonFiniteInputError, match="covs"):
        GaussianMixture(good_means, badc)
    with pytest.raises(InvalidParameterError, match="sum to 1"):
        GaussianMixture(good_means, good_covs, [0.5, 0.6])
    with pytest.raises(InvalidParameterError, match="non-negative"):
        GaussianMixture(good_means, good_covs, [1.5, -0.5])
    with pytest.raises(ShapeMismatchError, match="proportions"):
        GaussianMixture(good_means, good_covs, [0.2, 0.3, 0.5])
    with pytest.raises(InvalidParameterError, match="negative variance"):
        GaussianMixture(good_means, np.array([[1, 1, -0.1, 1], [1, 1, 1, 1.0]]))
    full = np.stack([np.eye(p), np.eye(p)])
    not_psd = full.copy()
    not_psd[1] = np.diag([1.0, 1.0, 1.0, -0.5])
    with pytest.raises(InvalidParameterError, match="positive semi-definite"):
        GaussianMixture(good_means, not_psd)
    asym = full.copy()
    asym[0, 0, 1] = 0.3
    with pytest.raises(InvalidParameterError, match="symmetric"):
        GaussianMixture(good_means, asym)
    mix = GaussianMixture(good_means, good_covs)
    with pytest.raises(InvalidParameterError):
        mix.statistics([0, 0])
    with pytest.raises(ShapeMismatchError):
        mix.statistics([1, 2, 3])
    with pytest.raises(InvalidParameterError):
        class_sizes(-3, [0.5, 0.5])


def test_bad_plugin_inputs():
    rng = np.random.default_rng(16)
    X = rng.standard_normal((5, 12))
    labels = np.repeat([0, 1], 6)
    with pytest.raises(ShapeMismatchError, match="labels"):
        plugin_statistics(X, labels[:-1])
    Xn = X.copy()
    Xn[2, 3] = np.nan
    with pytest.raises(NonFiniteInputError):
        plugin_statistics(Xn, labels)
    with pytest.raises(ShapeMismatchError):
        plugin_statistics(X[0], labels)
    one = labels.copy()
    one[0] = 7  # class 7 has a single sample
    with pytest.raises(InvalidParameterError, match="only 1 sample"):
        plugin_statistics(X, one)
    three = np.array([0] * 9 + [1] * 3)
    with pytest.raises(InvalidParameterError, match="at least"):
        plugin_statistics(X, three)  # distribution-free needs 4
    assert plugin_statistics(X, three, diag_estimator="gaussian").statistics.K == 2
    with pytest.raises(UnknownOptionError):
        plugin_statistics(X, labels, diag_estimator="fast")
