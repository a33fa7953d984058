"""The kernel of a saved designed network on a data file (``rmt-deq kernel --network``,
:func:`rmt_deq.jobs.kernel.network_kernel_from_data`) and the exact kernels of a
:class:`DesignedNetwork` (``ck``, ``ntk``).

Round trip: design -> JSON -> ``rmt-deq kernel --network`` equals the in-memory design's
exact kernel (1e-12 relative, operator norm), and the sampled kernel lies within its
Monte-Carlo error bar of the exact one (plus, for two layers, the finite-width bias).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

import rmt_deq as rd
import rmt_deq.jobs.kernel as kernel_job
from rmt_deq.cli import main
from rmt_deq.design.solve import design_for_deq
from rmt_deq.errors import (InvalidParameterError, InvalidRecordError, ShapeMismatchError,
                            UnknownOptionError)
from rmt_deq.jobs.kernel import network_kernel_from_data
from rmt_deq.metrics import symmetric_operator_norm

P, N = 48, 40
#: (family, DEQ activation): one layer (unbiased at every width) and two layers, with
#: a nonzero centring (lrelu2) and a cubic layer (quadcubic2); all at sa = 0.2, tau0 = 1
CASES = (("htanh1", "tanh"), ("quadcubic2", "tanh"), ("lrelu2", "relu"))
WIDTH, REALIZATIONS, SEED = 400, 32, 9


def _rel(A, B):
    return symmetric_operator_norm(A - B) / symmetric_operator_norm(B)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("network_kernel")
    mix = rd.default_mixture(P, 2, rng=3)
    data = mix.sample(N, rng=4)
    np.savez(d / "F.npz", X=data.X, labels=data.labels)
    designs = {}
    for family, act in CASES:
        path = d / f"{family}.json"
        assert main(["design", "--activation", act, "--sa", "0.2", "--family", family,
                     "--out", str(path)]) == 0
        designs[family] = (path, design_for_deq(act, 0.2, 1.0, family=family))
    return d, mix, data, designs


def _kernel(setup, family, out, *extra):
    d, _, _, designs = setup
    return main(["kernel", "--network", str(designs[family][0]), "--data", str(d / "F.npz"),
                 "--out", str(out), *extra])


@pytest.mark.parametrize("family", [c[0] for c in CASES])
@pytest.mark.parametrize("kind", ["ck", "ntk"])
def test_exact_kernel_of_the_saved_network_is_the_in_memory_design(setup, tmp_path, capsys,
                                                                   family, kind):
    _, _, data, designs = setup
    out = tmp_path / "K.npy"
    assert _kernel(setup, family, out, "--kind", kind, "--method", "exact") == 0
    K = np.load(out)
    net = designs[family][1]
    ref = net.ck(data.X) if kind == "ck" else net.ntk(data.X)
    assert K.shape == (N, N) and K.dtype == np.float64
    assert _rel(K, ref) <= 1e-12
    full = net.exact_kernels(data.X)
    assert _rel(ref, full.ck if kind == "ck" else full.ntk) <= 1e-12
    err = capsys.readouterr().err
    assert f"{kind} (exact)" in err and "designed network" in err and "plug-in" in err


@pytest.mark.parametrize("family", [c[0] for c in CASES])
@pytest.mark.parametrize("kind", ["ck", "ntk"])
def test_sampled_kernel_is_within_its_error_bar_of_the_exact_kernel(setup, tmp_path, capsys,
                                                                    family, kind):
    # One layer: E[h_1^T h_1] = K_1 and E[NTK] = the exact NTK at every width, so the only
    # error is Monte-Carlo, bounded by the sampler's own 99.9% error bar.  Two layers add
    # a finite-width bias of order ||K|| L / m (measured: 2.2 ||K|| / m for quadcubic2 with
    # 20000 realizations at m = 25, 50, 100; unresolved below the bar for lrelu2), allowed
    # for by 3 ||K|| / m, under a tenth of the bar at m = 400.
    _, _, data, designs = setup
    path, net = designs[family]
    out, info = tmp_path / "K.npy", tmp_path / "info.json"
    assert _kernel(setup, family, out, "--kind", kind, "--method", "sampled", "--width",
                   str(WIDTH), "--realizations", str(REALIZATIONS), "--seed", str(SEED),
                   "--confidence", "0.999", "--info", str(info)) == 0
    K = np.load(out)
    rec = json.loads(info.read_text())
    exact = net.ck(data.X) if kind == "ck" else net.ntk(data.X)
    bias = 0.0 if net.L == 1 else 3.0 * symmetric_operator_norm(exact) / WIDTH
    err = symmetric_operator_norm(K - exact)
    assert err <= rec["mc_error"] + bias, (err, rec["mc_error"], bias)
    assert rec["mc_error"] <= 0.2 * symmetric_operator_norm(exact)   # a bar that can fail
    assert (rec["width"], rec["realizations"], rec["seed"], rec["confidence"]) == (
        WIDTH, REALIZATIONS, SEED, 0.999)
    assert rec["family"] == family and rec["network_tau0"] == 1.0
    assert rec["data_tau0_source"] == "plug-in from labels"
    lib = network_kernel_from_data(data.X, path, labels=data.labels, kind=kind,
                                   method="sampled",
                                   sampling=dict(width=WIDTH, realizations=REALIZATIONS,
                                                 rng=SEED, confidence=0.999))
    assert np.array_equal(lib.matrix, K)           # same seed and options: same matrix
    assert lib.error == rec["mc_error"]
    assert "Monte-Carlo error" in capsys.readouterr().err


def test_ntk_groups_and_the_library_route(setup, tmp_path):
    _, mix, data, designs = setup
    net = designs["lrelu2"][1]
    out = tmp_path / "K.npy"
    assert _kernel(setup, "lrelu2", out, "--kind", "ntk", "--groups", "v,W2") == 0
    assert _rel(np.load(out), net.ntk(data.X, groups=("v", "W2"))) <= 1e-12
    # the v group alone is the CK K_L (f = v^T h_L)
    assert _rel(net.ntk(data.X, groups=("v",)), net.ck(data.X)) <= 1e-12
    # class statistics set only the reported data scale, not the kernel
    res = network_kernel_from_data(data.X, net, labels=data.labels, means=mix.means,
                                   covs=mix.covs)
    assert res.data_scale.source == "mixture statistics"
    assert res.data_scale.tau0 == pytest.approx(mix.statistics(data).tau0, rel=1e-12)
    assert res.error is None and res.kernel.tau0 == net.tau0
    assert _rel(res.matrix, net.ck(data.X)) <= 1e-12
    assert res.record()["data_tau0_source"] == "mixture statistics"


@pytest.mark.parametrize("extra,flags", [
    (["--activation", "tanh"], "--activation"),
    (["--sa", "0.2"], "--sa"),
    (["--sb", "0.5", "--tau0", "1"], "--sb, --tau0"),
    (["--method", "surrogate"], "--method surrogate"),
    (["--method", "sampled", "--width", "8", "--control-variate"], "--control-variate"),
])
def test_network_excludes_the_deq_options(setup, tmp_path, capsys, extra, flags):
    out = tmp_path / "K.npy"
    assert _kernel(setup, "htanh1", out, *extra) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--network conflicts with {flags}:" in err
    assert not out.exists()


def test_kernel_needs_one_model(setup, tmp_path, capsys):
    d = setup[0]
    args = ["kernel", "--data", str(d / "F.npz"), "--out", str(tmp_path / "K.npy")]
    assert main(args) == 2
    assert "a DEQ needs both --activation and --sa" in capsys.readouterr().err
    assert main(args + ["--activation", "tanh"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing --sa" in err and "--network FILE" in err


def test_output_checked_before_computing_and_bad_files(setup, tmp_path, capsys, monkeypatch):
    d, _, _, designs = setup

    def never(*args, **kwargs):
        raise AssertionError("computed before the output path was checked")

    monkeypatch.setattr(kernel_job, "network_kernel_from_data", never)
    assert _kernel(setup, "htanh1", tmp_path / "missing" / "K.npy") == 2
    assert "OutputPathError" in capsys.readouterr().err
    assert _kernel(setup, "htanh1", designs["htanh1"][0]) == 2
    assert "same file as the input --network" in capsys.readouterr().err
    monkeypatch.undo()
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["kernel", "--network", str(bad), "--data", str(d / "F.npz"), "--out",
                 str(tmp_path / "K.npy")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "InvalidRecordError" in err and "bad.json" in err
    assert _kernel(setup, "htanh1", tmp_path / "K.npy", "--method", "sampled") == 2
    assert "--width" in capsys.readouterr().err
    assert _kernel(setup, "htanh1", tmp_path / "K.npy", "--kind", "ntk", "--groups",
                   "v,A") == 2
    assert "UnknownOptionError" in capsys.readouterr().err


def test_network_kernel_from_data_rejects_bad_input(setup):
    _, _, data, designs = setup
    net, X = designs["htanh1"][1], data.X
    with pytest.raises(InvalidParameterError, match="surrogate"):
        network_kernel_from_data(X, net, method="surrogate")
    with pytest.raises(UnknownOptionError):
        network_kernel_from_data(X, net, method="fast")
    with pytest.raises(UnknownOptionError):
        network_kernel_from_data(X, net, kind="gram")
    with pytest.raises(InvalidParameterError, match="kind='ntk' only"):
        network_kernel_from_data(X, net, groups=("v",))
    with pytest.raises(InvalidParameterError, match="only used by method='sampled'"):
        network_kernel_from_data(X, net, sampling={"width": 10})
    with pytest.raises(InvalidParameterError, match="needs a width"):
        network_kernel_from_data(X, net, method="sampled", sampling={"realizations": 2})
    for key in ("tau0", "labels", "control_variate"):
        with pytest.raises(InvalidParameterError, match=key):
            network_kernel_from_data(X, net, method="sampled",
                                     sampling={"width": 10, key: 1.0})
    with pytest.raises(UnknownOptionError, match="solver"):
        network_kernel_from_data(X, net, method="sampled", sampling={"width": 10,
                                                                      "solver": 1})
    with pytest.raises(InvalidParameterError, match="DesignedNetwork or the path"):
        network_kernel_from_data(X, 3.0)
    with pytest.raises(ShapeMismatchError):
        network_kernel_from_data(X, net, labels=np.zeros(N - 1))
    with pytest.raises(InvalidParameterError, match="both means and covs"):
        network_kernel_from_data(X, net, labels=data.labels, means=np.zeros((2, P)))
    with pytest.raises(InvalidRecordError, match="nope.json"):
        network_kernel_from_data(X, "nope.json")


def test_designed_network_ck_ntk_and_forward_rng(setup):
    _, _, data, designs = setup
    net, X = designs["quadcubic2"][1], data.X
    ck, ntk = net.ck(X), net.ntk(X)
    for K in (ck, ntk):
        assert K.shape == (N, N) and K.dtype == np.float64 and K.flags.writeable
        assert _rel(K, K.T) <= 1e-15
    assert np.all(np.linalg.eigvalsh(ck) >= -1e-12 * np.abs(ck).max())
    # the NTK adds the positive semi-definite W groups to the CK
    assert np.all(np.linalg.eigvalsh(ntk - ck) >= -1e-12 * np.abs(ntk).max())
    with pytest.raises(InvalidParameterError, match="groups"):
        net.ck(X, groups=("v",))
    with pytest.raises(UnknownOptionError):
        net.ntk(X, groups=("A",))
    # rng: an int seed and a Generator of that seed draw the same weights
    m = 16
    by_seed = net.forward(X, width=m, rng=5).features
    by_gen = net.forward(X, width=m, rng=np.random.default_rng(5)).features
    given = net.forward(X, net.sample_weights(m, P, rng=5)).features
    assert np.array_equal(by_seed, by_gen) and np.array_equal(by_seed, given)
    assert not np.array_equal(by_seed, net.forward(X, width=m, rng=6).features)
    w = net.sample_weights(m, P, rng=5)
    with pytest.raises(InvalidParameterError, match="do not apply"):
        net.forward(X, w, rng=1)
    with pytest.raises(InvalidParameterError, match="do not apply"):
        net.forward(X, w, width=m)
    with pytest.raises(InvalidParameterError, match="rng"):
        net.forward(X, width=m, rng="seed")
