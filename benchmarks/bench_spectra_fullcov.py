"""Benchmark: the limiting density of X^T X with full, non-commuting class covariances
(the dense backend, docs/theory.md §7.3), before and after the Jacobian reuse of the sweep.

Run:  OPENBLAS_NUM_THREADS=1 python benchmarks/bench_spectra_fullcov.py
      [--p 200 500 1000] [--points 1000] [--old-points 1000 1000 60] [--old-start 0 0 0.1]
      [--sampled-p 1000]

K = 3 covariances Q_a diag(linspace(0.3 + 0.2a, 1.5 + 0.4a, p)) Q_a^T with independent
random rotations (seed 0), sizes (p/3, p/4, p/5) (n < p), grid linspace(0, 0.8 scale,
``--points``) (the right edge is below 0.8 scale by construction of the scale).

* "after": stieltjes on the whole grid (what gram_density solves; the sweep with the
  Jacobian carried from an easy point to the next and Broyden-updated, 8-node predictor
  there: rmt_deq/spectra/_newton.py).
* "before": the method before (``_newton.SWEEP_REUSE = False``: a Jacobian per point,
  5-node predictor), which the package keeps only for this comparison (both evaluate the
  traces with the same code, rmt_deq/spectra/_fullcov.py).  For each p it runs on
  ``--old-points`` consecutive points of the grid from x = ``--old-start`` times the
  scale (the whole grid by default for p <= 500), and "after" is run on the same window
  in the same process: the ratio of the two is measured; when the window is not the whole
  grid the before time of the whole grid is the window's time per point times
  ``--points`` (an extrapolation, said so in the JSON: the first point of a window is
  solved from the scale by both methods, which makes a short window slower per point).
  The densities and Stieltjes transforms of both on the window are compared.
* At ``--sampled-p``: the density against the eigenvalues of X^T X sampled from the
  mixture (seed 5), n < p: the Kolmogorov-Smirnov distance and the 1-Wasserstein distance
  relative to the bulk width, the predicted CDF from the trapezoid rule on the grid
  (normalised by its total, which is reported).
* K = 3 diagonal covariances with independent uniform variances (seed 1) at p = 1000,
  n = 700 and 1500 (the diagonal backend, direct sums): gram_density on 1000 points.

Times are the CPU time of the process (time.process_time; with one BLAS thread that is the
time one idle core takes: the machine is shared, and its wall clock is recorded too, with
OPENBLAS_NUM_THREADS and the load average).  Writes bench_spectra_fullcov.json next to
this file.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

from rmt_deq.spectra import _newton
from rmt_deq.spectra.model import gram_model
from rmt_deq.spectra.stieltjes import gram_density, stieltjes

HERE = os.path.dirname(os.path.abspath(__file__))


def covariances(p: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The K = 3 covariances and their symmetric square roots."""
    gen = np.random.default_rng(seed)
    covs, roots = [], []
    for a in range(3):
        q, _ = np.linalg.qr(gen.standard_normal((p, p)))
        d = np.linspace(0.3 + 0.2 * a, 1.5 + 0.4 * a, p)
        covs.append((q * d) @ q.T)
        roots.append((q * np.sqrt(d)) @ q.T)
    return np.array(covs), np.array(roots)


def method(before: bool) -> None:
    """Select the sweep of before (True) or after (False)."""
    _newton.SWEEP_REUSE = not before


def distances(model, x, d, roots, sizes, seed=5) -> dict:
    """KS and W1/width of the sampled X^T X eigenvalues against the density d on x."""
    p = model.p
    gen = np.random.default_rng(seed)
    X = np.hstack([roots[a] @ gen.standard_normal((p, n)) for a, n in enumerate(sizes)])
    ev = np.sort(np.linalg.eigvalsh(X.T @ X / p))
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (d[1:] + d[:-1]) * np.diff(x))])
    mass = float(cdf[-1])
    cdf /= mass
    inside = np.flatnonzero(d > 0)
    width = float(x[inside[-1]] - x[inside[0]])
    ecdf = np.arange(1, ev.size + 1) / ev.size
    pred = np.interp(ev, x, cdf)
    ks = float(max(np.max(np.abs(ecdf - pred)), np.max(np.abs(ecdf - 1.0 / ev.size - pred))))
    # W1 = integral |F_emp - F_pred| over a grid refining both
    t = np.union1d(np.linspace(x[0], max(x[-1], ev[-1]), 200_001), ev)
    fe = np.searchsorted(ev, t, side="right") / ev.size
    fp = np.interp(t, x, cdf)
    g = np.abs(fe - fp)
    w1 = float(np.sum(0.5 * (g[1:] + g[:-1]) * np.diff(t)))
    return {"n": int(sum(sizes)), "p": p, "sample_seed": seed, "ks": ks,
            "ks_rigidity_tolerance_3logn_over_n": 3 * math.log(ev.size) / ev.size,
            "w1": w1, "bulk_width": width, "w1_over_width": w1 / width,
            "trapezoid_mass_before_normalising": mass}


def clock(fn):
    """(CPU seconds, wall seconds, result) of fn()."""
    c, w = time.process_time(), time.perf_counter()
    out = fn()
    return time.process_time() - c, time.perf_counter() - w, out


def fullcov_rows(p: int, points: int, old_points: int, old_start: float,
                 sampled: bool) -> dict:
    sizes = [p // 3, p // 4, p // 5]
    C, roots = covariances(p)
    t = time.perf_counter()
    model = gram_model(C, sizes)
    build = time.perf_counter() - t
    assert model.backend == "dense"
    x = np.linspace(0.0, 0.8 * model.scale, points)
    method(before=False)
    after, after_wall, sol = clock(lambda: stieltjes(model, x))
    row = {"p": p, "K": 3, "n": model.n, "sizes": sizes, "points": points,
           "model_build_s": build, "after_cpu_s": after, "after_wall_s": after_wall,
           "after_evaluations": sol.report.iterations, "after_message": sol.report.message}
    i0 = int(np.searchsorted(x, old_start * model.scale))
    xo = x[i0:i0 + old_points]
    whole = xo.size == x.size
    times = {}
    sols = {}
    for name in ("before", "after"):
        if name == "after" and whole:
            times[name], sols[name] = (after, after_wall), sol
            continue
        method(before=name == "before")
        c, w, sols[name] = clock(lambda: stieltjes(model, xo))
        times[name] = (c, w)
    method(before=False)
    (tb, tbw), (ta, taw) = times["before"], times["after"]
    a, b = sols["after"], sols["before"]
    dens = [np.maximum(s.m_gram.imag / math.pi, 0.0) for s in (a, b)]
    big = dens[1] > 1e-6 * np.max(dens[1])
    row.update({
        "window_first_x_over_scale": float(xo[0] / model.scale),
        "window_points": int(xo.size), "window_is_whole_grid": bool(whole),
        "window_before_cpu_s": tb, "window_after_cpu_s": ta,
        "window_before_wall_s": tbw, "window_after_wall_s": taw,
        "window_speedup_cpu": tb / ta,
        "window_before_evaluations": b.report.iterations,
        "window_after_evaluations": a.report.iterations,
        "window_before_message": b.report.message,
        "before_cpu_s_whole_grid" + ("" if whole else "_extrapolated"):
            tb / xo.size * points,
        "speedup_cpu_whole_grid" + ("" if whole else "_vs_extrapolated_before"):
            tb / xo.size * points / after,
        "window_max_density_difference_over_peak": float(
            np.max(np.abs(dens[0] - dens[1])) / np.max(dens[1])),
        "window_max_relative_density_difference_above_1e-6_of_peak": float(
            np.max(np.abs(dens[0] - dens[1])[big] / dens[1][big])),
        "window_max_relative_difference_g": float(np.max(np.abs(a.g - b.g) / np.abs(b.g))),
        "window_max_relative_difference_m_gram": float(
            np.max(np.abs(a.m_gram - b.m_gram) / np.abs(b.m_gram))),
        "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "load_average": os.getloadavg()[0]})
    if sampled:
        # the density of the whole-grid solution (what gram_density returns for n < p)
        assert model.unknown == "g"
        d = np.maximum(sol.m_gram.imag / math.pi, 0.0)
        row["sampled_gram"] = distances(model, x, d, roots, sizes)
    return row


def diagonal_rows() -> list:
    p = 1000
    gen = np.random.default_rng(1)
    var = np.vstack([gen.uniform(0.4, 1.6, p), gen.uniform(0.5, 1.5, p),
                     gen.uniform(0.3, 1.7, p)])
    rows = []
    for n in (700, 1500):
        model = gram_model(var, [n // 3, n // 3, n - 2 * (n // 3)])
        x = np.linspace(1e-6 * model.scale, 0.8 * model.scale, 1000)
        best = min(clock(lambda m=model, x=x: gram_density(m, x))[0] for _ in range(3))
        rows.append({"case": "K=3 diagonal, independent uniform variances", "p": p, "n": n,
                     "distinct_coordinates": model.n_distinct,
                     "summation": model.to_dict()["summation"], "points": 1000,
                     "best_of_3_cpu_s": best, "load_average": os.getloadavg()[0]})
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--p", type=int, nargs="+", default=[200, 500, 1000])
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--old-points", type=int, nargs="+", default=[1000, 1000, 60])
    ap.add_argument("--old-start", type=float, nargs="+", default=[0.0, 0.0, 0.1])
    ap.add_argument("--sampled-p", type=int, default=1000)
    ap.add_argument("--out", default=os.path.join(HERE, "bench_spectra_fullcov.json"))
    args = ap.parse_args(argv)
    rows = []
    if not len(args.p) == len(args.old_points) == len(args.old_start):
        ap.error("--p, --old-points and --old-start need one value each per p")
    for p, n_old, start in zip(args.p, args.old_points, args.old_start):
        row = fullcov_rows(p, args.points, n_old, start, p == args.sampled_p)
        rows.append(row)
        print(json.dumps(row), flush=True)
    diag = diagonal_rows()
    for r in diag:
        print(json.dumps(r), flush=True)
    out = {"rows": rows, "diagonal_rows": diag,
           "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
           "cpu_count": os.cpu_count(), "load_average": os.getloadavg(),
           "command": "OPENBLAS_NUM_THREADS=1 python benchmarks/bench_spectra_fullcov.py "
                      + " ".join(sys.argv[1:] if argv is None else argv)}
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(out, fh, indent=1)
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
