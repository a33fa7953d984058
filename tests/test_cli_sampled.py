"""``rmt-deq kernel --method sampled``: the file equals the library's matrix, seeding,
dtypes, families, NTK groups, the info file, the progress bar and the error exits."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

import rmt_deq as rd
from rmt_deq.cli import main
from rmt_deq.jobs.kernel import kernel_from_data, sampled_kernel_from_data


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    mix = rd.default_mixture(30, 2, rng=3)
    data = mix.sample(16, rng=4)
    d = tmp_path_factory.mktemp("cli_sampled")
    path = d / "data.npz"
    np.savez(path, X=data.X, labels=data.labels, means=mix.means, covs=mix.covs)
    return path, mix, data


def _run(path, out, *extra):
    return main(["kernel", "--data", str(path), "--activation", "tanh", "--sa", "0.3",
                 "--method", "sampled", "--out", str(out), *extra])


def test_sampled_ck_file_is_the_library_matrix(npz, tmp_path, capsys):
    path, mix, data = npz
    out = tmp_path / "K.npy"
    args = ("--width", "60", "--realizations", "4", "--family", "orthogonal", "--seed", "7",
            "--dtype", "float64")
    assert _run(path, out, *args) == 0
    K = np.load(out)
    lib = sampled_kernel_from_data(data.X, "tanh", 0.3, labels=data.labels, means=mix.means,
                                   covs=mix.covs, kind="ck", width=60, realizations=4,
                                   family="orthogonal", rng=7, dtype="float64")
    assert np.array_equal(K, lib.matrix)                     # same seed -> same bits
    # the centring is the exact kernels' (mixture tau0), so both are comparable
    assert lib.tau0 == pytest.approx(mix.statistics(data).tau0, rel=1e-12)
    assert np.array_equal(K, kernel_from_data(
        data.X, "tanh", 0.3, labels=data.labels, means=mix.means, covs=mix.covs,
        method="sampled", sampling=dict(width=60, realizations=4, family="orthogonal",
                                        rng=7, dtype="float64")))
    err = capsys.readouterr().err
    assert "Monte-Carlo error" in err and "orthogonal" in err
    out2 = tmp_path / "K2.npy"
    assert _run(path, out2, *args) == 0
    assert np.array_equal(np.load(out2), K)
    assert _run(path, out2, "--width", "60", "--realizations", "4", "--family",
                "orthogonal", "--seed", "8") == 0
    assert not np.array_equal(np.load(out2), K)


@pytest.mark.parametrize("family", ["gaussian", "symmetric"])
def test_sampled_ntk_float32_info_and_progress(npz, tmp_path, capsys, family):
    path, mix, data = npz
    out, info = tmp_path / "T.npy", tmp_path / "info.json"
    assert _run(path, out, "--kind", "ntk", "--groups", "v,A", "--width", "50",
                "--realizations", "3", "--family", family, "--seed", "1", "--dtype",
                "float32", "--info", str(info), "--progress") == 0
    T = np.load(out)
    lib = sampled_kernel_from_data(data.X, "tanh", 0.3, labels=data.labels, means=mix.means,
                                   covs=mix.covs, kind="ntk", groups=("v", "A"), width=50,
                                   realizations=3, family=family, rng=1, dtype="float32")
    assert T.dtype == np.float64 and np.array_equal(T, lib.ntk)
    d = json.loads(info.read_text())
    assert d["dtype"] == "float32" and d["family"] == family and d["groups"] == ["v", "A"]
    assert d["realizations"] == 3 and len(d["forward_iterations"]) == 3
    assert math.isclose(d["mc_error"], lib.error["ntk"])
    err = capsys.readouterr().err
    assert "3/3" in err and "[" in err                     # the progress bar was drawn
    # it covers the error bars too (3 of them: ntk, v, A): full once, at their end
    full = [seg for seg in err.split("\r") if "[" + "#" * 30 + "]" in seg]
    assert len(full) == 1 and "error bar 300/300 sign draws" in full[0]
    assert "error bar 0/300 sign draws" in err


def test_sampled_early_stop_and_single_realization(npz, tmp_path):
    path, _, _ = npz
    out, info = tmp_path / "K.npy", tmp_path / "info.json"
    assert _run(path, out, "--width", "40", "--realizations", "50", "--target-error", "10",
                "--info", str(info)) == 0
    d = json.loads(info.read_text())
    assert d["stopped_early"] and d["realizations"] < 50
    assert _run(path, out, "--width", "40", "--realizations", "1", "--info", str(info)) == 0
    assert json.loads(info.read_text())["mc_error"] is None        # no bar from one draw


def test_sampled_bad_options_exit_with_message(npz, tmp_path, capsys):
    path, _, _ = npz
    out = tmp_path / "K.npy"
    assert _run(path, out) == 2                                   # no --width
    assert "--width" in capsys.readouterr().err
    assert _run(path, out, "--width", "0") == 2
    assert main(["kernel", "--data", str(path), "--activation", "tanh", "--sa", "0.3",
                 "--width", "10", "--out", str(out)]) == 2        # --width without sampled
    with pytest.raises(SystemExit):
        _run(path, out, "--width", "10", "--family", "unitary")
    with pytest.raises(SystemExit):
        _run(path, out, "--width", "10", "--dtype", "float16")
    assert not out.exists()


def test_sampled_control_variate_flag(npz, tmp_path):
    path, mix, data = npz
    out, info = tmp_path / "K.npy", tmp_path / "info.json"
    assert _run(path, out, "--width", "40", "--realizations", "4", "--seed", "2",
                "--control-variate", "--info", str(info)) == 0
    lib = sampled_kernel_from_data(data.X, "tanh", 0.3, labels=data.labels, means=mix.means,
                                   covs=mix.covs, width=40, realizations=4, rng=2,
                                   control_variate=True)
    assert np.array_equal(np.load(out), lib.matrix)
    assert json.loads(info.read_text())["control_variate"] is True
    # on by default (the library's default, float32 too), off with --no-control-variate
    assert _run(path, out, "--width", "40", "--realizations", "4", "--seed", "2",
                "--info", str(info)) == 0
    assert np.array_equal(np.load(out), lib.matrix)
    d = json.loads(info.read_text())
    assert d["control_variate"] is True and d["dtype"] == "float32"
    assert _run(path, out, "--kind", "ntk", "--width", "40", "--realizations", "4",
                "--seed", "2", "--no-control-variate", "--info", str(info)) == 0
    plain = sampled_kernel_from_data(data.X, "tanh", 0.3, labels=data.labels,
                                     means=mix.means, covs=mix.covs, kind="ntk", width=40,
                                     realizations=4, rng=2, control_variate=False)
    assert np.array_equal(np.load(out), plain.matrix)
    assert json.loads(info.read_text())["control_variate"] is False
