"""Benchmark: the limiting density of X^T X with full, non-commuting class covariances
(the dense backend, docs/theory.md §7.3).

Run:  OPENBLAS_NUM_THREADS=1 python benchmarks/bench_spectra_fullcov.py [--p 200 500 1000]
      [--points 1000] [--old-points 20]

K = 3 covariances Q_a diag(linspace(0.3 + 0.2a, 1.5 + 0.4a, p)) Q_a^T with independent
random rotations (seed 0), sizes (p/3, p/4, p/5).  "after": gram_density on ``--points``
points (continuation along the grid); "before": every point by Im z continuation from the
scale (the path the dense backend used before), on the first ``--old-points`` points of the
same grid, its time per point extrapolated to ``--points`` (said so in the output).  Both
use the same batched traces.  Times in one process; writes bench_spectra_fullcov.json next
to this file.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from rmt_deq.spectra.model import gram_model
from rmt_deq.spectra.stieltjes import _solve_batched, gram_density

HERE = os.path.dirname(os.path.abspath(__file__))


def covariances(p: int, seed: int = 0) -> np.ndarray:
    gen = np.random.default_rng(seed)
    out = []
    for a in range(3):
        q, _ = np.linalg.qr(gen.standard_normal((p, p)))
        out.append((q * np.linspace(0.3 + 0.2 * a, 1.5 + 0.4 * a, p)) @ q.T)
    return np.array(out)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--p", type=int, nargs="+", default=[200])
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--old-points", type=int, default=20)
    ap.add_argument("--out", default=os.path.join(HERE, "bench_spectra_fullcov.json"))
    args = ap.parse_args(argv)
    rows = []
    for p in args.p:
        model = gram_model(covariances(p), [p // 3, p // 4, p // 5])
        x = np.linspace(0.0, 0.8 * model.scale, args.points)
        t = time.perf_counter()
        d = gram_density(model, x)
        after = time.perf_counter() - t
        xo = x[:args.old_points]
        eta = np.full(xo.size, 1e-10 * model.scale)
        t = time.perf_counter()
        _solve_batched(model, xo, eta, model.unknown, False, [])
        before_pp = (time.perf_counter() - t) / xo.size
        row = {"p": p, "K": 3, "n": model.n, "points": args.points, "after_s": after,
               "before_s_per_point": before_pp, "before_points_measured": int(xo.size),
               "before_s_extrapolated": before_pp * args.points,
               "speedup": before_pp * args.points / after, "density_peak": float(d.max()),
               "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
               "load_average": os.getloadavg()[0]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    with open(args.out, "w") as f:
        json.dump({"rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
