"""Cost of the CK and NTK surrogates against one Gram product X^T X (docs/theory.md §4-§5).

Each surrogate forms X^T X once (an n x n GEMM of depth p) and adds O(n^2) work: rank-K
mean terms, the psi/t corrections and the coefficient combination.  This script times,
in one process and interleaved (best of ``--repeats``), for each size n = p:

* ``gram``: ``X.T @ X`` alone (numpy, float64), the floor every surrogate pays;
* ``ck``: :func:`rmt_deq.kernels.ck_surrogate.mixture_ck_surrogate`;
* ``ntk``: :func:`rmt_deq.kernels.ntk_surrogate.mixture_ntk_surrogate` (groups v, A, B);

and prints each as a multiple of ``gram``.  The four-equation solution is computed once,
outside the timings.

Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_surrogate.py [--sizes 2000 8000]
        [--repeats 3] [--out benchmarks/bench_surrogate.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rmt_deq._io import json_ready  # noqa: E402
from rmt_deq.data.mixture import default_mixture  # noqa: E402
from rmt_deq.fixed_point.four_equations import solve_four_equations  # noqa: E402
from rmt_deq.kernels.ck_surrogate import mixture_ck_surrogate  # noqa: E402
from rmt_deq.kernels.ntk_surrogate import mixture_ntk_surrogate  # noqa: E402


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run(n: int, repeats: int) -> dict:
    mix = default_mixture(n, 2, rng=0)
    sample = mix.sample(n, rng=1)
    X = np.asarray(sample.X)
    sol = solve_four_equations("relu", 0.2, mix.statistics(sample).tau0)
    jobs = {"gram": lambda: X.T @ X,
            "ck": lambda: mixture_ck_surrogate(mix, sample, solution=sol),
            "ntk": lambda: mixture_ntk_surrogate(mix, sample, solution=sol)}
    times: dict[str, list[float]] = {k: [] for k in jobs}
    for _ in range(repeats):
        for k, fn in jobs.items():
            times[k].append(_time(fn))
    best = {k: min(v) for k, v in times.items()}
    return {"n": n, "p": n, "best_s": best, "all_s": times,
            "ck_over_gram": best["ck"] / best["gram"],
            "ntk_over_gram": best["ntk"] / best["gram"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", type=int, default=[2000, 8000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__),
                                                  "bench_surrogate.json"))
    args = ap.parse_args()
    rows = []
    for n in args.sizes:
        r = run(n, args.repeats)
        rows.append(r)
        b = r["best_s"]
        print(f"n = p = {n}: X^T X {b['gram']:.2f} s, CK surrogate {b['ck']:.2f} s "
              f"({r['ck_over_gram']:.2f}x), NTK surrogate {b['ntk']:.2f} s "
              f"({r['ntk_over_gram']:.2f}x)", flush=True)
    out = {"command": " ".join(sys.argv),
           "threads": os.environ.get("OPENBLAS_NUM_THREADS"), "rows": rows}
    with open(args.out, "w") as fh:
        json.dump(json_ready(out), fh, indent=1)
    print(args.out)


if __name__ == "__main__":
    main()
