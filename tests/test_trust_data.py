"""Data that cannot be trusted as given: refused with a specific error, or flagged.

Classes covered: non-real arrays; relative errors of (near-)zero eigenvalues; given
statistics in the wrong units, transposed or unscaled data; one data-scale convention
for every kernel; data scales outside the floating-point range; memory budgets of the
exact kernels and the spectral grids; lazily spawned seeds; options that would be ignored.
"""
from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

import rmt_deq as rd
from rmt_deq.moments.pairs import PairExpectations
from rmt_deq.cli import main
from rmt_deq.data.conventions import (SOURCE_MIXTURE, SOURCE_PLUGIN, SOURCE_POOLED,
                                 check_statistics, data_scale)
from rmt_deq.errors import (InconsistentDataError, InvalidParameterError, MemoryBudgetError,
                            ShapeMismatchError)
from rmt_deq.sampling._montecarlo import _seeds
from rmt_deq.spectra.bulk import kernel_bulk
from rmt_deq.spectra.stieltjes import gram_support, stieltjes

P = 60


@pytest.fixture(scope="module")
def labelled():
    """A two-class mixture sample in the theory's units (p = 60, n = 160, ||mu_a|| = 6)."""
    base = rd.default_mixture(P, 2, rng=3)
    mix = rd.GaussianMixture(2.0 * np.asarray(base.means), base.covs)
    return mix, mix.sample(160, rng=4)


def _class_stats_of_columns(X, labels):
    """The natural wrong guess: mean and covariance of the columns of X per class."""
    K = int(labels.max()) + 1
    means = np.stack([X[:, labels == a].mean(axis=1) for a in range(K)])
    covs = np.stack([X[:, labels == a].var(axis=1, ddof=1) for a in range(K)])
    return means, covs


# ---------------------------------------------------------------------------------------
# non-real input is refused (never cut to its real part)
# ---------------------------------------------------------------------------------------
X_OK = np.random.default_rng(5).standard_normal((8, 6)) / math.sqrt(8)
_MASKED = np.ma.masked_array(X_OK, mask=np.zeros_like(X_OK, dtype=bool))
_MASKED.mask[1, 2] = True

REAL_CASES = [
    ("complex X", lambda: rd.exact_ck(X_OK + 1e-3j, "relu", 0.3), r"complex.*\.real"),
    ("complex X with zero imaginary part", lambda: rd.exact_ck(X_OK.astype(complex), "relu",
                                                               0.3), r"complex"),
    ("boolean X", lambda: rd.exact_ck(X_OK > 0, "relu", 0.3), r"boolean.*astype\(float\)"),
    ("object X", lambda: rd.plugin_statistics(X_OK.astype(object), [0, 0, 0, 1, 1, 1]),
     r"object"),
    ("masked X", lambda: rd.exact_ck(_MASKED, "relu", 0.3), r"masked array with 1 masked"),
    ("complex labels", lambda: rd.plugin_statistics(X_OK, np.arange(6) + 0j), r"complex"),
    ("mixed-type labels", lambda: rd.plugin_statistics(
        X_OK, np.array([0, "a", 0, "a", 1, 1], dtype=object)), r"mix types"),
    ("complex means", lambda: rd.GaussianMixture(np.zeros((2, 8)) + 0j, np.ones((2, 8))),
     r"means.*complex"),
    ("boolean covs", lambda: rd.GaussianMixture(np.zeros((2, 8)), np.ones((2, 8), bool)),
     r"covs.*boolean"),
    ("complex kernel in metrics", lambda: rd.compare_kernels(np.eye(3) + 0j, np.eye(3)),
     r"K has complex"),
    ("complex eigenvalues in metrics", lambda: rd.ks_distance(np.ones(3) + 1j, np.ones(3)),
     r"spec has complex"),
]


@pytest.mark.parametrize("name,call,pattern", REAL_CASES, ids=[c[0] for c in REAL_CASES])
def test_non_real_arrays_are_refused(name, call, pattern):
    with pytest.raises(InvalidParameterError, match=pattern):
        call()


def test_sparse_X_is_refused_with_the_conversion():
    sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(InvalidParameterError, match=r"sparse matrix.*toarray"):
        rd.exact_ck(sparse.csr_matrix(X_OK), "relu", 0.3)


def test_cli_refuses_complex_data_file(tmp_path, capsys):
    path = tmp_path / "c.npz"
    np.savez(path, X=X_OK + 0.5j, labels=np.array([0, 0, 0, 1, 1, 1]))
    rc = main(["kernel", "--data", str(path), "--activation", "relu", "--sa", "0.3",
               "--out", str(tmp_path / "K.npy")])
    err = capsys.readouterr().err
    assert rc == 2 and "complex" in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------------
# relative errors of eigenvalues: a documented floor, never NaN or absurd
# ---------------------------------------------------------------------------------------
def test_identical_rank_deficient_kernels_compare_as_zero():
    v = np.arange(1.0, 7.0)
    K = np.outer(v, v)                                   # rank 1, k = 5 > rank
    c = rd.compare_kernels(K, K, k=5)
    assert c.operator == c.frobenius == c.ks == c.wasserstein1 == 0.0
    assert np.all(c.top.relative_errors == 0.0)


def test_near_zero_eigenvalues_use_the_floor():
    ref = np.diag([2.0, 1.0, 1e-20, 0.0])
    K = np.diag([2.2, 1.1, 3e-20, 1e-17])
    top = rd.top_eigen_comparison(K, ref, k=4)
    floor = 1e-6 * 2.0                                  # rel_floor * ||K_ref||_2
    # largest first: K (2.2, 1.1, 1e-17, 3e-20) against K_ref (2, 1, 1e-20, 0)
    expected = np.array([0.2 / 2.0, 0.1 / 1.0, (1e-17 - 1e-20) / floor, 3e-20 / floor])
    assert top.floor == pytest.approx(floor, rel=1e-15)
    # eigenvalues come from eigh: a few ulps of the sum of magnitudes
    np.testing.assert_allclose(top.relative_errors, expected, rtol=1e-12)
    assert np.all(np.isfinite(top.relative_errors)) and top.relative_errors.max() < 1


def test_zero_reference_kernel_raises():
    Z = np.zeros((4, 4))
    with pytest.raises(InvalidParameterError, match=r"zero matrix.*operator_norm\(K - K_ref\)"):
        rd.compare_kernels(Z, Z)
    with pytest.raises(InvalidParameterError, match=r"zero"):
        rd.top_eigen_comparison(np.eye(4), Z, k=2)


def test_floor_parameter_is_validated():
    with pytest.raises(InvalidParameterError, match=r"rel_floor"):
        rd.top_eigen_comparison(np.eye(3), np.eye(3), k=2, rel_floor=1.0)
    with pytest.raises(InvalidParameterError, match=r"rel_floor"):
        rd.compare_kernels(np.eye(3), np.eye(3), rel_floor=0.0)


# ---------------------------------------------------------------------------------------
# given statistics must agree with X
# ---------------------------------------------------------------------------------------
def _draw(seed):
    """A random mixture (diagonal or full covariances, Gaussian or heavy-tailed noise)
    and data drawn from it with its exact means and covariances."""
    g = np.random.default_rng(seed)
    p = int(g.choice([4, 16, 40]))
    K = int(g.integers(1, 4))
    sizes = g.integers(1, 25, size=K)
    full = bool(g.integers(2))
    means = g.standard_normal((K, p))
    means *= g.uniform(0, 5, (K, 1)) / np.linalg.norm(means, axis=1, keepdims=True)
    if full:
        A = g.standard_normal((K, p, p)) * g.uniform(0.1, 1.5) / math.sqrt(p)
        covs = A @ A.transpose(0, 2, 1) + np.stack([np.diag(g.uniform(0, 2, p))
                                                    for _ in range(K)])
    else:
        covs = g.uniform(0, 3, (K, p)) ** 2
    heavy = bool(g.integers(2))
    cols = []
    for a in range(K):
        Z = g.standard_normal((p, sizes[a]))
        if heavy:                                        # Student t, 5 degrees of freedom
            Z *= np.sqrt(3.0 / g.chisquare(5.0, sizes[a]))
        W = (np.linalg.cholesky(covs[a]) @ Z) if full else np.sqrt(covs[a])[:, None] * Z
        cols.append((means[a][:, None] + W) / math.sqrt(p))
    return np.concatenate(cols, axis=1), np.repeat(np.arange(K), sizes), means, covs


def test_correct_statistics_are_never_refused():
    # 400 random mixtures, small classes (1 to 24 samples), heavy tails in half of them
    for seed in range(400):
        X, codes, means, covs = _draw(seed)
        check_statistics(X, codes, means, covs)


def test_class_mean_and_covariance_of_the_columns_are_refused(labelled):
    mix, s = labelled
    means, covs = _class_stats_of_columns(s.X, s.labels)
    with pytest.raises(InconsistentDataError) as info:
        rd.kernel_from_data(s.X, "relu", 0.2, labels=s.labels, means=means, covs=covs,
                            method="surrogate")
    msg = str(info.value)
    assert "means look divided by sqrt(p)" in msg and "means * sqrt(p)" in msg
    assert "covs look divided by p" in msg and "covs * p" in msg
    # exactly the statistics of the mixture pass
    K = rd.kernel_from_data(s.X, "relu", 0.2, labels=s.labels, means=mix.means,
                            covs=mix.covs, method="surrogate")
    assert K.shape == (s.n, s.n)


def test_spectrum_data_file_with_wrong_units_exits_2(labelled, tmp_path, capsys):
    mix, s = labelled
    path = tmp_path / "d.npz"
    np.savez(path, X=s.X, labels=s.labels, means=mix.means, covs=mix.covs / P)
    rc = main(["spectrum", "--activation", "relu", "--sa", "0.2", "--data", str(path)])
    err = capsys.readouterr().err
    assert rc == 2 and "InconsistentDataError" in err and "covs look divided by p" in err


def test_transposed_X_is_named(labelled):
    mix, s = labelled
    with pytest.raises(ShapeMismatchError, match=r"X looks transposed.*pass X\.T"):
        rd.plugin_statistics(s.X[:, :40].T, s.labels[:40])     # labels of length p
    with pytest.raises(ShapeMismatchError, match=r"X looks transposed"):
        rd.kernel_from_data(s.X[:, :40].T, "relu", 0.2, labels=np.arange(40) % 2,
                            method="surrogate")
    # X given n x p (here 48 x 60) with means K x p: the means are sized by X's columns
    with pytest.raises(ShapeMismatchError, match=r"means have n = 60 columns.*X looks transp"):
        check_statistics(s.X[:, :48].T, np.arange(60) % 2, mix.means, mix.covs)


def test_means_given_transposed_or_permuted(labelled):
    mix, s = labelled
    with pytest.raises(ShapeMismatchError, match=r"\(p, K\): they look transposed; pass means\.T"):
        check_statistics(s.X, s.labels, mix.means.T, mix.covs)
    with pytest.raises(InconsistentDataError, match=r"rows of means look permuted"):
        check_statistics(s.X, s.labels, mix.means[::-1], mix.covs)


def test_unscaled_X_is_refused_with_statistics_and_noted_without(labelled):
    mix, s = labelled
    Xu = s.X * math.sqrt(P)
    with pytest.raises(InconsistentDataError, match=r"X looks unscaled; divide X by sqrt\(p\)"):
        check_statistics(Xu, s.labels, mix.means, mix.covs)
    # plug-in statistics: no contradiction, computed at the data's own scale, flagged
    sur = rd.plugin_ck_surrogate(Xu, s.labels, "relu", 0.2)
    assert any("X looks unscaled" in note for note in sur.info.notes)
    assert rd.plugin_ck_surrogate(s.X, s.labels, "relu", 0.2).info.notes == ()
    rep = rd.spectrum_report("relu", 0.2, data={"X": Xu, "labels": s.labels}, num=50)
    assert any("X looks unscaled" in note for note in rep["notes"])


# ---------------------------------------------------------------------------------------
# one data-scale convention: tau0 = sqrt(tr C°/p)
# ---------------------------------------------------------------------------------------
def test_defaults_agree_across_exact_sampled_and_surrogate(labelled):
    _, s = labelled
    X, y = s.X, s.labels
    # independent plug-in: sum_a (n_a/n) tr(cov of the class-a columns of sqrt(p) X)/p
    n = X.shape[1]
    t2 = sum((y == a).sum() / n * np.trace(np.atleast_2d(np.cov(X[:, y == a])))
             for a in (0, 1))
    ex = rd.exact_ck(X, "relu", 0.2, labels=y)
    sam = rd.sampled_ck(X, "relu", 0.2, labels=y, width=30, realizations=1, rng=0)
    sur = rd.plugin_ck_surrogate(X, y, "relu", 0.2)
    ntk = rd.exact_ntk(X, "relu", 0.2, labels=y, groups=("v",))
    enn = rd.exact_explicit_kernels(X, ["relu"], labels=y)
    for t0, src in ((ex.tau0, ex.tau0_source), (sam.tau0, sam.tau0_source),
                    (sur.tau0, sur.tau0_source), (ntk.tau0, ntk.tau0_source),
                    (enn.tau0, enn.tau0_source)):
        assert src == SOURCE_PLUGIN
        assert t0 == pytest.approx(math.sqrt(t2), rel=1e-13)


def test_fallback_without_labels_is_stated(labelled):
    _, s = labelled
    ex = rd.exact_ck(s.X, "relu", 0.2)
    sam = rd.sampled_ck(s.X, "relu", 0.2, width=30, realizations=1, rng=0)
    pooled = math.sqrt(np.trace(np.cov(s.X)))            # all samples as one class
    for t0, src in ((ex.tau0, ex.tau0_source), (sam.tau0, sam.tau0_source)):
        assert src == SOURCE_POOLED and "no labels" in src
        assert t0 == pytest.approx(pooled, rel=1e-13)


def test_pipeline_records_the_mixture_statistics(labelled):
    mix, s = labelled
    res = rd.sampled_kernel_from_data(s.X, "relu", 0.2, labels=s.labels, means=mix.means,
                                      covs=mix.covs, width=30, realizations=1, rng=0)
    assert res.tau0_source == SOURCE_MIXTURE
    assert res.tau0 == pytest.approx(math.sqrt(np.sum(mix.covs * s.sizes[:, None])
                                                    / s.n / P), rel=1e-13)


def test_labels_with_another_scale_source_are_refused(labelled):
    _, s = labelled
    sol = rd.solve_four_equations("relu", 0.2, 1.0)
    with pytest.raises(InvalidParameterError, match=r"tau0/labels or solution"):
        rd.exact_ck(s.X, "relu", 0.2, labels=s.labels, solution=sol)
    with pytest.raises(InvalidParameterError, match=r"not labels and tau0"):
        data_scale(s.X, s.labels, tau0=1.0)
    with pytest.raises(InvalidParameterError, match=r"single sample.*tau0="):
        rd.exact_ck(s.X[:, :5], "relu", 0.2, labels=[0, 0, 1, 1, 2])


# ---------------------------------------------------------------------------------------
# data scales that would underflow / overflow
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("factor,word", [(1e-155, "underflow"), (1e155, "overflow")])
def test_extreme_data_scales_are_refused(factor, word):
    with pytest.raises(InvalidParameterError, match=word + r".*rescale X"):
        rd.exact_ck(X_OK * factor, "relu", 0.3)
    with pytest.raises(InvalidParameterError, match=word):
        rd.sampled_ck(X_OK * factor, "relu", 0.3, width=10)


def test_float32_sampling_range_is_checked():
    # float32: column scales below 2^-26 (about 1.5e-8) are refused, as those above 2^25
    with pytest.raises(InvalidParameterError, match=r"underflow float32"):
        rd.sampled_ck(X_OK * 1e-9, "relu", 0.3, width=10, dtype="float32")
    with pytest.raises(InvalidParameterError, match=r"overflow float32"):
        rd.sampled_ck(X_OK * 1e9, "relu", 0.3, width=10, dtype="float32")


# ---------------------------------------------------------------------------------------
# memory budgets
# ---------------------------------------------------------------------------------------
def test_exact_kernels_refuse_a_large_n_up_front():
    X = np.random.default_rng(0).standard_normal((2, 20000))
    with pytest.raises(MemoryBudgetError, match=r"Implicit-CK.*MiB.*max_memory"):
        rd.exact_ck(X, "relu", 0.3)
    with pytest.raises(MemoryBudgetError, match=r"max_memory"):
        rd.exact_ntk(X[:, :100], "relu", 0.3, max_memory=1e5)
    with pytest.raises(MemoryBudgetError, match=r"2-layer network"):
        rd.exact_explicit_kernels(X, ["relu", "relu"])


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_exact_ck_estimate_bounds_the_measured_peak(activation):
    from rmt_deq.kernels.exact import _exact_ck_memory

    n = 500
    X = np.random.default_rng(1).standard_normal((n, n)) / math.sqrt(n)
    method = "closed" if activation == "relu" else "mehler"
    estimate = _exact_ck_memory(n, n, method)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        K = rd.exact_ck(X, activation, 0.3)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    # the result alone keeps Sigma, G, Gdot and X^T X: a lower bound of the peak
    assert 4 * 8 * n * n <= peak <= estimate
    assert K.info.Sigma.nbytes == 8 * n * n
    # under a budget just below the estimate: ReLU is solved in tiles (the same pairs, to a
    # few ulps); tanh is refused, the Mehler engine's per-sample tables not fitting either
    if activation == "relu":
        tiled = rd.exact_ck(X, activation, 0.3, max_memory=0.99 * estimate)
        assert tiled.info.tile > 0 and tiled.info.Sigma is None
        assert np.abs(tiled.ck - K.ck).max() <= 8 * np.finfo(float).eps * np.abs(K.ck).max()
    else:
        with pytest.raises(MemoryBudgetError, match=r"in tiles.*raise max_memory"):
            rd.exact_ck(X, activation, 0.3, max_memory=0.99 * estimate)


def test_spectral_grids_are_budgeted(tmp_path, capsys):
    model = rd.gram_model(np.ones((2, 30)), [20, 20])
    with pytest.raises(MemoryBudgetError, match=r"density grid \(num\)"):
        kernel_bulk(model, c1=1.0, c0=0.0, num=10 ** 10)
    with pytest.raises(MemoryBudgetError, match=r"support scan"):
        gram_support(model, scan=10 ** 10)
    with pytest.raises(MemoryBudgetError, match=r"fewer points"):
        stieltjes(model, np.linspace(0.1, 2.0, 1000), max_memory=1e4)
    spec = tmp_path / "s.json"
    spec.write_text('{"means": [[0, 0], [1, 0]], "covs": [[1, 1], [1, 1]], "sizes": [3, 3]}')
    rc = main(["spectrum", "--activation", "relu", "--sa", "0.2", "--mixture", str(spec),
               "--num", str(10 ** 10)])
    assert rc == 2 and "MemoryBudgetError" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# seeds are spawned lazily
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 12345])
def test_lazy_children_are_those_of_spawn(seed):
    kids = np.random.SeedSequence(seed).spawn(9)
    children, sign_seed = _seeds(seed, 8)
    assert sign_seed == int(np.random.default_rng(kids[0]).integers(2 ** 62))
    for r in range(8):
        a = children[r].standard_normal(16)
        b = np.random.default_rng(kids[r + 1]).standard_normal(16)
        assert np.array_equal(a, b)


def test_generator_seed_children_are_those_of_spawn():
    ss = np.random.SeedSequence(np.random.default_rng(7).integers(0, 2 ** 63, size=4).tolist())
    kids = ss.spawn(4)
    children, _ = _seeds(np.random.default_rng(7), 3)
    for r in range(3):
        assert np.array_equal(children[r].integers(0, 2 ** 62, 8),
                              np.random.default_rng(kids[r + 1]).integers(0, 2 ** 62, 8))


def test_huge_realization_count_with_early_stop_starts_at_once(monkeypatch):
    class Guarded(np.random.SeedSequence):
        """Fails fast where the old code spawned all R children up front."""

        def spawn(self, n_children):
            assert n_children <= 10 ** 6, "O(R) seed spawning before the first realization"
            return super().spawn(n_children)

    monkeypatch.setattr(np.random, "SeedSequence", Guarded)
    X = X_OK[:, :4]
    for run in (lambda **kw: rd.sampled_ck(X, "relu", 0.3, **kw),
                lambda **kw: rd.sampled_explicit_ck(X, ["relu"], **kw)):
        res = run(width=10, realizations=10 ** 15, batches=2, target_error=1e6, rng=3)
        assert res.info.stopped_early and res.info.realizations == 2
        assert res.info.requested == 10 ** 15
    # the first realizations are those of a short run with the same seed, bit for bit
    short = rd.sampled_ck(X, "relu", 0.3, width=10, realizations=2, batches=2, rng=3)
    long = rd.sampled_ck(X, "relu", 0.3, width=10, realizations=10 ** 15, batches=2,
                         target_error=1e6, rng=3)
    assert np.array_equal(short.matrix, long.matrix)


# ---------------------------------------------------------------------------------------
# options that would be ignored are refused
# ---------------------------------------------------------------------------------------
def test_groups_with_the_ck_are_refused():
    with pytest.raises(InvalidParameterError, match=r"groups.*kind='ntk' only"):
        rd.sampled_kernel(X_OK, "relu", 0.3, kind="ck", groups=("v",), width=10)


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_bad_worker_counts_are_refused(workers):
    with pytest.raises(InvalidParameterError, match=r"workers must be a positive integer"):
        rd.exact_ck(X_OK, "tanh", 0.3, workers=workers)
    with pytest.raises(InvalidParameterError, match=r"workers"):
        PairExpectations("tanh", np.ones(3), workers=workers)


def test_check_every_needs_a_target():
    with pytest.raises(InvalidParameterError, match=r"check_every.*target_error"):
        rd.sampled_ck(X_OK, "relu", 0.3, width=10, realizations=4, check_every=2)
