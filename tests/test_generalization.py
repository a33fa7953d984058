"""Generalization layer: ridge on Gram matrices, the deterministic equivalent of
random-feature ridge, the labelled-data loaders, and the experiment's bookkeeping.

Independent references used here:

* a direct linear solve of the primal ridge problem (beta = (Z Z^T + lambda I)^{-1} Z y),
  never the eigen-decomposition the module uses;
* Monte-Carlo random-feature ridge on one-layer ReLU features sigma(W X) with iid rows,
  whose expected Gram matrix is the arc-cosine kernel written out below (not the package's
  closed forms);
* files written here with numpy / plain text and read back.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rmt_deq.data.labelled import (labelled_data, load_digits, load_labelled_data,
                                   normalise_data, train_test_split)
from rmt_deq.errors import (DataFileError, InvalidParameterError, NonFiniteInputError,
                            ShapeMismatchError, UnknownOptionError)
from rmt_deq.data.mixture import default_mixture
from rmt_deq.generalization.curves import curve
from rmt_deq.generalization.equivalent import rf_ridge_equivalent, solve_delta
from rmt_deq.generalization.experiment import generalization_experiment
from rmt_deq.generalization.problem import mixture_problem
from rmt_deq.generalization.ridge import class_targets, ridge_scores
from rmt_deq.jobs.generalization import generalization_report


# ----------------------------------------------------------------------------------------
# ridge against a direct solve
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("K", [2, 4])
def test_ridge_on_gram_matches_primal_direct_solve(K):
    rng = np.random.default_rng(1)
    m, n, nt = 30, 25, 17
    Z = rng.standard_normal((m, n + nt))
    codes = rng.integers(0, K, n + nt)
    tr, te = np.arange(n), np.arange(n, n + nt)
    ridges = (1e-2, 1.0, 7.0)
    got = ridge_scores(Z[:, tr].T @ Z[:, tr], Z[:, te].T @ Z[:, tr], codes[tr], codes[te], K,
                       ridges)
    Y = class_targets(codes[tr], K)
    Yt = class_targets(codes[te], K)
    for lam, sc in zip(ridges, got):
        beta = np.linalg.solve(Z[:, tr] @ Z[:, tr].T + lam * np.eye(m), Z[:, tr] @ Y)
        ptr, pte = Z[:, tr].T @ beta, Z[:, te].T @ beta
        mse_tr = np.sum((Y - ptr) ** 2) / n
        mse_te = np.sum((Yt - pte) ** 2) / nt
        dec = (pte[:, 0] > 0).astype(int) if K == 2 else np.argmax(pte, axis=1)
        # two solves of one well-conditioned system: agreement to a few ulps of the sums
        assert abs(sc.train_mse - mse_tr) <= 1e-10 * (1 + mse_tr)
        assert abs(sc.test_mse - mse_te) <= 1e-10 * (1 + mse_te)
        assert sc.test_accuracy == np.mean(dec == codes[te])


def test_ridge_rejects_bad_input():
    K = np.eye(3)
    with pytest.raises(InvalidParameterError, match="ridge"):
        ridge_scores(K, np.ones((2, 3)), [0, 1, 0], [0, 1], 2, ridges=(0.0,))
    with pytest.raises(ShapeMismatchError):
        ridge_scores(K, np.ones((3, 2)), [0, 1, 0], [0, 1], 2, ridges=1.0)
    with pytest.raises(InvalidParameterError, match="positive semi-definite"):
        ridge_scores(-K, np.ones((2, 3)), [0, 1, 0], [0, 1], 2, ridges=1.0)


# ----------------------------------------------------------------------------------------
# the deterministic equivalent against Monte Carlo
# ----------------------------------------------------------------------------------------
def _arccos_relu(X):
    """E[relu(w.x) relu(w.y)], w ~ N(0, I): (|x||y|/2pi)(sin t + (pi - t) cos t)."""
    nr = np.linalg.norm(X, axis=0)
    c = np.clip((X.T @ X) / np.outer(nr, nr), -1.0, 1.0)
    t = np.arccos(c)
    return np.outer(nr, nr) / (2 * math.pi) * (np.sin(t) + (math.pi - t) * np.cos(t))


def test_equivalent_matches_monte_carlo_random_features():
    rng = np.random.default_rng(0)
    p, n, nt, m, R = 80, 160, 160, 80, 150
    codes = np.repeat([0, 1], (n + nt) // 2)
    rng.shuffle(codes)
    mu = np.zeros(p)
    mu[0] = 2.0
    X = (np.outer(mu, 2 * codes - 1) + rng.standard_normal((p, n + nt))) / math.sqrt(p)
    Phi = _arccos_relu(X)
    tr, te = np.arange(n), np.arange(n, n + nt)
    ridges = (1e-2, 1.0)
    pred = rf_ridge_equivalent(Phi[np.ix_(tr, tr)], Phi[np.ix_(te, tr)], np.diag(Phi)[te],
                               codes[tr], codes[te], 2, width=m, ridges=ridges)
    rows = []
    for s in range(R):
        W = np.random.default_rng(1000 + s).standard_normal((m, p))
        Z = np.maximum(W @ X, 0.0) / math.sqrt(m)
        sc = ridge_scores(Z[:, tr].T @ Z[:, tr], Z[:, te].T @ Z[:, tr], codes[tr], codes[te],
                          2, ridges)
        rows.append([[x.train_mse, x.test_mse, x.test_accuracy] for x in sc])
    rows = np.array(rows)
    mean = rows.mean(axis=0)
    se = rows.std(axis=0, ddof=1) / math.sqrt(R)
    for j, pr in enumerate(pred):
        for k, v in enumerate((pr.train_mse, pr.test_mse, pr.test_accuracy)):
            # 4 standard errors of the Monte-Carlo mean (a 6e-5 two-sided Gaussian tail)
            # plus the equivalent's own error on an expectation, O(1/n) relative: 2/n
            tol = 4.0 * se[j, k] + 2.0 * abs(v) / n
            assert abs(v - mean[j, k]) <= tol, (ridges[j], k, v, mean[j, k], se[j, k])


def test_equivalent_infinite_width_is_kernel_ridge_and_delta_solves_its_equation():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((40, 60))
    Phi = A.T @ A / 40
    codes = rng.integers(0, 3, 60)
    tr, te = np.arange(35), np.arange(35, 60)
    eq = rf_ridge_equivalent(Phi[np.ix_(tr, tr)], Phi[np.ix_(te, tr)], np.diag(Phi)[te],
                             codes[tr], codes[te], 3, width=math.inf, ridges=(0.3,))[0]
    kr = ridge_scores(Phi[np.ix_(tr, tr)], Phi[np.ix_(te, tr)], codes[tr], codes[te], 3,
                      ridges=0.3)[0]
    assert eq.delta == 0.0 and eq.test_mse_variance_part == 0.0
    assert abs(eq.train_mse - kr.train_mse) <= 1e-12 * (1 + kr.train_mse)
    assert abs(eq.test_mse - kr.test_mse) <= 1e-12 * (1 + kr.test_mse)
    # delta = (1/m) tr Phi (Phi/(1+delta) + lambda)^{-1}, checked with a dense inverse
    phi = np.linalg.eigvalsh(Phi[np.ix_(tr, tr)])
    d, rep = solve_delta(np.maximum(phi, 0), 20.0, 0.05)
    Q = np.linalg.inv(Phi[np.ix_(tr, tr)] / (1 + d) + 0.05 * np.eye(35))
    assert rep.converged
    assert abs(d - np.trace(Phi[np.ix_(tr, tr)] @ Q) / 20.0) <= 1e-10 * d


# ----------------------------------------------------------------------------------------
# loaders
# ----------------------------------------------------------------------------------------
def _table(rng, n=24, p=5, K=3):
    X = rng.standard_normal((p, n)) + 3.0
    labels = np.arange(n) % K
    return X, labels


@pytest.mark.parametrize("fmt", ["npz", "npy", "csv", "csv_header"])
def test_loader_round_trip(tmp_path, fmt):
    rng = np.random.default_rng(2)
    X, labels = _table(rng)
    path = tmp_path / f"d.{fmt.split('_')[0]}"
    table = np.column_stack([X.T, labels])
    if fmt == "npz":
        np.savez(path, X=X, labels=labels)
    elif fmt == "npy":
        np.save(path, table)
    else:
        head = ",".join([f"f{j}" for j in range(X.shape[0])] + ["label"]) + "\n"
        body = "\n".join(",".join(repr(float(v)) for v in row[:-1]) + f",{int(row[-1])}"
                         for row in table)
        path.write_text((head if fmt == "csv_header" else "") + body + "\n")
    d = load_labelled_data(str(path), tau0=None)
    np.testing.assert_array_equal(d.X, X)           # repr() of a float64 round-trips
    np.testing.assert_array_equal(d.labels, labels)
    # normalisation: global mean removed, mean squared column norm tau0^2
    dn = load_labelled_data(str(path), tau0=1.7)
    assert np.max(np.abs(dn.X.mean(axis=1))) <= 1e-13
    assert abs(np.mean(np.sum(dn.X ** 2, axis=0)) - 1.7 ** 2) <= 1e-12
    np.testing.assert_allclose(dn.normalisation.apply(X), dn.X, rtol=0, atol=1e-13)
    sub = load_labelled_data(str(path), classes=[0, 2], tau0=None)
    assert sub.K == 2 and set(sub.labels.tolist()) == {0, 2}


def test_loader_bad_input(tmp_path):
    rng = np.random.default_rng(4)
    X, labels = _table(rng)
    Xn = X.copy()
    Xn[1, 3] = np.nan
    np.savez(tmp_path / "nan.npz", X=Xn, labels=labels)
    with pytest.raises(NonFiniteInputError):
        load_labelled_data(str(tmp_path / "nan.npz"))
    np.savez(tmp_path / "shape.npz", X=X, labels=labels[:-1])
    with pytest.raises(ShapeMismatchError, match="one per column"):
        load_labelled_data(str(tmp_path / "shape.npz"))
    np.savez(tmp_path / "one.npz", X=X, labels=np.zeros_like(labels))
    with pytest.raises(InvalidParameterError, match="single class"):
        load_labelled_data(str(tmp_path / "one.npz"))
    np.savez(tmp_path / "extra.npz", X=X, labels=labels, W=X)
    with pytest.raises(UnknownOptionError):
        load_labelled_data(str(tmp_path / "extra.npz"))
    (tmp_path / "bad.csv").write_text("1,2,0\n3,x,1\n")
    with pytest.raises(DataFileError, match="line 2, column 2"):
        load_labelled_data(str(tmp_path / "bad.csv"))
    (tmp_path / "ragged.csv").write_text("1,2,0\n3,1\n")
    with pytest.raises(ShapeMismatchError, match="line 2"):
        load_labelled_data(str(tmp_path / "ragged.csv"))
    (tmp_path / "nan.csv").write_text("1,2,0\nnan,1,1\n1,1,1\n2,2,0\n" * 2)
    with pytest.raises(NonFiniteInputError):
        load_labelled_data(str(tmp_path / "nan.csv"))
    (tmp_path / "lab.csv").write_text("1,2,0.5\n")
    with pytest.raises(DataFileError, match="not an integer"):
        load_labelled_data(str(tmp_path / "lab.csv"))
    np.save(tmp_path / "vec.npy", np.ones(5))
    with pytest.raises(ShapeMismatchError, match="2-D table"):
        load_labelled_data(str(tmp_path / "vec.npy"))
    (tmp_path / "x.txt").write_text("1,2\n")
    with pytest.raises(DataFileError, match="suffix"):
        load_labelled_data(str(tmp_path / "x.txt"))
    with pytest.raises(InvalidParameterError, match="identical columns"):
        normalise_data(labelled_data(np.ones((3, 8)), np.arange(8) % 2, min_class_size=1))


def test_split_is_stratified_and_disjoint():
    d = labelled_data(np.random.default_rng(0).standard_normal((4, 40)), np.arange(40) % 3,
                      min_class_size=4)
    tr, te = train_test_split(d, 0.25, rng=1)
    assert not set(tr) & set(te) and tr.size + te.size == 40
    for a in range(3):
        k = int(np.sum(d.codes == a))
        assert abs(int(np.sum(d.codes[te] == a)) - 0.25 * k) <= 1


def test_digits_loader():
    pytest.importorskip("sklearn")
    X, labels = load_digits()
    assert X.shape == (64, 1797) and labels.shape == (1797,)
    d = load_labelled_data("digits", classes=(0, 1))
    assert d.K == 2 and d.n == int(np.sum(np.isin(labels, (0, 1))))
    assert abs(np.mean(np.sum(d.X ** 2, axis=0)) - 1.0) <= 1e-12


# ----------------------------------------------------------------------------------------
# the experiment and the job
# ----------------------------------------------------------------------------------------
def test_report_keys_and_kernel_consistency():
    rng = np.random.default_rng(5)
    p = 40
    means = np.zeros((2, p))
    means[0, 0], means[1, 0] = 1.5, -1.5
    spec = {"means": means.tolist(), "covs": np.ones((2, p)).tolist(), "sizes": [40, 40]}
    r = generalization_report("relu", 0.2, mixture=spec, ridge=0.5, width=32, seeds=2,
                              data_seed=int(rng.integers(100)))
    json.dumps(r, allow_nan=False)
    for key in ("deq_rf", "enn_rf", "ck_kernel", "ntk_kernel"):
        assert set(r["predicted"][key]) == {"train_mse", "test_mse", "test_accuracy"}
        assert {"train_mse_se", "test_mse_se", "test_accuracy_se"} <= set(r["observed"][key])
    assert r["observed"]["ck_kernel"]["test_mse_se"] == 0.0
    assert set(r["predicted_exact_kernel"]) == {"deq_rf", "enn_rf"}
    with pytest.raises(InvalidParameterError, match="exactly one"):
        generalization_report("relu", 0.2, ridge=0.5)
    with pytest.raises(InvalidParameterError, match="seeds"):
        generalization_report("relu", 0.2, mixture=spec, seeds=1)


def test_experiment_grid_and_curves():
    prob = mixture_problem(default_mixture(32, 3), 48, 30, rng=2)
    res = generalization_experiment(prob, "tanh", 0.3, widths=(16, 40), ridges=(0.1, 1.0),
                                    seeds=2)
    c = curve(res, "deq_rf", "width", ridge=1.0)
    np.testing.assert_array_equal(c.x, [16.0, 40.0])
    assert np.all(np.isfinite(c.predicted_exact)) and np.all(c.observed_se >= 0)
    k = curve(res, "ntk_kernel", "ridge")
    assert np.all(np.isnan(k.predicted_exact)) and np.all(k.observed_se == 0)
    # kernel ridge is deterministic: one "seed", standard errors 0
    assert res.observed_for("ck_kernel", 0.1).seeds == 1
    with pytest.raises(InvalidParameterError, match="no width"):
        curve(res, "ck_kernel", "width")
    with pytest.raises(UnknownOptionError):
        generalization_experiment(prob, "tanh", 0.3, methods=("mlp",))
    json.dumps(res.to_dict(), allow_nan=False)


def _two_class_spec(tmp_path, p: int):
    """A mixture spec file: two classes of p samples in dimension p, means +-1.5 on the
    first coordinate, identity covariances."""
    means = np.zeros((2, p))
    means[0, 0], means[1, 0] = 1.5, -1.5
    spec = tmp_path / "mix.json"
    spec.write_text(json.dumps({"means": means.tolist(), "covs": np.ones((2, p)).tolist(),
                                "sizes": [p, p]}))
    return spec


def test_generalization_command(tmp_path, capsys):
    from rmt_deq.cli import main

    spec = _two_class_spec(tmp_path, 40)
    fig = tmp_path / "gen.pdf"
    argv = ["generalization", "--activation", "tanh", "--sa", "0.3", "--mixture", str(spec),
            "--ridge", "0.5", "--width", "32", "--seeds", "2"]
    assert main([*argv, "--json", "--plot", str(fig)]) == 0
    out = json.loads(capsys.readouterr().out,
                     parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}"))
    direct = generalization_report("tanh", 0.3, mixture=str(spec), ridge=0.5, width=32,
                                   seeds=2)
    for part in ("predicted", "observed"):
        assert set(out[part]) == {"deq_rf", "enn_rf", "ck_kernel", "ntk_kernel"}
        for k, v in out[part].items():
            for s, x in v.items():
                assert x == pytest.approx(direct[part][k][s], rel=1e-12, abs=1e-15)
    assert fig.read_bytes()[:4] == b"%PDF" and out["figure"].endswith("gen.pdf")
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "deq_rf" in table and "ntk_kernel" in table
    # a bad choice and a bad figure path: exit 2, one line, nothing computed
    assert main([*argv, "--methods", "deq_rf,svm"]) == 2
    assert "svm" in capsys.readouterr().err
    assert main([*argv, "--plot", str(tmp_path / "no" / "f.png")]) == 2


def test_kernel_command_on_the_builtin_digits(tmp_path):
    pytest.importorskip("sklearn")
    from rmt_deq.cli import main
    from rmt_deq.data.labelled import load_labelled_data
    from rmt_deq.kernels.exact import exact_ck

    out = tmp_path / "K.npy"
    assert main(["kernel", "--data", "digits", "--activation", "relu", "--sa", "0.3",
                 "--out", str(out)]) == 0
    d = load_labelled_data("digits")
    K = np.load(out)
    ref = exact_ck(d.X, "relu", 0.3, labels=d.labels).matrix
    assert np.linalg.norm(K - ref, 2) <= 1e-12 * np.linalg.norm(ref, 2)


def test_hidden_ratio_widens_only_the_designed_networks_hidden_layer(tmp_path, capsys):
    """--hidden-ratio reaches the two-layer design's features (relu -> lrelu2) and its
    prediction (the two-layer equivalent), nothing else: the DEQ's observations and
    predictions stay the same; a ratio <= 0 is refused."""
    from rmt_deq.cli import main

    spec = _two_class_spec(tmp_path, 30)
    argv = ["generalization", "--activation", "relu", "--sa", "0.3", "--mixture", str(spec),
            "--ridge", "0.5", "--width", "24", "--seeds", "2", "--methods", "deq_rf,enn_rf",
            "--json"]
    outs = []
    for ratio in ("1", "3"):
        assert main([*argv, "--hidden-ratio", ratio]) == 0
        outs.append(json.loads(capsys.readouterr().out))
    one, three = outs
    assert (one["settings"]["hidden_ratio"], three["settings"]["hidden_ratio"]) == (1, 3)
    assert one["observed"]["deq_rf"] == three["observed"]["deq_rf"]
    assert one["predicted"]["deq_rf"] == three["predicted"]["deq_rf"]
    assert one["predicted"]["enn_rf"] != three["predicted"]["enn_rf"]
    assert one["observed"]["enn_rf"]["test_mse"] != three["observed"]["enn_rf"]["test_mse"]
    assert main([*argv, "--hidden-ratio", "0"]) == 2
    assert "hidden_ratio" in capsys.readouterr().err
