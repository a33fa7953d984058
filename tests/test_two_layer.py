"""The two-layer random-feature equivalent (finite hidden width) against simulated networks.

The network here is built from closed forms only (centred ReLU layers and their arc-cosine
kernels), independently of the package's design code: sigma_l(t) = max(t, 0) - c_l with c_l
the mean of max(tau_{l-1} xi, 0), so that K_l follows from K_{l-1} in closed form and the
second layer's gain is g = E[1{u > 0}]^2 = 1/4.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import relu_pair_expectation
from rmt_deq.errors import InvalidParameterError, ShapeMismatchError
from rmt_deq.generalization.equivalent import rf_ridge_equivalent
from rmt_deq.generalization.ridge import ridge_scores
from rmt_deq.generalization.two_layer import two_layer_rf_equivalent

P, N_TRAIN, N_TEST = 80, 160, 160
RIDGES = (1e-2, 1e-1, 1.0)


@pytest.fixture(scope="module")
def network():
    rng = np.random.default_rng(0)
    codes = np.repeat([0, 1], (N_TRAIN + N_TEST) // 2)
    rng.shuffle(codes)
    mu = np.zeros(P)
    mu[0] = 2.0
    X = (np.outer(mu, 2 * codes - 1) + rng.standard_normal((P, N_TRAIN + N_TEST))) / math.sqrt(P)
    K0 = X.T @ X
    c1 = math.sqrt(np.mean(np.diag(K0)) / (2 * np.pi))
    K1 = relu_pair_expectation(K0, c1)
    c2 = math.sqrt(np.mean(np.diag(K1)) / (2 * np.pi))
    K2 = relu_pair_expectation(K1, c2)
    tr, te = np.arange(N_TRAIN), np.arange(N_TRAIN, N_TRAIN + N_TEST)
    return dict(X=X, codes=codes, c1=c1, c2=c2, K1=K1, K2=K2, tr=tr, te=te)


def _blocks(net, K):
    tr, te = net["tr"], net["te"]
    return K[np.ix_(tr, tr)], K[np.ix_(te, tr)], np.diag(K)[te]


def _scores(net, K_train, K_cross):
    c, tr, te = net["codes"], net["tr"], net["te"]
    sc = ridge_scores(K_train, K_cross, c[tr], c[te], 2, RIDGES)
    return [[x.train_mse, x.test_mse, x.test_accuracy] for x in sc]


def _compare(pred, rows):
    """Per ridge and quantity: whether the prediction is within 4 standard errors of the
    Monte-Carlo mean (a 6e-5 two-sided Gaussian tail) plus 2/n relative (the equivalent's
    own error on an expectation, O(1/n))."""
    rows = np.asarray(rows)
    mean = rows.mean(axis=0)
    se = rows.std(axis=0, ddof=1) / math.sqrt(rows.shape[0])
    ok = np.empty(mean.shape, dtype=bool)
    for j, pr in enumerate(pred):
        for k, v in enumerate((pr.train_mse, pr.test_mse, pr.test_accuracy)):
            ok[j, k] = abs(v - mean[j, k]) <= 4.0 * se[j, k] + 2.0 * abs(v) / N_TRAIN
    return ok


def test_two_layer_equivalent_matches_a_sampled_two_layer_network(network):
    """Ridge on the features of sampled two-layer networks (hidden width m1 = m = 80, 150
    draws of both weight matrices) against the two-layer equivalent: every train MSE,
    test MSE and accuracy within tolerance.  The one-layer equivalent of the same CK (the
    hidden layer taken as infinitely wide) is rejected by the same check."""
    net = network
    m = m1 = 80
    c = net["codes"]
    pred = two_layer_rf_equivalent(_blocks(net, net["K1"]), _blocks(net, net["K2"]), 0.25,
                                   c[net["tr"]], c[net["te"]], 2, width=m, hidden_width=m1,
                                   ridges=RIDGES)
    plain = rf_ridge_equivalent(*_blocks(net, net["K2"]), c[net["tr"]], c[net["te"]], 2,
                                width=m, ridges=RIDGES)
    rows = []
    for s in range(150):
        gen = np.random.default_rng(1000 + s)
        W1, W2 = gen.standard_normal((m1, P)), gen.standard_normal((m, m1))
        H = (np.maximum(W1 @ net["X"], 0.0) - net["c1"]) / math.sqrt(m1)
        Z = (np.maximum(W2 @ H, 0.0) - net["c2"]) / math.sqrt(m)
        Ztr, Zte = Z[:, net["tr"]], Z[:, net["te"]]
        rows.append(_scores(net, Ztr.T @ Ztr, Zte.T @ Ztr))
    assert _compare(pred, rows).all()
    assert not _compare(plain, rows)[:, :2].all()      # the hidden layer's effect is seen
    for pr in pred:
        assert pr.report.converged and pr.test_mse_variance_part > 0


def test_two_layer_kernel_ridge_with_a_finite_hidden_layer(network):
    """m = infinity with m1 = 60: kernel ridge with the second layer's exact kernel of a
    sampled hidden layer (the nonlinear map, not its linearisation), 120 draws.  The test
    MSE and the accuracy at every ridge; the train MSE at ridge 1 only: with m1 < n and no
    last-layer fluctuation, the train MSE at small ridge rests on the smallest eigenvalues
    of Phi(G), where the parts of the kernel map the linearisation drops (the diagonal's
    fluctuation, the Hadamard square of G - K_1) show (docs/generalization.md §4: 30% at
    ridge 0.01 here, 0.006 in absolute terms)."""
    net = network
    m1 = 60
    c = net["codes"]
    pred = two_layer_rf_equivalent(_blocks(net, net["K1"]), _blocks(net, net["K2"]), 0.25,
                                   c[net["tr"]], c[net["te"]], 2, width=math.inf,
                                   hidden_width=m1, ridges=RIDGES)
    rows = []
    for s in range(120):
        W1 = np.random.default_rng(5000 + s).standard_normal((m1, P))
        H = (np.maximum(W1 @ net["X"], 0.0) - net["c1"]) / math.sqrt(m1)
        Phi = relu_pair_expectation(H.T @ H, net["c2"])
        rows.append(_scores(net, *_blocks(net, Phi)[:2]))
    ok = _compare(pred, rows)
    assert ok[:, 1:].all() and ok[-1, 0]


def test_infinite_hidden_width_is_the_one_layer_equivalent(network):
    """m1 = infinity is rf_ridge_equivalent with Phi = K_2 (a different computation: an
    eigendecomposition there, a Cholesky resolvent here), and m1 = 1e9 is next to it."""
    net = network
    c = net["codes"]
    args = (_blocks(net, net["K1"]), _blocks(net, net["K2"]), 0.25, c[net["tr"]],
            c[net["te"]], 2)
    ref = rf_ridge_equivalent(*_blocks(net, net["K2"]), c[net["tr"]], c[net["te"]], 2,
                              width=100, ridges=RIDGES)
    for m1, rtol in ((math.inf, 1e-10), (1e9, 1e-6)):
        got = two_layer_rf_equivalent(*args, width=100, hidden_width=m1, ridges=RIDGES)
        for a, b in zip(got, ref, strict=True):
            for f in ("train_mse", "test_mse", "test_accuracy", "delta"):
                assert getattr(a, f) == pytest.approx(getattr(b, f), rel=rtol, abs=1e-12)


def test_two_layer_equivalent_rejects_bad_input(network):
    net = network
    c = net["codes"]
    k1, k2 = _blocks(net, net["K1"]), _blocks(net, net["K2"])
    ctr, cte = c[net["tr"]], c[net["te"]]
    kw = dict(width=50, hidden_width=50, ridges=0.1)
    with pytest.raises(InvalidParameterError, match="gain"):
        two_layer_rf_equivalent(k1, k2, 0.0, ctr, cte, 2, **kw)
    with pytest.raises(InvalidParameterError, match="hidden_width"):
        two_layer_rf_equivalent(k1, k2, 0.25, ctr, cte, 2, width=50, hidden_width=0,
                                ridges=0.1)
    with pytest.raises(InvalidParameterError, match="tuple"):
        two_layer_rf_equivalent(net["K1"], k2, 0.25, ctr, cte, 2, **kw)
    with pytest.raises(ShapeMismatchError, match="K1"):
        two_layer_rf_equivalent((k1[0][:-1, :-1], k1[1], k1[2]), k2, 0.25, ctr, cte, 2, **kw)
    with pytest.raises(InvalidParameterError, match="K1_train"):
        two_layer_rf_equivalent((np.zeros_like(k1[0]), k1[1], k1[2]), k2, 0.25, ctr, cte, 2,
                                **kw)
    # a gain far above the layer's: K_2 - g K_1 is not positive semi-definite
    with pytest.raises(InvalidParameterError, match="positive"):
        two_layer_rf_equivalent(k1, k2, 50.0, ctr, cte, 2, **kw)
    with pytest.raises(InvalidParameterError, match="ridge"):
        two_layer_rf_equivalent(k1, k2, 0.25, ctr, cte, 2, width=50, hidden_width=50,
                                ridges=-1.0)


def test_resolvent_equivalents_of_step_3(network):
    """docs/generalization.md §2.4 step 3, alone: for R = (B + g S^T S/m1 + mu I)^{-1} with
    S of Gaussian rows of covariance K_1 (200 draws), (1/n) tr R against (1/n) tr Rbar
    (Rbar, e from the package's solver) and (1/n) tr R^2 against the documented
    second-order formula (1/n) tr(Rbar^2 + kappa(I) Rbar K1 Rbar), each within 4
    Monte-Carlo standard errors plus 2/n relative."""
    from rmt_deq.generalization.two_layer import _solve

    net = network
    tr = net["tr"][:120]
    K1, K2 = net["K1"][np.ix_(tr, tr)], net["K2"][np.ix_(tr, tr)]
    n, m1, g, mu = tr.size, 90, 0.25, 0.05
    B = K2 - g * K1
    # m = infinity: delta = 0 and mu = lam
    _, e, Rbar, rep = _solve(B, K1, g, math.inf, m1, mu, 0.0)
    assert rep.converged
    s = g / (1 + g * e)
    assert e == pytest.approx(np.trace(K1 @ Rbar) / m1, rel=1e-12)
    RK = Rbar @ K1
    RKR = RK @ Rbar
    kap = (s * s / m1) * np.trace(RKR) / (1 - (s * s / m1) * np.sum(RK * RK.T))
    t1_pred = np.trace(Rbar) / n
    t2_pred = (np.trace(Rbar @ Rbar) + kap * np.trace(RKR)) / n
    root = np.linalg.cholesky(K1 + 1e-12 * np.eye(n))
    rows = []
    for d in range(200):
        S = np.random.default_rng(40 + d).standard_normal((m1, n)) @ root.T
        R = np.linalg.inv(B + (g / m1) * S.T @ S + mu * np.eye(n))
        rows.append([np.trace(R) / n, np.sum(R * R) / n])
    rows = np.array(rows)
    mean, se = rows.mean(axis=0), rows.std(axis=0, ddof=1) / math.sqrt(len(rows))
    for pred, k in ((t1_pred, 0), (t2_pred, 1)):
        assert abs(pred - mean[k]) <= 4 * se[k] + 2 * abs(pred) / n, (k, pred, mean[k], se[k])
    # and the first-order equivalent alone would miss the second moment
    assert abs(np.trace(Rbar @ Rbar) / n - mean[1]) > 4 * se[1] + 2 * t2_pred / n
