"""Benchmark of the array backends (rmt_deq._xp) against numpy, in one process.

Case: relu, sa = 0.3, data ``default_mixture(p, 2, rng=0).sample(n, rng=1)`` with
(p, n, m) = (100, 200, 400), R = 4 realizations, float64, seed 0 (``--p``, ``--n``,
``--width``, ``--R`` change it): :func:`rmt_deq.sampling.deq.sampled_ck` with numpy and
with every backend that is installed ("array_api_strict", "torch", "cupy"), and the exact
CK (:func:`rmt_deq.kernels.exact.exact_ck`, same data) likewise.  The runs alternate
(numpy, backend, numpy, backend, ...) ``--repeats`` times, so that a shared, loaded
machine slows both alike; the ratio is the median backend time over the median numpy
time.  Each backend's matrix is compared with numpy's (largest entrywise difference
relative to max |K|).

array_api_strict is the standard's reference implementation, on the CPU, on top of numpy
with checks on every operation: it is expected to be slower than numpy; it is here to
show the code path.  torch and CuPy run on a GPU when one is present; the output says
whether an accelerator was available.  On the CPU torch gets the thread count of numpy's
BLAS (``OPENBLAS_NUM_THREADS``): its own default pool oversubscribes a shared machine.

Usage::

    PYTHONPATH=. OPENBLAS_NUM_THREADS=1 python benchmarks/bench_backend.py \
        [--repeats 3] [--out benchmarks/bench_backend.json]
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import tempfile
import time

import numpy as np

from rmt_deq.data.mixture import default_mixture
from rmt_deq.kernels.exact import exact_ck
from rmt_deq.sampling.deq import sampled_ck

HERE = os.path.dirname(os.path.abspath(__file__))


def available_backends() -> list[str]:
    """The non-numpy backends whose libraries import here."""
    out = []
    for name, needs in (("array_api_strict", ("array_api_strict",)),
                        ("torch", ("torch", "array_api_compat")),
                        ("cupy", ("cupy", "array_api_compat"))):
        try:
            for mod in needs:
                importlib.import_module(mod)
        except ImportError:
            continue
        out.append(name)
    return out


def accelerator() -> str | None:
    """A description of the GPU torch or CuPy would use, None if there is none."""
    try:
        import torch
        if torch.cuda.is_available():
            return f"torch cuda: {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() > 0:
            return "cupy device 0"
    except (ImportError, RuntimeError):     # no CuPy, or no CUDA driver
        return None
    return None


def match_torch_threads() -> int | None:
    """Give torch's CPU pool the BLAS thread count of numpy (OPENBLAS_NUM_THREADS), so
    that both compete alike on a shared machine; torch's thread count (None: no torch)."""
    try:
        import torch
    except ImportError:
        return None
    blas = os.environ.get("OPENBLAS_NUM_THREADS")
    if blas and blas.isdigit():
        torch.set_num_threads(int(blas))
    return torch.get_num_threads()


def timed(fn) -> tuple[float, np.ndarray]:
    t = time.perf_counter()
    K = fn()
    return time.perf_counter() - t, K


def compare(name: str, run_numpy, run_backend, repeats: int) -> dict:
    t_np, t_bk = [], []
    K_np = K_bk = None
    for _ in range(repeats):
        t, K_np = timed(run_numpy)
        t_np.append(t)
        t, K_bk = timed(run_backend)
        t_bk.append(t)
    diff = float(np.max(np.abs(K_np - K_bk)) / np.max(np.abs(K_np)))
    return {"what": name, "numpy_s": t_np, "backend_s": t_bk,
            "ratio_median": statistics.median(t_bk) / statistics.median(t_np),
            "max_rel_difference": diff}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--p", type=int, default=100)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--width", type=int, default=400)
    ap.add_argument("--R", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(HERE, "bench_backend.json"))
    a = ap.parse_args()
    X = default_mixture(a.p, 2, rng=0).sample(a.n, rng=1).X
    gpu = accelerator()
    results = {"case": {"activation": "relu", "sa": 0.3, "p": a.p, "n": a.n,
                        "width": a.width, "R": a.R, "dtype": "float64", "seed": 0,
                        "repeats": a.repeats},
               "accelerator": gpu or "none: no accelerator was available, every backend "
                                     "ran on the CPU",
               "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
               "torch_threads": match_torch_threads(),
               "backends": {}}
    print(f"accelerator: {results['accelerator']}")

    def ck(backend: str):
        return lambda: sampled_ck(X, "relu", 0.3, width=a.width, realizations=a.R, rng=0,
                                  backend=backend).ck

    def exact(backend: str):
        return lambda: exact_ck(X, "relu", 0.3, backend=backend).ck

    for name in available_backends():
        rows = [compare("sampled_ck", ck("numpy"), ck(name), a.repeats),
                compare("exact_ck", exact("numpy"), exact(name), a.repeats)]
        results["backends"][name] = rows
        for r in rows:
            print(f"{name:17s} {r['what']:11s} backend/numpy time ratio "
                  f"{r['ratio_median']:6.2f} (median of {a.repeats}, interleaved); "
                  f"max |K - K_numpy| / max |K_numpy| = {r['max_rel_difference']:.2e}")
    folder = os.path.dirname(os.path.abspath(a.out))
    with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, suffix=".tmp") as f:
        json.dump(results, f, indent=1)
    os.replace(f.name, a.out)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
