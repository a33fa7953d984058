"""Array backends (rmt_deq._xp): the samplers and the exact kernels in an array API
namespace, compared with the numpy path at the same seeds.

array_api_strict is the standard's reference namespace: code that runs on it uses nothing
outside the standard.  It computes with numpy underneath, so the only differences from
the numpy path are the order of a few reductions (column norms by vecdot instead of
einsum): the iterates then agree to rounding, the solvers stop at the same iteration
(checked), and each Gram entry agrees to a few ulps of its sum of magnitudes,
sum_k |z_ki z_kj| <= sqrt(K_ii K_jj) (Cauchy-Schwarz), amplified through the contracting
fixed-point iteration by at most 1/(1 - q), q its contraction factor.  The torch checks
(skipped without torch and array_api_compat) use a different matrix product, whose
rounding is bounded by (m + p) eps of the sum of magnitudes per step.
"""
from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from rmt_deq._xp import BACKENDS, Backend, resolve_backend
from rmt_deq.activations import get_activation
from rmt_deq.errors import MissingDependencyError, UnknownOptionError
from rmt_deq.kernels.exact import exact_ck, exact_kernels
from rmt_deq.networks._batched import PROBE, ArrayApiElementwise
from rmt_deq.sampling.deq import sampled_ck, sampled_ntk
from rmt_deq.sampling.explicit import sampled_explicit_ck, sampled_explicit_ntk

xps = pytest.importorskip("array_api_strict")

EPS = np.finfo(float).eps


def _data(p: int = 10, n: int = 7, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((p, n)) / np.sqrt(p)


def _gram_bound(K: np.ndarray, ulps: float) -> np.ndarray:
    """``ulps`` ulps of each Gram entry's sum of magnitudes (bounded by sqrt(K_ii K_jj))."""
    d = np.sqrt(np.abs(np.diagonal(K)))
    return ulps * EPS * np.outer(d, d)


def _solver_ulps(kernel, m: int, p: int) -> float:
    """Rounding allowance of a sampled kernel: (m + p) ulps of its working dtype per step
    through the GEMM, amplified by 1/(1 - q) (q the largest observed contraction factor,
    0.9 if none); in units of the float64 eps that :func:`_gram_bound` multiplies."""
    rates = [r.rate for r in kernel.info.forward if math.isfinite(r.rate)]
    q = min(max(rates), 0.9) if rates else 0.9
    return 8.0 * (m + p) / (1.0 - q) * float(np.finfo(kernel.info.dtype).eps) / EPS


def _same_iterations(a, b) -> None:
    assert [r.report.iterations for r in a.info.forward] == \
        [r.report.iterations for r in b.info.forward]
    assert [r.report.iterations for r in a.info.adjoint] == \
        [r.report.iterations for r in b.info.adjoint]


# ---------------------------------------------------------------------------------------
# resolution
# ---------------------------------------------------------------------------------------
def test_unknown_backend_lists_the_choices():
    with pytest.raises(UnknownOptionError, match="array_api_strict"):
        resolve_backend("jax")
    with pytest.raises(UnknownOptionError, match="choose one of"):
        sampled_ck(_data(), "relu", 0.3, width=20, rng=0, backend="numpyy")
    with pytest.raises(UnknownOptionError):
        resolve_backend(42)


def test_resolution_by_name_module_and_data():
    assert resolve_backend(None).is_numpy
    assert resolve_backend("numpy").is_numpy
    assert resolve_backend(None, _data()).is_numpy
    assert resolve_backend("array_api_strict").xp is xps
    assert resolve_backend(xps).xp is xps
    assert resolve_backend(None, xps.asarray(_data())).xp is xps
    assert set(BACKENDS) >= {"numpy", "array_api_strict", "torch", "cupy"}
    bk = pickle.loads(pickle.dumps(resolve_backend("array_api_strict")))
    assert isinstance(bk, Backend) and bk.xp is xps


def test_missing_library_names_the_install():
    try:
        import array_api_compat  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        with pytest.raises(MissingDependencyError, match=r"rmt_deq\[gpu\]"):
            resolve_backend("torch")
    else:
        pytest.skip("torch and array_api_compat are installed")


# ---------------------------------------------------------------------------------------
# activations in the namespace
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["relu", "leaky_relu:0.2", "hard_tanh:1.5,0.8",
                                  "polynomial:0.1,1,0.5", "tanh", "sigmoid", "swish"])
def test_activation_forms_match_the_numpy_activation(name):
    act = get_activation(name)
    elem = ArrayApiElementwise(act, np.dtype("float64"), resolve_backend("array_api_strict"))
    u = np.concatenate([np.linspace(-6.0, 6.0, 241), PROBE, [-0.8, 0.8, 1.5, -1.5]])
    out = xps.empty((u.size,), dtype=xps.float64)
    elem.fn_into(xps.asarray(u), out)
    got, ref = np.from_dlpack(out), act.fn(u)
    assert np.all(np.abs(got - ref) <= 8 * EPS * np.maximum(np.abs(ref), 1.0))
    # phi' at a kink is a convention (measure zero for Gaussian preactivations)
    u = u[~np.isin(u, act.kinks)]
    got_d, ref_d = np.from_dlpack(elem.d1(xps.asarray(u))), act.d1(u)
    assert np.all(np.abs(got_d - ref_d) <= 8 * EPS * np.maximum(np.abs(ref_d), 1.0))


def test_activation_without_an_array_api_form_names_the_fix():
    with pytest.raises(UnknownOptionError, match="backend='numpy'"):
        sampled_ck(_data(), "erf", 0.3, width=20, rng=0, backend="array_api_strict")


# ---------------------------------------------------------------------------------------
# samplers: array_api_strict against numpy, same seeds
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("act", ["relu", "tanh"])
@pytest.mark.parametrize("opts", [{}, {"family": "symmetric"}, {"control_variate": True},
                                  {"family": "orthogonal", "chunk_size": 3},
                                  {"method": "anderson"}])
def test_sampled_ck_matches_numpy(act, opts):
    X = _data()
    m = 40
    a = sampled_ck(X, act, 0.3, width=m, realizations=3, rng=5, **opts)
    b = sampled_ck(X, act, 0.3, width=m, realizations=3, rng=5, backend="array_api_strict",
                   **opts)
    assert b.info.backend == "array_api_strict" and a.info.backend == "numpy"
    assert isinstance(b.ck, np.ndarray) and b.ck.dtype == np.float64
    _same_iterations(a, b)
    assert np.all(np.abs(a.ck - b.ck) <= _gram_bound(a.ck, _solver_ulps(a, m, X.shape[0])))
    assert abs(a.error["ck"] - b.error["ck"]) <= 1e-6 * a.error["ck"]


def test_sampled_ck_float32_matches_numpy():
    X = _data()
    a = sampled_ck(X, "relu", 0.3, width=40, realizations=2, rng=1, dtype="float32")
    b = sampled_ck(X, "relu", 0.3, width=40, realizations=2, rng=1, dtype="float32",
                   backend="array_api_strict")
    _same_iterations(a, b)
    assert a.info.dtype == "float32"
    assert np.all(np.abs(a.ck - b.ck) <= _gram_bound(a.ck, _solver_ulps(a, 40, 10)))


def test_sampled_ck_backend_from_the_data():
    X = _data()
    a = sampled_ck(X, "relu", 0.3, width=30, realizations=2, rng=2)
    b = sampled_ck(xps.asarray(X), "relu", 0.3, width=30, realizations=2, rng=2)
    assert b.info.backend == "array_api_strict"
    assert np.all(np.abs(a.ck - b.ck) <= _gram_bound(a.ck, _solver_ulps(a, 30, 10)))


@pytest.mark.parametrize("family", ["gaussian", "symmetric"])
def test_sampled_ntk_matches_numpy(family):
    X = _data()
    m = 40
    a = sampled_ntk(X, "tanh", 0.3, width=m, realizations=3, rng=7, family=family)
    b = sampled_ntk(X, "tanh", 0.3, width=m, realizations=3, rng=7, family=family,
                    backend="array_api_strict")
    _same_iterations(a, b)
    tol = _solver_ulps(a, m, X.shape[0])
    for g in ("v", "A", "B"):
        assert np.all(np.abs(a.groups[g] - b.groups[g]) <= _gram_bound(a.groups[g], tol)), g


def test_explicit_sampler_matches_numpy():
    X = _data()
    net = ["relu", "tanh", "sigmoid"]
    a = sampled_explicit_ntk(X, net, width=30, realizations=3, rng=4)
    b = sampled_explicit_ntk(X, net, width=30, realizations=3, rng=4,
                             backend="array_api_strict")
    assert b.info.backend == "array_api_strict"
    # no fixed point: one GEMM chain of L layers, (m + p) ulps per product
    for g in a.groups:
        assert np.all(np.abs(a.groups[g] - b.groups[g])
                      <= _gram_bound(a.groups[g], 8.0 * 3 * (30 + 10))), g
    c = sampled_explicit_ck(xps.asarray(X), net, width=30, realizations=3, rng=4)
    assert np.all(np.abs(a.ck - c.ck) <= _gram_bound(a.ck, 8.0 * 3 * (30 + 10)))


# ---------------------------------------------------------------------------------------
# exact kernels
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("act", ["relu", "leaky_relu:0.2", "erf"])
def test_exact_kernels_match_numpy(act):
    X = _data(p=8, n=15, seed=3)
    sa = 0.4
    a = exact_kernels(X, act, sa)
    b = exact_kernels(X, act, sa, backend="array_api_strict")
    assert b.info.backend == "array_api_strict" and a.info.backend == "numpy"
    assert a.report.iterations == b.report.iterations
    # a rounding perturbation of the equation Sigma = sa G + sb X^T X moves its root by
    # at most 1/(1 - sa Gdot) times as much
    amp = 1.0 / (1.0 - sa * float(np.max(a.info.Gdot)))
    for key in ("ck", "ntk"):
        A, B = getattr(a, key), getattr(b, key)
        assert isinstance(B, np.ndarray) and B.dtype == np.float64
        assert np.all(np.abs(A - B) <= _gram_bound(A, 64.0 * amp)), key
    assert np.all(np.abs(a.info.Sigma - b.info.Sigma) <= _gram_bound(a.info.Sigma, 64 * amp))


def test_exact_kernels_backend_limits_name_the_fix():
    X = _data(p=8, n=6)
    with pytest.raises(UnknownOptionError, match="backend='numpy'"):
        exact_ck(X, "tanh", 0.3, backend="array_api_strict")
    K = exact_ck(xps.asarray(X), "relu", 0.3)
    assert K.info.backend == "array_api_strict"


# ---------------------------------------------------------------------------------------
# torch (optional): CPU, through array_api_compat
# ---------------------------------------------------------------------------------------
def test_torch_backend_matches_numpy():
    pytest.importorskip("torch")
    pytest.importorskip("array_api_compat")
    X = _data()
    m = 40
    a = sampled_ck(X, "relu", 0.3, width=m, realizations=2, rng=3)
    b = sampled_ck(X, "relu", 0.3, width=m, realizations=2, rng=3, backend="torch")
    assert b.info.backend == "torch"
    _same_iterations(a, b)
    assert np.all(np.abs(a.ck - b.ck) <= _gram_bound(a.ck, _solver_ulps(a, m, 10)))
    e1, e2 = exact_ck(X, "relu", 0.4), exact_ck(X, "relu", 0.4, backend="torch")
    assert np.all(np.abs(e1.ck - e2.ck) <= _gram_bound(e1.ck, 256.0))


# ---------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------
def test_kernel_cli_backend(tmp_path):
    import json

    from rmt_deq.cli import main

    X = _data(n=8)
    data = tmp_path / "d.npz"
    np.savez(data, X=X, labels=np.arange(8) % 2)
    base = ["kernel", "--data", str(data), "--activation", "relu", "--sa", "0.3",
            "--method", "sampled", "--width", "40", "--realizations", "3", "--seed", "2"]
    assert main(base + ["--out", str(tmp_path / "a.npy")]) == 0
    assert main(base + ["--backend", "array_api_strict", "--out", str(tmp_path / "b.npy"),
                        "--info", str(tmp_path / "b.json")]) == 0
    a, b = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    ref = sampled_ck(X, "relu", 0.3, width=40, realizations=3, rng=2)
    assert np.all(np.abs(a - b) <= _gram_bound(a, _solver_ulps(ref, 40, X.shape[0])))
    assert json.loads((tmp_path / "b.json").read_text())["backend"] == "array_api_strict"


def test_backend_on_a_thread_executor():
    from concurrent.futures import ThreadPoolExecutor

    X = _data()
    a = sampled_ck(X, "tanh", 0.3, width=30, realizations=4, rng=6, backend="array_api_strict")
    with ThreadPoolExecutor(2) as ex:
        b = sampled_ck(X, "tanh", 0.3, width=30, realizations=4, rng=6,
                       backend="array_api_strict", executor=ex)
    # the same realizations, accumulated in the same order (the executor guarantee)
    assert np.array_equal(a.ck, b.ck) and b.info.backend == "array_api_strict"
