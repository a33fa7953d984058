"""The command line: JSON keys, kernel files, the demo, and error exit codes."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import rmt_deq as rd
from rmt_deq.cli import main


def test_solve_json(capsys):
    assert main(["solve", "--activation", "relu", "--sa", "0.2", "--tau0", "1.0", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    for key in ("tau", "alpha1", "alpha2", "alpha3", "alpha4", "g1", "g2", "g4"):
        assert isinstance(d[key], float)
    sol = rd.solve_four_equations("relu", 0.2, 1.0)
    assert d["tau"] == sol.tau and d["alpha3"] == sol.alpha3


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    mix = rd.default_mixture(60, 2, rng=3)
    data = mix.sample(48, rng=4)
    path = tmp_path_factory.mktemp("cli") / "data.npz"
    np.savez(path, X=data.X, labels=data.labels, means=mix.means, covs=mix.covs)
    plain = tmp_path_factory.mktemp("cli") / "plain.npz"
    np.savez(plain, X=data.X, labels=data.labels)
    return path, plain, mix, data


@pytest.mark.parametrize("method", ["exact", "surrogate"])
def test_kernel_ck_matches_library(npz, tmp_path, method):
    path, _, mix, data = npz
    out = tmp_path / "G.npy"
    assert main(["kernel", "--data", str(path), "--activation", "leaky_relu:0.1", "--sa", "0.3",
                 "--kind", "ck", "--method", method, "--out", str(out)]) == 0
    G = np.load(out)
    sol = rd.solve_four_equations("leaky_relu:0.1", 0.3, mix.statistics(data).tau0)
    ref = (rd.exact_ck(data.X, "leaky_relu:0.1", 0.3, solution=sol).ck if method == "exact"
           else rd.mixture_ck_surrogate(mix, data, solution=sol).ck)
    np.testing.assert_allclose(G, ref, rtol=1e-12, atol=1e-14)


def test_kernel_ntk_and_plugin(npz, tmp_path):
    _, plain, _, data = npz
    out = tmp_path / "T.npy"
    assert main(["kernel", "--data", str(plain), "--activation", "tanh", "--sa", "0.2",
                 "--kind", "ntk", "--groups", "v,A", "--out", str(out)]) == 0
    theta = np.load(out)
    assert theta.shape == (data.n, data.n) and np.allclose(theta, theta.T)
    out2 = tmp_path / "G.npy"
    assert main(["kernel", "--data", str(plain), "--activation", "tanh", "--sa", "0.2",
                 "--method", "surrogate", "--out", str(out2)]) == 0


def test_errors_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    np.savez(bad, Y=np.ones((3, 3)))
    assert main(["kernel", "--data", str(bad), "--activation", "relu", "--sa", "0.2",
                 "--out", str(tmp_path / "o.npy")]) == 2
    assert "no array 'X'" in capsys.readouterr().err
    assert main(["solve", "--activation", "relu", "--sa", "1.5"]) == 2
    assert "sa" in capsys.readouterr().err


def test_demo_writes_figure(tmp_path, capsys):
    out = tmp_path / "demo.png"
    assert main(["demo", "--p", "120", "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000
    text = capsys.readouterr().out
    assert "alpha1" in text and "||G - G~||" in text


def test_version_is_the_package_metadata(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    out = capsys.readouterr().out.strip()
    from rmt_deq.experiments.manifest import package_version
    assert out == f"rmt-deq {package_version()}"
    root = os.path.join(os.path.dirname(__file__), os.pardir)
    with open(os.path.join(root, "pyproject.toml"), encoding="utf-8") as fh:
        assert f'version = "{out.split()[1]}"' in fh.read()


def test_python_dash_m_runs_the_cli():
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
    env = {**os.environ, "PYTHONPATH": root}
    done = subprocess.run([sys.executable, "-m", "rmt_deq", "solve", "--activation", "relu",
                           "--sa", "0.2", "--json"], capture_output=True, text=True,
                          cwd=root, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tau"] == rd.solve_four_equations("relu", 0.2, 1.0).tau
    bad = subprocess.run([sys.executable, "-m", "rmt_deq", "solve", "--sa", "0.2"],
                         capture_output=True, text=True, cwd=root, env=env, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def test_demo_result_is_a_frozen_record():
    res = rd.run_demo(p=40, out=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.relative_error = 0.0
    with pytest.raises(ValueError):
        res.eig_exact[0] = 0.0                 # read-only array
    with pytest.raises(AttributeError):
        res.no_such_field                     # noqa: B018 - an attribute, not a key
    d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert d["relative_error"] == res.relative_error and d["figure"] is None
    assert d["solution"]["tau"] == res.solution.tau
    assert len(d["eig_exact"]) == res.eig_exact.size == 32
