"""Benchmark: the DEQ samplers with their DEFAULT settings against the published procedure,
CK and NTK, at equal Monte-Carlo precision (docs/theory.md §2.3-2.4 and §8).

Case of the published experiment: ReLU, sa = 0.2, sb = 0.8, p = 500, n = 400 (two-class
mixture, :func:`rmt_deq.default_mixture`), width m = 1000, R = 250 = p^2/m realizations for
the CK, ``--R-ntk`` (default 64) for the NTK.

Published CK procedure (written here from the published description, not copied): float64,
for each realization draw A (m x m) and B (m x p), start from Z = 0 and iterate
Z <- phi_c(sqrt(sa) A Z + sqrt(sb) B X)/sqrt(m) (the input injection B X recomputed every
iteration), stopping when the spectral norm of the update ||Z_new - Z||_2 is <= 5e-6 or
after 25 iterations; accumulate Z^T Z.

Published NTK procedure (written from docs/theory.md §2.3-2.4): per realization, the
forward solve above (v drawn too), the preactivations U = sqrt(sa) A Z + sqrt(sb) B X at
its fixed point, then for every sample i the implicit gradient
g_i = (I - J_i^T)^{-1} D_i v/sqrt(m), J_i = sqrt(sa/m) A D_i, D_i = diag phi'(u_i), by a
dense linear solve (numpy.linalg.solve) per sample -- the Jacobian differs from sample to
sample; then the groups v: Z^T Z, A: sa (G^T G) o (Z^T Z), B: sb (G^T G) o (X^T X) (all
three, as the package's default; the published convention sums v and A, at the same cost).

Defaults: :func:`rmt_deq.sampling.deq.sampled_ck` and :func:`~rmt_deq.sampling.deq.sampled_ntk`
with no numerical option (float32 solves and Gram products, float64 averages, relative
residual 1e-4, the control variate, 100 sign draws).  Equal precision: the published
estimator is the plain average of the same matrices, whose error bar at R is that of the
sampler with the previous defaults at R (``dtype="float64", control_variate=False,
draws=200``: the same estimator as the published procedure, with its residual stopping
rule).  That run's time is also reported: previous defaults vs defaults (not interleaved).  The defaults run with
``target_error`` = that relative bar, checked every ``--check-every`` realizations, so they
stop at the same Monte-Carlo precision (their bar at most the published estimator's).
The baselines are timed on a few realizations and extrapolated linearly to R.

Interleaved pairs: ``--pairs`` times, a chunk of baseline realizations then a defaults run,
for the CK and then the NTK; each pair gives a ratio (baseline time per realization x R) /
(defaults wall time), so that a change of the machine's load weighs on both alike.

Solver error: one realization with the defaults' solver (float32, tol 1e-4) against the
same weights in float64 solved to 1e-12: relative operator-norm error of Z^T Z and of the
NTK, to be compared with the Monte-Carlo error bar.

GEMM fraction: every matrix product of a defaults run (A Phi per forward iteration, A^T g
per adjoint iteration, B X, the Gram matrices) is timed by numpy matmul for the same shapes
in float32 in the same process (median of repeats, just before and just after the run; the
larger rate of the two is the machine's); the fraction is (time numpy would need for those
products) / (wall time of the call), overall and without the weight draws (timed just
before the run) and the error bars (timed inside the run) -- the solves and Gram products
alone.

Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_sampling.py [--R 250] [--R-ntk 64]
        [--pairs 2] [--baseline-R 4] [--out benchmarks/bench_sampling.json]

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

import rmt_deq.sampling._montecarlo as montecarlo
from rmt_deq.data.mixture import default_mixture
from rmt_deq.experiments.manifest import portable_path, start_run
from rmt_deq.fixed_point.four_equations import solve_four_equations
from rmt_deq.kernels.exact import exact_ck, exact_ntk
from rmt_deq.networks.deq import (DEQWeights, deq_forward, deq_gradients,
                                  sample_deq_weights)
from rmt_deq.sampling._montecarlo import _seeds
from rmt_deq.sampling.deq import sampled_ck, sampled_ntk

HERE = os.path.dirname(os.path.abspath(__file__))


def matmul_rate(shape_a, shape_b, dtype, transpose=False, repeats=7, inner=3):
    """Median GFLOP/s of numpy.matmul for these shapes (fresh operands)."""
    rng = np.random.default_rng(123)
    a = rng.standard_normal(shape_a[::-1] if transpose else shape_a).astype(dtype)
    a = a.T if transpose else a
    b = rng.standard_normal(shape_b).astype(dtype)
    flops = 2.0 * shape_a[0] * shape_a[1] * shape_b[1]
    a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(inner):
            a @ b
        times.append((time.perf_counter() - t) / inner)
    return flops / float(np.median(times)) / 1e9


def published_forward(A, B, X, sa, sb, m, centring):
    """The published forward iteration; returns (Z, U, iterations)."""
    bx = math.sqrt(sb) * B @ X
    Z = np.zeros((m, X.shape[1]))
    for it in range(1, 26):
        U = math.sqrt(sa) * A @ Z + math.sqrt(sb) * B @ X       # B X recomputed, as published
        Znew = (np.maximum(U, 0.0) - centring) / math.sqrt(m)
        if np.linalg.norm(Z - Znew, 2) > 5e-6:
            Z = Znew
        else:
            break
    U = math.sqrt(sa) * A @ Z + bx
    return Z, U, it


def baseline(X, sa, sb, m, R_run, centring, gen, ntk):
    """The published procedure for R_run realizations: (seconds, iterations, matrices)."""
    p, n = X.shape
    XtX = X.T @ X
    out, iters = [], []
    t0 = time.perf_counter()
    for _ in range(R_run):
        A = gen.standard_normal((m, m))
        B = gen.standard_normal((m, p))
        v = gen.standard_normal(m)
        Z, U, it = published_forward(A, B, X, sa, sb, m, centring)
        iters.append(it)
        K = Z.T @ Z
        if not ntk:
            out.append(K)
            continue
        As = math.sqrt(sa / m) * A
        G = np.empty((m, n))
        eye = np.eye(m)
        for i in range(n):                    # one dense solve per sample: J_i differs
            d = (U[:, i] > 0).astype(float)  # relu'
            J = As * d[None, :]
            G[:, i] = np.linalg.solve(eye - J.T, d * v / math.sqrt(m))
        GG = G.T @ G
        out.append(K + sa * GG * K + sb * GG * XtX)
    return time.perf_counter() - t0, iters, out


class BarTimer:
    """Times every error bar computed by the samplers (final and early-stop checks)."""

    def __init__(self):
        self.seconds = 0.0
        self.real = montecarlo._Accumulator.error
        timer = self

        def timed(acc, *a, **k):
            t = time.perf_counter()
            try:
                return timer.real(acc, *a, **k)
            finally:
                timer.seconds += time.perf_counter() - t

        montecarlo._Accumulator.error = timed

    def take(self):
        s, self.seconds = self.seconds, 0.0
        return s


def solver_error(X, act, sa, sb, m, sol, seed):
    """Relative operator-norm error of one realization's CK and NTK with the defaults'
    solver (float32, default tol) against float64 solved to 1e-12."""
    child = _seeds(seed, 1)[0][0]
    W = sample_deq_weights(m, X.shape[0], rng=child, dtype="float32")
    W64 = DEQWeights(A=W.A.astype(np.float64), B=W.B.astype(np.float64),
                     v=W.v.astype(np.float64))
    XtX = X.T @ X
    mats = []
    for w, kw in ((W, {}), (W64, {"tol": 1e-12, "max_iter": 2000})):
        fw = deq_forward(X, act, sa, sb, weights=w, solution=sol, **kw)
        g = deq_gradients(fw, w, **kw).g.astype(np.float64)
        Z = fw.Z.astype(np.float64)
        K = Z.T @ Z
        GG = g.T @ g
        mats.append((K, K + sa * GG * K + sb * GG * XtX))
    rel = [float(np.linalg.norm(a - b, 2) / np.linalg.norm(b, 2))
           for a, b in zip(mats[0], mats[1])]
    return {"ck": rel[0], "ntk": rel[1]}


def gemm_fraction(S, rates, fl, t_draw, bar_seconds, ntk):
    """GEMM fraction of a sampled run (overall and without draws and error bars)."""
    info = S.info
    R = info.realizations
    fwd = sum(r.report.iterations for r in info.forward)
    adj = sum(r.report.iterations for r in info.adjoint)
    grams = (2 if ntk else 1) * (2 if info.control_variate else 1)
    ideal = (fwd * fl["A_phi"] / rates["A_phi"] + adj * fl["A_phi"] / rates["AT_g"]
             + R * fl["B_X"] / rates["B_X"] + R * grams * fl["gram"] / rates["gram"]) / 1e9
    solves = info.elapsed - R * t_draw - bar_seconds
    return {"overall": ideal / info.elapsed, "solves_and_grams": ideal / solves,
            "elapsed_s": info.elapsed, "weight_draws_s": R * t_draw,
            "error_bars_s": bar_seconds, "numpy_time_for_the_products_s": ideal}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--R", type=int, default=250)
    ap.add_argument("--R-ntk", type=int, default=64)
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--baseline-R", type=int, default=4,
                    help="CK baseline realizations per pair (the NTK baseline runs 1)")
    ap.add_argument("--check-every", type=int, default=16)
    ap.add_argument("--m", type=int, default=1000)
    ap.add_argument("--p", type=int, default=500)
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(HERE, "bench_sampling.json"))
    args = ap.parse_args()
    run = start_run(seeds={"mixture": 0, "sample": 1, "published_estimator": args.seed,
                           "defaults": f"{args.seed} + 100 + pair",
                           "baseline": f"{args.seed} + 1000 + pair",
                           "matmul_operands": 123})
    m, p, n, R, Rn = args.m, args.p, args.n, args.R, args.R_ntk
    sa, sb, act = 0.2, 0.8, "relu"
    X = default_mixture(p, 2, rng=0).sample(n, rng=1).X
    tau0 = math.sqrt(float(np.mean(np.sum(X * X, axis=0))))
    sol = solve_four_equations(act, sa, tau0, sb)
    f32 = np.dtype("float32")
    shapes = {"A_phi": ((m, m), (m, n), False), "AT_g": ((m, m), (m, n), True),
              "B_X": ((m, p), (p, n), False), "gram": ((n, m), (m, n), False)}
    fl = {k: 2.0 * a[0] * a[1] * b[1] for k, (a, b, _) in shapes.items()}

    def rates():
        return {k: matmul_rate(a, b, f32, t) for k, (a, b, t) in shapes.items()}

    def draw_time():
        t = time.perf_counter()
        for k in range(5):
            sample_deq_weights(m, p, rng=k, dtype=f32)
        return (time.perf_counter() - t) / 5

    bars = BarTimer()
    ex_ck = exact_ck(X, act, sa, sb, solution=sol).ck
    ex_ntk = exact_ntk(X, act, sa, sb, solution=sol).ntk

    def dist(M, E):
        return float(np.linalg.norm(M - E, 2) / np.linalg.norm(E, 2))

    # ---------------- the published estimator's error bar at R (plain average)
    pub = {}
    for kind, fn, RR, ex in (("ck", sampled_ck, R, ex_ck), ("ntk", sampled_ntk, Rn, ex_ntk)):
        S = fn(X, act, sa, sb, width=m, realizations=RR, rng=args.seed, solution=sol,
               control_variate=False, dtype="float64", draws=200)
        bars.take()
        pub[kind] = {"realizations": RR, "mc_error_relative": S.error_relative[kind],
                     "mc_error": S.error[kind], "distance_to_exact_relative":
                     dist(S.ck if kind == "ck" else S.ntk, ex), "elapsed_s": S.info.elapsed,
                     "matrix": S.ck if kind == "ck" else S.ntk}

    # ---------------- interleaved pairs: baseline chunk, then the defaults
    pairs = {"ck": [], "ntk": []}
    for i in range(args.pairs):
        for kind, fn, RR, ex in (("ck", sampled_ck, R, ex_ck),
                                 ("ntk", sampled_ntk, Rn, ex_ntk)):
            Rb = args.baseline_R if kind == "ck" else 1
            gen = np.random.default_rng(args.seed + 1000 + i)
            tb, iters, _mats = baseline(X, sa, sb, m, Rb, sol.centring, gen, kind == "ntk")
            target = pub[kind]["mc_error_relative"]
            r_before, t_draw = rates(), draw_time()
            S = fn(X, act, sa, sb, width=m, realizations=RR, rng=args.seed + 100 + i,
                   solution=sol, target_error=target, check_every=args.check_every)
            bar_s = bars.take()
            r_after = rates()
            # the machine's rate next to the run: the larger of the two measurements
            rate = {k: max(r_before[k], r_after[k]) for k in shapes}
            M = S.ck if kind == "ck" else S.ntk
            pairs[kind].append({
                "baseline_realizations": Rb, "baseline_s": tb,
                "baseline_per_realization_s": tb / Rb, "baseline_iterations": iters,
                "baseline_extrapolated_R_s": tb / Rb * RR,
                "defaults_s": S.info.elapsed, "defaults_realizations": S.info.realizations,
                "defaults_mc_error_relative": S.error_relative[kind],
                "target_error_relative": target,
                "defaults_distance_to_exact_relative": dist(M, ex),
                "defaults_vs_published_estimator": float(
                    np.linalg.norm(M - pub[kind]["matrix"], 2)),
                "bars_sum": S.error[kind] + pub[kind]["mc_error"],
                "ratio_equal_precision": tb / Rb * RR / S.info.elapsed,
                "forward_iterations_mean": float(np.mean(
                    [r.report.iterations for r in S.info.forward])),
                "adjoint_iterations_mean": float(np.mean(
                    [r.report.iterations for r in S.info.adjoint])) if S.info.adjoint
                else None,
                "dtype": S.info.dtype, "control_variate": S.info.control_variate,
                "draws": S.info.draws,
                "numpy_float32_rates_gflops": {"before": r_before, "after": r_after},
                "gemm": gemm_fraction(S, rate, fl, t_draw, bar_s, kind == "ntk")})
    for rec in pub.values():
        rec.pop("matrix")
    serr = solver_error(X, act, sa, sb, m, sol, args.seed + 100)

    ratio = {k: [r["ratio_equal_precision"] for r in v] for k, v in pairs.items()}
    res = {
        "case": {"activation": act, "sa": sa, "sb": sb, "p": p, "n": n, "m": m, "R_ck": R,
                 "R_ntk": Rn, "data": "default_mixture(p, 2, rng=0).sample(n, rng=1)"},
        "threads": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS",
                                                   "OMP_NUM_THREADS")},
        "cpu": platform.processor() or platform.machine(),
        "load_average_at_end": os.getloadavg(),
        "published_estimator": pub,
        "pairs": pairs,
        "ratio_defaults_vs_published": {k: {"pairs": v, "mean": float(np.mean(v))}
                                        for k, v in ratio.items()},
        "ratio_defaults_vs_previous_defaults": {
            k: pub[k]["elapsed_s"] / float(np.mean([r["defaults_s"] for r in pairs[k]]))
            for k in pairs},
        "solver_error_one_realization_relative": serr,
    }
    with open(args.out, "w") as f:
        json.dump(run.record(res, outputs=[args.out]), f, indent=1)

    print(f"case: relu, sa = {sa}, p = {p}, n = {n}, m = {m}; CK R = {R}, NTK R = {Rn}; "
          f"threads {res['threads']}; load average at the end {res['load_average_at_end']}")
    print("headline: DEFAULTS (no option) vs PUBLISHED procedure, equal Monte-Carlo "
          "precision, interleaved pairs")
    for kind in ("ck", "ntk"):
        pb = pub[kind]
        print(f"  {kind.upper():3s}: ratio {np.mean(ratio[kind]):5.1f}x  (pairs "
              f"{', '.join(f'{x:.1f}' for x in ratio[kind])}); published estimator's bar "
              f"at R = {pb['realizations']}: {pb['mc_error_relative']:.3%}; previous "
              f"defaults (float64, no control variate, 200 draws) {pb['elapsed_s']:.1f} s at "
              f"R -> defaults "
              f"{res['ratio_defaults_vs_previous_defaults'][kind]:.1f}x faster (not "
              f"interleaved)")
        for r in pairs[kind]:
            g = r["gemm"]
            print(f"       baseline {r['baseline_per_realization_s']:6.2f} s/realization "
                  f"(x {pb['realizations']} = {r['baseline_extrapolated_R_s']:7.1f} s, "
                  f"iterations {r['baseline_iterations']}); defaults "
                  f"{r['defaults_s']:5.1f} s for {r['defaults_realizations']} realizations,"
                  f" bar {r['defaults_mc_error_relative']:.3%}, "
                  f"{r['forward_iterations_mean']:.1f} forward"
                  + (f" + {r['adjoint_iterations_mean']:.1f} adjoint"
                     if r["adjoint_iterations_mean"] else "")
                  + f" iterations; GEMM fraction {g['overall']:.2f} overall, "
                    f"{g['solves_and_grams']:.2f} without draws ({g['weight_draws_s']:.1f} s)"
                    f" and error bars ({g['error_bars_s']:.1f} s)")
            print(f"       distance to the exact kernel: defaults "
                  f"{r['defaults_distance_to_exact_relative']:.2%}, published estimator "
                  f"{pb['distance_to_exact_relative']:.2%}; ||defaults - published "
                  f"estimator|| = {r['defaults_vs_published_estimator']:.3g} (sum of bars "
                  f"{r['bars_sum']:.3g})")
    print(f"solver error of one realization (float32, tol 1e-4 vs float64 1e-12): CK "
          f"{serr['ck']:.1e}, NTK {serr['ntk']:.1e} relative (vs the bars above, ~1e-2)")
    print(f"wrote {portable_path(args.out)}")


if __name__ == "__main__":
    main()
