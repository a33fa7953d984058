"""Benchmark: the limiting spectral density without sampling vs a dense eigendecomposition.

Run:  OPENBLAS_NUM_THREADS=1 python benchmarks/bench_spectra.py [--quick]

Cases (diagonal covariances, sizes n_a; the density of X^T X on a 1000-point grid spanning
the bulk, :func:`rmt_deq.spectra.stieltjes.gram_density`; the model is built beforehand, its build
time is reported separately):

* p = 1e3, K = 2, class 1 with p distinct variances (linspace(0.4, 1.6, p)), class 2
  two-valued: U = p distinct coordinates, direct sums (the default below 4096 of them);
  n = 700 and n = 1500.
* p = 1e5, K = 2, both classes two-valued (a structured covariance): U = 2, direct sums.
* p = 1e5, K = 2, the p = 1e3 profiles at p = 1e5 (U = 1e5 distinct coordinates); and
  K = 3 with a third class 1 + 0.4 sin(6 pi j/p): the default box expansion of the sums
  (``summation="auto"``; every sum within 1e-14 of the sum of the absolute values of its
  terms, see :class:`rmt_deq.spectra._box_expansion.BoxExpansion`); n < p and n > p.  Checked against
  the direct sums (``summation="direct"``) on a 50-point subgrid: the largest difference of
  the densities relative to the peak and relative pointwise where the density exceeds
  1e-6 of the peak.
* p = 1e5, K = 2 with independent uniform variances in both classes (a two-dimensional
  cloud of coordinates, the harder case for the expansion).
* p = 1e5 with ``max_atoms=512`` (coordinates merged into quantile bins: an approximation,
  its error against the exact values reported).
* The reference: a dense eigendecomposition (numpy.linalg.eigvalsh, and eigh with
  vectors) of an n x n Gram matrix at n = 4000, i.e. what estimating the spectrum by
  sampling costs for one draw.

Times are the best of ``--repeat`` runs in one process, wall clock and the CPU time of the
process during that run (on a shared, loaded machine the CPU time is what one idle core
would take); the report records OPENBLAS_NUM_THREADS and the load average.  Writes
benchmarks/bench_spectra.json, with the run's manifest.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np

from rmt_deq.experiments.manifest import portable_path, start_run
from rmt_deq.spectra.model import gram_model
from rmt_deq.spectra.stieltjes import gram_density, gram_support

HERE = os.path.dirname(os.path.abspath(__file__))


CPU = {}


def _best(fn, repeat):
    """Best wall time of ``repeat`` runs; the CPU time of that run goes in CPU["last"]."""
    best, out = math.inf, None
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        w = time.perf_counter() - t
        if w < best:
            best, CPU["last"] = w, time.process_time() - c
    return best, out


def profiles(p, continuous=True):
    h = p // 2
    two = np.concatenate([np.full(h, 1.5), np.full(p - h, 0.5)])
    first = np.linspace(0.4, 1.6, p) if continuous else np.concatenate(
        [np.full(h, 0.8), np.full(p - h, 1.2)])
    return np.vstack([first, two])


def grid_for(model, num=1000):
    (lo, _), *_rest = gram_support(model)
    hi = gram_support(model)[-1][1]
    w = hi - lo
    return np.linspace(max(lo - 0.05 * w, 1e-6 * hi), hi + 0.05 * w, num)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="n = 1500 eigendecomposition, no direct-sum check")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(HERE, "bench_spectra.json"))
    args = ap.parse_args(argv)
    run = start_run(seeds={"uniform_variances": 1, "dense_gram": 0})
    rows = []

    def record(name, p, n, U, seconds, points, **extra):
        row = {"case": name, "p": p, "n": n, "distinct_coordinates": U,
               "grid_points": points, "seconds": seconds, "cpu_seconds": CPU["last"],
               **extra}
        rows.append(row)
        print(f"{name:52s} p={p:>6d} n={n:>6d} U={U:>6d} points={points:4d}: "
              f"{seconds:8.3f} s wall, {CPU['last']:8.3f} s CPU" + "".join(f"  {k}={v:.3g}" for k, v in extra.items()
                                            if isinstance(v, float)), flush=True)

    # p = 1e3, p distinct variances, exact
    for n in (700, 1500):
        model = gram_model(profiles(1000), [n // 2, n - n // 2])
        x = grid_for(model)
        t, _ = _best(lambda: gram_density(model, x), args.repeat)
        record("density, p distinct variances (exact)", 1000, n, model.n_distinct, t, x.size)
    # p = 1e5 structured
    p = 100_000
    for n in (70_000, 150_000):
        model = gram_model(profiles(p, continuous=False), [n // 2, n - n // 2])
        x = grid_for(model)
        t, _ = _best(lambda: gram_density(model, x), args.repeat)
        record("density, two-valued variances (exact)", p, n, model.n_distinct, t, x.size)
    # p = 1e5, all-distinct variances: box expansion (exact up to a 1e-14 bound) on the
    # full grid, checked against the direct sums on a subgrid
    def distinct(var, sizes, name):
        t, c = time.perf_counter(), time.process_time()
        fast = gram_model(var, sizes)
        build = (time.perf_counter() - t, time.process_time() - c)
        x = grid_for(fast)
        t_f, d_f = _best(lambda: gram_density(fast, x), args.repeat)
        cpu_f = CPU["last"]
        extra = {}
        if not args.quick:
            slow = gram_model(var, sizes, summation="direct")
            sub = x[::20]
            t_d, d_d = _best(lambda: gram_density(slow, sub), 1)
            big = d_d > 1e-6 * d_d.max()
            extra = dict(
                direct_subgrid_points=int(sub.size), direct_subgrid_s=t_d,
                direct_extrapolated_1000_points_s=t_d * x.size / sub.size,
                max_abs_difference_over_peak=float(np.max(np.abs(d_f[::20] - d_d))
                                                   / d_d.max()),
                max_relative_difference_where_density_above_1e6th_of_peak=float(np.max(
                    np.abs(d_f[::20] - d_d)[big] / d_d[big])))
        CPU["last"] = cpu_f
        record(name, p, sum(sizes), fast.n_distinct, t_f, x.size,
               summation=fast.to_dict()["summation"], boxes=fast.expansion.n_boxes,
               model_build_s=build[0], model_build_cpu_s=build[1], **extra)

    var = profiles(p)
    for n in (70_000, 150_000):
        distinct(var, [n // 2, n - n // 2], "density, K=2, p distinct variances (exact)")
    var3 = np.vstack([var, 1.0 + 0.4 * np.sin(6 * np.pi * np.arange(p) / p)])
    for n in (70_000, 150_000):
        distinct(var3, [n // 3, n // 3, n - 2 * (n // 3)],
                 "density, K=3, p distinct variances (exact)")
    gen0 = np.random.default_rng(1)
    cloud = np.vstack([gen0.uniform(0.4, 1.6, p), gen0.uniform(0.5, 1.5, p)])
    distinct(cloud, [35_000, 35_000], "density, K=2, independent uniform variances (exact)")
    # max_atoms compression (an approximation) for comparison
    n = 70_000
    sizes = [n // 2, n - n // 2]
    comp = gram_model(var, sizes, max_atoms=512)
    x = grid_for(comp)
    t_c, d_c = _best(lambda: gram_density(comp, x), args.repeat)
    cpu_c = CPU["last"]
    exact = gram_model(var, sizes)
    d_e = gram_density(exact, x)
    CPU["last"] = cpu_c
    record("density, p distinct variances, max_atoms=512", p, n, comp.n_distinct, t_c,
           x.size, max_error_vs_exact_relative_to_peak=float(
               np.max(np.abs(d_c - d_e)) / np.max(d_e)))
    # dense eigendecomposition at n = 4000 (and what sampling one Gram matrix costs)
    gen = np.random.default_rng(0)
    nd = 1500 if args.quick else 4000
    Xd = gen.standard_normal((1000, nd)) / math.sqrt(1000)
    Gd = Xd.T @ Xd
    t_v, _ = _best(lambda: np.linalg.eigvalsh(Gd), 1)
    record("dense eigvalsh (values only)", 1000, nd, 0, t_v, 0)
    t_h, _ = _best(lambda: np.linalg.eigh(Gd), 1)
    record("dense eigh (values and vectors)", 1000, nd, 0, t_h, 0)
    out = {"rows": rows, "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
           "load_average": os.getloadavg(),
           "cpu_count": os.cpu_count(), "repeat": args.repeat,
           "command": "OPENBLAS_NUM_THREADS=1 python benchmarks/bench_spectra.py"}
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(run.record(out, outputs=[args.out]), fh, indent=1)
    print(f"wrote {portable_path(args.out)}")


if __name__ == "__main__":
    main()
