"""``rmt-deq spectrum``: JSON keys, agreement with the library, figure, errors."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

import rmt_deq as rd
from rmt_deq.cli import main
from rmt_deq.kernels.ntk_surrogate import ntk_surrogate_coefficients
from rmt_deq.spectra.bulk import kernel_bulk
from rmt_deq.spectra.model import gram_model
from rmt_deq.spectra.spikes import isolated_eigenvalues

P = 150


def _mixture(p=P):
    gen = np.random.default_rng(0)
    q, _ = np.linalg.qr(gen.standard_normal((p, 2)))
    means = np.vstack([2.5 * q[:, 0], 4.0 * q[:, 1]])
    h = p // 2
    covs = np.vstack([np.ones(p), np.concatenate([np.full(h, 1.5),
                                                  np.full(p - h, 0.5 + 2 / math.sqrt(p))])])
    return means, covs


@pytest.fixture(scope="module")
def spec_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("spectrum")
    means, covs = _mixture()
    small = d / "small.json"          # n < p
    small.write_text(json.dumps({"means": means.tolist(), "covs": covs.tolist(),
                                 "sizes": [50, 70]}))
    big = d / "big.json"              # n > p: an atom
    big.write_text(json.dumps({"means": means.tolist(), "covs": covs.tolist(),
                               "sizes": [100, 125]}))
    return small, big, means, covs


def _run_json(argv, capsys):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("kind", ["ck", "ntk"])
def test_json_keys_and_values_match_library(spec_files, capsys, kind):
    small, _, means, covs = spec_files
    d = _run_json(["spectrum", "--activation", "relu", "--sa", "0.2", "--mixture",
                   str(small), "--kind", kind, "--json", "--num", "300"], capsys)
    for key in ("x", "density", "atom", "atom_at", "support", "spikes"):
        assert key in d
    assert len(d["x"]) == len(d["density"]) == 300
    assert d["atom"] == 0 and d["atom_at"] is None
    assert all(len(iv) == 2 and iv[0] < iv[1] for iv in d["support"])
    # the same computation through the library
    sizes = np.array([50, 70])
    mix = rd.GaussianMixture(means, covs, sizes / sizes.sum())
    stats = mix.statistics(sizes)
    sol = rd.solve_four_equations("relu", 0.2, stats.tau0)
    coef = (rd.ck_surrogate_coefficients(sol, stats, form="G") if kind == "ck"
            else ntk_surrogate_coefficients(sol, stats))
    model = gram_model(covs, sizes, means=means)
    bulk = kernel_bulk(model, coef, num=300)
    np.testing.assert_allclose(d["x"], bulk.x, rtol=1e-12)
    np.testing.assert_allclose(d["density"], bulk.density, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(d["support"], bulk.support, rtol=1e-9)
    np.testing.assert_allclose(d["spikes"],
                               isolated_eigenvalues(model, coef, bulk=bulk).positions,
                               rtol=1e-9)
    # the density integrates to the bulk's mass (trapezoid on the 300-point grid: the
    # square-root edges cost O(h^1.5) relative)
    mass = np.trapezoid(d["density"], d["x"]) if hasattr(np, "trapezoid") else \
        np.trapz(d["density"], d["x"])
    assert mass == pytest.approx(1.0, abs=0.01)


def test_atom_reported_when_n_exceeds_p(spec_files, capsys):
    _, big, _, _ = spec_files
    d = _run_json(["spectrum", "--activation", "tanh", "--sa", "0.3", "--mixture", str(big),
                   "--kind", "ck", "--json"], capsys)
    n = 225
    assert d["atom"] == pytest.approx(1 - P / n, abs=1e-12)
    assert d["atom_at"] == pytest.approx(d["coefficients"]["c0"])
    assert d["atom_at"] < d["support"][0][0]
    assert any("atom" in note for note in d["notes"])


def test_data_file_plot_and_text_output(spec_files, tmp_path, capsys):
    _, _, means, covs = spec_files
    mix = rd.GaussianMixture(means, covs, np.array([0.4, 0.6]))
    s = mix.sample(120, rng=3)
    npz = tmp_path / "data.npz"
    np.savez(npz, X=s.X, labels=s.labels, means=means, covs=covs)
    fig = tmp_path / "spec.png"
    assert main(["spectrum", "--activation", "relu", "--sa", "0.2", "--data", str(npz),
                 "--kind", "ntk", "--groups", "v,A", "--plot", str(fig)]) == 0
    out = capsys.readouterr()
    assert "support" in out.out and "isolated eigenvalues" in out.out
    assert fig.stat().st_size > 10_000
    # plug-in statistics (no means/covs in the file) also run
    plain = tmp_path / "plain.npz"
    np.savez(plain, X=s.X, labels=s.labels)
    d = _run_json(["spectrum", "--activation", "relu", "--sa", "0.2", "--data", str(plain),
                   "--json"], capsys)
    assert d["source"].startswith("data (plug-in")


def test_errors_exit_2(spec_files, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"means": [[0.0, 1.0]], "covs": [[1.0, 1.0]]}))
    assert main(["spectrum", "--activation", "relu", "--sa", "0.2", "--mixture",
                 str(bad)]) == 2
    assert "missing" in capsys.readouterr().err
    small = spec_files[0]
    assert main(["spectrum", "--activation", "relu", "--sa", "1.5", "--mixture",
                 str(small)]) == 2
    assert "sa" in capsys.readouterr().err
    assert main(["spectrum", "--activation", "relu", "--sa", "0.2", "--mixture", str(small),
                 "--kind", "ntk", "--groups", "v,Q"]) == 2
    assert "Q" in capsys.readouterr().err
    with pytest.raises(SystemExit):   # argparse: exactly one of --mixture / --data
        main(["spectrum", "--activation", "relu", "--sa", "0.2"])


def test_demo_reports_the_predicted_spectrum(tmp_path, capsys):
    """The demo's figure is the §7 one: predicted bulk and spikes over the exact CK."""
    out = tmp_path / "demo.png"
    assert main(["demo", "--p", "120", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "alpha1" in text and "||G - G~||" in text
    assert "Kolmogorov-Smirnov" in text and "isolated eigenvalues predicted" in text
    assert out.stat().st_size > 10_000
    res = rd.run_demo(p=120, out=None)
    n = res.eig_exact.size
    # exact-kernel bulk against the prediction: rigidity scale 3 log(n)/n plus the
    # surrogate's O(p^-1/2) operator-norm error
    assert res.distances.ks <= 3 * math.log(n) / n + 1 / math.sqrt(120)
    assert res.spikes.count == 2
    np.testing.assert_allclose(np.sort(res.eig_exact)[-2:], res.spikes.positions,
                               rtol=4 / math.sqrt(120))
