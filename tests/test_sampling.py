"""Finite-width DEQs: weight families, the batched solver, gradients, sampled CK/NTK."""
from __future__ import annotations

import math

import numpy as np
import pytest

import rmt_deq as rd
from rmt_deq.networks.deq import DEQWeights, deq_forward, deq_gradients, sample_deq_weights
from rmt_deq.networks.solver import SolverOptions, solve_batched
from rmt_deq.errors import (ConvergenceError, InvalidParameterError, ShapeMismatchError,
                            UnknownOptionError, NonFiniteInputError)
from rmt_deq.sampling.deq import sampled_ck, sampled_kernel, sampled_ntk
from rmt_deq.kernels.result import Kernel
from rmt_deq.sampling import _bootstrap
from rmt_deq.sampling._bootstrap import (NORM_RTOL, bootstrap_bound, certified_sign_norms,
                                         exact_sign_norms, sign_draws)
from rmt_deq.sampling._montecarlo import MonteCarloOptions, SamplerOptions, mc_error_bound
from rmt_deq.networks.weights import WEIGHT_FAMILIES, weight_matrix
from conftest import relu_pair_expectation


@pytest.fixture(scope="module")
def data():
    mix = rd.default_mixture(60, 2, rng=0)
    return mix.sample(40, rng=1).X            # p = 60, n = 40


@pytest.fixture(scope="module")
def small():
    mix = rd.default_mixture(24, 2, rng=3)
    return mix.sample(12, rng=4).X            # p = 24, n = 12


def _rel(a, b):
    return np.linalg.norm(a - b, 2) / np.linalg.norm(b, 2)


# ---------------------------------------------------------------------------- weights
@pytest.mark.parametrize("family", WEIGHT_FAMILIES)
def test_weight_families_unit_variance(family):
    m = 300
    W = weight_matrix(family, m, rng=5)
    assert W.shape == (m, m) and W.dtype == np.float64
    off = W[~np.eye(m, dtype=bool)]
    assert abs(np.mean(off ** 2) - 1.0) < 0.02
    if family == "orthogonal":
        assert np.allclose(W.T @ W, m * np.eye(m), atol=1e-9 * m)
    if family == "symmetric":
        assert np.array_equal(W, W.T)
        assert abs(np.mean(np.diagonal(W) ** 2) - 2.0) < 0.5
    assert np.array_equal(W, weight_matrix(family, m, rng=5))
    W32 = weight_matrix(family, 50, rng=1, dtype="float32")
    assert W32.dtype == np.float32


def test_weight_families_rectangular_and_errors():
    Q = weight_matrix("orthogonal", 80, 30, rng=0)
    assert np.allclose(Q.T @ Q, 80 * np.eye(30), atol=1e-9)
    Q = weight_matrix("orthogonal", 30, 80, rng=0)
    assert np.allclose(Q @ Q.T, 80 * np.eye(30), atol=1e-9)
    with pytest.raises(InvalidParameterError):
        weight_matrix("symmetric", 4, 5, rng=0)
    with pytest.raises(UnknownOptionError):
        weight_matrix("haar", 4, rng=0)
    with pytest.raises(UnknownOptionError):
        weight_matrix("gaussian", 4, rng=0, dtype="float16")


# ---------------------------------------------------------------------------- solver
def test_solve_batched_linear_problem_and_methods():
    rng = np.random.default_rng(0)
    m, k = 50, 7
    M = rng.standard_normal((m, m)) * 0.5 / math.sqrt(m)
    b = rng.standard_normal((m, k))
    exact = np.linalg.solve(np.eye(m) - M, b)

    def step(x, out):
        np.matmul(M, x, out=out)
        out += b

    for method in ("plain", "anderson", "auto"):
        x, rec = solve_batched(step, b, method=method, tol=1e-12)
        assert np.allclose(x, exact, atol=1e-10)
        rep = rec.report
        assert rep.converged and rep.residual <= 1e-12 and rep.tolerance == 1e-12
        assert rep.history[-1] == rep.residual and len(rep.history) == rep.iterations
        assert rec.method.startswith(method if method != "auto" else "plain")


def test_solver_reports_divergence_with_history():
    rng = np.random.default_rng(1)
    M = rng.standard_normal((40, 40)) * 3.0 / math.sqrt(40)   # spectral radius ~ 3

    def step(x, out):
        np.matmul(M, x, out=out)
        out += 1.0

    with pytest.raises(ConvergenceError) as ei:
        solve_batched(step, np.zeros((40, 3)), method="plain", max_iter=60)
    assert len(ei.value.residuals) > 5
    with pytest.raises(InvalidParameterError):
        solve_batched(step, np.zeros((40, 3)), tol=-1.0)
    with pytest.raises(UnknownOptionError):
        solve_batched(step, np.zeros((40, 3)), method="newton")


def test_deq_without_attracting_fixed_point_raises(small):
    # recurrent weights scaled up 5x (gain sqrt(0.36) * 5 = 3): the tanh DEQ is chaotic
    W = sample_deq_weights(200, small.shape[0], rng=0)
    W = DEQWeights(A=5.0 * W.A, B=W.B, v=W.v)
    for method in ("plain", "auto"):
        with pytest.raises(ConvergenceError) as ei:
            deq_forward(small, "tanh", 0.36, weights=W, method=method, max_iter=80)
        assert len(ei.value.residuals) == 80
        assert min(ei.value.residuals) > 1e-7


# ---------------------------------------------------------------------------- forward
@pytest.mark.parametrize("family", WEIGHT_FAMILIES)
def test_forward_is_a_fixed_point(data, family):
    m, sa = 300, 0.3
    W = sample_deq_weights(m, data.shape[0], family=family, rng=2)
    fw = deq_forward(data, "relu", sa, weights=W)
    # default data scale without labels: all samples as one class, the pooled sample
    # covariance's trace sum_i ||x_i - xbar||^2 / (n - 1)
    centred = data - data.mean(axis=1, keepdims=True)
    sol = rd.solve_four_equations("relu", sa, math.sqrt(np.sum(centred ** 2)
                                                        / (data.shape[1] - 1)))
    phic = np.maximum(fw.U, 0) - sol.centring
    rhs = math.sqrt(sa / m) * W.A @ phic + math.sqrt(1 - sa) * W.B @ data
    rel = np.linalg.norm(fw.U - rhs, axis=0) / np.linalg.norm(rhs, axis=0)
    assert rel.max() < 2e-7
    assert np.allclose(fw.Z, phic / math.sqrt(m))
    assert fw.report is fw.record.report and fw.report.converged
    assert fw.report.residual <= 1e-7 and fw.centring == pytest.approx(sol.centring)
    if family == "symmetric":
        assert "anderson" in deq_forward(data, "relu", sa, weights=W,
                                         method="anderson").record.method


def test_forward_chunks_float32_and_shapes(data):
    W = sample_deq_weights(200, data.shape[0], rng=3)
    a = deq_forward(data, "tanh", 0.4, weights=W)
    b = deq_forward(data, "tanh", 0.4, weights=W, chunk_size=7)
    assert b.record.chunks == 6 and b.report.iterations == len(b.report.history)
    # the merged report is the worst chunk's: its history bounds every chunk's residual
    assert b.report.residual <= 1e-7 and b.report.residual == b.report.history[-1]
    with pytest.raises(UnknownOptionError, match="deq_forward"):
        deq_forward(data, "tanh", 0.4, weights=W, tolerance=1e-9)
    assert np.allclose(a.U, b.U, atol=1e-6)
    W32 = DEQWeights(A=W.A.astype(np.float32), B=W.B.astype(np.float32),
                     v=W.v.astype(np.float32))
    c = deq_forward(data, "tanh", 0.4, weights=W32)
    assert c.U.dtype == np.float32 and np.allclose(c.U, a.U, atol=1e-3)
    with pytest.raises(ShapeMismatchError):
        deq_forward(data[:10], "tanh", 0.4, weights=W)


def test_gradients_match_finite_differences(small):
    """d f / d(A, B, v) from implicit differentiation against central differences."""
    m, sa, sb = 80, 0.4, 0.6
    p = small.shape[0]
    W = sample_deq_weights(m, p, rng=7)
    kw = dict(tol=1e-14, max_iter=2000)
    fw = deq_forward(small, "tanh", sa, sb, weights=W, **kw)
    gr = deq_gradients(fw, W, **kw)
    rng = np.random.default_rng(8)
    EA, EB = rng.standard_normal((m, m)), rng.standard_normal((m, p))
    phic = fw.Z * math.sqrt(m)
    pred_A = math.sqrt(sa / m) * np.einsum("ki,kl,li->i", gr.g, EA, phic)
    pred_B = math.sqrt(sb) * np.einsum("ki,kl,li->i", gr.g, EB, small)
    eps = 1e-5

    def f(A, B):
        w = DEQWeights(A=A, B=B, v=W.v)
        return W.v @ deq_forward(small, "tanh", sa, sb, weights=w, **kw).Z

    fd_A = (f(W.A + eps * EA, W.B) - f(W.A - eps * EA, W.B)) / (2 * eps)
    fd_B = (f(W.A, W.B + eps * EB) - f(W.A, W.B - eps * EB)) / (2 * eps)
    assert np.allclose(pred_A, fd_A, rtol=1e-5, atol=1e-7)
    assert np.allclose(pred_B, fd_B, rtol=1e-5, atol=1e-7)


def test_sampled_ntk_single_realization_matches_gradients(small):
    m, sa = 150, 0.3
    # the plain estimator in float64 (the defaults, float32 with the control variate,
    # are checked in test_ntk_control_variate_is_the_corrected_groups)
    S = sampled_ntk(small, "tanh", sa, width=m, realizations=1, rng=11, dtype="float64",
                    control_variate=False)
    child = np.random.default_rng(11).spawn(2)[1]
    W = sample_deq_weights(m, small.shape[0], rng=child)
    fw = deq_forward(small, "tanh", sa, weights=W)
    g = deq_gradients(fw, W).g
    K = fw.Z.T @ fw.Z
    GG = g.T @ g
    assert np.allclose(S.groups["v"], K, atol=1e-12)
    assert np.allclose(S.groups["A"], sa * GG * K, atol=1e-12)
    assert np.allclose(S.groups["B"], (1 - sa) * GG * (small.T @ small), atol=1e-12)
    assert np.allclose(S.ntk, sum(S.groups.values()))
    assert np.array_equal(S.ck, S.groups["v"])
    assert S.route == "sampled" and S.solution is not None
    assert S.error["ntk"] == math.inf                   # one realization: no error bar
    assert S.error_relative["ntk"] == math.inf


# ---------------------------------------------------------------------------- convergence
def test_sampled_kernels_converge_to_exact(data):
    """Relative operator-norm error of the CK and every NTK group falls with m."""
    ex = rd.exact_ntk(data, "relu", 0.3)
    errs = {}
    for m in (200, 1600):
        S = sampled_ntk(data, "relu", 0.3, width=m, realizations=2, rng=5)
        errs[m] = {g: _rel(S.groups[g], ex.groups[g]) for g in "vAB"}
        errs[m]["total"] = _rel(S.ntk, ex.ntk)
    for key in ("v", "A", "B", "total"):
        assert errs[1600][key] < errs[200][key] / 1.7, (key, errs)


# ---------------------------------------------------------------------------- Monte Carlo
def test_reproducible_bitwise_and_seeded(small):
    kw = dict(width=100, realizations=3)
    a = sampled_ck(small, "relu", 0.3, rng=4, **kw)
    b = sampled_ck(small, "relu", 0.3, rng=4, **kw)
    c = sampled_ck(small, "relu", 0.3, rng=5, **kw)
    assert isinstance(a, Kernel) and a.ntk is None and a.matrix is a.ck
    assert np.array_equal(a.ck, b.ck) and a.error["ck"] == b.error["ck"]
    assert not np.array_equal(a.matrix, c.matrix)
    d = sampled_ck(small, "relu", 0.3, rng=np.random.default_rng(4), **kw)
    assert d.matrix.shape == a.matrix.shape
    f32 = sampled_ck(small, "relu", 0.3, rng=4, dtype="float32", **kw)
    assert f32.info.dtype == "float32" and f32.matrix.dtype == np.float64
    assert _rel(f32.matrix, a.matrix) < 0.5            # different draws, same law


def test_error_bar_is_honest(small):
    """Over 20 seeds the distance to a 40x larger reference is below the 95% bar."""
    kw = dict(width=60, batches=8)
    ref = sampled_ck(small, "relu", 0.4, realizations=480, rng=1000, draws=20, **kw).matrix
    ratios = []
    for seed in range(20):
        S = sampled_ck(small, "relu", 0.4, realizations=12, rng=seed, draws=100, **kw)
        ratios.append(np.linalg.norm(S.matrix - ref, 2) / S.error["ck"])
    ratios = np.array(ratios)
    assert np.mean(ratios <= 1.0) >= 0.85          # claimed 0.95 (binomial slack, n = 20)
    assert np.median(ratios) > 0.35                # and not uselessly conservative


def test_ntk_error_bar_is_honest(small):
    """The defaults (float32, control variate) for the NTK and each group: over 20 seeds
    the distance to a 40x larger reference is below the 95% bar."""
    kw = {"width": 60, "batches": 8}
    ref = sampled_ntk(small, "relu", 0.4, realizations=480, rng=1000, draws=20, **kw)
    ratios = {k: [] for k in ("ntk", "v", "A", "B")}
    for seed in range(20):
        S = sampled_ntk(small, "relu", 0.4, realizations=12, rng=seed, **kw)
        for k, r in ratios.items():
            M, Mr = (S.ntk, ref.ntk) if k == "ntk" else (S.groups[k], ref.groups[k])
            r.append(np.linalg.norm(M - Mr, 2) / S.error[k])
    for k, r in ratios.items():
        r = np.array(r)
        assert np.mean(r <= 1.0) >= 0.85, (k, r)       # claimed 0.95 (binomial slack)
        assert np.median(r) > 0.35, (k, r)              # and not uselessly conservative


def test_mc_error_bound_on_known_gaussian_matrices():
    """Batch sums of iid symmetric Gaussian matrices: coverage close to the claim."""
    rng = np.random.default_rng(0)
    n, b, per = 30, 10, 3
    hits = []
    for _ in range(40):
        X = rng.standard_normal((b * per, n, n))
        X = (X + X.transpose(0, 2, 1)) / 2
        S = X.reshape(b, per, n, n).sum(axis=1)
        bound, _ = mc_error_bound(S, np.full(b, per), confidence=0.9, draws=60, rng=1)
        hits.append(np.linalg.norm(S.sum(0) / (b * per), 2) <= bound)
    assert np.mean(hits) >= 0.8
    with pytest.raises(InvalidParameterError):
        mc_error_bound(S[:1], [per])


def _batch_deviations(rng, b, n, spike=0.0):
    """Delta_j = S_j - mean for b batch sums of symmetric Gaussian matrices (+ a random
    rank-one spike of size ``spike`` per batch, for a separated top eigenvalue)."""
    S = rng.standard_normal((b, n, n))
    S = (S + S.transpose(0, 2, 1)) / 2
    if spike:
        u = rng.standard_normal(n)
        u /= np.linalg.norm(u)
        S += spike * rng.standard_normal(b)[:, None, None] * np.outer(u, u)[None]
    return S - S.mean(axis=0)


@pytest.mark.parametrize("one_by_one", [False, True])
@pytest.mark.parametrize("n, spike", [(90, 0.0), (90, 30.0), (20, 0.0)])
def test_certified_norms_within_their_stated_tolerance(n, spike, one_by_one, monkeypatch):
    """Each certified sign-sum norm lies in [||E||, (1 + NORM_RTOL) ||E||] (the guarantee
    of the stopping rule; dense eigenvalues as reference, bounded by rounding), so the
    error bar lies between the dense one and (1 + NORM_RTOL) times it.  ``one_by_one``:
    the path for matrices larger than the cache budget (formed in chunks, iterated one
    draw at a time), forced here by a budget below one matrix."""
    if one_by_one:
        monkeypatch.setattr(_bootstrap, "_CHUNK_BYTES", 4 * n * n - 1)
    rng = np.random.default_rng(n + int(spike))
    b = 8
    Delta = _batch_deviations(rng, b, n, spike)
    gen = np.random.default_rng(7)
    eps = sign_draws(gen, b, 60)
    flat = Delta.reshape(b, -1)
    exact = exact_sign_norms(flat, eps, n)
    nu = certified_sign_norms(flat, eps, n, gen)
    # rounding: a few hundred ulps of the sum of magnitudes sum_j ||Delta_j||_F (equal
    # signs give an exact zero whose computed norm is rounding noise)
    atol = 1e-13 * sum(np.linalg.norm(Delta[j]) for j in range(b))
    assert np.all(nu >= exact - atol)
    assert np.all(nu <= exact * (1 + NORM_RTOL) + atol)
    # for a quantile only: small sums may stop at a certified level below the order
    # statistic under the quantile; still upper bounds, and the quantile within its bounds
    nu_q = certified_sign_norms(flat, eps, n, np.random.default_rng(8), quantile=0.9)
    assert np.all(nu_q >= exact - atol)
    q_exact, q_fast = np.quantile(exact, 0.9), np.quantile(nu_q, 0.9)
    assert q_exact - atol <= q_fast <= q_exact * (1 + NORM_RTOL) + atol
    counts = np.full(b, 2.0)
    kw = dict(confidence=0.9, draws=60, rng=3)
    dense = bootstrap_bound(Delta, counts, exact=True, **kw)
    fast = bootstrap_bound(Delta, counts, **kw)
    atol *= math.sqrt(b / (b - 1.0)) / counts.sum() * 2       # the bar's scale factors
    assert dense - atol <= fast <= dense * (1 + NORM_RTOL) + atol


def test_certified_norms_fallback_and_zero_sums(monkeypatch):
    """Sign sums not certified within the step limit are decomposed densely (exact);
    identical batches give a zero error bar (up to rounding)."""
    rng = np.random.default_rng(11)
    b, n = 6, 40
    Delta = _batch_deviations(rng, b, n)
    gen = np.random.default_rng(1)
    eps = sign_draws(gen, b, 10)
    flat = Delta.reshape(b, -1)
    monkeypatch.setattr(_bootstrap, "MAX_LANCZOS_STEPS", 3)      # too few to certify
    nu = certified_sign_norms(flat, eps, n, gen)
    exact = exact_sign_norms(flat, eps, n)
    assert np.allclose(nu, exact, rtol=1e-12, atol=0)
    monkeypatch.undo()
    S = np.repeat(rng.standard_normal((1, n, n)), b, axis=0)
    S = S + S.transpose(0, 2, 1)
    bound, norm = mc_error_bound(S, np.ones(b), draws=20, rng=0)
    assert 0.0 <= bound <= 1e-12 * norm            # zero, up to rounding of the mean


def test_early_stop_progress_and_chunking(small):
    seen = []
    f64 = {"dtype": "float64"}        # chunking agrees to the float64 solver's precision
    S = sampled_ck(small, "relu", 0.3, width=80, realizations=40, batches=4, rng=2,
                   target_error=10.0, progress=seen.append, **f64)
    assert S.info.stopped_early and S.info.realizations == 4
    real = [e for e in seen if e.phase == "realizations"]
    assert [e.realization for e in real] == [1, 2, 3, 4]
    assert real[-1].relative_error is not None and S.info.error_history[0][0] == 4
    # then the final error bar: its sign draws counted up to the total, in order, last
    bar = seen[len(real):]
    assert bar and all(e.phase == "error bar" and e.realization == 4 for e in bar)
    assert [e.draws_done for e in bar] == sorted(e.draws_done for e in bar)
    assert bar[0].draws_done == 0 and bar[-1].draws_done == bar[-1].draws_total == 100
    T = sampled_ck(small, "relu", 0.3, width=80, realizations=4, batches=4, rng=2, **f64)
    assert np.array_equal(S.matrix, T.matrix)
    C = sampled_ck(small, "relu", 0.3, width=80, realizations=4, batches=4, rng=2,
                   chunk_size=5, **f64)
    assert np.allclose(C.matrix, T.matrix, atol=1e-6) and C.info.chunk_size == 5
    M = sampled_ck(small, "relu", 0.3, width=80, realizations=4, batches=4, rng=2,
                   max_memory=200_000, **f64)
    assert M.info.chunk_size < small.shape[1]
    with pytest.raises(InvalidParameterError):
        sampled_ck(small, "relu", 0.3, width=80, realizations=4, max_memory=1000)


def test_options_are_validated(small):
    with pytest.raises(UnknownOptionError):
        sampled_kernel(small, "relu", 0.3, width=10, bogus=1)
    with pytest.raises(UnknownOptionError):
        sampled_ck(small, "relu", 0.3, width=10, family="unitary")
    with pytest.raises(UnknownOptionError):
        sampled_ck(small, "relu", 0.3, width=10, dtype="int8")
    with pytest.raises(UnknownOptionError):
        sampled_ntk(small, "relu", 0.3, width=10, groups=("v", "C"))
    with pytest.raises(InvalidParameterError):
        sampled_ck(small, "relu", 0.3, width=10, confidence=1.5)
    with pytest.raises(InvalidParameterError):
        sampled_ck(small, "relu", 0.3, width=0)
    K = sampled_kernel(small, "relu", 0.3, kind="ntk", groups=("v", "A"), width=50,
                       realizations=2, rng=0, family="symmetric")
    assert K.selected == ("v", "A") and K.matrix.shape == (12, 12)
    assert all("anderson" in r.method for r in K.info.forward)
    assert set(K.error) == {"ntk", "v", "A", "ck"} and K.error["ck"] == K.error["v"]
    for k, e in K.error.items():           # relative = absolute / ||the matrix it bounds||
        M = K.ntk if k == "ntk" else (K.ck if k == "ck" else K.groups[k])
        assert K.error_relative[k] == pytest.approx(e / np.linalg.norm(M, 2), rel=1e-9)
    with pytest.raises(UnknownOptionError, match="sampled_ck"):
        sampled_ck(small, "relu", 0.3, width=10, tolerance=1e-3)
    with pytest.raises(InvalidParameterError):
        sampled_ntk(small, "relu", 0.3, width=10, control_variate="yes")


def test_option_records():
    """The shared option records validate on construction and store what is used."""
    mc = MonteCarloOptions(realizations=5, batches=16)
    assert (mc.batches, mc.check_every) == (5, 5)
    assert MonteCarloOptions().batches == 2            # one realization: two (empty) batches
    with pytest.raises(InvalidParameterError, match="batches"):
        MonteCarloOptions(batches=1)
    with pytest.raises(InvalidParameterError, match="check_every"):
        MonteCarloOptions(check_every=3)
    assert SamplerOptions(dtype="float32").dtype == np.float32
    with pytest.raises(InvalidParameterError):
        SamplerOptions(max_memory=-1)
    assert SolverOptions().tol_for(np.float32) == 1e-4 and SolverOptions(tol=1e-9).tol == 1e-9
    with pytest.raises(UnknownOptionError):
        SolverOptions(method="newton")
    with pytest.raises(InvalidParameterError):
        SolverOptions(chunk_size=0)


# ---------------------------------------------------------------------------- metrics
def test_metrics_against_scipy_and_definitions():
    from scipy import stats

    from rmt_deq.metrics import (compare_kernels, ks_distance, relative_frobenius_distance,
                                 relative_operator_distance, top_eigen_comparison,
                                 wasserstein1_distance)

    rng = np.random.default_rng(3)
    Y = rng.standard_normal((30, 50))
    K_ref = Y @ Y.T / 50
    E = rng.standard_normal((30, 30)) * 0.05
    K = K_ref + (E + E.T) / 2
    ev, ev_ref = np.linalg.eigvalsh(K), np.linalg.eigvalsh(K_ref)
    assert ks_distance(K, K_ref) == pytest.approx(stats.ks_2samp(ev, ev_ref).statistic,
                                                  abs=1e-15)
    assert wasserstein1_distance(K, K_ref) == pytest.approx(
        stats.wasserstein_distance(ev, ev_ref), rel=1e-12)
    a, b = rng.standard_normal(17), rng.standard_normal(40)          # unequal sizes
    assert ks_distance(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-15)
    assert wasserstein1_distance(a, b) == pytest.approx(stats.wasserstein_distance(a, b),
                                                        rel=1e-12)
    N = rng.standard_normal((30, 30))                                  # non-symmetric
    assert relative_operator_distance(K_ref + N, K_ref) == pytest.approx(
        np.linalg.svd(N, compute_uv=False)[0] / ev_ref[-1], rel=1e-12)
    assert relative_frobenius_distance(K, K_ref) == pytest.approx(
        math.sqrt(np.sum((K - K_ref) ** 2) / np.sum(K_ref ** 2)), rel=1e-12)
    # a known rank-one perturbation along the top eigenvector
    w, V = np.linalg.eigh(K_ref)
    shifted = K_ref + 0.3 * np.outer(V[:, -1], V[:, -1])
    top = top_eigen_comparison(shifted, K_ref, k=3)
    assert top.relative_errors[0] == pytest.approx(0.3 / w[-1], rel=1e-10)
    assert np.allclose(top.relative_errors[1:], 0, atol=1e-12)
    assert np.allclose(top.alignments, 1, atol=1e-10) and top.subspace_alignment == \
        pytest.approx(1, abs=1e-10)
    d = compare_kernels(K, K_ref, k=2).as_dict()
    assert set(d) >= {"operator", "frobenius", "ks", "wasserstein1", "top_alignments"}
    with pytest.raises(ShapeMismatchError):
        relative_operator_distance(K, K_ref[:5, :5])
    with pytest.raises(NonFiniteInputError):
        ks_distance(np.array([1.0, np.nan]), b)
    with pytest.raises(InvalidParameterError):
        ks_distance(N, K_ref)                          # eigenvalues of a non-symmetric K
    with pytest.raises(InvalidParameterError):
        top_eigen_comparison(K, K_ref, k=31)


# ---------------------------------------------------------------------------- explicit
@pytest.mark.parametrize("hidden_width", [None, 70])
def test_explicit_gradients_match_finite_differences(small, hidden_width):
    from rmt_deq.networks.explicit import (ExplicitWeights, explicit_forward,
                                  sample_explicit_weights)

    net = ("tanh", "erf")
    p = small.shape[0]
    W = sample_explicit_weights(net, 40, p, rng=2, hidden_width=hidden_width)
    fw = explicit_forward(small, net, W, gradients=True)
    rng = np.random.default_rng(9)
    for l in range(2):
        Edir = rng.standard_normal(W.W[l].shape)
        h_prev = small if l == 0 else fw.H[0]
        pred = np.einsum("ki,kl,li->i", fw.delta[l], Edir, h_prev)
        eps = 1e-6

        def f(sign):
            Ws = list(W.W)
            Ws[l] = Ws[l] + sign * eps * Edir
            out = explicit_forward(small, net, ExplicitWeights(W=tuple(Ws), v=W.v),
                                   tau0=fw.scales.tau[0])
            return W.v @ out.H[-1]

        assert np.allclose(pred, (f(1) - f(-1)) / (2 * eps), rtol=1e-6, atol=1e-9)


def test_explicit_sampled_kernels_converge_to_exact(data):
    from rmt_deq.kernels.explicit import exact_explicit_kernels
    from rmt_deq.sampling.explicit import sampled_explicit_ntk

    net = ("relu", "tanh")
    ex = exact_explicit_kernels(data, net)
    errs = {}
    for m in (200, 1600):
        S = sampled_explicit_ntk(data, net, width=m, realizations=2, rng=3)
        assert S.route == "sampled" and S.network == "explicit"
        errs[m] = {g: _rel(S.groups[g], ex.groups[g]) for g in ("v", "W1", "W2")}
        errs[m]["ck"] = _rel(S.ck, ex.ck)
    for key in ("v", "W1", "W2", "ck"):
        # ~ m^{-1/2}: a factor sqrt(8) = 2.8 expected, 1.7 leaves room for the noise
        assert errs[1600][key] < errs[200][key] / 1.7, (key, errs)
    one = sampled_explicit_ntk(data, net, width=50, realizations=1, rng=4, groups=("W2",))
    assert one.selected == ("W2",) and one.error["ntk"] == math.inf


def test_sampler_reports_a_failed_realization_with_its_history(small):
    # symmetric A at sa = 0.9: the forward Jacobian's real spectrum reaches
    # 2 sqrt(0.9 * E[relu'^2]) = 1.34 > 1, so the plain iteration has no attracting point
    with pytest.raises(ConvergenceError) as ei:
        sampled_ck(small, "relu", 0.9, width=120, realizations=3, family="symmetric",
                   method="plain", max_iter=60, rng=0)
    assert "realization 0 of 3" in str(ei.value) and "symmetric" in str(ei.value)
    assert 0 < len(ei.value.residuals) <= 60 and min(ei.value.residuals) > 1e-7


def test_operator_norm_helper_matches_lapack():
    from rmt_deq.metrics import LANCZOS_MIN_SIZE, operator_norm, symmetric_operator_norm

    rng = np.random.default_rng(4)
    for n in (50, 300):                         # LAPACK, then Lanczos
        assert (n >= LANCZOS_MIN_SIZE) == (n == 300)
        for shift in (0.0, 3.0, -3.0):          # tied, positive and negative extremes
            Y = rng.standard_normal((n, n))
            M = (Y + Y.T) / math.sqrt(2 * n) + shift * np.outer(np.ones(n), np.ones(n)) / n
            w = np.linalg.eigvalsh(M)
            assert symmetric_operator_norm(M) == pytest.approx(max(-w[0], w[-1]), rel=1e-9)
            assert operator_norm(M) == pytest.approx(max(-w[0], w[-1]), rel=1e-14)


# ---------------------------------------------------------------------------- control variate
def test_control_variate_is_the_corrected_gram_and_shrinks_the_error(data):
    m, sa = 150, 0.3
    sb = 1 - sa
    S = sampled_ck(data, "relu", sa, width=m, realizations=1, rng=21, dtype="float64")
    assert S.info.control_variate                     # on by default
    child = np.random.default_rng(21).spawn(2)[1]     # realization 0's generator
    W = sample_deq_weights(m, data.shape[0], rng=child)
    fw = deq_forward(data, "relu", sa, weights=W)
    P0 = (np.maximum(math.sqrt(sb) * W.B @ data, 0) - fw.centring) / math.sqrt(m)
    EL = relu_pair_expectation(sb * data.T @ data, fw.centring)
    assert np.allclose(S.ck, fw.Z.T @ fw.Z - P0.T @ P0 + EL, atol=1e-12)
    # same weights, same expectation, smaller error bar (1.5x: measured ~2x here)
    kw = dict(width=m, realizations=16, rng=5, batches=16, draws=100)
    plain = sampled_ck(data, "relu", sa, control_variate=False, **kw)
    cv = sampled_ck(data, "relu", sa, **kw)
    e_cv, e_plain = cv.error["ck"], plain.error["ck"]
    assert e_cv < e_plain / 1.5, (e_cv, e_plain)
    assert np.linalg.norm(cv.ck - plain.ck, 2) <= e_cv + e_plain
    with pytest.raises(InvalidParameterError):
        sampled_ck(data, "relu", sa, width=10, control_variate="yes")


def _relu_derivative_pair_expectation(S):
    """E[1{u_i > 0} 1{u_j > 0}], (u_i, u_j) ~ N(0, S): (pi - theta)/(2 pi)."""
    s = np.sqrt(np.diagonal(S))
    th = np.arccos(np.clip(S / np.outer(s, s), -1.0, 1.0))
    return (np.pi - th) / (2 * np.pi)


def test_ntk_control_variate_is_the_corrected_groups(data):
    """One realization with the (default) control variate: every group is the plain one
    minus a correction of mean zero built from the injection's features and gradients
    (the closed-form relu expectations as the independent reference); over 16
    realizations it agrees with the plain estimator within the two bars and its bars
    are smaller."""
    m, sa = 150, 0.3
    sb = 1 - sa
    S = sampled_ntk(data, "relu", sa, width=m, realizations=1, rng=21, dtype="float64")
    assert S.info.control_variate
    child = np.random.default_rng(21).spawn(2)[1]
    W = sample_deq_weights(m, data.shape[0], rng=child)
    fw = deq_forward(data, "relu", sa, weights=W)
    g = deq_gradients(fw, W).g
    Y = math.sqrt(sb) * W.B @ data
    P0 = (np.maximum(Y, 0) - fw.centring) / math.sqrt(m)
    G0 = (Y > 0) * W.v[:, None] / math.sqrt(m)
    S0 = sb * data.T @ data
    EL = relu_pair_expectation(S0, fw.centring)
    EG = _relu_derivative_pair_expectation(S0)
    K, L = fw.Z.T @ fw.Z, P0.T @ P0
    GG, GG0 = g.T @ g, G0.T @ G0
    assert np.allclose(S.groups["v"], K - L + EL, atol=1e-12)
    assert np.allclose(S.groups["A"], sa * (GG * K - GG0 * EL - EG * L + 2 * EG * EL),
                       atol=1e-12)
    assert np.allclose(S.groups["B"], sb * (data.T @ data) * (GG - GG0 + EG), atol=1e-12)
    kw = {"width": m, "realizations": 16, "rng": 5, "batches": 16, "draws": 100}
    plain = sampled_ntk(data, "relu", sa, control_variate=False, **kw)
    cv = sampled_ntk(data, "relu", sa, **kw)
    for k in ("ntk", "v", "A", "B"):
        e_cv, e_plain = cv.error[k], plain.error[k]
        M_cv = cv.ntk if k == "ntk" else cv.groups[k]
        M_plain = plain.ntk if k == "ntk" else plain.groups[k]
        assert np.linalg.norm(M_cv - M_plain, 2) <= e_cv + e_plain, k
        assert e_cv < e_plain / 1.3, (k, e_cv, e_plain)
