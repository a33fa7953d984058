"""Benchmark of the sampled CK against the published procedure (docs/theory.md §8).

Case of the published experiment: ReLU, sa = 0.2, sb = 0.8, p = 500, n = 400 (two-class
mixture, :func:`rmt_deq.default_mixture`), width m = 1000, R = 250 = p^2/m realizations.

Baseline (written here from the published description, not copied): float64, for each
realization draw A (m x m) and B (m x p), start from Z = 0 and iterate
Z <- phi_c(sqrt(sa) A Z + sqrt(sb) B X)/sqrt(m) (the input injection B X recomputed every
iteration, as published), stopping when the spectral norm of the update ||Z_new - Z||_2
is <= 5e-6 or after 25 iterations; accumulate Z^T Z / R.  It is run for ``--baseline-R``
realizations and its time extrapolated linearly per realization to R (said in the output);
half of them run before ours and half after, so that load changes weigh on both alike.

Ours, two ways.  (1) :func:`rmt_deq.sampling.deq.sampled_ck` at the same m and R (so the same
Monte-Carlo precision: the same estimator of the same expectation).  (2) The same with
``control_variate=True`` (an unbiased estimator of the same expectation with a smaller
variance), stopped early once its own error bar is below the bar of (1) at R: the same
Monte-Carlo precision with fewer realizations.  Both float32, plain iteration stopped on
the relative residual ``--tol`` (default 1e-3, chosen so that the solver's error on a
realization's Gram matrix stays below 1% of the Monte-Carlo error bar at R = 250).  That is
checked in the run: one realization at ``--tol`` in float32 against the same weights solved
to 1e-12 in float64, printed beside the Monte-Carlo error.

GEMM efficiency: every matrix product of the run (A Phi per iteration, B X, Z^T Z) is
timed by numpy matmul for the same shapes and dtype in the same process (before and after
the run, median of repeats); the fraction is (time numpy would need for those products) /
(wall time of the whole sampled_ck call, including weight generation and the error bar).

Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_sampling.py [--R 250] [--baseline-R 8]
        [--tol 1e-3] [--out benchmarks/bench_sampling.json]

Prints a table and writes the numbers as JSON, with the run's manifest.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time

import numpy as np

from rmt_deq.data.mixture import default_mixture
from rmt_deq.experiments.manifest import portable_path, start_run
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.networks.deq import DEQWeights, deq_forward, sample_deq_weights
from rmt_deq.sampling._montecarlo import _seeds, mc_error_bound
from rmt_deq.sampling.deq import sampled_ck

HERE = os.path.dirname(os.path.abspath(__file__))


def matmul_rate(shape_a, shape_b, dtype, repeats=7, inner=3):
    """Median GFLOP/s of numpy.matmul(a, b, out=...) for these shapes (fresh operands)."""
    rng = np.random.default_rng(123)
    a = rng.standard_normal(shape_a).astype(dtype)
    b = rng.standard_normal(shape_b).astype(dtype)
    out = np.empty((shape_a[0], shape_b[1]), dtype)
    flops = 2.0 * shape_a[0] * shape_a[1] * shape_b[1]
    np.matmul(a, b, out=out)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(inner):
            np.matmul(a, b, out=out)
        times.append((time.perf_counter() - t) / inner)
    return flops / float(np.median(times)) / 1e9


def baseline(X, sa, sb, m, R_run, R_total, centring, seed):
    """The published procedure for R_run realizations; returns per-realization Grams too."""
    p, n = X.shape
    rng = np.random.default_rng(seed)
    G = np.zeros((n, n))
    grams, iters = [], []
    t0 = time.perf_counter()
    for _ in range(R_run):
        A = rng.standard_normal((m, m))
        B = rng.standard_normal((m, p))
        Z = np.zeros((m, n))
        for it in range(1, 26):
            Znew = (np.maximum(math.sqrt(sa) * A @ Z + math.sqrt(sb) * B @ X, 0.0)
                    - centring) / math.sqrt(m)
            if np.linalg.norm(Z - Znew, 2) > 5e-6:
                Z = Znew
            else:
                break
        iters.append(it)
        K = Z.T @ Z
        grams.append(K)
        G += K / R_total
    elapsed = time.perf_counter() - t0
    return elapsed, iters, grams


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--R", type=int, default=250)
    ap.add_argument("--baseline-R", type=int, default=8)
    ap.add_argument("--m", type=int, default=1000)
    ap.add_argument("--p", type=int, default=500)
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(HERE, "bench_sampling.json"))
    args = ap.parse_args()
    run = start_run(seeds={"mixture": 0, "sample": 1, "ours": args.seed,
                           "control_variate": args.seed + 100,
                           "baseline": [args.seed + 1, args.seed + 2],
                           "matmul_operands": 123})
    m, p, n, R = args.m, args.p, args.n, args.R
    sa, sb, act = 0.2, 0.8, "relu"
    X = default_mixture(p, 2, rng=0).sample(n, rng=1).X
    tau0 = math.sqrt(float(np.mean(np.sum(X * X, axis=0))))
    sol = solve_four_equations(act, sa, tau0, sb)
    dt = np.dtype(args.dtype)
    shapes = {"A_phi": ((m, m), (m, n)), "B_X": ((m, p), (p, n)), "gram": ((n, m), (m, n))}

    def rates():
        return {k: matmul_rate(a, b, dt) for k, (a, b) in shapes.items()}

    rates_before = rates()
    # the baseline runs half before and half after ours, so that a change of the machine's
    # load during the run weighs on both alike
    Rb1 = args.baseline_R // 2
    b1 = baseline(X, sa, sb, m, Rb1, R, sol.centring, args.seed + 1)

    # ---------------- ours
    ours = sampled_ck(X, act, sa, sb, width=m, realizations=R, rng=args.seed, dtype=dt,
                      solution=sol, tol=args.tol, method="plain")
    info = ours.info
    rates_after = rates()
    rate = {k: 0.5 * (rates_before[k] + rates_after[k]) for k in shapes}
    fl = {k: 2.0 * a[0] * a[1] * b[1] for k, (a, b) in shapes.items()}
    its = np.array([r.report.iterations for r in info.forward])
    ideal = (its.sum() * fl["A_phi"] / rate["A_phi"] + R * fl["B_X"] / rate["B_X"]
             + R * fl["gram"] / rate["gram"]) / 1e9
    gemm_fraction = ideal / info.elapsed
    achieved = info.gemm_flops / info.elapsed / 1e9
    numpy_equiv = info.gemm_flops / ideal / 1e9

    # ---------------- where the rest of the wall time goes: weight draws and the error bar,
    # timed separately (same sizes) to give the breakdown of the run
    t = time.perf_counter()
    for k in range(10):
        sample_deq_weights(m, p, rng=k, dtype=dt)
    t_weights = (time.perf_counter() - t) / 10
    fake = np.random.default_rng(0).standard_normal((info.batches, n, n))
    fake = fake + fake.transpose(0, 2, 1)
    t = time.perf_counter()
    mc_error_bound(fake, np.full(info.batches, R // info.batches), draws=info.draws, rng=0)
    t_bar = time.perf_counter() - t
    loop = info.elapsed - R * t_weights - t_bar

    # ---------------- solver tolerance vs Monte-Carlo error (realization 0 of our run)
    child = _seeds(args.seed, R)[0][0]
    W = sample_deq_weights(m, p, rng=child, dtype=dt)
    fast = deq_forward(X, act, sa, sb, weights=W, solution=sol, tol=args.tol,
                       method="plain")
    W64 = DEQWeights(A=W.A.astype(np.float64), B=W.B.astype(np.float64),
                     v=W.v.astype(np.float64))
    tight = deq_forward(X, act, sa, sb, weights=W64, solution=sol, tol=1e-12,
                        max_iter=2000)
    K_fast = fast.Z.astype(np.float64).T @ fast.Z.astype(np.float64)
    K_tight = tight.Z.T @ tight.Z
    solver_rel = float(np.linalg.norm(K_fast - K_tight, 2) / np.linalg.norm(K_tight, 2))

    # ---------------- ours with the control variate, run to the same Monte-Carlo precision
    # (early stop once its error bar is below the plain estimator's bar at R)
    eps = ours.error_relative['ck']
    cv = sampled_ck(X, act, sa, sb, width=m, realizations=R, rng=args.seed + 100, dtype=dt,
                    solution=sol, tol=args.tol, method="plain", control_variate=True,
                    target_error=eps, check_every=16, draws=100)
    cv_gap = float(np.linalg.norm(cv.ck - ours.ck, 2))

    # ---------------- baseline, second half (the first half ran before ours)
    b2 = baseline(X, sa, sb, m, args.baseline_R - Rb1, R, sol.centring, args.seed + 2)
    b_elapsed = b1[0] + b2[0]
    b_iters, grams = b1[1] + b2[1], b1[2] + b2[2]
    b_total = b_elapsed / args.baseline_R * R
    Rb = args.baseline_R
    S = np.stack(grams)
    b_err, b_norm = mc_error_bound(S, np.ones(Rb), confidence=info.confidence, rng=0)
    b_err_at_R = b_err * math.sqrt(Rb / R)          # same estimator, R realizations
    speedup = b_total / info.elapsed

    res = {
        "case": {"activation": act, "sa": sa, "sb": sb, "p": p, "n": n, "m": m, "R": R,
                 "data": "default_mixture(p, 2, rng=0).sample(n, rng=1)"},
        "threads": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS",
                                                   "OMP_NUM_THREADS")},
        "cpu": platform.processor() or platform.machine(),
        "ours": {"dtype": dt.name, "tol": args.tol, "method": "plain",
                 "elapsed_s": info.elapsed, "per_realization_s": info.elapsed / R,
                 "iterations_mean": float(its.mean()), "iterations_max": int(its.max()),
                 "mc_error_relative": ours.error_relative['ck'],
                 "solver_error_relative_one_realization": solver_rel},
        "baseline": {"dtype": "float64", "realizations_run": Rb,
                     "elapsed_run_s": b_elapsed, "per_realization_s": b_elapsed / Rb,
                     "extrapolated_total_s": b_total, "iterations": b_iters,
                     "mc_error_relative_at_R_predicted": b_err_at_R / ours.error['ck']
                     * ours.error_relative['ck']},
        "speedup_same_R": speedup,
        "control_variate": {"target_error_relative": eps,
                            "realizations": cv.info.realizations,
                            "stopped_early": cv.info.stopped_early,
                            "elapsed_s": cv.info.elapsed,
                            "mc_error_relative": cv.error_relative['ck'],
                            "error_history": cv.info.error_history,
                            "distance_to_plain_mean": cv_gap,
                            "bars_sum": cv.error['ck'] + ours.error['ck'],
                            "speedup_vs_baseline_same_precision":
                                b_total / cv.info.elapsed},
        "gemm": {"numpy_rate_gflops_before": rates_before,
                 "numpy_rate_gflops_after": rates_after,
                 "achieved_gflops": achieved, "numpy_equivalent_gflops": numpy_equiv,
                 "fraction_of_numpy": gemm_fraction,
                 "breakdown_s": {"weight_draws": R * t_weights, "error_bar": t_bar,
                                 "rest_solver_and_grams": loop},
                 "fraction_of_numpy_excluding_draws_and_bar": ideal / loop},
    }
    with open(args.out, "w") as f:
        json.dump(run.record(res, outputs=[args.out]), f, indent=1)
    print(f"case: relu, sa = 0.2, p = {p}, n = {n}, m = {m}, R = {R}; threads "
          f"{res['threads']}")
    print(f"ours     ({dt.name}, tol {args.tol:g}): {info.elapsed:8.1f} s  "
          f"({info.elapsed / R * 1e3:.0f} ms/realization, {its.mean():.1f} iterations), "
          f"MC error {ours.error_relative['ck']:.3%} of ||G|| (95%)")
    print(f"baseline (float64, published): {b_total:8.1f} s  extrapolated from {Rb} "
          f"realizations ({b_elapsed / Rb * 1e3:.0f} ms each, iterations {b_iters}); "
          f"its MC error at R predicted "
          f"{res['baseline']['mc_error_relative_at_R_predicted']:.3%}")
    print(f"solver error of one realization at tol {args.tol:g}: {solver_rel:.2e} relative "
          f"(vs MC error {ours.error_relative['ck']:.2e})")
    print(f"speed-up at the same R (same Monte-Carlo precision): {speedup:.1f}x")
    print(f"with the control variate: error bar {cv.error_relative['ck']:.3%} (target "
          f"{eps:.3%}) after {cv.info.realizations} realizations in {cv.info.elapsed:.1f} s "
          f"-> {b_total / cv.info.elapsed:.1f}x faster than the baseline at the same "
          f"precision; ||mean_cv - mean_plain|| = {cv_gap:.3g} (sum of the two bars "
          f"{cv.error['ck'] + ours.error['ck']:.3g})")
    print(f"GEMM: achieved {achieved:.1f} GFLOP/s, numpy matmul for the same shapes "
          f"{numpy_equiv:.1f} GFLOP/s -> fraction {gemm_fraction:.2f} "
          f"(numpy rates before {rates_before}, after {rates_after})")
    print(f"  wall time: weight draws ~{R * t_weights:.1f} s, error bar ~{t_bar:.1f} s, "
          f"solves and Gram products ~{loop:.1f} s -> fraction {ideal / loop:.2f} of numpy "
          f"without the draws and the bar")
    print(f"wrote {portable_path(args.out)}")


if __name__ == "__main__":
    main()
